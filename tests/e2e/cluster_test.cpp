// End-to-end: the real herd master and herd-worker binaries on 127.0.0.1 with
// an ephemeral port, driven over HTTP, signals and their logs.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using Clock = std::chrono::steady_clock;

const std::regex kWorkerStarted(R"(Worker (\d+) started)");
const std::regex kWorkerReady(R"(Worker (\d+) ready(?: \(id (\d+), slot (\d+)\))?)");
const std::regex kRequestHandled(R"(Request handled by worker (\d+))");

// Short supervision periods, so death and hang detection happen within a
// test's waits, with room left for a slow sanitizer build.
std::vector<std::string> fast_supervision() {
  return {"--heartbeat-interval", "200", "--heartbeat-timeout", "3000", "--kill-timeout", "2000"};
}

// Sends `request` on a fresh connection and expects 400 then a close; then a
// fresh connection must still be served.
void expect_rejected_with_400(std::uint16_t port, std::string_view request) {
  HttpClient client(port);
  ASSERT_TRUE(client.send(request)) << client.error();
  HttpReadResult result = client.read_responses(1);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 400u);
  EXPECT_FALSE(result.responses[0].keep_alive) << "a 400 should say Connection: close";
  EXPECT_TRUE(client.wait_for_close(kIoTimeout))
      << "the server kept the connection open after a 400";

  HttpReadResult fresh = http_get(port, "/");
  ASSERT_TRUE(fresh.ok()) << fresh.error;
  EXPECT_EQ(fresh.responses[0].status, 200u);
  EXPECT_EQ(fresh.responses[0].body, "Hello World!");
}

TEST(Cluster, TwoWorkersAnswerHelloWorld) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);

  HttpReadResult result = http_get(cluster->port, "/");
  ASSERT_TRUE(result.ok()) << result.error;
  const HttpResponse& response = result.responses[0];
  EXPECT_EQ(response.status, 200u);
  EXPECT_EQ(response.body, "Hello World!");
  EXPECT_EQ(response.header("Content-Type"), "text/html; charset=utf-8");
}

TEST(Cluster, UnknownPathIsNotFound) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);

  HttpReadResult result = http_get(cluster->port, "/nope");
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 404u);
  EXPECT_NE(result.responses[0].body.find("Cannot GET /nope"), std::string::npos)
      << "body: " << result.responses[0].body;
}

TEST(Cluster, ConnectionsAreSpreadOverBothWorkers) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  std::set<std::string> ready_ids;
  for (const LineMatch& ready : cluster->ready) ready_ids.insert(ready[2]);

  constexpr std::size_t kConnections = 20;
  for (std::size_t i = 0; i < kConnections; ++i) {
    HttpReadResult result = http_get(cluster->port, "/");
    ASSERT_TRUE(result.ok()) << "connection " << i << ": " << result.error;
    ASSERT_EQ(result.responses[0].status, 200u) << "connection " << i;
  }

  std::vector<LineMatch> handled = cluster->herd->wait_for_lines(kRequestHandled, kConnections);
  ASSERT_EQ(handled.size(), kConnections);
  std::set<std::string> serving_ids;
  for (const LineMatch& line : handled) serving_ids.insert(line[1]);
  EXPECT_GE(serving_ids.size(), 2u) << "every connection went to worker " << *serving_ids.begin();
  if (!ready_ids.contains("")) {
    for (const std::string& id : serving_ids) {
      EXPECT_TRUE(ready_ids.contains(id)) << "worker id " << id << " was never ready";
    }
  }
}

TEST(Cluster, KeepAliveConnectionServesFiftyRequests) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);

  constexpr std::size_t kRequests = 50;
  HttpClient client(cluster->port);
  ASSERT_TRUE(client.connected()) << client.error();
  for (std::size_t i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(client.send(get_request("/"))) << "request " << i << ": " << client.error();
    HttpReadResult result = client.read_responses(1);
    ASSERT_TRUE(result.ok()) << "request " << i << ": " << result.error;
    EXPECT_EQ(result.responses[0].status, 200u) << "request " << i;
    EXPECT_EQ(result.responses[0].body, "Hello World!") << "request " << i;
    EXPECT_TRUE(result.responses[0].keep_alive) << "request " << i;
    ASSERT_FALSE(result.server_closed) << "the server closed after request " << i;
  }

  // One connection lives in one worker.
  std::vector<LineMatch> handled = cluster->herd->wait_for_lines(kRequestHandled, kRequests);
  ASSERT_EQ(handled.size(), kRequests);
  for (const LineMatch& line : handled) EXPECT_EQ(line[1], handled.front()[1]) << line.line;
}

TEST(Cluster, PipelinedRequestsAreAnsweredInOrder) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);

  // Distinct 404 paths between hits on "/", so any reordering shows.
  std::vector<std::string> targets;
  std::string pipeline;
  for (int i = 0; i < 10; ++i) {
    targets.push_back(i % 3 == 2 ? "/" : "/a" + std::to_string(i));
    pipeline += get_request(targets.back());
  }

  HttpClient client(cluster->port);
  ASSERT_TRUE(client.send(pipeline)) << client.error();
  HttpReadResult result = client.read_responses(targets.size());
  ASSERT_TRUE(result.ok()) << result.error;
  ASSERT_EQ(result.responses.size(), targets.size());
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const HttpResponse& response = result.responses[i];
    if (targets[i] == "/") {
      EXPECT_EQ(response.status, 200u) << "response " << i;
      EXPECT_EQ(response.body, "Hello World!") << "response " << i;
    } else {
      EXPECT_EQ(response.status, 404u) << "response " << i;
      EXPECT_NE(response.body.find("Cannot GET " + targets[i]), std::string::npos)
          << "response " << i << " should be for " << targets[i] << ", body: " << response.body;
    }
  }
  EXPECT_FALSE(result.server_closed);

  // The connection is still good for more.
  ASSERT_TRUE(client.send(get_request("/"))) << client.error();
  HttpReadResult after = client.read_responses(1);
  ASSERT_TRUE(after.ok()) << after.error;
  EXPECT_EQ(after.responses[0].status, 200u);
}

TEST(Cluster, GarbageRequestGets400AndConnectionCloses) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  expect_rejected_with_400(cluster->port, "NOT HTTP\r\n\r\n");
}

TEST(Cluster, TlsHandshakeOnPlainPortGets400AndConnectionCloses) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  // The start of a TLS ClientHello: a client speaking HTTPS to a plain port.
  const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\xff\r\n\r\n";
  expect_rejected_with_400(cluster->port, std::string_view(hello, sizeof(hello) - 1));
}

TEST(Cluster, KilledWorkerIsReplacedAndServiceContinues) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::optional<LineMatch> started = herd.wait_for_line(kWorkerStarted);
  ASSERT_TRUE(started);
  pid_t victim = static_cast<pid_t>(std::stol((*started)[1]));

  std::size_t before_kill = herd.line_count();
  Clock::time_point killed_at = Clock::now();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);

  std::optional<LineMatch> died =
      herd.wait_for_line(exact_worker_line(victim, R"(died \(signal 9)"), kLogTimeout, before_kill);
  ASSERT_TRUE(died) << "no 'Worker " << victim << " died (signal 9' line";
  std::optional<LineMatch> replacement = herd.wait_for_line(kWorkerReady, kLogTimeout, before_kill);
  double respawn_ms = elapsed_ms(killed_at);
  ASSERT_TRUE(replacement) << "no new 'Worker <pid> ready' line after the kill";
  pid_t replacement_pid = static_cast<pid_t>(std::stol((*replacement)[1]));
  EXPECT_NE(replacement_pid, victim);
  EXPECT_FALSE(pid_alive(victim));

  std::cout << "[ respawn  ] worker " << victim << " killed; replacement " << replacement_pid
            << " ready after " << respawn_ms << " ms\n";
  RecordProperty("respawn_ms", static_cast<int>(respawn_ms + 0.5));

  std::size_t before_requests = herd.line_count();
  for (int i = 0; i < 10; ++i) {
    HttpReadResult result = http_get(cluster->port, "/");
    ASSERT_TRUE(result.ok()) << "request " << i << " after the respawn: " << result.error;
    EXPECT_EQ(result.responses[0].status, 200u) << "request " << i;
  }
  // Round robin over two ready workers: the replacement takes its share.
  const std::string& replacement_id = (*replacement)[2];
  if (!replacement_id.empty()) {
    EXPECT_TRUE(herd.wait_for_line(std::regex("Request handled by worker " + replacement_id + "$"),
                                   kLogTimeout, before_requests))
        << "the replacement (id " << replacement_id << ") served none of 10 connections";
  }
}

TEST(Cluster, RequestsRightAfterWorkerKillAreServed) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::optional<LineMatch> started = herd.wait_for_line(kWorkerStarted);
  ASSERT_TRUE(started);
  pid_t victim = static_cast<pid_t>(std::stol((*started)[1]));

  // No wait for the master to notice: some of these are handed to the dead
  // worker and must be re-dispatched, never lost.
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  for (int i = 0; i < 10; ++i) {
    HttpReadResult result = http_get(cluster->port, "/");
    ASSERT_TRUE(result.ok()) << "request " << i << " after the kill: " << result.error;
    EXPECT_EQ(result.responses[0].status, 200u) << "request " << i;
  }
}

TEST(Cluster, SigtermExitsZeroAndStopsEveryWorker) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::vector<pid_t> workers = herd.worker_pids();
  ASSERT_EQ(workers.size(), 2u);

  Clock::time_point signalled_at = Clock::now();
  ASSERT_TRUE(herd.send_signal(SIGTERM));
  std::optional<int> status = herd.wait_exit(kLogTimeout);
  ASSERT_TRUE(status) << "herd still running " << kLogTimeout.count() << " ms after SIGTERM";
  std::cout << "[ stop     ] herd exited " << elapsed_ms(signalled_at) << " ms after SIGTERM\n";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "herd ended with " << describe_status(*status);

  for (pid_t worker : herd.worker_pids()) {
    EXPECT_FALSE(pid_alive(worker)) << "worker " << worker << " outlived the master";
    // Drained, not killed.
    EXPECT_TRUE(herd.wait_for_line(exact_worker_line(worker, R"(died \(code 0\))")))
        << "worker " << worker << " did not exit with code 0";
  }
}

TEST(Cluster, KilledMasterTakesItsWorkersWithIt) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::vector<pid_t> workers = herd.worker_pids();
  ASSERT_EQ(workers.size(), 2u);

  ASSERT_TRUE(herd.send_signal(SIGKILL));
  std::optional<int> status = herd.wait_exit(kLogTimeout);
  ASSERT_TRUE(status);
  ASSERT_TRUE(WIFSIGNALED(*status));

  Clock::time_point master_gone_at = Clock::now();
  auto all_gone = [&] {
    for (pid_t worker : workers) {
      if (pid_alive(worker)) return false;
    }
    return true;
  };
  EXPECT_TRUE(wait_until(all_gone, std::chrono::seconds(2)))
      << "workers still alive 2 s after the master died";
  std::cout << "[ orphans  ] workers gone " << elapsed_ms(master_gone_at)
            << " ms after the master was killed\n";
}

TEST(Cluster, WorkerStartedByHandExitsWithStatus2) {
  HerdProcess worker({}, kWorkerPath);
  ASSERT_GT(worker.pid(), 0) << worker.start_error();
  std::optional<int> status = worker.wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "herd-worker without a channel kept running";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2)
      << "herd-worker ended with " << describe_status(*status);
  EXPECT_TRUE(worker.wait_for_line(std::regex("HERD_CHANNEL_FD"), kIoTimeout))
      << "stderr does not say HERD_CHANNEL_FD is missing";
}

TEST(Cluster, HelpExitsZeroAndMentionsWorkers) {
  HerdProcess herd({"--help"});
  ASSERT_GT(herd.pid(), 0) << herd.start_error();
  std::optional<int> status = herd.wait_exit(kStartTimeout);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "herd --help ended with " << describe_status(*status);
  EXPECT_TRUE(herd.wait_for_line(std::regex("--workers"), kIoTimeout)) << herd.output();
}

TEST(Cluster, NonNumericPortIsRejected) {
  HerdProcess herd({"--port", "notaport"});
  ASSERT_GT(herd.pid(), 0) << herd.start_error();
  std::optional<int> status = herd.wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "herd --port notaport kept running";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0)
      << "herd --port notaport ended with " << describe_status(*status);
  EXPECT_TRUE(herd.wait_for_line(std::regex("port"), kIoTimeout))
      << "no error naming the port: " << herd.output();
}

}  // namespace
}  // namespace herd::e2e
