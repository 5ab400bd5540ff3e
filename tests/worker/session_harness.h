// Drives an HttpSession without sockets: a fake SessionHost with a fixed Date
// and a clock the test moves, and Beast's own response parser to read what
// the session wrote, so the tests check what a real client would read.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "herd/app.h"
#include "worker/http_session.h"

namespace herd::testing {

namespace http = boost::beast::http;
using ParsedResponse = http::response<http::string_body>;

constexpr std::string_view kDate = "Sun, 06 Nov 1994 08:49:37 GMT";
constexpr std::string_view kGetRoot = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

// The program herd grew from: GET / -> "Hello World!", the rest 404.
inline App hello_app() {
  App app;
  app.get("/", [](Request&, Response& res) { res.send("Hello World!"); });
  return app;
}

struct FakeHost : SessionHost {
  std::chrono::steady_clock::time_point now() override { return clock; }
  std::string_view date() override { return kDate; }
  void output_ready() override { ++output_ready_calls; }
  void response_written(unsigned status, std::uint64_t latency_us) override {
    statuses.push_back(status);
    latencies_us.push_back(latency_us);
  }

  std::chrono::steady_clock::time_point clock{};
  int output_ready_calls = 0;
  std::vector<unsigned> statuses;
  std::vector<std::uint64_t> latencies_us;
};

// An HttpSession with its host and app; feed() collects the output.
class TestSession {
 public:
  explicit TestSession(HttpLimits limits = {}, App app = hello_app())
      : app_(std::move(app)), session_(limits, app_, host_) {}

  HttpSession::FeedResult feed(std::string_view input, std::string& output) {
    HttpSession::FeedResult result = session_.feed(input, host_.clock);
    take_output(output);
    return result;
  }
  // Output written outside feed() (late responses).
  void take_output(std::string& output) {
    output += session_.output();
    session_.output().clear();
  }

  HttpSession* operator->() { return &session_; }
  HttpSession& session() { return session_; }
  FakeHost& host() { return host_; }

 private:
  FakeHost host_;
  App app_;
  HttpSession session_;
};

// Parses the next response off the front of `output` with Beast's parser.
// `head`: the response answers a HEAD request and so has no body.
inline std::optional<ParsedResponse> read_response(std::string_view& output, bool head = false) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.skip(head);
  while (!parser.is_done()) {
    boost::system::error_code error;
    std::size_t used = parser.put(boost::asio::const_buffer(output.data(), output.size()), error);
    output.remove_prefix(used);
    if (error == http::error::need_more && used > 0) continue;
    if (error || used == 0) {
      ADD_FAILURE() << "unparseable response (" << error.message() << ") at: " << output;
      return std::nullopt;
    }
  }
  return parser.release();
}

// Parses `output` as exactly one response.
inline std::optional<ParsedResponse> only_response(std::string_view output, bool head = false) {
  std::optional<ParsedResponse> response = read_response(output, head);
  EXPECT_TRUE(output.empty()) << "bytes after the response: " << output;
  return response;
}

inline std::string header(const ParsedResponse& response, http::field field) {
  return std::string(response[field]);
}
inline std::string header(const ParsedResponse& response, std::string_view name) {
  return std::string(response[name]);
}

}  // namespace herd::testing
