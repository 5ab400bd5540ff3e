// End-to-end: many connections held open, against the real herd-worker and
// --max-connections. Thousands of idle clients do not keep new ones out;
// at a worker's limit its longest-idle connection makes way for a new one;
// with none idle the worker is full, new connections wait in the master
// (neither side spinning) and are served when one frees, or answered 503
// at --queue-timeout; with --schedule none a full worker stops accepting.
#include <sys/resource.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

using Clients = std::vector<std::unique_ptr<HttpClient>>;

// A request whose header never ends: its connection is busy (not idle)
// until the test finishes it.
constexpr std::string_view kUnfinishedRequest = "GET / HTTP/1.1\r\nHost: a\r\n";
constexpr std::string_view kRequestEnd = "\r\n";

// This test process holds thousands of sockets: raise its soft descriptor
// limit to the hard one, as herd does. Returns the limit now in force.
rlim_t raise_own_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

// `count` connections that send nothing. False (with a test failure) if one
// cannot connect.
bool open_idle(std::uint16_t port, std::size_t count, Clients& clients) {
  for (std::size_t i = 0; i < count; ++i) {
    clients.push_back(std::make_unique<HttpClient>(port));
    if (!clients.back()->connected()) {
      ADD_FAILURE() << "connection " << i << ": " << clients.back()->error();
      return false;
    }
  }
  return true;
}

std::size_t closed_by_server(const Clients& clients) {
  std::size_t closed = 0;
  for (const auto& client : clients) closed += client->server_has_closed() ? 1 : 0;
  return closed;
}

// Sums a field over the status reply's workers.
std::uint64_t workers_sum(const json& status, const char* key) {
  std::uint64_t sum = 0;
  for (const json& worker : status.at("workers")) sum += number(worker, key);
  return sum;
}

// Waits (bounded) for a status reply that satisfies `predicate`; returns the
// last reply seen.
std::optional<json> wait_for_status(const Cluster& cluster,
                                    const std::function<bool(const json&)>& predicate,
                                    Milliseconds timeout = Milliseconds{10000}) {
  std::optional<json> last;
  wait_until(
      [&] {
        last = status_of(cluster);
        return last && predicate(*last);
      },
      timeout);
  return last;
}

unsigned status_of_get(std::uint16_t port) {
  HttpReadResult result = http_get(port, "/");
  return result.ok() ? result.responses[0].status : 0;
}

// Over one second while a connection waits for room, `pids` together use
// less than a fifth of it: nothing spins on the connection that cannot be
// taken.
void expect_no_spin(const std::vector<pid_t>& pids, const std::string& who) {
  std::optional<CpuUse> use = cpu_use_over(pids, Milliseconds{1000});
  ASSERT_TRUE(use) << "cannot read the CPU time of " << who;
  std::cout << "[ full     ] " << who << ": CPU " << use->cpu_ms << " ms in " << use->window_ms
            << " ms while a connection waits for room\n";
  EXPECT_LT(use->cpu_ms, use->window_ms / 5)
      << who << ": spinning while a connection waits for room";
}

// Sends each client its unfinished request and waits until the worker has
// them all: `count` busy connections.
bool hold_busy(const Cluster& cluster, std::size_t count, Clients& busy) {
  for (std::size_t i = 0; i < count; ++i) {
    busy.push_back(std::make_unique<HttpClient>(cluster.port));
    if (!busy.back()->send(kUnfinishedRequest)) {
      ADD_FAILURE() << "busy client " << i << ": " << busy.back()->error();
      return false;
    }
  }
  std::optional<json> status = wait_for_status(cluster, [&](const json& reply) {
    return workers_sum(reply, "active_connections") == count;
  });
  EXPECT_TRUE(status && workers_sum(*status, "active_connections") == count)
      << (status ? status->dump() : "no status");
  return status && workers_sum(*status, "active_connections") == count;
}

// Finishes the requests of busy clients [from, to): each is answered 200.
void finish_busy(Clients& busy, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i) {
    ASSERT_TRUE(busy[i]->send(kRequestEnd)) << busy[i]->error();
    HttpReadResult result = busy[i]->read_responses(1);
    ASSERT_TRUE(result.ok()) << "busy client " << i << ": " << result.error;
    EXPECT_EQ(result.responses[0].status, 200u);
  }
}

// One busy client finishes: its answer, then room for the waiting one,
// which is served.
void expect_served_when_one_frees(Clients& busy, HttpClient& waiting) {
  finish_busy(busy, 0, 1);
  HttpReadResult served = waiting.read_responses(1);
  ASSERT_TRUE(served.ok()) << "the waiting connection was not served: " << served.error;
  EXPECT_EQ(served.responses[0].status, 200u);
}

// Waits until the one worker says it is full and the master holds `pending`.
std::optional<json> wait_for_full(const Cluster& cluster, std::uint64_t pending) {
  return wait_for_status(cluster, [&](const json& reply) {
    return reply.at("workers").at(0).value("full", false) &&
           number(reply.at("master"), "pending") == pending;
  });
}

TEST(ConnectionLimit, ThousandsOfIdleConnectionsDoNotKeepNewClientsOut) {
  constexpr std::size_t kIdle = 3000;
  ASSERT_GE(raise_own_descriptor_limit(), kIdle + 256) << "this test needs the descriptors";
  // Idle connections live as long as the keep-alive timeout: longer than the test.
  std::optional<Cluster> cluster =
      start_cluster(2, {"--heartbeat-interval", "100", "--", "--keepalive-timeout", "120000"});
  ASSERT_TRUE(cluster);
  std::optional<json> initial = status_of(*cluster);
  ASSERT_TRUE(initial);
  // The default: each worker's descriptor limit less 64.
  EXPECT_GE(number(initial->at("master"), "max_connections"), kIdle) << initial->dump();

  Clients idle;
  ASSERT_TRUE(open_idle(cluster->port, kIdle, idle));
  std::optional<json> holding = wait_for_status(*cluster, [&](const json& reply) {
    return workers_sum(reply, "active_connections") >= kIdle;
  });
  ASSERT_TRUE(holding && workers_sum(*holding, "active_connections") >= kIdle)
      << (holding ? holding->dump() : "no status");
  EXPECT_EQ(number(holding->at("master"), "pending"), 0u);
  for (const json& worker : holding->at("workers")) {
    // Both take part; how evenly depends on how fast each acknowledges
    // (the hand-off window gives credit, not turns).
    EXPECT_GT(number(worker, "active_connections"), 0u) << "not shared: " << worker.dump();
  }

  std::size_t served = 0;
  for (int i = 0; i < 50; ++i) served += status_of_get(cluster->port) == 200 ? 1 : 0;
  EXPECT_EQ(served, 50u) << "new clients were kept out by idle ones";
  EXPECT_EQ(closed_by_server(idle), 0u) << "idle connections were closed below the limit";
  std::cout << "[ idle     ] " << workers_sum(*holding, "active_connections")
            << " idle connections held; 50 of 50 new clients served\n";
}

TEST(ConnectionLimit, AtTheLimitTheLongestIdleConnectionMakesWay) {
  constexpr std::size_t kLimit = 100;
  constexpr std::size_t kFlood = 2000;
  ASSERT_GE(raise_own_descriptor_limit(), kFlood + kLimit + 256) << "this test needs descriptors";
  std::optional<Cluster> cluster =
      start_cluster(1, {"--max-connections", std::to_string(kLimit), "--heartbeat-interval", "100",
                        "--", "--keepalive-timeout", "120000"});
  ASSERT_TRUE(cluster);

  // kLimit keep-alive clients, each served once in turn: the first is the
  // longest idle.
  Clients kept;
  for (std::size_t i = 0; i < kLimit; ++i) {
    kept.push_back(std::make_unique<HttpClient>(cluster->port));
    ASSERT_TRUE(kept.back()->send(get_request("/"))) << kept.back()->error();
    HttpReadResult result = kept.back()->read_responses(1);
    ASSERT_TRUE(result.ok()) << "client " << i << ": " << result.error;
    ASSERT_TRUE(result.responses[0].keep_alive);
  }

  // One more: served, and the longest-idle connection is closed for it.
  EXPECT_EQ(status_of_get(cluster->port), 200u);
  EXPECT_TRUE(kept[0]->wait_for_close(kIoTimeout)) << "the longest-idle connection was kept";
  std::size_t others_closed = 0;
  for (std::size_t i = 1; i < kLimit; ++i) others_closed += kept[i]->server_has_closed() ? 1 : 0;
  EXPECT_LE(others_closed, 1u) << "more than the longest-idle connections were closed";

  // A flood of connections that send nothing: each takes the place of the
  // longest idle, and new clients are served throughout.
  Clients flood;
  ASSERT_TRUE(open_idle(cluster->port, kFlood, flood));
  std::size_t served = 0;
  for (int i = 0; i < 20; ++i) served += status_of_get(cluster->port) == 200 ? 1 : 0;
  EXPECT_EQ(served, 20u);
  bool made_way = wait_until(
      [&] { return closed_by_server(flood) + closed_by_server(kept) >= kFlood; }, kIoTimeout);
  EXPECT_TRUE(made_way) << closed_by_server(flood) << " of the flood and " << closed_by_server(kept)
                        << " kept clients closed";
  std::optional<json> status = status_of(*cluster);
  ASSERT_TRUE(status);
  EXPECT_LE(workers_sum(*status, "active_connections"), kLimit) << status->dump();
  EXPECT_FALSE(status->at("workers").at(0).value("full", true)) << status->dump();
  EXPECT_EQ(number(status->at("master"), "pending"), 0u);
  std::cout << "[ limit    ] " << closed_by_server(flood) << " of " << kFlood
            << " idle connections made way; 20 of 20 new clients served\n";
}

TEST(ConnectionLimit, WithNoneIdleNewConnectionsWaitInTheMasterUntilOneFrees) {
  constexpr std::size_t kLimit = 4;
  std::optional<Cluster> cluster =
      start_cluster(1, {"--max-connections", std::to_string(kLimit), "--heartbeat-interval", "100",
                        "--", "--header-timeout", "60000"});
  ASSERT_TRUE(cluster);
  Clients busy;
  ASSERT_TRUE(hold_busy(*cluster, kLimit, busy));

  HttpClient waiting(cluster->port);
  ASSERT_TRUE(waiting.send(get_request("/"))) << waiting.error();
  std::optional<json> full = wait_for_full(*cluster, 1);
  ASSERT_TRUE(full && full->at("workers").at(0).value("full", false))
      << "the worker never said it was full: " << (full ? full->dump() : "no status");
  EXPECT_EQ(number(full->at("master"), "pending"), 1u) << full->dump();

  // The refused connection waits; it is not bounced between the two.
  expect_no_spin({cluster->herd->pid(), cluster->herd->worker_pids().at(0)},
                 "the master and the full worker");
  expect_served_when_one_frees(busy, waiting);

  std::optional<json> after = wait_for_status(
      *cluster, [](const json& reply) { return number(reply.at("master"), "pending") == 0; });
  ASSERT_TRUE(after);
  EXPECT_EQ(number(after->at("master"), "pending"), 0u) << after->dump();
  // The others are untouched: each still gets its answer.
  finish_busy(busy, 1, kLimit);
}

TEST(ConnectionLimit, PastTheQueueTimeoutAWaitingConnectionIsAnswered503) {
  constexpr std::size_t kLimit = 2;
  std::optional<Cluster> cluster =
      start_cluster(1, {"--max-connections", std::to_string(kLimit), "--queue-timeout", "1000",
                        "--heartbeat-interval", "100", "--", "--header-timeout", "60000"});
  ASSERT_TRUE(cluster);
  Clients busy;
  ASSERT_TRUE(hold_busy(*cluster, kLimit, busy));

  Clock::time_point sent_at = Clock::now();
  HttpClient waiting(cluster->port);
  ASSERT_TRUE(waiting.send(get_request("/"))) << waiting.error();
  HttpReadResult refused = waiting.read_responses(1);
  double waited_ms = elapsed_ms(sent_at);
  ASSERT_TRUE(refused.ok()) << refused.error;
  EXPECT_EQ(refused.responses[0].status, 503u);
  EXPECT_EQ(refused.responses[0].header("retry-after"), "1");
  EXPECT_TRUE(waiting.wait_for_close(kIoTimeout));
  EXPECT_GE(waited_ms, 900.0) << "answered before the queue timeout";
  EXPECT_TRUE(cluster->herd->wait_for_line(
      std::regex(R"(answered 503 to 1 connections that waited over 1000 ms)")));

  // The busy ones were not disturbed.
  finish_busy(busy, 0, kLimit);
}

// With --schedule none the worker accepts itself: when full it stops
// watching the listening socket (which stays readable) instead of spinning.
TEST(ConnectionLimit, ScheduleNoneWorkerStopsAcceptingWhileFull) {
  constexpr std::size_t kLimit = 4;
  std::optional<Cluster> cluster =
      start_cluster(1, {"--schedule", "none", "--max-connections", std::to_string(kLimit),
                        "--heartbeat-interval", "100", "--", "--header-timeout", "60000"});
  ASSERT_TRUE(cluster);
  Clients busy;
  ASSERT_TRUE(hold_busy(*cluster, kLimit, busy));

  HttpClient waiting(cluster->port);  // in the kernel's backlog
  ASSERT_TRUE(waiting.send(get_request("/"))) << waiting.error();
  ASSERT_TRUE(cluster->herd->wait_for_line(std::regex(R"(worker \d+ is full)")));
  expect_no_spin({cluster->herd->worker_pids().at(0)}, "the full --schedule none worker");
  expect_served_when_one_frees(busy, waiting);
}

}  // namespace
}  // namespace herd::e2e
