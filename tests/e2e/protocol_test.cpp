// End-to-end: the master facing workers that break the channel protocol or
// drop connections, using tests/e2e/rogue_worker.cpp as the worker program.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

constexpr const char* kRoguePath = HERD_BIN_DIR "/rogue_worker";

const std::regex kListening(R"(listening on 127\.0\.0\.1:(\d+))");
const std::regex kWorkerStarted(R"(Worker (\d+) started)");

std::vector<std::string> rogue_master_args(const std::string& mode, std::size_t workers) {
  return {"--host",
          "127.0.0.1",
          "--port",
          "0",
          "--workers",
          std::to_string(workers),
          "--exec",
          kRoguePath,
          "--heartbeat-interval",
          "100",
          "--heartbeat-timeout",
          "1000",
          "--kill-timeout",
          "500",
          "--",
          mode,
          kWorkerPath};
}

class ProtocolViolation : public ::testing::TestWithParam<const char*> {};

// The rogue worker is replaced, a new one is started in its slot, and the
// master keeps running and listening.
TEST_P(ProtocolViolation, ReplacesTheWorkerAndKeepsRunning) {
  HerdProcess herd(rogue_master_args(GetParam(), 1));
  ASSERT_GT(herd.pid(), 0) << herd.start_error();

  auto violation =
      herd.wait_for_line(std::regex(R"(Worker (\d+) .*: protocol violation, replacing it)"));
  ASSERT_TRUE(violation) << herd.output();
  const std::string pid = (*violation)[1];
  EXPECT_TRUE(herd.wait_for_line(std::regex("Worker " + pid + R"( died \(signal 9)")))
      << herd.output();

  // Its replacement is started in the same slot and, being just as rogue, is
  // caught too.
  auto next = herd.wait_for_line(std::regex(R"(Worker (\d+) .*: protocol violation)"), kLogTimeout,
                                 violation->index + 1);
  ASSERT_TRUE(next) << "no replacement worker was started:\n" << herd.output();
  EXPECT_NE((*next)[1], pid);
  EXPECT_TRUE(pid_alive(herd.pid())) << "the master died";

  auto listening = herd.wait_for_line(kListening);
  ASSERT_TRUE(listening);
  HttpClient client(static_cast<std::uint16_t>(std::stoi((*listening)[1])));
  EXPECT_TRUE(client.connected()) << "the master stopped listening: " << client.error();
}

INSTANTIATE_TEST_SUITE_P(Rogue, ProtocolViolation,
                         ::testing::Values("garbage", "unknown-type", "fd", "wrong-proto",
                                           "ack-unknown"));

TEST(Supervision, ReplacesAWorkerWhoseHeartbeatStops) {
  HerdProcess herd(rogue_master_args("silent", 1));
  ASSERT_GT(herd.pid(), 0) << herd.start_error();

  auto started = herd.wait_for_line(kWorkerStarted);
  ASSERT_TRUE(started) << herd.output();
  const std::string pid = (*started)[1];
  EXPECT_TRUE(herd.wait_for_line(std::regex("Worker " + pid + " missed its heartbeats")))
      << herd.output();
  EXPECT_TRUE(herd.wait_for_line(std::regex("Worker " + pid + R"( died \(signal 15)")))
      << herd.output();
  EXPECT_TRUE(herd.wait_for_line(kWorkerStarted, kLogTimeout, started->index + 1))
      << "no replacement after the hung worker:\n"
      << herd.output();
}

// Slot 0 refuses (or dies on) every connection it is handed; slot 1 is a real
// herd-worker. Every client must still be answered: the master re-dispatches
// what slot 0 did not adopt.
class LostHandoff : public ::testing::TestWithParam<const char*> {};

TEST_P(LostHandoff, EveryConnectionIsStillServed) {
  std::optional<Cluster> cluster =
      start_cluster(2, {"--exec", kRoguePath, "--heartbeat-interval", "200", "--heartbeat-timeout",
                        "3000", "--kill-timeout", "1000", "--", GetParam(), kWorkerPath});
  ASSERT_TRUE(cluster);

  for (int i = 0; i < 20; ++i) {
    HttpReadResult result = http_get(cluster->port, "/");
    ASSERT_TRUE(result.ok()) << "request " << i << ": " << result.error << "\n"
                             << cluster->herd->output();
    EXPECT_EQ(result.responses[0].status, 200u);
    EXPECT_EQ(result.responses[0].body, "Hello World!");
  }
}

INSTANTIATE_TEST_SUITE_P(Rogue, LostHandoff, ::testing::Values("refuse", "die-on-conn"));

}  // namespace
}  // namespace herd::e2e
