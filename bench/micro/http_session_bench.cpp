// HttpSession: what a worker spends per request between read() and write():
// Beast's parse, the App's dispatch, the response serialized. No sockets: a
// fake host with a fixed clock and Date, as tests/worker does.
#include "worker/http_session.h"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bench/micro/allocation_counter.h"
#include "herd/app.h"

namespace herd {
namespace {

constexpr std::string_view kDate = "Sun, 06 Nov 1994 08:49:37 GMT";
constexpr HttpSession::TimePoint kNow{};

// What curl and wrk send, give or take the User-Agent.
constexpr std::string_view kGetRoot =
    "GET / HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n"
    "\r\n";
constexpr std::string_view kGetMissing =
    "GET /missing HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "User-Agent: curl/7.88.1\r\n"
    "Accept: */*\r\n"
    "\r\n";
constexpr std::size_t kUploadBytes = 1024;

// The session's surroundings with nothing to do: a fixed clock and Date, and a
// count of the responses written that did not have the expected status.
class BenchHost : public SessionHost {
 public:
  explicit BenchHost(unsigned expected_status) : expected_status_(expected_status) {}

  std::chrono::steady_clock::time_point now() override { return kNow; }
  std::string_view date() override { return kDate; }
  void output_ready() override {}
  void response_written(unsigned status, std::uint64_t) override {
    ++responses_;
    if (status != expected_status_) ++unexpected_;
  }

  std::uint64_t responses() const { return responses_; }
  std::uint64_t unexpected() const { return unexpected_; }
  void reset_counts() { responses_ = unexpected_ = 0; }

 private:
  unsigned expected_status_;
  std::uint64_t responses_ = 0;
  std::uint64_t unexpected_ = 0;
};

// examples/hello: GET / -> "Hello World!", the rest 404.
App hello_app() {
  App app;
  app.get("/", [](Request&, Response& response) { response.send("Hello World!"); });
  return app;
}

// Answers a POST with the size of its body.
App upload_app() {
  App app;
  app.post("/upload", [](Request& request, Response& response) {
    response.send(std::to_string(request.body().size()));
  });
  return app;
}

std::string post_upload_request() {
  std::string request =
      "POST /upload HTTP/1.1\r\n"
      "Host: localhost:8080\r\n"
      "User-Agent: curl/7.88.1\r\n"
      "Accept: */*\r\n"
      "Content-Type: application/octet-stream\r\n"
      "Content-Length: " +
      std::to_string(kUploadBytes) + "\r\n\r\n";
  request.append(kUploadBytes, 'x');
  return request;
}

std::string repeat(std::string_view text, std::size_t times) {
  std::string repeated;
  for (std::size_t i = 0; i < times; ++i) repeated += text;
  return repeated;
}

std::size_t count_occurrences(std::string_view text, std::string_view part) {
  std::size_t count = 0;
  for (std::size_t at = text.find(part); at != std::string_view::npos;
       at = text.find(part, at + part.size())) {
    ++count;
  }
  return count;
}

struct Expected {
  unsigned status;
  std::string_view status_line;  // "HTTP/1.1 200 OK\r\n"
  std::string_view body;
};

// Feeds `input` (`requests` whole requests) to one keep-alive session per
// iteration, and takes the output as the connection shell does after a read.
// The first feed's output is checked before timing, the status of every
// response after.
void run_keep_alive(benchmark::State& state, const App& app, std::string_view input,
                    std::size_t requests, const Expected& expected) {
  BenchHost host(expected.status);
  HttpSession session(HttpLimits{}, app, host);

  HttpSession::FeedResult first = session.feed(input, kNow);
  std::string_view output = session.output();
  bool as_expected = first.consumed == input.size() && first.requests == requests &&
                     count_occurrences(output, expected.status_line) == requests &&
                     output.starts_with(expected.status_line) &&
                     output.ends_with(std::string("\r\n\r\n") + std::string(expected.body));
  if (!as_expected) {
    state.SkipWithError(("unexpected response: " + std::string(output.substr(0, 200))).c_str());
    return;
  }
  session.output().clear();
  host.reset_counts();

  std::uint64_t allocations_before = bench::allocations_on_this_thread();
  std::int64_t output_bytes = 0;
  for (auto _ : state) {
    HttpSession::FeedResult result = session.feed(input, kNow);
    if (result.consumed != input.size()) {
      state.SkipWithError("the session did not consume the whole input");
      break;
    }
    benchmark::DoNotOptimize(session.output().data());
    output_bytes += static_cast<std::int64_t>(session.output().size());
    session.output().clear();
    benchmark::ClobberMemory();
  }
  std::int64_t items = state.iterations() * static_cast<std::int64_t>(requests);
  bench::report_allocations_per_item(state, allocations_before, items);
  if (host.responses() != static_cast<std::uint64_t>(items) || host.unexpected() != 0 ||
      session.closing()) {
    state.SkipWithError("a response was missing or had an unexpected status");
  }
  state.SetItemsProcessed(items);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(input.size()));
  state.counters["response_bytes/item"] =
      items > 0 ? static_cast<double>(output_bytes) / static_cast<double>(items) : 0.0;
}

constexpr Expected kHello{200, "HTTP/1.1 200 OK\r\n", "Hello World!"};

void BM_HttpSessionGetRoot(benchmark::State& state) {
  App app = hello_app();
  run_keep_alive(state, app, kGetRoot, 1, kHello);
}
BENCHMARK(BM_HttpSessionGetRoot);

void BM_HttpSessionGetRootPipelined16(benchmark::State& state) {
  constexpr std::size_t kBatch = 16;
  App app = hello_app();
  std::string batch = repeat(kGetRoot, kBatch);
  run_keep_alive(state, app, batch, kBatch, kHello);
}
BENCHMARK(BM_HttpSessionGetRootPipelined16);

void BM_HttpSessionNotFound(benchmark::State& state) {
  App app = hello_app();
  run_keep_alive(state, app, kGetMissing, 1,
                 Expected{404, "HTTP/1.1 404 Not Found\r\n", "Cannot GET /missing"});
}
BENCHMARK(BM_HttpSessionNotFound);

void BM_HttpSessionPost1KiB(benchmark::State& state) {
  App app = upload_app();
  std::string request = post_upload_request();
  run_keep_alive(state, app, request, 1,
                 Expected{200, "HTTP/1.1 200 OK\r\n", std::to_string(kUploadBytes)});
}
BENCHMARK(BM_HttpSessionPost1KiB);

// One request per session, as under `wrk -H "Connection: close"`: adds the
// session's construction and destruction (parser, pipeline) to each request.
void BM_HttpSessionGetRootNewSession(benchmark::State& state) {
  App app = hello_app();
  BenchHost host(200);
  std::uint64_t allocations_before = bench::allocations_on_this_thread();
  for (auto _ : state) {
    HttpSession session(HttpLimits{}, app, host);
    HttpSession::FeedResult result = session.feed(kGetRoot, kNow);
    benchmark::DoNotOptimize(result);
    benchmark::DoNotOptimize(session.output().data());
  }
  bench::report_allocations_per_item(state, allocations_before, state.iterations());
  if (host.responses() != static_cast<std::uint64_t>(state.iterations()) ||
      host.unexpected() != 0) {
    state.SkipWithError("a response was missing or was not 200");
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kGetRoot.size()));
}
BENCHMARK(BM_HttpSessionGetRootNewSession);

}  // namespace
}  // namespace herd
