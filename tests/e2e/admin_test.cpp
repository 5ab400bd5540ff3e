// End-to-end: the master's admin endpoint (--admin): /metrics checked by
// Prometheus' own promtool, /healthz, /readyz across a graceful stop, /status,
// and bad requests to it.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "common/listen_socket.h"
#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

constexpr const char* kJsonApiPath = HERD_BIN_DIR "/json_api";
const std::regex kAdminLine(R"(admin endpoint on http://127\.0\.0\.1:(\d+))");

struct AdminCluster {
  Cluster cluster;
  std::uint16_t admin_port = 0;
};

std::optional<AdminCluster> start_with_admin(std::size_t workers,
                                             std::vector<std::string> extra_args = {}) {
  extra_args.insert(extra_args.begin(), {"--admin", "127.0.0.1:0", "--heartbeat-interval", "100"});
  std::optional<Cluster> cluster = start_cluster(workers, extra_args);
  if (!cluster) return std::nullopt;
  std::optional<LineMatch> admin = cluster->herd->wait_for_line(kAdminLine);
  if (!admin) {
    ADD_FAILURE() << "no admin endpoint line:\n" << cluster->herd->output();
    return std::nullopt;
  }
  return AdminCluster{std::move(*cluster), static_cast<std::uint16_t>(std::stoi((*admin)[1]))};
}

// The value of one exposition line, e.g. `herd_requests_total{class="2xx"}`.
std::optional<double> sample(const std::string& metrics, const std::string& series) {
  std::size_t at = 0;
  while ((at = metrics.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || metrics[at - 1] == '\n') {
      std::size_t end = metrics.find('\n', at);
      return std::stod(metrics.substr(at + series.size() + 1, end - at - series.size() - 1));
    }
    at += series.size();
  }
  return std::nullopt;
}

bool have_promtool() {
  return std::system("command -v promtool >/dev/null 2>&1") == 0;
}

// promtool's verdict on `metrics`: its exit status and what it printed.
std::pair<int, std::string> promtool_check(const std::string& metrics) {
  TempDir dir;
  std::string path = dir.path() + "/metrics.txt";
  std::ofstream(path) << metrics;
  RunResult run = run_program({"sh", "-c", "promtool check metrics < " + path + " 2>&1"});
  return {run.error.empty() ? run.exit_code : -1, run.out + run.error};
}

TEST(AdminEndpoint, HealthzAndReadyzAnswerWhileServing) {
  std::optional<AdminCluster> herd = start_with_admin(2);
  ASSERT_TRUE(herd);

  HttpReadResult health = http_get(herd->admin_port, "/healthz");
  ASSERT_TRUE(health.ok()) << health.error;
  EXPECT_EQ(health.responses[0].status, 200u);
  EXPECT_EQ(health.responses[0].body, "ok\n");

  HttpReadResult ready = http_get(herd->admin_port, "/readyz");
  ASSERT_TRUE(ready.ok()) << ready.error;
  EXPECT_EQ(ready.responses[0].status, 200u);
  EXPECT_EQ(ready.responses[0].body, "ready\n");
}

TEST(AdminEndpoint, StatusIsTheControlSocketsStatus) {
  std::optional<AdminCluster> herd = start_with_admin(2);
  ASSERT_TRUE(herd);

  HttpReadResult result = http_get(herd->admin_port, "/status");
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 200u);
  EXPECT_EQ(result.responses[0].header("content-type"), "application/json");
  nlohmann::json status = nlohmann::json::parse(result.responses[0].body, nullptr, false);
  ASSERT_TRUE(status.is_object()) << result.responses[0].body;
  std::optional<nlohmann::json> control =
      control_request(control_path(herd->cluster), {{"cmd", "status"}});
  ASSERT_TRUE(control);

  EXPECT_EQ(status["ok"], true);
  EXPECT_EQ(status["master"]["pid"], herd->cluster.herd->pid());
  EXPECT_EQ(status["master"]["listen"], (*control)["master"]["listen"]);
  ASSERT_EQ(status["workers"].size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(status["workers"][i]["id"], (*control)["workers"][i]["id"]);
    EXPECT_EQ(status["workers"][i]["pid"], (*control)["workers"][i]["pid"]);
  }
}

TEST(AdminEndpoint, MetricsCountEveryRequestAndPassPromtool) {
  constexpr int kRequests = 25;
  std::optional<AdminCluster> herd = start_with_admin(2);
  ASSERT_TRUE(herd);
  for (int i = 0; i < kRequests; ++i) {
    HttpReadResult result = http_get(herd->cluster.port, "/");
    ASSERT_TRUE(result.ok()) << result.error;
  }

  // Workers report in heartbeats (every 100 ms here).
  std::string metrics;
  bool counted = wait_until(
      [&] {
        HttpReadResult result = http_get(herd->admin_port, "/metrics");
        if (!result.ok() || result.responses[0].status != 200) return false;
        metrics = result.responses[0].body;
        return sample(metrics, R"(herd_requests_total{class="2xx"})") == kRequests;
      },
      kLogTimeout);
  ASSERT_TRUE(counted) << "herd_requests_total never reached " << kRequests << ":\n" << metrics;

  EXPECT_EQ(sample(metrics, "herd_request_duration_seconds_count"), kRequests);
  EXPECT_EQ(sample(metrics, R"(herd_request_duration_seconds_bucket{le="+Inf"})"), kRequests);
  EXPECT_EQ(sample(metrics, "herd_connections_accepted_total"), kRequests);
  EXPECT_EQ(sample(metrics, R"(herd_workers{state="ready"})"), 2);
  double per_worker = 0;
  for (const LineMatch& ready : herd->cluster.ready) {
    std::string labels = "{slot=\"" + ready[3] + "\",id=\"" + ready[2] + "\"";
    std::optional<double> handed =
        sample(metrics, "herd_worker_connections_handed_total" + labels + "}");
    ASSERT_TRUE(handed) << "no series for worker " << ready[2] << ":\n" << metrics;
    per_worker += *handed;
    EXPECT_TRUE(sample(metrics, "herd_worker_state" + labels + ",state=\"ready\"}"));
    EXPECT_GT(sample(metrics, "herd_worker_resident_memory_bytes" + labels + "}").value_or(0), 0);
  }
  EXPECT_EQ(per_worker, kRequests) << "round robin hands every connection to some worker";

  if (!have_promtool()) GTEST_SKIP() << "promtool not installed (scripts/setup.sh installs it)";
  auto [status, output] = promtool_check(metrics);
  EXPECT_EQ(status, 0) << "promtool check metrics:\n" << output << "\non:\n" << metrics;
  EXPECT_EQ(output, "") << "promtool lint findings";
}

// A load balancer must stop sending before the drain: /readyz flips at the
// start of a graceful stop, while a slow request is still being served.
TEST(AdminEndpoint, ReadyzTurns503WhenAGracefulStopBegins) {
  std::optional<AdminCluster> herd = start_with_admin(1, {"--exec", kJsonApiPath});
  ASSERT_TRUE(herd);
  HttpClient slow(herd->cluster.port);
  ASSERT_TRUE(slow.connected());
  ASSERT_TRUE(slow.send(get_request("/slow?ms=3000")));
  // In the worker's hands (heartbeats every 100 ms), so SIGTERM finds it in flight.
  ASSERT_TRUE(wait_until(
      [&] {
        std::optional<nlohmann::json> stats =
            control_request(control_path(herd->cluster), {{"cmd", "stats"}});
        return stats && (*stats)["workers"].size() == 1 &&
               (*stats)["workers"][0]["active_connections"] == 1;
      },
      kLogTimeout));

  ASSERT_TRUE(herd->cluster.herd->send_signal(SIGTERM));
  std::string body;
  bool unready = wait_until(
      [&] {
        HttpReadResult result = http_get(herd->admin_port, "/readyz");
        if (!result.ok()) return false;
        body = result.responses[0].body;
        return result.responses[0].status == 503;
      },
      kLogTimeout);
  ASSERT_TRUE(unready) << "/readyz did not turn 503 after SIGTERM";
  EXPECT_EQ(body, "not ready: stopping\n");
  HttpReadResult health = http_get(herd->admin_port, "/healthz");
  ASSERT_TRUE(health.ok()) << health.error;
  EXPECT_EQ(health.responses[0].status, 200u) << "the master's loop still runs while it drains";

  HttpReadResult answered = slow.read_responses(1);
  ASSERT_TRUE(answered.ok()) << answered.error;
  EXPECT_EQ(answered.responses[0].status, 200u) << "the in-flight request is finished, not dropped";
  std::optional<int> status = herd->cluster.herd->wait_exit(kStartTimeout);
  ASSERT_TRUE(status);
  EXPECT_EQ(describe_status(*status), describe_status(0));
}

// --shutdown-delay: after SIGTERM /readyz says 503 but new connections are
// still served until the delay is over; only then the listener closes.
TEST(AdminEndpoint, ShutdownDelayKeepsServingWhileReadyzSays503) {
  constexpr Milliseconds kDelay{2500};
  // libevent's timers run on the coarse monotonic clock, a few ms per tick.
  constexpr double kTimerGrainMs = 20;
  std::optional<AdminCluster> herd =
      start_with_admin(1, {"--shutdown-delay", std::to_string(kDelay.count())});
  ASSERT_TRUE(herd);
  auto signalled_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(herd->cluster.herd->send_signal(SIGTERM));
  ASSERT_TRUE(herd->cluster.herd->wait_for_line(std::regex("Stopping: /readyz answers 503")));

  HttpReadResult ready = http_get(herd->admin_port, "/readyz");
  ASSERT_TRUE(ready.ok()) << ready.error;
  EXPECT_EQ(ready.responses[0].status, 503u);
  HttpReadResult served = http_get(herd->cluster.port, "/");
  ASSERT_TRUE(served.ok()) << served.error;
  EXPECT_EQ(served.responses[0].status, 200u) << "a new connection is served during the delay";
  EXPECT_LT(elapsed_ms(signalled_at), kDelay.count())
      << "too slow to observe the delay; the checks above may have run after it";

  ASSERT_TRUE(herd->cluster.herd->wait_for_line(std::regex("Shutting down: draining 1 workers")));
  EXPECT_GE(elapsed_ms(signalled_at), kDelay.count() - kTimerGrainMs)
      << "drained before the delay was over";
  HttpClient refused(herd->cluster.port);
  EXPECT_FALSE(refused.connected()) << "the listener is closed once the drain begins";
  std::optional<int> status = herd->cluster.herd->wait_exit(kStartTimeout);
  ASSERT_TRUE(status);
  EXPECT_EQ(describe_status(*status), describe_status(0));
}

// A second stop signal does not wait out the delay: it drains and kills now.
TEST(AdminEndpoint, SecondSignalCutsTheShutdownDelayShort) {
  std::optional<AdminCluster> herd = start_with_admin(1, {"--shutdown-delay", "600000"});
  ASSERT_TRUE(herd);
  ASSERT_TRUE(herd->cluster.herd->send_signal(SIGTERM));
  ASSERT_TRUE(herd->cluster.herd->wait_for_line(std::regex("Stopping: /readyz answers 503")));
  ASSERT_TRUE(herd->cluster.herd->send_signal(SIGTERM));
  std::optional<int> status = herd->cluster.herd->wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "still waiting out a 10-minute delay after a second SIGTERM";
  EXPECT_EQ(describe_status(*status), describe_status(0));
}

TEST(AdminEndpoint, BadRequestsGetClearAnswersAndChangeNothing) {
  std::optional<AdminCluster> herd = start_with_admin(1);
  ASSERT_TRUE(herd);

  HttpReadResult post = http_exchange(
      herd->admin_port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(post.ok()) << post.error;
  EXPECT_EQ(post.responses[0].status, 405u);
  EXPECT_EQ(post.responses[0].header("allow"), "GET, HEAD");

  HttpReadResult missing = http_get(herd->admin_port, "/nope");
  ASSERT_TRUE(missing.ok()) << missing.error;
  EXPECT_EQ(missing.responses[0].status, 404u);

  // Garbage and an oversized header (the limit is 8 KiB): 400, then closed.
  for (const std::string& request :
       {std::string("\x01\x02 nonsense \r\n\r\n"),
        "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(16 * 1024, 'a') + "\r\n\r\n"}) {
    HttpClient client(herd->admin_port);
    ASSERT_TRUE(client.send(request));
    HttpReadResult refused = client.read_responses(1);
    ASSERT_TRUE(refused.ok()) << refused.error;
    EXPECT_EQ(refused.responses[0].status, 400u);
    EXPECT_TRUE(client.wait_for_close(kIoTimeout));
  }

  HttpReadResult health = http_get(herd->admin_port, "/healthz");
  ASSERT_TRUE(health.ok()) << health.error;
  EXPECT_EQ(health.responses[0].status, 200u);
  HttpReadResult served = http_get(herd->cluster.port, "/");
  ASSERT_TRUE(served.ok()) << served.error;
  EXPECT_EQ(served.responses[0].status, 200u);
}

TEST(AdminEndpoint, AMalformedAddressIsAUsageError) {
  HerdProcess herd({"--port", "0", "--admin", "nonsense"});
  std::optional<int> status = herd.wait_exit(kStartTimeout);
  ASSERT_TRUE(status);
  EXPECT_EQ(describe_status(*status), describe_status(2 << 8));
  EXPECT_NE(herd.output().find("--admin: 'nonsense' is not HOST:PORT"), std::string::npos)
      << herd.output();
}

TEST(AdminEndpoint, AnAddressInUseStopsTheStart) {
  ListenResult taken = open_listen_socket("127.0.0.1", 0, 1);
  ASSERT_TRUE(taken.fd) << taken.error;
  HerdProcess herd(
      {"--host", "127.0.0.1", "--port", "0", "--admin", "127.0.0.1:" + std::to_string(taken.port)});
  std::optional<int> status = herd.wait_exit(kStartTimeout);
  ASSERT_TRUE(status);
  EXPECT_NE(describe_status(*status), describe_status(0));
  EXPECT_TRUE(herd.wait_for_line(std::regex("cannot open the admin endpoint \\(--admin\\)")))
      << herd.output();
}

}  // namespace
}  // namespace herd::e2e
