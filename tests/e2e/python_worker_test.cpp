// End-to-end: the herd master running examples/python_worker.py, the
// reference worker written from proto/README.md alone, instead of herd-worker.
// Proves the documented protocol is enough: serving, stats, replacement,
// reload and graceful stop all work with a worker the master knows nothing of.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using nlohmann::json;

const char* const kPythonWorkerScript = HERD_SOURCE_DIR "/examples/python_worker.py";
// A Python worker takes longer to start than herd-worker, and heartbeats carry
// the counters: room for a sanitizer build on a loaded machine.
constexpr Milliseconds kSettleTimeout{20000};
constexpr Milliseconds kReloadTimeout{30000};

const std::regex kWorkerReady(R"(Worker (\d+) ready)");

// The first executable python3 on PATH, or "" when there is none.
std::string find_python3() {
  const char* path = std::getenv("PATH");
  std::stringstream directories(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string directory;
  while (std::getline(directories, directory, ':')) {
    if (directory.empty()) continue;
    std::string candidate = directory + "/python3";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::set<std::uint64_t> worker_ids(const json& reply) {
  std::set<std::uint64_t> ids;
  for (const json& worker : reply.at("workers")) ids.insert(number(worker, "id"));
  return ids;
}

class PythonWorker : public ::testing::Test {
 protected:
  void SetUp() override {
    python_ = find_python3();
    if (python_.empty()) {
      GTEST_SKIP() << "python3 is not installed (not on PATH); scripts/setup.sh installs it";
    }
  }

  // A cluster of `workers` Python workers with 100 ms heartbeats.
  std::optional<Cluster> start_python_cluster(std::size_t workers) {
    return start_cluster(
        workers, {"--heartbeat-interval", "100", "--heartbeat-timeout", "5000", "--kill-timeout",
                  "5000", "--exec", python_, "--", kPythonWorkerScript});
  }

  std::string python_;
};

TEST_F(PythonWorker, TwoWorkersAnswerHelloWorldAndNotFound) {
  std::optional<Cluster> cluster = start_python_cluster(2);
  ASSERT_TRUE(cluster);

  for (int i = 0; i < 4; ++i) {  // round robin: both workers answer
    HttpReadResult result = http_get(cluster->port, "/");
    ASSERT_TRUE(result.ok()) << "request " << i << ": " << result.error;
    const HttpResponse& response = result.responses[0];
    EXPECT_EQ(response.status, 200u);
    EXPECT_EQ(response.body, "Hello World!");
    EXPECT_EQ(response.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(response.header("Content-Length"), "12");
  }
  HttpReadResult missing = http_get(cluster->port, "/nope?x=1");
  ASSERT_TRUE(missing.ok()) << missing.error;
  EXPECT_EQ(missing.responses[0].status, 404u);
  EXPECT_EQ(missing.responses[0].body, "Cannot GET /nope");
}

TEST_F(PythonWorker, KeepAliveConnectionServesManyRequests) {
  std::optional<Cluster> cluster = start_python_cluster(2);
  ASSERT_TRUE(cluster);

  HttpClient client(cluster->port);
  ASSERT_TRUE(client.connected()) << client.error();
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(client.send(get_request(i % 3 == 2 ? "/other" : "/")))
        << "request " << i << ": " << client.error();
    HttpReadResult result = client.read_responses(1);
    ASSERT_TRUE(result.ok()) << "request " << i << ": " << result.error;
    EXPECT_EQ(result.responses[0].status, i % 3 == 2 ? 404u : 200u) << "request " << i;
    EXPECT_TRUE(result.responses[0].keep_alive) << "request " << i;
    ASSERT_FALSE(result.server_closed) << "the worker closed after request " << i;
  }
  // Pipelined: three requests in one write, three responses in order.
  ASSERT_TRUE(client.send(get_request("/") + get_request("/a") + get_request("/")));
  HttpReadResult pipelined = client.read_responses(3);
  ASSERT_TRUE(pipelined.ok()) << pipelined.error;
  EXPECT_EQ(pipelined.responses[0].status, 200u);
  EXPECT_EQ(pipelined.responses[1].body, "Cannot GET /a");
  EXPECT_EQ(pipelined.responses[2].status, 200u);
}

TEST_F(PythonWorker, MasterStatsCountItsRequestsExactly) {
  std::optional<Cluster> cluster = start_python_cluster(2);
  ASSERT_TRUE(cluster);
  ControlClient control(control_path(*cluster));
  ASSERT_TRUE(control.connected()) << control.error();

  constexpr std::uint64_t kFound = 12;
  constexpr std::uint64_t kNotFound = 5;
  for (std::uint64_t i = 0; i < kFound + kNotFound; ++i) {
    HttpReadResult result = http_get(cluster->port, i < kFound ? "/" : "/missing");
    ASSERT_TRUE(result.ok()) << "request " << i << ": " << result.error;
  }

  // Counters arrive with heartbeats: poll until the last one is in.
  json stats;
  bool settled = wait_until(
      [&] {
        std::optional<json> reply = control.request({{"cmd", "stats"}});
        if (!reply || !is_ok(*reply)) return false;
        stats = std::move(*reply);
        return number(stats.at("total"), "requests") >= kFound + kNotFound;
      },
      kSettleTimeout);
  ASSERT_TRUE(settled) << "the master never saw " << kFound + kNotFound
                       << " requests; last stats: " << stats.dump();
  const json& total = stats.at("total");
  EXPECT_EQ(number(total, "requests"), kFound + kNotFound) << stats.dump();
  EXPECT_EQ(number(total.at("responses"), "2xx"), kFound) << stats.dump();
  EXPECT_EQ(number(total.at("responses"), "4xx"), kNotFound) << stats.dump();
  EXPECT_GT(number(total, "bytes_in"), 0u) << stats.dump();
  EXPECT_GT(number(total, "bytes_out"), 0u) << stats.dump();
  // Real latencies, through the shared histogram layout.
  EXPECT_TRUE(total.at("latency_us").at("p50").is_number_unsigned()) << stats.dump();
  EXPECT_GT(number(total.at("latency_us"), "max"), 0u) << stats.dump();

  std::uint64_t per_worker = 0;
  std::uint64_t connections = 0;
  for (const json& worker : stats.at("workers")) {
    per_worker += number(worker, "requests");
    connections += number(worker, "connections");
    EXPECT_EQ(worker.value("state", ""), "ready") << worker.dump();
  }
  EXPECT_EQ(per_worker, kFound + kNotFound) << stats.dump();
  EXPECT_EQ(connections, kFound + kNotFound) << stats.dump();
}

TEST_F(PythonWorker, KilledWorkerIsReplaced) {
  std::optional<Cluster> cluster = start_python_cluster(2);
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::vector<pid_t> workers = herd.worker_pids();
  ASSERT_EQ(workers.size(), 2u);
  pid_t victim = workers[0];

  std::size_t before_kill = herd.line_count();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  EXPECT_TRUE(herd.wait_for_line(exact_worker_line(victim, R"(died \(signal 9)"), kSettleTimeout,
                                 before_kill))
      << "no 'Worker " << victim << " died (signal 9' line";
  std::optional<LineMatch> replacement =
      herd.wait_for_line(kWorkerReady, kSettleTimeout, before_kill);
  ASSERT_TRUE(replacement) << "no new 'Worker <pid> ready' line after the kill";
  EXPECT_NE(std::stol((*replacement)[1]), victim);

  for (int i = 0; i < 10; ++i) {
    HttpReadResult result = http_get(cluster->port, "/");
    ASSERT_TRUE(result.ok()) << "request " << i << " after the respawn: " << result.error;
    EXPECT_EQ(result.responses[0].status, 200u) << "request " << i;
  }
}

TEST_F(PythonWorker, ReloadWithWaitReplacesBothWithNoFailedRequest) {
  std::optional<Cluster> cluster = start_python_cluster(2);
  ASSERT_TRUE(cluster);
  ControlClient control(control_path(*cluster));
  std::optional<json> before = control.request({{"cmd", "status"}});
  ASSERT_TRUE(before) << control.error();
  ASSERT_TRUE(is_ok(*before)) << before->dump();
  std::set<std::uint64_t> old_ids = worker_ids(*before);
  ASSERT_EQ(old_ids.size(), 2u) << before->dump();

  RequestLoop loop(cluster->port);
  ASSERT_TRUE(loop.wait_for_requests(5, kSettleTimeout)) << "the client loop did not get going";
  std::optional<json> reply = control.request({{"cmd", "reload"}, {"wait", true}}, kReloadTimeout);
  ASSERT_TRUE(reply) << "no reply to reload with wait: " << control.error();
  std::size_t requests_at_reply = loop.done();
  ASSERT_TRUE(loop.wait_for_requests(requests_at_reply + 5, kSettleTimeout));
  loop.stop();

  ASSERT_TRUE(is_ok(*reply)) << reply->dump();
  std::set<std::uint64_t> reloaded;
  for (const json& id : reply->at("reloaded")) reloaded.insert(id.get<std::uint64_t>());
  EXPECT_EQ(reloaded, old_ids) << reply->dump();
  for (const json& worker : before->at("workers")) {
    auto pid = static_cast<pid_t>(number(worker, "pid"));
    EXPECT_TRUE(cluster->herd->wait_for_line(exact_worker_line(pid, R"(died \(code 0\))")))
        << "old Python worker " << pid << " was not drained to exit code 0";
  }
  std::optional<json> after = control.request({{"cmd", "status"}});
  ASSERT_TRUE(after) << control.error();
  for (std::uint64_t id : worker_ids(*after)) {
    EXPECT_FALSE(old_ids.contains(id)) << "worker " << id << " survived the reload";
  }

  std::string failures;
  for (std::size_t i = 0; i < loop.failures().size() && i < 5; ++i) {
    failures += "\n  " + loop.failures()[i];
  }
  EXPECT_TRUE(loop.failures().empty()) << loop.failures().size() << " of " << loop.done()
                                       << " requests failed during the reload:" << failures;
}

TEST_F(PythonWorker, SigtermStopsMasterAndWorkersWithExitCode0) {
  std::optional<Cluster> cluster = start_python_cluster(2);
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::vector<pid_t> workers = herd.worker_pids();
  ASSERT_EQ(workers.size(), 2u);
  // A keep-alive connection that stays idle must not hold up the stop.
  HttpClient idle(cluster->port);
  ASSERT_TRUE(idle.send(get_request("/")));
  ASSERT_TRUE(idle.read_responses(1).ok());

  ASSERT_TRUE(herd.send_signal(SIGTERM));
  std::optional<int> status = herd.wait_exit(kSettleTimeout);
  ASSERT_TRUE(status) << "herd still running " << kSettleTimeout.count() << " ms after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;
  for (pid_t worker : workers) {
    EXPECT_TRUE(herd.wait_for_line(exact_worker_line(worker, R"(died \(code 0\))")))
        << "Python worker " << worker << " did not exit with code 0";
    EXPECT_FALSE(pid_alive(worker)) << "Python worker " << worker << " outlived the master";
  }
  EXPECT_TRUE(idle.wait_for_close(kIoTimeout)) << "the idle connection was left open";
}

}  // namespace
}  // namespace herd::e2e
