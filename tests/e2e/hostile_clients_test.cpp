// End-to-end: clients that mean harm, against the real herd-worker. A
// dribbling client is closed at the header timeout while others are served;
// requests a proxy could read two ways, or that break RFC 9112's rules, are
// refused and closed; oversized parts get 414, 431 and 413; a client that
// pipelines without reading, or sends a chunk line that never ends, is not
// buffered without bound; running the master out of descriptors does not
// make it spin. After each, the same worker goes on serving.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using Clock = std::chrono::steady_clock;

// Workers' --header-timeout for these tests: short enough to wait out.
constexpr Milliseconds kHeaderTimeout{1000};

std::optional<Cluster> start_hostile_cluster() {
  return start_cluster(1, {"--", "--header-timeout", std::to_string(kHeaderTimeout.count())});
}

// One request on a fresh connection: its response status and whether the
// server then closed the connection.
struct Answer {
  unsigned status = 0;
  bool closed = false;
  std::string error;
};

Answer exchange_once(std::uint16_t port, const std::string& request) {
  Answer answer;
  HttpClient client(port);
  if (!client.connected() || !client.send(request)) {
    answer.error = client.error();
    return answer;
  }
  HttpReadResult result = client.read_responses(1);
  if (!result.ok()) {
    answer.error = result.error;
    return answer;
  }
  answer.status = result.responses[0].status;
  answer.closed = client.wait_for_close(kIoTimeout);
  return answer;
}

TEST(HostileClients, SlowlorisIsClosedAtTheHeaderTimeoutWhileOthersAreServed) {
  std::optional<Cluster> cluster = start_hostile_cluster();
  ASSERT_TRUE(cluster);
  RequestLoop others(cluster->port);

  // A header that never ends, one byte every 50 ms: each byte is progress, but
  // the timeout counts from the request's first byte.
  HttpClient slow(cluster->port);
  ASSERT_TRUE(slow.connected()) << slow.error();
  Clock::time_point first_byte = Clock::now();
  ASSERT_TRUE(slow.send("GET / HTTP/1.1\r\nX-Slow: "));
  bool closed = false;
  while (!closed && Clock::now() - first_byte < 5 * kHeaderTimeout) {
    closed = !slow.send("a") || slow.wait_for_close(Milliseconds{50});
  }
  double closed_after_ms = elapsed_ms(first_byte);
  others.stop();

  EXPECT_TRUE(closed) << "still open after " << closed_after_ms << " ms of dribbling";
  EXPECT_GE(closed_after_ms, kHeaderTimeout.count() - 50) << "closed before the header timeout";
  EXPECT_GT(others.done(), 10u) << "the other clients were not served meanwhile";
  EXPECT_TRUE(others.failures().empty()) << others.failures().front();
}

struct Hostile {
  const char* name;
  std::string request;
  unsigned status;
};

class HostileRequest : public ::testing::TestWithParam<Hostile> {};

TEST_P(HostileRequest, IsRefusedClosedAndTheWorkerServesOn) {
  std::optional<Cluster> cluster = start_hostile_cluster();
  ASSERT_TRUE(cluster);
  pid_t worker = cluster->herd->worker_pids().at(0);

  Answer answer = exchange_once(cluster->port, GetParam().request);

  ASSERT_TRUE(answer.error.empty()) << answer.error;
  EXPECT_EQ(answer.status, GetParam().status);
  EXPECT_TRUE(answer.closed) << "the connection stayed open after a refusal";
  HttpReadResult after = http_get(cluster->port, "/");
  ASSERT_TRUE(after.ok()) << after.error;
  EXPECT_EQ(after.responses[0].status, 200u);
  EXPECT_TRUE(pid_alive(worker)) << "the worker died";
  EXPECT_FALSE(cluster->herd->wait_for_line(exact_worker_line(worker, "died"), Milliseconds{0}));
}

std::string hostile_name(const ::testing::TestParamInfo<Hostile>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(
    Smuggling, HostileRequest,
    ::testing::Values(
        Hostile{"ContentLengthAndTransferEncoding",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
                400},
        Hostile{"DifferingContentLengths",
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\n"
                "abcd",
                400},
        Hostile{"InvalidChunkSize",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n", 400},
        Hostile{"ObsFold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400},
        Hostile{"BareLf", "GET / HTTP/1.1\nHost: a\n\n", 400},
        Hostile{"TransferEncodingNotChunked",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400},
        Hostile{"UnknownTransferCoding",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                501},
        // Answered at once, not left to the header timeout.
        Hostile{"QuotedChunkExtensionLeftOpen",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5;a=\"def; ghi\r\n",
                400},
        Hostile{"LfInAQuotedChunkExtension",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5;a=\"b\nc\"\r\nhello\r\n0\r\n\r\n",
                400},
        Hostile{"ChunkDataNotFollowedByCrlf",
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX",
                400}),
    hostile_name);

INSTANTIATE_TEST_SUITE_P(
    Conformance, HostileRequest,
    ::testing::Values(Hostile{"Http11WithoutHost", "GET / HTTP/1.1\r\n\r\n", 400},
                      Hostile{"TwoHosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
                      Hostile{"Http2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
                      Hostile{"Http10WithTransferEncoding",
                              "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                              400}),
    hostile_name);

INSTANTIATE_TEST_SUITE_P(
    Oversized, HostileRequest,
    ::testing::Values(
        Hostile{"Url", "GET /" + std::string(20 * 1024, 'u') + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
        Hostile{"Headers",
                "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(20 * 1024, 'h') + "\r\n\r\n",
                431},
        Hostile{"Body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", 413}),
    hostile_name);

// A client that sends and never reads: `prefix`, then `block` over and over,
// until `max_bytes` are sent, the kernel takes nothing for a second, or the
// worker closes the connection. What the kernel took, how it ended, and the
// most `worker` was seen to hold in memory meanwhile.
struct Flood {
  std::size_t accepted = 0;
  std::string ended = "sends blocked for 1 s";
  long peak_rss_kb = 0;
};

std::optional<Flood> flood(std::uint16_t port, const std::string& prefix, const std::string& block,
                           std::size_t max_bytes, pid_t worker) {
  UniqueFd socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!socket ||
      ::connect(socket.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::send(socket.get(), prefix.data(), prefix.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(prefix.size()) ||
      ::fcntl(socket.get(), F_SETFL, O_NONBLOCK) != 0) {
    ADD_FAILURE() << "could not start the flood: " << std::strerror(errno);
    return std::nullopt;
  }
  Flood flood;
  Clock::time_point last_progress = Clock::now();
  while (flood.accepted < max_bytes && Clock::now() - last_progress < Milliseconds{1000}) {
    std::size_t offset = flood.accepted % block.size();
    ssize_t sent = ::send(socket.get(), block.data() + offset, block.size() - offset, MSG_NOSIGNAL);
    if (std::optional<long> now_kb = resident_kb(worker); now_kb && *now_kb > flood.peak_rss_kb) {
      flood.peak_rss_kb = *now_kb;
    }
    if (sent > 0) {
      flood.accepted += static_cast<std::size_t>(sent);
      last_progress = Clock::now();
    } else if (sent < 0 && (errno == ECONNRESET || errno == EPIPE)) {
      flood.ended = std::string("the worker closed it: ") + std::strerror(errno);
      break;
    } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd writable{socket.get(), POLLOUT, 0};
      ::poll(&writable, 1, 100);  // full: wait for room, or go round to the 1 s bound
    } else {
      ADD_FAILURE() << std::strerror(errno) << " after " << flood.accepted << " bytes";
      return std::nullopt;
    }
  }
  return flood;
}

// A client that pipelines requests and never reads the answers: once 1 MiB of
// responses waits unsent, the worker stops reading it, the kernel's buffers
// fill and the client's sends block, until the header timeout (running for
// the request the worker has not finished reading) closes the connection.
// Either way the worker's memory stays flat.
TEST(HostileClients, ClientThatNeverReadsIsNotBufferedWithoutBound) {
  constexpr std::size_t kAttemptBytes = 256u << 20;  // 256 MiB of requests
  constexpr std::size_t kAcceptedBound = 64u << 20;  // kernel buffers + 1 MiB + a pipeline
  constexpr long kRssGrowthBoundKb = 32 * 1024;
  std::optional<Cluster> cluster = start_hostile_cluster();
  ASSERT_TRUE(cluster);
  pid_t worker = cluster->herd->worker_pids().at(0);
  std::optional<long> before_kb = resident_kb(worker);
  ASSERT_TRUE(before_kb) << "the worker's RSS could not be read";

  std::string block;
  while (block.size() < (1u << 20)) block += get_request("/");
  std::optional<Flood> flooded = flood(cluster->port, "", block, kAttemptBytes, worker);
  ASSERT_TRUE(flooded);
  auto [accepted, ended, peak_rss_kb] = *flooded;
  std::cout << "[ no-read  ] the kernel took " << (accepted >> 10) << " KiB of requests, then "
            << ended << "; worker RSS " << *before_kb << " KiB before, at most " << peak_rss_kb
            << " KiB\n";

  EXPECT_LT(accepted, kAcceptedBound) << "the worker kept reading a client that never reads";
  EXPECT_GT(peak_rss_kb, 0) << "the worker's RSS was never read";
  EXPECT_LT(peak_rss_kb - *before_kb, kRssGrowthBoundKb);
  HttpReadResult after = http_get(cluster->port, "/");
  ASSERT_TRUE(after.ok()) << after.error;
  EXPECT_EQ(after.responses[0].status, 200u);
  EXPECT_TRUE(pid_alive(worker));
}

// The memory attack on chunk lines: a chunk extension that never ends. Beast
// keeps an unfinished chunk line unconsumed, bounded by nothing; the worker
// refuses the request once the line passes 4 KiB, so it stops taking bytes
// long before the flood is over, and its memory stays flat. The bound is on
// growth, since a sanitizer build starts several times larger.
TEST(HostileClients, ChunkLineThatNeverEndsIsRefusedAndNotBuffered) {
  constexpr std::size_t kAttemptBytes = 160u << 20;  // what the issue's attack sent
  constexpr std::size_t kAcceptedBound = 16u << 20;  // the kernel's buffers, at most
  constexpr long kRssGrowthBoundKb = 16 * 1024;      // the attack grew it by 160 MiB
  std::optional<Cluster> cluster = start_hostile_cluster();
  ASSERT_TRUE(cluster);
  pid_t worker = cluster->herd->worker_pids().at(0);
  std::optional<long> before_kb = resident_kb(worker);
  ASSERT_TRUE(before_kb) << "the worker's RSS could not be read";

  for (std::string_view start : {"5;a=\"b", "5;a="}) {
    std::string request =
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(start);
    std::optional<Flood> flooded =
        flood(cluster->port, request, std::string(64 * 1024, 'x'), kAttemptBytes, worker);
    ASSERT_TRUE(flooded);
    auto [accepted, ended, peak_rss_kb] = *flooded;
    std::cout << "[ chunk    ] " << start << "...: the kernel took " << (accepted >> 10)
              << " KiB, then " << ended << "; worker RSS " << *before_kb << " KiB before, at most "
              << peak_rss_kb << " KiB\n";

    EXPECT_LT(accepted, kAcceptedBound) << start << ": the worker kept reading the chunk line";
    EXPECT_GT(peak_rss_kb, 0) << "the worker's RSS was never read";
    EXPECT_LT(peak_rss_kb - *before_kb, kRssGrowthBoundKb) << start;
  }
  HttpReadResult after = http_get(cluster->port, "/");
  ASSERT_TRUE(after.ok()) << after.error;
  EXPECT_EQ(after.responses[0].status, 200u);
  EXPECT_TRUE(pid_alive(worker));
}

// More connections than the master has descriptors for: accept4() fails
// with EMFILE. The master must back off instead of spinning on the still
// readable listener, and accept again once descriptors are free.
TEST(HostileClients, RunningOutOfDescriptorsDoesNotSpinAndRecovers) {
  constexpr int kDescriptorLimit = 48;
  constexpr std::size_t kClients = 80;  // well past what the limit leaves for connections
  TempDir dir;
  HerdProcess herd(
      {"--nofile=" + std::to_string(kDescriptorLimit), "--", kHerdPath, "--host", "127.0.0.1",
       "--port", "0", "--workers", "1", "--control", dir.path() + "/control.sock"},
      "/usr/bin/prlimit");
  ASSERT_GT(herd.pid(), 0) << herd.start_error();
  std::optional<LineMatch> listening =
      herd.wait_for_line(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"));
  ASSERT_TRUE(listening);
  auto port = static_cast<std::uint16_t>(std::stoul((*listening)[1]));
  std::optional<LineMatch> ready = herd.wait_for_line(std::regex(R"(Worker (\d+) ready)"));
  ASSERT_TRUE(ready);
  pid_t worker = static_cast<pid_t>(std::stol((*ready)[1]));

  // The worker takes nothing while stopped, so the master keeps every
  // connection it accepts, until it has no descriptor left.
  ASSERT_EQ(::kill(worker, SIGSTOP), 0);
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (std::size_t i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<HttpClient>(port, Milliseconds{20000}));
    ASSERT_TRUE(clients.back()->connected()) << clients.back()->error();
    ASSERT_TRUE(clients.back()->send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  }
  std::optional<LineMatch> exhausted =
      herd.wait_for_line(std::regex("accept4\\(\\) failed: Too many open files"));
  ASSERT_TRUE(exhausted) << "the master never ran out of descriptors";

  // What the master costs with the listener readable and no descriptor to
  // accept it with.
  std::optional<CpuUse> use = cpu_use_over({herd.pid()}, Milliseconds{1000});
  ASSERT_TRUE(use);
  std::cout << "[ emfile   ] master CPU " << use->cpu_ms << " ms in " << use->window_ms
            << " ms out of descriptors\n";
  EXPECT_LT(use->cpu_ms, use->window_ms / 5)
      << "the master spins on accept4() while out of descriptors";

  // The worker answers and closes; the master's copies go with the acks, and
  // it accepts the rest.
  ASSERT_EQ(::kill(worker, SIGCONT), 0);
  std::size_t answered = 0;
  for (std::unique_ptr<HttpClient>& client : clients) {
    HttpReadResult result = client->read_responses(1);
    if (result.ok() && result.responses[0].status == 200) ++answered;
  }
  EXPECT_EQ(answered, kClients) << "connections lost to descriptor exhaustion";
  HttpReadResult after = http_get(port, "/");
  ASSERT_TRUE(after.ok()) << after.error;
  EXPECT_EQ(after.responses[0].status, 200u);
}

// The soft limit on descriptors (often 1024) is raised to the hard one at
// start, for the master and the workers it starts, so thousands of idle
// clients do not run a worker out of descriptors.
TEST(HostileClients, DescriptorLimitIsRaisedToTheHardLimit) {
  auto open_files_limit = [](pid_t pid) {
    std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
    for (std::string line; std::getline(limits, line);) {
      if (line.rfind("Max open files", 0) == 0) return line;
    }
    return std::string("no 'Max open files' line");
  };
  TempDir dir;
  HerdProcess herd({"--nofile=256:4096", "--", kHerdPath, "--host", "127.0.0.1", "--port", "0",
                    "--workers", "1", "--control", dir.path() + "/control.sock"},
                   "/usr/bin/prlimit");
  ASSERT_GT(herd.pid(), 0) << herd.start_error();
  ASSERT_TRUE(herd.wait_for_line(std::regex("raised the open-descriptor limit from 256 to 4096")));
  std::optional<LineMatch> ready = herd.wait_for_line(std::regex(R"(Worker (\d+) ready)"));
  ASSERT_TRUE(ready);
  pid_t worker = static_cast<pid_t>(std::stol((*ready)[1]));

  const std::regex raised(R"(Max open files\s+4096\s+4096\s+files)");
  EXPECT_TRUE(std::regex_search(open_files_limit(herd.pid()), raised))
      << open_files_limit(herd.pid());
  EXPECT_TRUE(std::regex_search(open_files_limit(worker), raised)) << open_files_limit(worker);
}

}  // namespace
}  // namespace herd::e2e
