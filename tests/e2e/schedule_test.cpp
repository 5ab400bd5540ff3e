// End-to-end: --schedule none, where the workers accept from the shared
// listening socket themselves (Node's SCHED_NONE) and the master only
// supervises. Serving, replacement, reload and stop must hold as with the
// default round-robin hand-off.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using nlohmann::json;

constexpr Milliseconds kSettleTimeout{20000};
const std::regex kWorkerReady(R"(Worker (\d+) ready)");

std::vector<std::string> schedule_none() {
  return {"--schedule",          "none", "--heartbeat-interval", "200",
          "--heartbeat-timeout", "3000", "--kill-timeout",       "2000"};
}

void expect_served(std::uint16_t port, int count) {
  for (int i = 0; i < count; ++i) {
    HttpReadResult result = http_get(port, "/");
    ASSERT_TRUE(result.ok()) << "request " << i << ": " << result.error;
    EXPECT_EQ(result.responses[0].status, 200u) << "request " << i;
    EXPECT_EQ(result.responses[0].body, "Hello World!") << "request " << i;
  }
}

TEST(ScheduleNone, WorkersServeAndStatusSaysNone) {
  std::optional<Cluster> cluster = start_cluster(2, schedule_none());
  ASSERT_TRUE(cluster);

  expect_served(cluster->port, 20);

  std::optional<json> status = control_request(control_path(*cluster), {{"cmd", "status"}});
  ASSERT_TRUE(status);
  EXPECT_EQ(status->at("master").at("schedule"), "none") << status->dump();
  // The master accepted nothing itself; the workers counted the connections.
  std::optional<json> stats = control_request(control_path(*cluster), {{"cmd", "stats"}});
  ASSERT_TRUE(stats);
  EXPECT_TRUE(wait_until(
      [&] {
        stats = control_request(control_path(*cluster), {{"cmd", "stats"}});
        return stats && stats->at("total").at("requests").get<std::uint64_t>() >= 20;
      },
      kSettleTimeout))
      << (stats ? stats->dump() : "no stats");
}

TEST(ScheduleNone, ConcurrentClientsAreServedByBothWorkers) {
  std::optional<Cluster> cluster = start_cluster(2, schedule_none());
  ASSERT_TRUE(cluster);

  // Sequential connections may all wake the same worker (EPOLLEXCLUSIVE wakes
  // the first waiter); overlapping ones spread.
  std::vector<std::unique_ptr<HttpClient>> clients;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 8; ++i) {
      auto client = std::make_unique<HttpClient>(cluster->port);
      ASSERT_TRUE(client->connected()) << client->error();
      ASSERT_TRUE(client->send(get_request("/")));
      clients.push_back(std::move(client));
    }
    for (auto& client : clients) {
      HttpReadResult result = client->read_responses(1);
      ASSERT_TRUE(result.ok()) << result.error;
      EXPECT_EQ(result.responses[0].status, 200u);
    }
    clients.clear();
  }

  std::optional<json> stats;
  ASSERT_TRUE(wait_until(
      [&] {
        stats = control_request(control_path(*cluster), {{"cmd", "stats"}});
        return stats && stats->at("total").at("requests").get<std::uint64_t>() == 160;
      },
      kSettleTimeout))
      << (stats ? stats->dump() : "no stats");
  std::size_t serving = 0;
  for (const json& worker : stats->at("workers")) {
    if (worker.at("requests").get<std::uint64_t>() > 0) ++serving;
  }
  EXPECT_EQ(serving, 2u) << "one worker took every connection: " << stats->dump();
}

TEST(ScheduleNone, KilledWorkerIsReplacedAndTheNewOneAccepts) {
  std::optional<Cluster> cluster = start_cluster(1, schedule_none());
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::vector<pid_t> workers = herd.worker_pids();
  ASSERT_EQ(workers.size(), 1u);
  std::size_t before = herd.line_count();

  ASSERT_EQ(::kill(workers[0], SIGKILL), 0);
  ASSERT_TRUE(herd.wait_for_line(kWorkerReady, kSettleTimeout, before))
      << "no replacement became ready";

  // The only worker is the replacement: it must have the socket.
  expect_served(cluster->port, 10);
}

TEST(ScheduleNone, ReloadUnderLoadFailsNoRequest) {
  std::optional<Cluster> cluster = start_cluster(2, schedule_none());
  ASSERT_TRUE(cluster);
  RequestLoop loop(cluster->port);
  ASSERT_TRUE(loop.wait_for_requests(20, kSettleTimeout));

  std::optional<json> reply =
      control_request(control_path(*cluster), {{"cmd", "reload"}, {"wait", true}}, kSettleTimeout);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(reply->at("ok").get<bool>()) << reply->dump();
  std::size_t at_reply = loop.done();
  ASSERT_TRUE(loop.wait_for_requests(at_reply + 20, kSettleTimeout));
  loop.stop();

  EXPECT_TRUE(loop.failures().empty())
      << loop.failures().size() << " of " << loop.done()
      << " requests failed during the reload; first: " << loop.failures().front();
}

TEST(ScheduleNone, SigtermDrainsAndExitsZero) {
  std::optional<Cluster> cluster = start_cluster(2, schedule_none());
  ASSERT_TRUE(cluster);
  expect_served(cluster->port, 4);

  ASSERT_TRUE(cluster->herd->send_signal(SIGTERM));
  std::optional<int> status = cluster->herd->wait_exit(kSettleTimeout);
  ASSERT_TRUE(status) << "herd still running after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << describe_status(*status);
}

TEST(ScheduleNone, UnknownScheduleIsAUsageError) {
  HerdProcess herd({"--port", "0", "--schedule", "fastest"});
  ASSERT_GT(herd.pid(), 0) << herd.start_error();
  std::optional<int> status = herd.wait_exit(kSettleTimeout);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2) << describe_status(*status);
}

}  // namespace
}  // namespace herd::e2e
