#include "worker/http_session.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <exception>
#include <iterator>
#include <utility>
#include <vector>

namespace herd {
namespace http = boost::beast::http;

namespace {

void append_number(std::string& output, std::size_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  output.append(digits, end);
}

// RFC 9112 6.3: a request's Transfer-Encoding must end in chunked, and chunked
// is the only coding herd decodes. Returns the status to refuse the request
// with, or 0: 400 for anything that does not end in chunked, 501 for codings
// before it.
unsigned transfer_encoding_refusal(const http::fields& fields) {
  auto [first, last] = fields.equal_range(http::field::transfer_encoding);
  if (first == last) return 0;
  std::size_t codings = 0;
  bool chunked_last = false;
  for (auto field = first; field != last; ++field) {
    http::opt_token_list list{field->value()};
    if (!http::validate_list(list)) return 400;
    for (std::string_view coding : list) {
      ++codings;
      chunked_last = boost::beast::iequals(coding, "chunked");
    }
  }
  if (!chunked_last) return 400;
  return codings == 1 ? 0 : 501;
}

// What Beast lets through in a header that has just ended. RFC 9112 3.2: an
// HTTP/1.1 request has exactly one Host (two are where cache poisoning
// starts); HTTP/1.0 may have none, never two. 6.1: Transfer-Encoding in
// HTTP/1.0 is faulty framing (nginx answers 400 too).
unsigned header_refusal(const http::header<true>& header) {
  // A walk comparing names as enums costs less than a lookup in so few fields.
  std::size_t hosts = 0;
  bool transfer_encoding = false;
  for (const auto& field : header) {
    hosts += field.name() == http::field::host;
    transfer_encoding = transfer_encoding || field.name() == http::field::transfer_encoding;
  }
  if (hosts > 1 || (hosts == 0 && header.version() >= 11)) return 400;
  if (!transfer_encoding) return 0;
  return header.version() < 11 ? 400 : transfer_encoding_refusal(header);
}

// Beast refuses every HTTP-version but 1.0 and 1.1 alike. One of another
// major version, as HTTP/2's connection preface "PRI * HTTP/2.0" has, is 505
// (RFC 9110 15.6.6), as nginx answers HTTP/3.0.
bool other_major_version(std::string_view request) {
  std::string_view line = request.substr(0, request.find_first_of("\r\n"));
  std::string_view version = line.substr(line.rfind(' ') + 1);
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return version.size() == 8 && version.starts_with("HTTP/") && digit(version[5]) &&
         version[5] != '1' && version[6] == '.' && digit(version[7]);
}

// RFC 9112 7.1.1 allows no control character but HTAB in a chunk line, in a
// quoted extension neither; Beast lets any byte but CR through inside quotes.
bool is_control(char c) {
  auto byte = static_cast<unsigned char>(c);
  return (byte < 0x20 && byte != '\t') || byte == 0x7f;
}

bool has_control(std::string_view text) {
  return std::any_of(text.begin(), text.end(), is_control);
}

// Beast ends a quoted chunk extension only at its closing quote, reading on
// across the line's end: whether `line` leaves a quote open.
bool leaves_quote_open(std::string_view line) {
  bool quoted = false;
  for (std::size_t at = 0; at < line.size(); ++at) {
    if (line[at] == '"') {
      quoted = !quoted;
    } else if (quoted && line[at] == '\\') {
      ++at;  // a quoted-pair: the byte after the backslash is taken as it is
    }
  }
  return quoted;
}

bool is_last_chunk(std::string_view line) {
  std::string_view size = line.substr(0, line.find_first_not_of("0123456789abcdefABCDEF"));
  return !size.empty() && size.find_first_not_of('0') == std::string_view::npos;
}

// What Beast leaves unconsumed in a chunked body: the chunk line it waits to
// see whole (after the CRLF that ends the previous chunk's data, when
// `after_data`), or the last chunk's line and the trailer section. Beast
// bounds neither, checks that CRLF only once four bytes are there, and waits
// without end for a quote the line leaves open. The status to refuse the
// request with, or 0 to wait for more.
unsigned chunk_tail_refusal(std::string_view tail, bool after_data, const HttpLimits& limits) {
  if (after_data) {
    if (!tail.empty() && tail[0] != '\r') return 400;
    if (tail.size() > 1 && tail[1] != '\n') return 400;
    tail.remove_prefix(std::min<std::size_t>(tail.size(), 2));
  }
  std::size_t end = tail.find("\r\n");
  std::string_view line = tail.substr(0, end);
  if (line.size() > limits.chunk_line_bytes) return 400;
  if (end == std::string_view::npos) {
    if (line.ends_with('\r')) line.remove_suffix(1);  // its LF is still to come
    return has_control(line) ? 400 : 0;
  }
  if (has_control(line) || leaves_quote_open(line)) return 400;
  if (!is_last_chunk(line)) return 0;
  // Beast reads the trailer section once it has all of it, with no limit.
  std::string_view trailer = tail.substr(end + 2);
  if (trailer.size() > limits.header_bytes) return 431;
  for (std::size_t lf = trailer.find('\n'); lf != std::string_view::npos;
       lf = trailer.find('\n', lf + 1)) {
    if (lf == 0 || trailer[lf - 1] != '\r') return 400;
  }
  return 0;
}

// 204 and 304 carry no body (RFC 9110 15.3.5, 15.4.5).
bool status_has_body(unsigned status) {
  return status != 204 && status != 304;
}

std::uint64_t microseconds_between(std::chrono::steady_clock::time_point from,
                                   std::chrono::steady_clock::time_point to) {
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
  return elapsed > 0 ? static_cast<std::uint64_t>(elapsed) : 0;
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&#39;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

std::string_view reason_phrase(unsigned status) {
  std::string_view reason = http::obsolete_reason(static_cast<http::status>(status));
  return reason.empty() || reason.front() == '<' ? "Unknown" : reason;
}

std::string http_date(std::time_t now) {
  std::tm utc;
  gmtime_r(&now, &utc);
  char text[40];
  std::size_t length = std::strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &utc);
  return std::string(text, length);
}

void write_response(std::string& output, unsigned version, const Exchange& exchange,
                    bool keep_alive, std::string_view date) {
  bool has_body = status_has_body(exchange.status);
  output += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  append_number(output, exchange.status);
  output += ' ';
  output += reason_phrase(exchange.status);
  output += "\r\n";
  if (!exchange.default_type.empty()) {
    output += "Content-Type: ";
    output += exchange.default_type;
    output += "\r\n";
  }
  for (const auto& [name, value] : exchange.headers) {
    output += name;
    output += ": ";
    output += value;
    output += "\r\n";
  }
  if (exchange.status != 204) {
    output += "Content-Length: ";
    append_number(output, has_body ? exchange.body.size() : 0);
    output += "\r\n";
  }
  output += "Date: ";
  output += date;
  // HTTP/1.1 is persistent unless told otherwise; HTTP/1.0 only when asked.
  if (!keep_alive) {
    output += "\r\nConnection: close";
  } else if (version == 10) {
    output += "\r\nConnection: keep-alive";
  }
  output += "\r\n\r\n";
  if (has_body && !exchange.head) output += exchange.body;
}

HttpSession::HttpSession(HttpLimits limits, const detail::ExchangeHandler& handler,
                         SessionHost& host)
    : limits_(limits), handler_(handler), host_(host) {
  if (limits_.max_pipelined_requests == 0) limits_.max_pipelined_requests = 1;
  reset_parser();
}

HttpSession::~HttpSession() {
  // Written but still held: they must not point at this session any more.
  for (Exchange* exchange : held_) exchange->session = nullptr;
  close_pipeline();
}

void HttpSession::reset_parser() {
  parser_.emplace(*this);
  header_consumed_ = 0;
  header_scanned_ = 0;
  last_scanned_ = '\0';
  header_scan_done_ = false;
  empty_lines_ = 0;
  header_fields_ = 0;
  chunks_ = 0;
  chunked_bytes_ = 0;
  parser_->header_limit(static_cast<std::uint32_t>(limits_.header_bytes));
  parser_->body_limit(limits_.body_bytes);
  parser_->eager(true);
  chunked_header_.reset();
}

// A chunk line Beast has read whole (the last chunk's once its trailer
// section has come too). Extensions count against the body limit, so bytes
// the application never sees cannot be sent without bound.
void HttpSession::check_chunk_header(std::uint64_t size, std::string_view extensions,
                                     boost::system::error_code& error) {
  if (size > 0) {
    ++chunks_;
  } else {
    // Beast reads the trailer's fields next, into the header.
    const auto& header = parser_->get().base();
    header_fields_ = static_cast<std::size_t>(std::distance(header.begin(), header.end()));
    chunked_header_ = header;
  }
  chunked_bytes_ += size + extensions.size();
  if (extensions.size() > limits_.chunk_line_bytes || has_control(extensions)) {
    error = http::error::bad_chunk_extension;
  } else if (chunked_bytes_ > limits_.body_bytes) {
    error = http::error::body_limit;
  }
}

// Beast adds trailer fields to the header's. RFC 9110 6.5.1 lets a recipient
// drop them, and merged they could add a Host or a framing field to the
// header: it goes back to what it was when the last chunk came. A copy, not
// an erase of the fields added: Beast inserts a field beside those of its
// name, so the trailer's are not the last ones.
unsigned HttpSession::take_trailer() {
  auto& message = parser_->get();
  if (!chunked_header_) return 0;
  auto field_bytes = [](const http::fields& fields) {
    std::size_t bytes = 0;
    for (const auto& field : fields) bytes += field.name_string().size() + field.value().size();
    return bytes;
  };
  std::size_t fields = static_cast<std::size_t>(std::distance(message.begin(), message.end()));
  if (fields == header_fields_) return 0;  // no trailer: the usual case
  std::size_t trailer_bytes = field_bytes(message) - field_bytes(*chunked_header_) +
                              (fields - header_fields_) * 4;  // ": " and CRLF
  message.base() = std::move(*chunked_header_);
  return trailer_bytes > limits_.header_bytes ? 431 : 0;
}

// obs-fold is a line of the header that starts with SP or HTAB. Beast would
// join it to the line before; a proxy in front may not (RFC 9112 5.2 lets a
// server refuse it). The scan jumps from one LF to the next and stops at the
// blank line, so body bytes are never looked at.
bool HttpSession::scan_for_obs_fold(std::string_view window) {
  // The parser consumes only what has been scanned: whole lines.
  if (header_scan_done_ || header_scanned_ < header_consumed_) return false;
  std::size_t from = header_scanned_ - header_consumed_;
  if (from >= window.size()) return false;
  std::string_view fresh = window.substr(from);
  // A line break split between feeds: the LF was the last byte scanned.
  std::size_t at = 0;
  if (last_scanned_ != '\n') {
    at = fresh.find('\n');
    if (at == std::string_view::npos) {
      header_scanned_ += fresh.size();
      last_scanned_ = fresh.back();
      return false;
    }
    ++at;
  }
  // `at` is the start of a line.
  while (at < fresh.size()) {
    char first = fresh[at];
    if (first == ' ' || first == '\t') return true;
    if (first == '\n' || (first == '\r' && at + 1 < fresh.size() && fresh[at + 1] == '\n')) {
      header_scan_done_ = true;
      return false;
    }
    if (first == '\r' && at + 1 == fresh.size()) break;  // CR; its LF comes next feed
    std::size_t next = fresh.find('\n', at);
    if (next == std::string_view::npos) {
      at = fresh.size();
      break;
    }
    at = next + 1;
  }
  header_scanned_ += at;
  last_scanned_ = at == 0 ? last_scanned_ : fresh[at - 1];
  return false;
}

// need_more is no refusal: more bytes are to come, unless what was `given`
// was `capped` at the header limit (then it becomes header_limit). Checked
// first when the header has just ended (the body may have begun in the same
// bytes): Host and Transfer-Encoding. A header over the limit is 414 when the
// request line alone is (no line ended in what the parser was given), else 431.
unsigned HttpSession::refusal_after(boost::system::error_code& error, bool header_ended,
                                    bool capped, std::string_view given) const {
  bool parsed = !error || error == http::error::need_more;
  if (header_ended && parsed) {
    if (unsigned status = header_refusal(parser_->get())) return status;
  }
  if (error == http::error::need_more && capped) error = http::error::header_limit;
  if (!error || error == http::error::need_more) return 0;
  if (error == http::error::header_limit) {
    return header_consumed_ == 0 && given.find('\n') == std::string_view::npos ? 414 : 431;
  }
  if (error == http::error::bad_version && other_major_version(given)) return 505;
  return error == http::error::body_limit ? 413 : 400;
}

HttpSession::FeedResult HttpSession::feed(std::string_view input, TimePoint now) {
  FeedResult result;
  feeding_ = true;
  // A request whose response closes the connection is the last one read.
  auto reading = [this] {
    return !closing_ && accepting() && (pipeline_.empty() || pipeline_.back()->keep_alive);
  };
  while (reading() && result.consumed < input.size()) {
    if (!in_request_) request_started_ = now;
    std::string_view rest = input.substr(result.consumed);
    // RFC 9112 2.2: empty lines before a request line are skipped, a few.
    if (!parser_->got_some() && rest.front() == '\r') {
      if (rest.size() == 1) {  // its LF is still to come
        in_request_ = true;
        break;
      }
      if (rest[1] == '\n') {
        if (++empty_lines_ > kMaxEmptyLines) {
          ++result.requests;
          respond_error(400, request_started_);
          break;
        }
        result.consumed += 2;
        in_request_ = false;
        continue;
      }
    }
    // Beast applies its header limit to the request line and the header
    // fields separately; cap what it sees so the limit covers both together.
    bool in_header = !parser_->is_header_done();
    bool capped = in_header && rest.size() > limits_.header_bytes - header_consumed_;
    if (capped) rest = rest.substr(0, limits_.header_bytes - header_consumed_);
    boost::system::error_code error;
    std::size_t used = 0;
    unsigned refusal = 0;
    if (in_header && scan_for_obs_fold(rest)) {
      refusal = 400;
    } else {
      used = parser_->put(boost::asio::const_buffer(rest.data(), rest.size()), error);
      result.consumed += used;
      bool header_ended = in_header && parser_->is_header_done();
      if (in_header && !header_ended) header_consumed_ += used;
      // Before the header is checked: the body may have ended in the same bytes.
      unsigned trailer_refusal = parser_->is_done() && parser_->chunked() ? take_trailer() : 0;
      refusal = refusal_after(error, header_ended, capped, rest);
      if (refusal == 0) refusal = trailer_refusal;
      // What Beast leaves of a chunked body is a chunk line, or the trailer.
      if (refusal == 0 && parser_->is_header_done() && parser_->chunked() && !parser_->is_done()) {
        refusal = chunk_tail_refusal(rest.substr(used), chunks_ > 0, limits_);
      }
    }
    if (refusal != 0) {
      ++result.requests;
      respond_error(refusal, request_started_);
      break;
    }
    if (error == http::error::need_more) {
      // Beast keeps a partial header line unconsumed; the caller feeds it
      // again with the bytes that follow.
      in_request_ = true;
      break;
    }
    in_request_ = !parser_->is_done();
    if (!parser_->is_done()) {
      if (used == 0) break;  // defensive: no progress without an error
      continue;
    }

    Exchange& exchange = start_exchange(request_started_);
    exchange.message = parser_->release();
    reset_parser();
    std::string_view target = exchange.message.target();
    exchange.path = target.substr(0, target.find('?'));
    exchange.head = exchange.message.method() == http::verb::head;
    exchange.keep_alive = exchange.message.keep_alive();
    ++result.requests;
    handler_.dispatch(exchange);
  }
  feeding_ = false;
  return result;
}

Exchange& HttpSession::start_exchange(TimePoint started) {
  Exchange* exchange = spare_ ? spare_.release() : new Exchange;
  exchange->session = this;
  exchange->in_pipeline = true;
  exchange->started = started;
  pipeline_.push_back(exchange);
  return *exchange;
}

void HttpSession::respond_error(unsigned status, TimePoint started) {
  Exchange& exchange = start_exchange(started);
  exchange.status = status;
  exchange.default_type = "text/html; charset=utf-8";
  exchange.body = reason_phrase(status);
  exchange.keep_alive = false;
  exchange.sent = true;
  in_request_ = false;
  write_ready_responses();
}

void HttpSession::response_ready(Exchange& exchange) {
  if (exchange.session != this || !exchange.in_pipeline) return;
  write_ready_responses();
}

void HttpSession::write_ready_responses() {
  bool wrote = false;
  while (!closing_ && !pipeline_.empty() && pipeline_.front()->sent) {
    Exchange& exchange = *pipeline_.front();
    pipeline_.pop_front();
    // Draining: the response that leaves nothing outstanding (and no request
    // half read) is the connection's last.
    bool last_while_draining = draining_ && pipeline_.empty() && !in_request_;
    bool keep_alive = exchange.keep_alive && !exchange.close_after && !last_while_draining;
    write_response(output_, exchange.message.version(), exchange, keep_alive, host_.date());
    ++responses_written_;
    host_.response_written(exchange.status, microseconds_between(exchange.started, host_.now()));
    exchange.in_pipeline = false;
    // Usually still held: the handler answered before its handles went.
    if (exchange.handles > 0) {
      held_.push_back(&exchange);
    } else {
      release(exchange);
    }
    wrote = true;
    if (!keep_alive) {
      closing_ = true;
      close_pipeline();
    }
  }
  if (wrote && !feeding_) host_.output_ready();
}

void HttpSession::release(Exchange& exchange) {
  if (exchange.handles > 0 || exchange.in_pipeline) return;
  auto held = std::find(held_.begin(), held_.end(), &exchange);
  if (held != held_.end()) {
    *held = held_.back();
    held_.pop_back();
  }
  if (exchange.session == this && !spare_) {
    exchange.reset();
    spare_.reset(&exchange);
    return;
  }
  delete &exchange;
}

void HttpSession::close_pipeline() {
  // Exchanges behind a closing response, or left when the connection goes:
  // their responses will never be written.
  std::deque<Exchange*> abandoned = std::exchange(pipeline_, {});
  std::vector<std::function<void()>> callbacks;
  for (Exchange* exchange : abandoned) {
    exchange->in_pipeline = false;
    exchange->session = nullptr;
    if (!exchange->sent) {
      exchange->aborted = true;
      if (exchange->on_abort) callbacks.push_back(std::move(exchange->on_abort));
    }
    if (exchange->handles == 0) delete exchange;
  }
  // Last, with the session consistent: a callback may complete other exchanges.
  for (auto& callback : callbacks) {
    try {
      callback();
    } catch (const std::exception& error) {
      spdlog::error("on_abort callback threw: {}", error.what());
    } catch (...) {
      spdlog::error("on_abort callback threw a non-exception");
    }
  }
}

void Exchange::reset() {
  message = {};
  path = {};
  params.clear();
  query.reset();
  locals = nullptr;
  head = false;
  keep_alive = false;
  app = nullptr;
  next_layer = 0;
  status = 200;
  headers.clear();
  default_type = {};
  body.clear();
  close_after = false;
  sent = false;
  aborted = false;
  on_abort = nullptr;
  session = nullptr;
  handles = 0;
  in_pipeline = false;
}

void release_exchange(Exchange& exchange) {
  if (exchange.handles > 0 || exchange.in_pipeline) return;
  if (exchange.session != nullptr) return exchange.session->release(exchange);
  delete &exchange;
}

}  // namespace herd
