#include "worker/http_session.h"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <exception>
#include <utility>
#include <vector>

#include "herd/app.h"

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

HttpSession::HttpSession(HttpLimits limits, const App& app, SessionHost& host)
    : limits_(limits), app_(app), host_(host) {
  if (limits_.max_pipelined_requests == 0) limits_.max_pipelined_requests = 1;
  reset_parser();
}

HttpSession::~HttpSession() {
  // Written but still held: they must not point at this session any more.
  for (Exchange* exchange : held_) exchange->session = nullptr;
  close_pipeline();
}

void HttpSession::reset_parser() {
  parser_.emplace();
  header_consumed_ = 0;
  header_scanned_ = 0;
  last_scanned_ = '\0';
  header_scan_done_ = false;
  parser_->header_limit(static_cast<std::uint32_t>(limits_.header_bytes));
  parser_->body_limit(limits_.body_bytes);
  parser_->eager(true);
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
// bytes): the Transfer-Encoding. A header over the limit is 414 when the
// request line alone is (no line ended in what the parser was given), else 431.
unsigned HttpSession::refusal_after(boost::system::error_code& error, bool header_ended,
                                    bool capped, std::string_view given) const {
  bool parsed = !error || error == http::error::need_more;
  if (header_ended && parsed) {
    if (unsigned status = transfer_encoding_refusal(parser_->get())) return status;
  }
  if (error == http::error::need_more && capped) error = http::error::header_limit;
  if (!error || error == http::error::need_more) return 0;
  if (error == http::error::header_limit) {
    return header_consumed_ == 0 && given.find('\n') == std::string_view::npos ? 414 : 431;
  }
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
      if (in_header && !parser_->is_header_done()) header_consumed_ += used;
      refusal = refusal_after(error, in_header && parser_->is_header_done(), capped, rest);
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
    app_.dispatch(exchange);
  }
  feeding_ = false;
  return result;
}

Exchange& HttpSession::start_exchange(TimePoint started) {
  Exchange* exchange = spare_ ? spare_.release() : new Exchange;
  exchange->session = this;
  exchange->app = &app_;
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
