#include "worker/http_session.h"

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <charconv>
#include <ctime>

namespace herd {
namespace http = boost::beast::http;

namespace {

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

void count_response(HttpSession::FeedResult& result, unsigned status) {
  ++result.requests;
  ++result.responses_by_class[std::min<unsigned>(status / 100, 5)];
}

void append_number(std::string& output, std::size_t value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  output.append(digits, end);
}

}  // namespace

HttpResponse hello_world_app(const HttpRequest& request) {
  bool get = request.method == "GET" || request.method == "HEAD";
  if (get && request.path == "/")
    return HttpResponse{200, "text/html; charset=utf-8", "Hello World!"};
  // What Express answers for an unrouted path, minus its HTML page frame.
  return HttpResponse{404, "text/html; charset=utf-8",
                      "Cannot " + html_escape(request.method == "HEAD" ? "GET" : request.method) +
                          " " + html_escape(request.path)};
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

void write_response(std::string& output, unsigned version, const HttpResponse& response,
                    bool keep_alive, bool head, std::string_view date) {
  output += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  append_number(output, response.status);
  output += ' ';
  output += reason_phrase(response.status);
  output += "\r\nContent-Type: ";
  output += response.content_type;
  output += "\r\nContent-Length: ";
  append_number(output, response.body.size());
  output += "\r\nDate: ";
  output += date;
  // HTTP/1.1 is persistent unless told otherwise; HTTP/1.0 only when asked.
  if (!keep_alive) {
    output += "\r\nConnection: close";
  } else if (version == 10) {
    output += "\r\nConnection: keep-alive";
  }
  output += "\r\n\r\n";
  if (!head) output += response.body;
}

HttpSession::HttpSession(HttpLimits limits, HttpHandler handler)
    : limits_(limits), handler_(std::move(handler)) {
  reset_parser();
}

void HttpSession::reset_parser() {
  parser_.emplace();
  header_consumed_ = 0;
  parser_->header_limit(static_cast<std::uint32_t>(limits_.header_bytes));
  parser_->body_limit(limits_.body_bytes);
  parser_->eager(true);
}

HttpSession::FeedResult HttpSession::feed(std::string_view input, std::string& output,
                                          std::string_view date) {
  FeedResult result;
  while (!closing_ && result.consumed < input.size()) {
    std::string_view rest = input.substr(result.consumed);
    // Beast applies its header limit to the request line and the header
    // fields separately; cap what it sees so the limit covers both together.
    bool in_header = !parser_->is_header_done();
    bool capped = in_header && rest.size() > limits_.header_bytes - header_consumed_;
    if (capped) rest = rest.substr(0, limits_.header_bytes - header_consumed_);
    boost::system::error_code error;
    std::size_t used = parser_->put(boost::asio::const_buffer(rest.data(), rest.size()), error);
    result.consumed += used;
    if (in_header && !parser_->is_header_done()) header_consumed_ += used;
    if (error == http::error::need_more && capped) error = http::error::header_limit;
    if (error == http::error::need_more) {
      // Beast keeps a partial header line unconsumed; the caller feeds it
      // again with the bytes that follow.
      in_request_ = true;
      break;
    }
    if (error) {
      unsigned status = 400;
      if (error == http::error::header_limit) status = 431;
      if (error == http::error::body_limit) status = 413;
      count_response(result, respond_error(status, output, date));
      break;
    }
    in_request_ = !parser_->is_done();
    if (!parser_->is_done()) {
      if (used == 0) break;  // defensive: no progress without an error
      continue;
    }

    const auto& message = parser_->get();
    std::string_view target = message.target();
    std::string_view path = target.substr(0, target.find('?'));
    HttpRequest request{message.method_string(), target, path, message.body()};
    bool head = message.method() == http::verb::head;
    count_response(result,
                   respond(request, message.version(), message.keep_alive(), head, output, date));
    reset_parser();
  }
  return result;
}

unsigned HttpSession::respond(const HttpRequest& request, unsigned version, bool keep_alive,
                              bool head, std::string& output, std::string_view date) {
  HttpResponse response = handler_(request);
  if (close_requested_) keep_alive = false;
  write_response(output, version, response, keep_alive, head, date);
  if (!keep_alive) closing_ = true;
  return response.status;
}

unsigned HttpSession::respond_error(unsigned status, std::string& output, std::string_view date) {
  HttpResponse response{status, "text/html; charset=utf-8", std::string(reason_phrase(status))};
  write_response(output, 11, response, /*keep_alive=*/false, /*head=*/false, date);
  closing_ = true;
  in_request_ = false;
  return status;
}

}  // namespace herd
