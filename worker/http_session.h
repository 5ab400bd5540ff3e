// HttpSession: one client connection's HTTP/1.1 state, as pure logic. Bytes
// in, response bytes out; no sockets, no clock. The libevent shell in
// connection.cpp feeds it and owns the timers.
//
// Parsing is Boost.Beast's request_parser. Requests are answered in the order
// they arrive, so pipelined responses can never overtake each other. After an
// error response (400/413/431) or a request that asks for it, the session is
// closing: it consumes no more input and the shell closes the connection once
// the output is written.
#pragma once

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace herd {

struct HttpLimits {
  std::size_t header_bytes = 16 * 1024;  // request line + headers; over it -> 431
  std::size_t body_bytes = 1024 * 1024;  // over it -> 413
};

// What the app sees of a request, and what it answers.
struct HttpRequest {
  std::string_view method;  // "GET"
  std::string_view target;  // "/path?query"
  std::string_view path;    // target without the query
  std::string_view body;
};
struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
};
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// The default app, matching the Express program herd grew from:
// GET / -> 200 "Hello World!", anything else -> 404 "Cannot <METHOD> <path>".
HttpResponse hello_world_app(const HttpRequest& request);

class HttpSession {
 public:
  HttpSession(HttpLimits limits, HttpHandler handler);

  struct FeedResult {
    std::size_t consumed = 0;  // bytes of `input` used; keep the rest for the next call
    std::size_t requests = 0;  // responses written by this call, error responses included
    std::array<std::uint32_t, 6> responses_by_class{};  // [status / 100]
  };
  // Parses as many complete requests from `input` as it holds and appends a
  // response for each to `output`. `date` is the current IMF-fixdate.
  FeedResult feed(std::string_view input, std::string& output, std::string_view date);

  // True once no further request will be read: the last response said
  // `Connection: close`. The shell closes after flushing the output.
  bool closing() const { return closing_; }
  // True while part of a request has been consumed or is pending: the shell
  // then runs the header/body timeout instead of the idle keep-alive timeout.
  bool in_request() const { return in_request_; }
  // Makes the next response close the connection (the worker is draining).
  void close_after_next_response() { close_requested_ = true; }

 private:
  using Parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

  void reset_parser();
  unsigned respond(const HttpRequest& request, unsigned version, bool keep_alive, bool head,
                   std::string& output, std::string_view date);
  unsigned respond_error(unsigned status, std::string& output, std::string_view date);

  HttpLimits limits_;
  HttpHandler handler_;
  std::optional<Parser> parser_;
  std::size_t header_consumed_ = 0;  // of the current request, while in its header
  bool closing_ = false;
  bool in_request_ = false;
  bool close_requested_ = false;
};

// Appends an HTTP/1.1 response with Content-Type, Content-Length, Date and a
// Connection header to `output`; the body is omitted for HEAD.
void write_response(std::string& output, unsigned version, const HttpResponse& response,
                    bool keep_alive, bool head, std::string_view date);

// The reason phrase for a status code ("Not Found").
std::string_view reason_phrase(unsigned status);

// An IMF-fixdate for the Date header ("Sun, 06 Nov 1994 08:49:37 GMT").
std::string http_date(std::time_t now);

}  // namespace herd
