// End-to-end: the master's control socket (proto/README.md) spoken as raw
// newline-delimited JSON over AF_UNIX, against the real herd and herd-worker
// binaries on 127.0.0.1 with an ephemeral port.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Counters reach the master with heartbeats, and a replacement takes a spawn,
// a hello and a ready: room for a sanitizer build on a loaded machine.
constexpr Milliseconds kSettleTimeout{20000};
// A `reload` with `wait` replies once every slot has a new ready worker.
constexpr Milliseconds kReloadTimeout{30000};
// Bounds the client loops that run beside restarts, reloads and scaling.

const json kPing = {{"cmd", "ping"}};
const json kStatus = {{"cmd", "status"}};
const json kStats = {{"cmd", "stats"}};

// Heartbeats every 100 ms, so counters reach the master quickly.
std::vector<std::string> fast_heartbeats() {
  return {"--heartbeat-interval", "100"};
}

std::regex died_with_code_0(std::int64_t pid) {
  return std::regex("Worker " + std::to_string(pid) + R"( died \(code 0\))");
}

std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<Milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- reading replies ---------------------------------------------------------

// `total.<key>` of a stats reply, or `total.responses.<key>` with a class.
std::uint64_t total(const json& stats, const char* key) {
  return number(stats.at("total"), key);
}
std::uint64_t total_responses(const json& stats, const char* status_class) {
  return number(stats.at("total").at("responses"), status_class);
}

// The sum of `field` over `workers[]`.
std::uint64_t sum_over_workers(const json& reply,
                               const std::function<std::uint64_t(const json&)>& field) {
  std::uint64_t sum = 0;
  for (const json& worker : reply.at("workers")) sum += field(worker);
  return sum;
}

const json* find_worker(const json& reply, std::uint64_t id) {
  for (const json& worker : reply.at("workers")) {
    if (number(worker, "id") == id) return &worker;
  }
  return nullptr;
}

std::set<std::uint64_t> worker_ids(const json& reply) {
  std::set<std::uint64_t> ids;
  for (const json& worker : reply.at("workers")) ids.insert(number(worker, "id"));
  return ids;
}

// Exactly `count` workers, every one ready, in slots 0..count-1.
bool all_ready_in_slots(const json& status, std::size_t count) {
  if (!is_ok(status) || status.at("workers").size() != count) return false;
  std::set<std::uint64_t> slots;
  for (const json& worker : status.at("workers")) {
    if (worker.value("state", "") != "ready") return false;
    slots.insert(number(worker, "slot"));
  }
  return slots.size() == count && *slots.rbegin() == count - 1;
}

// Sends `request` on `client` every 10 ms until `accept` holds for the reply
// or `timeout` passes. `last` is the last reply (null if none came).
bool poll_until(ControlClient& client, const json& request,
                const std::function<bool(const json&)>& accept, Milliseconds timeout, json& last) {
  last = nullptr;
  return wait_until(
      [&] {
        std::optional<json> reply = client.request(request);
        if (!reply) return false;
        last = std::move(*reply);
        return accept(last);
      },
      timeout);
}

// Every per-worker field proto/README.md lists, with its type.
void expect_every_worker_field(const json& worker) {
  SCOPED_TRACE("worker " + worker.dump());
  ASSERT_TRUE(worker.is_object());
  for (const char* key :
       {"id", "slot", "pid", "started_at", "uptime_ms", "restarts", "connections",
        "active_connections", "requests", "bytes_in", "bytes_out", "rss_kb", "last_heartbeat_ms"}) {
    ASSERT_TRUE(worker.contains(key)) << "no '" << key << "'";
    EXPECT_TRUE(worker[key].is_number_integer()) << "'" << key << "' is not an integer";
  }
  for (const char* key : {"rps", "cpu_pct"}) {
    ASSERT_TRUE(worker.contains(key)) << "no '" << key << "'";
    EXPECT_TRUE(worker[key].is_number()) << "'" << key << "' is not a number";
  }
  ASSERT_TRUE(worker.contains("state"));
  EXPECT_TRUE(worker["state"].is_string());
  ASSERT_TRUE(worker.contains("last_exit"));
  EXPECT_TRUE(worker["last_exit"].is_null() || worker["last_exit"].is_object());
  ASSERT_TRUE(worker.contains("responses"));
  for (const char* key : {"2xx", "3xx", "4xx", "5xx"}) {
    EXPECT_TRUE(worker["responses"].contains(key)) << "no 'responses." << key << "'";
  }
  ASSERT_TRUE(worker.contains("latency_us"));
  for (const char* key : {"p50", "p90", "p99", "max"}) {
    EXPECT_TRUE(worker["latency_us"].contains(key)) << "no 'latency_us." << key << "'";
  }
  EXPECT_GT(number(worker, "pid"), 0u);
}

void expect_ordered_latency(const json& latency) {
  SCOPED_TRACE("latency_us " + latency.dump());
  std::uint64_t p50 = number(latency, "p50");
  std::uint64_t p90 = number(latency, "p90");
  std::uint64_t p99 = number(latency, "p99");
  std::uint64_t max = number(latency, "max");
  EXPECT_LE(p50, p90);
  EXPECT_LE(p90, p99);
  EXPECT_LE(p99, max);
  EXPECT_GT(max, 0u);
}

// The master still answers ping, serves HTTP 200, and runs.
void expect_master_serving(const Cluster& cluster) {
  std::string error;
  std::optional<json> ping = control_request(control_path(cluster), kPing, kIoTimeout, &error);
  ASSERT_TRUE(ping) << error;
  EXPECT_TRUE(is_ok(*ping)) << ping->dump();
  EXPECT_EQ(number(*ping, "pid"), static_cast<std::uint64_t>(cluster.herd->pid()));
  HttpReadResult result = http_get(cluster.port, "/");
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 200u);
  EXPECT_TRUE(pid_alive(cluster.herd->pid()));
}

// ---- a client loop beside the operation under test ---------------------------

std::string first_failures(const std::vector<std::string>& failures) {
  std::string text;
  for (std::size_t i = 0; i < failures.size() && i < 5; ++i) text += "\n  " + failures[i];
  return text;
}

// ---- stats -------------------------------------------------------------------

TEST(ControlStats, CountsEveryRequestResponseByteAndConnectionExactly) {
  std::optional<Cluster> cluster = start_cluster(2, fast_heartbeats());
  ASSERT_TRUE(cluster);
  ControlClient control(control_path(*cluster));
  ASSERT_TRUE(control.connected()) << control.error();

  std::optional<json> baseline = control.request(kStats);
  ASSERT_TRUE(baseline) << control.error();
  ASSERT_TRUE(is_ok(*baseline)) << baseline->dump();
  std::optional<json> status_before = control.request(kStatus);
  ASSERT_TRUE(status_before) << control.error();
  ASSERT_TRUE(is_ok(*status_before)) << status_before->dump();
  auto handed = [](const json& worker) { return number(worker, "connections"); };

  std::uint64_t bytes_sent = 0;
  std::uint64_t body_bytes = 0;
  std::uint64_t connections_opened = 0;
  auto fresh_get = [&](const std::string& target, unsigned expected_status) {
    HttpReadResult result = http_get(cluster->port, target);
    ++connections_opened;
    bytes_sent += get_request(target).size();
    ASSERT_TRUE(result.ok()) << "GET " << target << ": " << result.error;
    EXPECT_EQ(result.responses[0].status, expected_status) << "GET " << target;
    body_bytes += result.responses[0].body.size();
  };
  for (int i = 0; i < 30; ++i) ASSERT_NO_FATAL_FAILURE(fresh_get("/", 200));
  for (int i = 0; i < 12; ++i) ASSERT_NO_FATAL_FAILURE(fresh_get("/nope", 404));
  {
    // 8 on one keep-alive connection: 4 hits and 4 misses.
    HttpClient keep_alive(cluster->port);
    ASSERT_TRUE(keep_alive.connected()) << keep_alive.error();
    ++connections_opened;
    for (int i = 0; i < 8; ++i) {
      std::string target = i % 2 == 0 ? "/" : "/nope";
      ASSERT_TRUE(keep_alive.send(get_request(target))) << keep_alive.error();
      bytes_sent += get_request(target).size();
      HttpReadResult result = keep_alive.read_responses(1);
      ASSERT_TRUE(result.ok()) << "keep-alive request " << i << ": " << result.error;
      EXPECT_EQ(result.responses[0].status, i % 2 == 0 ? 200u : 404u) << "keep-alive " << i;
      ASSERT_FALSE(result.server_closed) << "closed after keep-alive request " << i;
      body_bytes += result.responses[0].body.size();
    }
  }
  constexpr std::uint64_t kRequests = 50;
  constexpr std::uint64_t kOk = 34;        // 30 fresh + 4 keep-alive
  constexpr std::uint64_t kNotFound = 16;  // 12 fresh + 4 keep-alive

  // Counters travel with heartbeats: poll until every request has arrived.
  json stats;
  bool settled = poll_until(
      control, kStats,
      [&](const json& reply) {
        return is_ok(reply) && total(reply, "requests") >= total(*baseline, "requests") + kRequests;
      },
      kSettleTimeout, stats);
  ASSERT_TRUE(settled) << "total.requests did not reach baseline + " << kRequests << " within "
                       << kSettleTimeout.count() << " ms; last reply: " << stats.dump()
                       << "; baseline: " << baseline->dump();

  EXPECT_EQ(total(stats, "requests") - total(*baseline, "requests"), kRequests);
  EXPECT_EQ(total_responses(stats, "2xx") - total_responses(*baseline, "2xx"), kOk);
  EXPECT_EQ(total_responses(stats, "4xx") - total_responses(*baseline, "4xx"), kNotFound);
  EXPECT_EQ(total_responses(stats, "3xx"), total_responses(*baseline, "3xx"));
  EXPECT_EQ(total_responses(stats, "5xx"), total_responses(*baseline, "5xx"));

  // No worker has exited, so the total is the sum over the live workers.
  ASSERT_EQ(stats.at("workers").size(), 2u) << stats.dump();
  EXPECT_EQ(sum_over_workers(stats, [](const json& w) { return number(w, "requests"); }),
            total(stats, "requests"));
  for (const char* status_class : {"2xx", "3xx", "4xx", "5xx"}) {
    EXPECT_EQ(sum_over_workers(
                  stats, [&](const json& w) { return number(w.at("responses"), status_class); }),
              total_responses(stats, status_class))
        << "responses." << status_class;
  }

  expect_ordered_latency(stats.at("total").at("latency_us"));
  for (const json& worker : stats.at("workers")) {
    expect_every_worker_field(worker);
    if (number(worker, "requests") > 0) expect_ordered_latency(worker.at("latency_us"));
  }

  // Workers count every byte they read; what they wrote holds at least the bodies.
  EXPECT_EQ(total(stats, "bytes_in") - total(*baseline, "bytes_in"), bytes_sent);
  EXPECT_GT(total(stats, "bytes_out") - total(*baseline, "bytes_out"), body_bytes);

  // Every TCP connection was handed to exactly one worker, once.
  EXPECT_EQ(sum_over_workers(stats, handed) - sum_over_workers(*baseline, handed),
            connections_opened);
  std::optional<json> status_after = control.request(kStatus);
  ASSERT_TRUE(status_after) << control.error();
  EXPECT_EQ(number(status_after->at("master"), "connections_total") -
                number(status_before->at("master"), "connections_total"),
            connections_opened)
      << "before: " << status_before->dump() << "\nafter: " << status_after->dump();
}

TEST(ControlStats, TotalsKeepTheRequestsOfAWorkerKilledBySigkill) {
  std::optional<Cluster> cluster = start_cluster(2, fast_heartbeats());
  ASSERT_TRUE(cluster);
  ControlClient control(control_path(*cluster));
  std::optional<json> baseline = control.request(kStats);
  ASSERT_TRUE(baseline) << control.error();
  ASSERT_TRUE(is_ok(*baseline)) << baseline->dump();

  constexpr std::uint64_t kRequests = 20;
  for (std::uint64_t i = 0; i < kRequests; ++i) {
    HttpReadResult result = http_get(cluster->port, "/");
    ASSERT_TRUE(result.ok()) << "request " << i << ": " << result.error;
    ASSERT_EQ(result.responses[0].status, 200u);
  }
  std::uint64_t expected = total(*baseline, "requests") + kRequests;
  json before;
  ASSERT_TRUE(poll_until(
      control, kStats,
      [&](const json& reply) { return is_ok(reply) && total(reply, "requests") >= expected; },
      kSettleTimeout, before))
      << "last reply: " << before.dump();
  ASSERT_EQ(total(before, "requests"), expected) << before.dump();

  // The victim must have served some of them, or its death proves nothing.
  const json* victim = nullptr;
  for (const json& worker : before.at("workers")) {
    if (number(worker, "requests") > 0) victim = &worker;
  }
  ASSERT_NE(victim, nullptr) << "no worker reports a request: " << before.dump();
  std::uint64_t victim_id = number(*victim, "id");
  pid_t victim_pid = static_cast<pid_t>(number(*victim, "pid"));
  std::uint64_t victim_requests = number(*victim, "requests");
  ASSERT_EQ(::kill(victim_pid, SIGKILL), 0) << std::strerror(errno);

  json status;
  ASSERT_TRUE(poll_until(
      control, kStatus,
      [&](const json& reply) {
        return all_ready_in_slots(reply, 2) && find_worker(reply, victim_id) == nullptr;
      },
      kSettleTimeout, status))
      << "no ready replacement for worker " << victim_id << "; last status: " << status.dump();

  std::optional<json> after = control.request(kStats);
  ASSERT_TRUE(after) << control.error();
  EXPECT_EQ(total(*after, "requests"), expected)
      << "the " << victim_requests << " requests of worker " << victim_id
      << " (killed) should still count; before: " << before.dump() << "\nafter: " << after->dump();
  EXPECT_EQ(total_responses(*after, "2xx"), total_responses(before, "2xx")) << after->dump();
  EXPECT_EQ(total(*after, "bytes_in"), total(before, "bytes_in")) << after->dump();
}

// ---- bad input ---------------------------------------------------------------

TEST(ControlRequests, BadRequestsGetAnErrorAndTheConnectionStaysUsable) {
  std::optional<Cluster> cluster = start_cluster(2);
  ASSERT_TRUE(cluster);
  ControlClient control(control_path(*cluster));
  ASSERT_TRUE(control.connected()) << control.error();
  std::optional<json> status_before = control.request(kStatus);
  ASSERT_TRUE(status_before) << control.error();

  const std::vector<std::string> bad_lines = {
      "this is not json",
      R"({"cmd":"ping")",
      R"([{"cmd":"ping"}])",
      R"("ping")",
      R"({"id":1})",
      R"({"cmd":42})",
      R"({"cmd":null})",
      R"({"cmd":"nope"})",
      R"({"cmd":"restart"})",
      R"({"cmd":"restart","id":"x"})",
      R"({"cmd":"restart","id":999999})",
      R"({"cmd":"scale"})",
      R"({"cmd":"scale","workers":0})",
      R"({"cmd":"scale","workers":"two"})",
      R"({"cmd":"scale","workers":-1})",
      R"({"cmd":"stats","id":-1})",
      R"({"cmd":"stats","id":999999})",
      R"({"cmd":"reload","wait":"yes"})",
  };
  for (const std::string& line : bad_lines) {
    SCOPED_TRACE("request " + line);
    ASSERT_TRUE(control.send_line(line)) << control.error();
    std::optional<json> reply = control.read_json();
    ASSERT_TRUE(reply) << control.error();
    EXPECT_EQ(reply->value("ok", true), false) << reply->dump();
    ASSERT_TRUE(reply->contains("error") && (*reply)["error"].is_string()) << reply->dump();
    EXPECT_FALSE((*reply)["error"].get<std::string>().empty()) << reply->dump();

    std::optional<json> ping = control.request(kPing);
    ASSERT_TRUE(ping) << "no answer to ping after the bad request: " << control.error();
    EXPECT_TRUE(is_ok(*ping)) << ping->dump();
  }

  // None of it changed the workers.
  std::optional<json> status_after = control.request(kStatus);
  ASSERT_TRUE(status_after) << control.error();
  EXPECT_EQ(worker_ids(*status_after), worker_ids(*status_before)) << status_after->dump();
  EXPECT_EQ(number(status_after->at("master"), "workers_target"), 2u) << status_after->dump();
  expect_master_serving(*cluster);
}

TEST(ControlRequests, LineOverOneMebibyteGetsAnErrorAndTheConnectionIsClosed) {
  std::optional<Cluster> cluster = start_cluster(2);
  ASSERT_TRUE(cluster);
  const std::string oversized(3 * 512 * 1024, 'x');  // 1.5 MiB
  for (bool newline : {false, true}) {
    SCOPED_TRACE(newline ? "1.5 MiB and a newline" : "1.5 MiB, no newline");
    ControlClient control(control_path(*cluster));
    ASSERT_TRUE(control.connected()) << control.error();
    // The master may close before it has read everything: a failed send is
    // fine, the reply (if any) waits in our receive queue.
    bool sent = control.send(newline ? oversized + "\n" : oversized);
    std::optional<std::string> line = control.read_line();
    if (line) {
      json reply = json::parse(*line, nullptr, false);
      EXPECT_FALSE(reply.is_discarded()) << "not JSON: " << line->substr(0, 200);
      EXPECT_EQ(reply.value("ok", true), false) << line->substr(0, 200);
      EXPECT_TRUE(reply.contains("error")) << line->substr(0, 200);
    }
    EXPECT_TRUE(control.wait_for_close(kIoTimeout))
        << "the master kept the connection open after a 1.5 MiB line (send "
        << (sent ? "completed" : "failed: " + control.error()) << ")";
  }
  expect_master_serving(*cluster);
}

TEST(ControlRequests, SilentClientDoesNotHoldUpAnother) {
  std::optional<Cluster> cluster = start_cluster(2);
  ASSERT_TRUE(cluster);
  ControlClient silent(control_path(*cluster));
  ASSERT_TRUE(silent.connected()) << silent.error();
  ControlClient half_line(control_path(*cluster));
  ASSERT_TRUE(half_line.connected()) << half_line.error();
  ASSERT_TRUE(half_line.send(R"({"cmd":"pi)")) << half_line.error();

  ControlClient other(control_path(*cluster));
  ASSERT_TRUE(other.connected()) << other.error();
  std::optional<json> ping = other.request(kPing);
  ASSERT_TRUE(ping) << "a silent client held up another one: " << other.error();
  EXPECT_TRUE(is_ok(*ping)) << ping->dump();
  std::optional<json> status = other.request(kStatus);
  ASSERT_TRUE(status) << other.error();
  EXPECT_TRUE(is_ok(*status)) << status->dump();

  // The one that sent half a line is answered once it finishes it.
  ASSERT_TRUE(half_line.send("ng\"}\n")) << half_line.error();
  std::optional<json> finished = half_line.read_json();
  ASSERT_TRUE(finished) << half_line.error();
  EXPECT_TRUE(is_ok(*finished)) << finished->dump();
  expect_master_serving(*cluster);
}

// ---- access ------------------------------------------------------------------

constexpr uid_t kNobody = 65534;

// What a child running as `nobody` saw on the control socket.
struct PeerReport {
  enum Stage : int { kNothing, kDroppedPrivileges, kConnected, kDone };
  int stage = kNothing;
  int error_number = 0;  // of the step that failed
  uid_t uid = 0;
  bool closed = false;  // the master closed the connection
  std::size_t received = 0;
  char bytes[2048] = {};
};

// Runs in the forked child of a threaded process: syscalls only, no
// allocation. Drops to nobody, connects, sends a ping, reads until the master
// closes or 5 s pass, and writes a PeerReport to `report_fd`.
[[noreturn]] void ping_as_nobody(const sockaddr_un& address, int report_fd) {
  PeerReport report;
  static constexpr char kRequest[] = "{\"cmd\":\"ping\"}\n";
  if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
    report.error_number = errno;
  } else {
    report.stage = PeerReport::kDroppedPrivileges;
    report.uid = ::getuid();
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    if (fd < 0 ||
        ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      report.error_number = errno;
    } else {
      report.stage = PeerReport::kConnected;
      // The master may have closed already; what it said is still readable.
      ssize_t ignored = ::send(fd, kRequest, sizeof(kRequest) - 1, MSG_NOSIGNAL);
      (void)ignored;
      while (report.received < sizeof(report.bytes) - 1) {
        ssize_t got = ::recv(fd, report.bytes + report.received,
                             sizeof(report.bytes) - 1 - report.received, 0);
        if (got > 0) {
          report.received += static_cast<std::size_t>(got);
          continue;
        }
        if (got < 0 && errno == EINTR) continue;
        if (got == 0 || errno == ECONNRESET) {
          report.closed = true;
        } else {
          report.error_number = errno;
        }
        break;
      }
      report.stage = PeerReport::kDone;
    }
  }
  ssize_t ignored = ::write(report_fd, &report, sizeof(report));
  (void)ignored;
  ::_exit(0);
}

// Forks a child that pings the control socket as uid `nobody`; its report,
// or nullopt (and a failure) if it could not be run or did not report in time.
std::optional<PeerReport> ping_from_another_uid(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    ADD_FAILURE() << "socket path too long: " << path;
    return std::nullopt;
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2() failed: " << std::strerror(errno);
    return std::nullopt;
  }
  UniqueFd report_read(pipe_fds[0]);
  UniqueFd report_write(pipe_fds[1]);
  pid_t child = ::fork();
  if (child < 0) {
    ADD_FAILURE() << "fork() failed: " << std::strerror(errno);
    return std::nullopt;
  }
  if (child == 0) ping_as_nobody(address, report_write.get());
  report_write.reset();

  PeerReport report;
  std::size_t got = 0;
  auto* bytes = reinterpret_cast<char*>(&report);
  bool complete = wait_until(
      [&] {
        pollfd readable{report_read.get(), POLLIN, 0};
        if (::poll(&readable, 1, 0) <= 0) return false;
        ssize_t received = ::read(report_read.get(), bytes + got, sizeof(report) - got);
        if (received > 0) got += static_cast<std::size_t>(received);
        return got == sizeof(report) || received == 0;
      },
      std::chrono::seconds(15));
  int status = 0;
  bool reaped = wait_until([&] { return ::waitpid(child, &status, WNOHANG) == child; },
                           std::chrono::seconds(5));
  if (!reaped) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
  }
  if (!complete || got != sizeof(report)) {
    ADD_FAILURE() << "the child running as uid " << kNobody << " reported " << got << " of "
                  << sizeof(report) << " bytes";
    return std::nullopt;
  }
  return report;
}

TEST(ControlAccess, AnotherUidIsRefusedEvenWhenTheSocketFileIsWorldWritable) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "needs root, to run a client as uid " << kNobody
                 << " (nobody) against a master of another uid";
  }
  std::optional<Cluster> cluster = start_cluster(1);
  ASSERT_TRUE(cluster);
  std::string path = control_path(*cluster);
  // Open every gate the file system has, so only the master's own check is left.
  ASSERT_EQ(::chmod(cluster->dir.path().c_str(), 0711), 0) << std::strerror(errno);
  ASSERT_EQ(::chmod(path.c_str(), 0666), 0) << std::strerror(errno);

  std::optional<PeerReport> report = ping_from_another_uid(path);
  ASSERT_TRUE(report);
  ASSERT_GE(report->stage, PeerReport::kDroppedPrivileges)
      << "could not become uid " << kNobody << ": " << std::strerror(report->error_number);
  EXPECT_EQ(report->uid, kNobody);
  ASSERT_GE(report->stage, PeerReport::kConnected)
      << "connect() as uid " << kNobody << " failed (" << std::strerror(report->error_number)
      << "): the test meant to reach the master's uid check through a 0666 socket";
  ASSERT_EQ(report->stage, PeerReport::kDone);

  std::string received(report->bytes, report->received);
  EXPECT_TRUE(report->closed) << "the master kept a refused client connected; it said: "
                              << received;
  std::size_t end = received.find('\n');
  if (!received.empty()) {
    json reply = json::parse(received.substr(0, end), nullptr, false);
    ASSERT_FALSE(reply.is_discarded()) << "not JSON: " << received;
    EXPECT_EQ(reply.value("ok", true), false) << "uid " << kNobody << " was served: " << received;
    EXPECT_TRUE(reply.contains("error")) << received;
  }

  // Still open to its own user.
  std::string error;
  std::optional<json> ping = control_request(path, kPing, kIoTimeout, &error);
  ASSERT_TRUE(ping) << error;
  EXPECT_TRUE(is_ok(*ping)) << ping->dump();
}

// ---- restart, scale, events, reload -------------------------------------------

TEST(ControlRestart, ReplacesTheWorkerInItsSlotAndDrainsTheOldOne) {
  std::optional<Cluster> cluster = start_cluster(2, fast_heartbeats());
  ASSERT_TRUE(cluster);
  ControlClient control(control_path(*cluster));
  std::optional<json> before = control.request(kStatus);
  ASSERT_TRUE(before) << control.error();
  ASSERT_TRUE(all_ready_in_slots(*before, 2)) << before->dump();
  const json old_worker = before->at("workers").at(0);
  std::uint64_t old_id = number(old_worker, "id");
  std::uint64_t slot = number(old_worker, "slot");
  std::int64_t old_pid = static_cast<std::int64_t>(number(old_worker, "pid"));
  std::uint64_t old_restarts = number(old_worker, "restarts");

  std::optional<json> reply = control.request({{"cmd", "restart"}, {"id", old_id}});
  ASSERT_TRUE(reply) << control.error();
  ASSERT_TRUE(is_ok(*reply)) << reply->dump();
  EXPECT_EQ(number(*reply, "restarting"), old_id) << reply->dump();

  json after;
  const json* successor = nullptr;
  ASSERT_TRUE(poll_until(
      control, kStatus,
      [&](const json& status) {
        if (!all_ready_in_slots(status, 2) || find_worker(status, old_id) != nullptr) return false;
        for (const json& worker : status.at("workers")) {
          if (number(worker, "slot") == slot) successor = &worker;
        }
        return true;
      },
      kSettleTimeout, after))
      << "worker " << old_id << " was not replaced; last status: " << after.dump();
  ASSERT_NE(successor, nullptr);
  EXPECT_GT(number(*successor, "id"), old_id) << after.dump();
  EXPECT_NE(static_cast<std::int64_t>(number(*successor, "pid")), old_pid);
  EXPECT_EQ(number(*successor, "restarts"), old_restarts + 1) << after.dump();
  EXPECT_EQ(successor->at("last_exit"), json({{"code", 0}, {"signal", nullptr}})) << after.dump();

  EXPECT_TRUE(cluster->herd->wait_for_line(died_with_code_0(old_pid)))
      << "no 'Worker " << old_pid << " died (code 0)': the old worker was not drained";
  EXPECT_FALSE(pid_alive(static_cast<pid_t>(old_pid)));
  expect_master_serving(*cluster);
}

TEST(ControlScale, GrowsToThreeThenShrinksToSlotZeroWhileServing) {
  std::optional<Cluster> cluster = start_cluster(2, fast_heartbeats());
  ASSERT_TRUE(cluster);
  ControlClient control(control_path(*cluster));
  RequestLoop loop(cluster->port);
  ASSERT_TRUE(loop.wait_for_requests(5, kSettleTimeout)) << "the client loop did not get going";

  std::optional<json> up = control.request({{"cmd", "scale"}, {"workers", 3}});
  ASSERT_TRUE(up) << control.error();
  ASSERT_TRUE(is_ok(*up)) << up->dump();
  EXPECT_EQ(number(*up, "workers_target"), 3u) << up->dump();
  EXPECT_EQ(number(*up, "previous"), 2u) << up->dump();

  json status;
  ASSERT_TRUE(poll_until(
      control, kStatus,
      [](const json& reply) {
        return all_ready_in_slots(reply, 3) && number(reply.at("master"), "workers_target") == 3;
      },
      kSettleTimeout, status))
      << "not 3 ready workers in slots 0..2; last status: " << status.dump();
  std::size_t requests_at_three = loop.done();
  ASSERT_TRUE(loop.wait_for_requests(requests_at_three + 5, kSettleTimeout));

  std::vector<std::int64_t> removed_pids;
  std::uint64_t kept_id = 0;
  for (const json& worker : status.at("workers")) {
    if (number(worker, "slot") == 0) {
      kept_id = number(worker, "id");
    } else {
      removed_pids.push_back(static_cast<std::int64_t>(number(worker, "pid")));
    }
  }
  std::optional<json> down = control.request({{"cmd", "scale"}, {"workers", 1}});
  ASSERT_TRUE(down) << control.error();
  ASSERT_TRUE(is_ok(*down)) << down->dump();
  EXPECT_EQ(number(*down, "workers_target"), 1u) << down->dump();
  EXPECT_EQ(number(*down, "previous"), 3u) << down->dump();

  ASSERT_TRUE(poll_until(
      control, kStatus,
      [](const json& reply) {
        return all_ready_in_slots(reply, 1) && number(reply.at("master"), "workers_target") == 1;
      },
      kSettleTimeout, status))
      << "not 1 ready worker in slot 0; last status: " << status.dump();
  EXPECT_EQ(number(status.at("workers").at(0), "id"), kept_id) << "slot 0 should keep its worker";
  for (std::int64_t pid : removed_pids) {
    EXPECT_TRUE(cluster->herd->wait_for_line(died_with_code_0(pid)))
        << "worker " << pid << " of a removed slot was not drained (no 'died (code 0)')";
  }
  std::size_t requests_at_one = loop.done();
  ASSERT_TRUE(loop.wait_for_requests(requests_at_one + 5, kSettleTimeout));

  loop.stop();
  EXPECT_TRUE(loop.failures().empty())
      << loop.failures().size() << " of " << loop.done()
      << " requests failed while scaling:" << first_failures(loop.failures());
  expect_master_serving(*cluster);
}

TEST(ControlEvents, RestartIsStreamedAsRestartSpawnReadyAndExit) {
  std::optional<Cluster> cluster = start_cluster(2, fast_heartbeats());
  ASSERT_TRUE(cluster);
  std::int64_t subscribed_at = unix_now_ms();
  ControlClient events(control_path(*cluster));
  std::optional<json> subscribed = events.request({{"cmd", "events"}});
  ASSERT_TRUE(subscribed) << events.error();
  EXPECT_EQ(*subscribed, json({{"ok", true}, {"events", true}}));

  ControlClient control(control_path(*cluster));
  std::optional<json> status = control.request(kStatus);
  ASSERT_TRUE(status) << control.error();
  ASSERT_TRUE(all_ready_in_slots(*status, 2)) << status->dump();
  const json old_worker = status->at("workers").at(1);
  std::uint64_t old_id = number(old_worker, "id");
  std::uint64_t slot = number(old_worker, "slot");
  std::uint64_t old_pid = number(old_worker, "pid");
  std::optional<json> reply = control.request({{"cmd", "restart"}, {"id", old_id}});
  ASSERT_TRUE(reply) << control.error();
  ASSERT_TRUE(is_ok(*reply)) << reply->dump();

  // Index in `seen` of each event of interest, -1 until it arrives.
  std::vector<json> seen;
  int restart = -1, spawn = -1, ready = -1, exit = -1;
  std::uint64_t new_id = 0;
  Clock::time_point deadline = Clock::now() + kSettleTimeout;
  while ((restart < 0 || spawn < 0 || ready < 0 || exit < 0) && Clock::now() < deadline) {
    auto remaining = std::chrono::duration_cast<Milliseconds>(deadline - Clock::now());
    std::optional<json> event = events.read_json(remaining);
    if (!event) break;
    int index = static_cast<int>(seen.size());
    seen.push_back(*event);
    SCOPED_TRACE("event " + event->dump());
    ASSERT_TRUE(event->contains("event") && (*event)["event"].is_string());
    ASSERT_TRUE(event->contains("time") && (*event)["time"].is_number_integer());
    std::int64_t time = (*event)["time"].get<std::int64_t>();
    EXPECT_GE(time, subscribed_at - 1000);
    EXPECT_LE(time, unix_now_ms() + 1000);

    std::string name = (*event)["event"];
    if (name == "restart" && number(*event, "id") == old_id) {
      restart = index;
    } else if (name == "spawn" && number(*event, "slot") == slot && spawn < 0) {
      spawn = index;
      new_id = number(*event, "id");
      EXPECT_GT(new_id, old_id);
      EXPECT_GT(number(*event, "pid"), 0u);
    } else if (name == "ready" && spawn >= 0 && number(*event, "id") == new_id) {
      ready = index;
      EXPECT_EQ(number(*event, "slot"), slot);
      EXPECT_EQ(number(*event, "pid"), number(seen[spawn], "pid"));
    } else if (name == "exit" && number(*event, "id") == old_id) {
      exit = index;
      EXPECT_EQ(number(*event, "slot"), slot);
      EXPECT_EQ(number(*event, "pid"), old_pid);
      EXPECT_EQ((*event)["code"], 0) << "the old worker should be drained, not killed";
      EXPECT_TRUE((*event)["signal"].is_null());
    }
  }
  std::string stream;
  for (const json& event : seen) stream += "\n  " + event.dump();
  EXPECT_GE(restart, 0) << "no restart event for id " << old_id << stream;
  EXPECT_GE(spawn, 0) << "no spawn event for slot " << slot << stream;
  EXPECT_GE(ready, 0) << "no ready event for the new worker" << stream;
  EXPECT_GE(exit, 0) << "no exit event for id " << old_id << stream;
  if (ready >= 0 && exit >= 0) {
    EXPECT_LT(ready, exit) << "the old worker exited before its successor was ready" << stream;
  }
}

TEST(ControlReload, WaitRepliesWithTheOldIdsOnceAllAreNewAndNoRequestFails) {
  std::optional<Cluster> cluster = start_cluster(2, fast_heartbeats());
  ASSERT_TRUE(cluster);
  ControlClient control(control_path(*cluster));
  std::optional<json> before = control.request(kStatus);
  ASSERT_TRUE(before) << control.error();
  ASSERT_TRUE(all_ready_in_slots(*before, 2)) << before->dump();
  std::set<std::uint64_t> old_ids = worker_ids(*before);

  RequestLoop loop(cluster->port);
  ASSERT_TRUE(loop.wait_for_requests(5, kSettleTimeout)) << "the client loop did not get going";
  Clock::time_point asked_at = Clock::now();
  std::optional<json> reply = control.request({{"cmd", "reload"}, {"wait", true}}, kReloadTimeout);
  ASSERT_TRUE(reply) << "no reply to reload with wait: " << control.error();
  double reload_ms = std::chrono::duration<double, std::milli>(Clock::now() - asked_at).count();
  std::size_t requests_at_reply = loop.done();
  ASSERT_TRUE(loop.wait_for_requests(requests_at_reply + 5, kSettleTimeout));
  loop.stop();

  ASSERT_TRUE(is_ok(*reply)) << reply->dump();
  ASSERT_TRUE(reply->contains("reloaded") && (*reply)["reloaded"].is_array()) << reply->dump();
  std::set<std::uint64_t> reloaded;
  for (const json& id : (*reply)["reloaded"]) reloaded.insert(id.get<std::uint64_t>());
  EXPECT_EQ(reloaded, old_ids) << reply->dump();
  std::cout << "[ reload   ] 2 workers replaced in " << reload_ms << " ms; " << loop.done()
            << " sequential requests meanwhile\n";

  json after;
  ASSERT_TRUE(poll_until(
      control, kStatus,
      [&](const json& status) {
        if (!all_ready_in_slots(status, 2)) return false;
        for (std::uint64_t id : worker_ids(status)) {
          if (old_ids.contains(id)) return false;
        }
        return true;
      },
      kSettleTimeout, after))
      << "old workers still listed; last status: " << after.dump();
  for (const json& worker : before->at("workers")) {
    std::int64_t pid = static_cast<std::int64_t>(number(worker, "pid"));
    EXPECT_TRUE(cluster->herd->wait_for_line(died_with_code_0(pid)))
        << "old worker " << pid << " was not drained";
  }
  EXPECT_TRUE(loop.failures().empty())
      << loop.failures().size() << " of " << loop.done()
      << " requests failed during the reload:" << first_failures(loop.failures());
}

// ---- the socket file -----------------------------------------------------------

const std::regex kListening(R"(listening on 127\.0\.0\.1:(\d+))");
const std::regex kWorkerReady(R"(Worker (\d+) ready)");

std::vector<std::string> master_args(const std::string& control) {
  return {"--host", "127.0.0.1", "--port", "0", "--workers", "1", "--control", control};
}

TEST(ControlSocket, FileIsMode0600WhileRunningAndRemovedOnSigterm) {
  std::optional<Cluster> cluster = start_cluster(1);
  ASSERT_TRUE(cluster);
  std::string path = control_path(*cluster);
  struct stat file {};
  ASSERT_EQ(::lstat(path.c_str(), &file), 0) << path << ": " << std::strerror(errno);
  EXPECT_TRUE(S_ISSOCK(file.st_mode)) << path << " is not a socket";
  EXPECT_EQ(file.st_mode & 07777, 0600u) << "mode " << std::oct << (file.st_mode & 07777);
  EXPECT_EQ(file.st_uid, ::geteuid());

  ASSERT_TRUE(cluster->herd->send_signal(SIGTERM));
  std::optional<int> status = cluster->herd->wait_exit(kSettleTimeout);
  ASSERT_TRUE(status) << "herd still running after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;
  errno = 0;
  EXPECT_NE(::lstat(path.c_str(), &file), 0) << path << " is still there after the master exited";
  EXPECT_EQ(errno, ENOENT);
}

TEST(ControlSocket, SecondMasterOnTheSamePathFailsAndTheFirstKeepsWorking) {
  std::optional<Cluster> cluster = start_cluster(1);
  ASSERT_TRUE(cluster);
  std::string path = control_path(*cluster);

  HerdProcess second(master_args(path));
  ASSERT_GT(second.pid(), 0) << second.start_error();
  std::optional<int> status = second.wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "a second master on " << path << " kept running";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << "status " << *status;
  // The exit can be seen before the reader thread has the last line.
  EXPECT_TRUE(
      wait_until([&] { return second.output().find(path) != std::string::npos; }, kIoTimeout))
      << "the error does not name " << path << ":\n"
      << second.output();
  EXPECT_TRUE(second.worker_pids().empty()) << "the refused master started workers";

  struct stat file {};
  EXPECT_EQ(::lstat(path.c_str(), &file), 0) << "the refused master removed the first one's socket";
  expect_master_serving(*cluster);
}

TEST(ControlSocket, StaleSocketFileIsReplaced) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string path = dir.path() + "/control.sock";
  {
    // A socket file nobody listens on, as a master killed by SIGKILL leaves.
    UniqueFd stale(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(stale.valid()) << std::strerror(errno);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof(address.sun_path));
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(::bind(stale.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0)
        << std::strerror(errno);
  }
  // A mode a master never creates, to tell the stale file from its replacement
  // (inode numbers are reused at once on tmpfs).
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0) << std::strerror(errno);
  struct stat file {};
  ASSERT_EQ(::lstat(path.c_str(), &file), 0);
  ASSERT_TRUE(S_ISSOCK(file.st_mode));

  HerdProcess herd(master_args(path));
  ASSERT_GT(herd.pid(), 0) << herd.start_error();
  std::optional<LineMatch> listening = herd.wait_for_line(kListening, kStartTimeout);
  ASSERT_TRUE(listening) << "herd did not start over a stale socket file";
  ASSERT_TRUE(herd.wait_for_line(kWorkerReady, kStartTimeout));

  std::string error;
  std::optional<json> ping = control_request(path, kPing, kIoTimeout, &error);
  ASSERT_TRUE(ping) << error;
  EXPECT_TRUE(is_ok(*ping)) << ping->dump();
  EXPECT_EQ(number(*ping, "pid"), static_cast<std::uint64_t>(herd.pid()));
  ASSERT_EQ(::lstat(path.c_str(), &file), 0);
  EXPECT_EQ(file.st_mode & 07777, 0600u)
      << "the stale file (mode 0644) was not replaced: mode " << std::oct << (file.st_mode & 07777);

  std::uint16_t port = static_cast<std::uint16_t>(std::stoul((*listening)[1]));
  HttpReadResult result = http_get(port, "/");
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 200u);
}

}  // namespace
}  // namespace herd::e2e
