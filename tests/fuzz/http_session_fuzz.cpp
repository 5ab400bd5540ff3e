// libFuzzer target: one client connection's bytes, in arbitrary splits, into
// the worker's HttpSession (Beast's parser, keep-alive, pipelining, the
// smuggling checks), with an app whose "/later" route answers only when the
// input says so, so responses complete out of order and after the connection
// has begun to close. Whatever comes in: no crash, no leak, nothing consumed
// that was not given, and responses only ever appended.
#include <fuzzer/FuzzedDataProvider.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "herd/app.h"
#include "worker/http_session.h"

namespace {

struct Host : herd::SessionHost {
  std::chrono::steady_clock::time_point now() override { return clock; }
  std::string_view date() override { return "Sun, 06 Nov 1994 08:49:37 GMT"; }
  void output_ready() override {}
  void response_written(unsigned, std::uint64_t) override {}
  std::chrono::steady_clock::time_point clock{};
};

// Responses the "/later" route kept, to complete when the input says.
std::vector<herd::Response>* kept = nullptr;

const herd::App& fuzz_app() {
  static const herd::App app = [] {
    herd::App built;
    built.get("/", [](herd::Request&, herd::Response& res) { res.send("Hello World!"); });
    built.post("/echo",
               [](herd::Request& req, herd::Response& res) { res.send(std::string(req.body())); });
    built.get("/later", [](herd::Request&, herd::Response& res) { kept->push_back(res); });
    built.get("/throw",
              [](herd::Request&, herd::Response&) -> void { throw std::runtime_error("x"); });
    return built;
  }();
  return app;
}

}  // namespace

// The runtime logs every 500 and every dropped response; at tens of
// thousands of inputs a second that would be most of the work.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  std::vector<herd::Response> later;
  kept = &later;
  herd::HttpLimits limits;
  limits.header_bytes = input.ConsumeIntegralInRange<std::size_t>(64, 16 * 1024);
  limits.body_bytes = input.ConsumeIntegralInRange<std::size_t>(0, 64 * 1024);
  limits.max_pipelined_requests = input.ConsumeIntegralInRange<std::size_t>(1, 16);
  Host host;
  {
    herd::HttpSession session(limits, fuzz_app(), host);
    std::string pending;
    std::size_t output_seen = 0;
    while (input.remaining_bytes() > 0) {
      switch (input.ConsumeIntegralInRange(0, 7)) {
        case 0:  // answer the oldest kept response
          if (!later.empty()) {
            later.front().send("later");
            later.erase(later.begin());
          }
          break;
        case 1:  // drop a kept response unsent (the runtime answers 500)
          if (!later.empty()) later.pop_back();
          break;
        case 2:
          session.drain();
          break;
        default: {  // more bytes from the client
          pending += input.ConsumeBytesAsString(input.ConsumeIntegralInRange<std::size_t>(1, 512));
          host.clock += std::chrono::microseconds(input.ConsumeIntegral<std::uint8_t>());
          herd::HttpSession::FeedResult fed = session.feed(pending, host.clock);
          if (fed.consumed > pending.size()) __builtin_trap();
          pending.erase(0, fed.consumed);
        }
      }
      // The shell takes the output as it goes; it only ever grows between takes.
      if (session.output().size() < output_seen) __builtin_trap();
      session.output().clear();
      output_seen = 0;
    }
  }
  // The session is gone; responses still held are answered into nothing.
  for (herd::Response& response : later) response.send("after");
  kept = nullptr;
  return 0;
}
