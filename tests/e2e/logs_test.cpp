// End-to-end: the workers' stdout and stderr as the master logs them (tagged
// text or JSON), and workers that write huge lines or binary garbage.
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using nlohmann::json;

constexpr const char* kRoguePath = HERD_BIN_DIR "/rogue_worker";
constexpr std::size_t kMaxLineBytes = 16 * 1024;

const std::regex kRequestHandled(
    R"(^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[worker (\d+) slot (\d+) pid (\d+) stderr\] )"
    R"(debug: Request handled by worker (\d+)$)");

// ---- tagged lines --------------------------------------------------------------

TEST(WorkerLogs, WorkerLinesAreTaggedWithIdSlotPidAndStream) {
  std::optional<Cluster> cluster = start_cluster(1);
  ASSERT_TRUE(cluster);
  const LineMatch& ready = cluster->ready.at(0);  // pid, id, slot

  ASSERT_TRUE(http_get(cluster->port, "/").ok());

  std::optional<LineMatch> handled = cluster->herd->wait_for_line(kRequestHandled);
  ASSERT_TRUE(handled) << cluster->herd->output();
  EXPECT_EQ((*handled)[1], ready[2]) << handled->line;  // id
  EXPECT_EQ((*handled)[2], ready[3]) << handled->line;  // slot
  EXPECT_EQ((*handled)[3], ready[1]) << handled->line;  // pid
  EXPECT_EQ((*handled)[4], ready[2]) << handled->line;
  // herd-worker leaves the time and its identity to the master's tag.
  EXPECT_EQ(handled->line.find("[worker", handled->line.find("[worker") + 1), std::string::npos)
      << "tagged twice: " << handled->line;
}

TEST(WorkerLogs, JsonLogHasOneObjectPerLineWithTheWorkerTags) {
  std::optional<Cluster> cluster = start_cluster(1, {"--log-format", "json"});
  ASSERT_TRUE(cluster);
  const LineMatch& ready = cluster->ready.at(0);

  ASSERT_TRUE(http_get(cluster->port, "/").ok());
  ASSERT_TRUE(cluster->herd->wait_for_line(std::regex("Request handled by worker")))
      << cluster->herd->output();

  std::optional<json> handled;
  for (const std::string& line : cluster->herd->lines()) {
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(record.is_object()) << "not a JSON object: " << line;
    EXPECT_TRUE(record.contains("time") && record.contains("level")) << line;
    if (record.value("msg", "") == "Request handled by worker " + ready[2]) handled = record;
  }
  ASSERT_TRUE(handled) << cluster->herd->output();
  EXPECT_EQ(handled->value("level", ""), "debug") << handled->dump();
  EXPECT_EQ(handled->value("process", ""), "worker " + ready[2]) << handled->dump();
  EXPECT_EQ(handled->value("worker", 0u), std::stoul(ready[2])) << handled->dump();
  EXPECT_EQ(handled->value("slot", 99u), std::stoul(ready[3])) << handled->dump();
  EXPECT_EQ(handled->value("pid", 0l), std::stol(ready[1])) << handled->dump();
  EXPECT_EQ(handled->value("stream", ""), "stderr") << handled->dump();
}

// ---- a worker that floods ------------------------------------------------------

// rogue_worker flood: a 1 MiB line, binary garbage, then a marker line, and
// then it becomes herd-worker.
std::vector<std::string> flood_args() {
  return {"--exec", kRoguePath, "--", "flood", kWorkerPath};
}

TEST(WorkerLogs, HugeLineIsCutAndMarkedAndTheMasterKeepsServing) {
  std::optional<Cluster> cluster = start_cluster(1, flood_args());
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;

  std::optional<LineMatch> cut = herd.wait_for_line(
      std::regex(R"(\[worker 1 slot 0 pid \d+ stdout\] (x+) \[cut at 16384 bytes\]$)"));
  ASSERT_TRUE(cut) << "no cut line in the log";
  EXPECT_EQ((*cut)[1].size(), kMaxLineBytes);
  std::optional<LineMatch> after = herd.wait_for_line(
      std::regex(R"(\[worker 1 slot 0 pid \d+ stdout\] rogue: after the flood$)"), kLogTimeout,
      cut->index + 1);
  ASSERT_TRUE(after) << "the line after the flood was lost";

  HttpReadResult result = http_get(cluster->port, "/");
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses.at(0).status, 200u);
  EXPECT_TRUE(pid_alive(herd.pid()));
  EXPECT_FALSE(herd.wait_for_line(std::regex(R"(Worker \d+ died)"), Milliseconds{0}));
}

TEST(WorkerLogs, BinaryGarbageAndHugeLinesKeepTheJsonLogValid) {
  std::optional<Cluster> cluster = start_cluster(1, [] {
    std::vector<std::string> args{"--log-format", "json"};
    for (const std::string& arg : flood_args()) args.push_back(arg);
    return args;
  }());
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  ASSERT_TRUE(herd.wait_for_line(std::regex("rogue: after the flood")));
  ASSERT_TRUE(http_get(cluster->port, "/").ok());

  int cut_lines = 0;
  bool saw_garbage = false;
  for (const std::string& line : herd.lines()) {
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(record.is_object()) << "not a JSON object: " << line.substr(0, 200);
    if (record.value("stream", "") != "stdout") continue;
    std::string message = record.value("msg", "");
    if (record.value("cut", false)) {
      ++cut_lines;
      EXPECT_EQ(message, std::string(kMaxLineBytes, 'x'));
    } else if (message.find("\xef\xbf\xbd") != std::string::npos) {
      saw_garbage = true;  // invalid UTF-8 became U+FFFD
      EXPECT_NE(message.find(std::string("\x01\x02\x03", 3)), std::string::npos);
    }
  }
  EXPECT_EQ(cut_lines, 1);
  EXPECT_TRUE(saw_garbage) << "no line with replaced garbage";
}

}  // namespace
}  // namespace herd::e2e
