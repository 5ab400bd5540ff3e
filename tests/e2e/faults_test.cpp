// End-to-end: faults the master has to absorb without losing a request or
// spinning: rolling reloads under load, a hung worker, a worker stopped with
// connections in hand, a crash loop, a queue no worker drains, and a worker
// recycled after a number of requests. The real binaries on 127.0.0.1 with an
// ephemeral port; every wait is bounded.
#include <netinet/tcp.h>
#include <signal.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
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

// A reload with `wait` replies once every slot has a new ready worker.
constexpr Milliseconds kReloadTimeout{30000};
// A replacement takes a spawn, a hello and a ready: room for a sanitizer
// build on a loaded machine.
constexpr Milliseconds kSettleTimeout{20000};
// A request handed to a stopped worker is answered only once that worker is
// killed and the master re-dispatches it: seconds, not milliseconds.
constexpr Milliseconds kLoadIoTimeout{15000};
// Bounds on the background load, whatever the test does meanwhile.
constexpr std::size_t kMaxLoadRequests = 50000;
constexpr Milliseconds kMaxLoadDuration{20000};

const json kPing = {{"cmd", "ping"}};
const json kStatus = {{"cmd", "status"}};

Milliseconds remaining_until(Clock::time_point deadline) {
  return std::max(Milliseconds{0},
                  std::chrono::duration_cast<Milliseconds>(deadline - Clock::now()));
}

// ---- reading replies ---------------------------------------------------------

// `workers[]` entry with pid `pid`, or nullptr.
const json* find_worker_by_pid(const json& status, pid_t pid) {
  for (const json& worker : status.at("workers")) {
    if (number(worker, "pid") == static_cast<std::uint64_t>(pid)) return &worker;
  }
  return nullptr;
}

std::set<pid_t> ready_worker_pids(const json& status) {
  std::set<pid_t> pids;
  for (const json& worker : status.at("workers")) {
    if (worker.value("state", "") == "ready")
      pids.insert(static_cast<pid_t>(number(worker, "pid")));
  }
  return pids;
}

std::string describe(const std::set<pid_t>& pids) {
  std::string text = "{";
  for (pid_t pid : pids) {
    if (text.size() > 1) text += ' ';
    text += std::to_string(pid);
  }
  text += '}';
  return text;
}

// True once `pid` is stopped (state T in /proc/<pid>/stat): from then on it
// can neither read its channel nor acknowledge a connection.
bool process_stopped(pid_t pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!file || !std::getline(file, text)) return false;
  std::size_t close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'T';
}

bool is_hello_world(const HttpResponse& response) {
  return response.status == 200 && response.body == "Hello World!";
}

// ---- load beside the fault under test ------------------------------------------

// GET / requests in background threads until stop(), kMaxLoadRequests or
// kMaxLoadDuration: one thread opens a fresh connection per request; another
// (if `keep_alive_connections` > 0) takes turns on that many keep-alive
// connections. A request fails unless it is answered 200 "Hello World!".
//
// A keep-alive connection the server closes is replaced, not counted as a
// failure, when the server said so first (a response with `Connection:
// close`), or when the close had arrived before the next request was written
// (a draining worker closing it as idle; a client checks before reuse). A
// request that meets that close in flight is retried once, as an HTTP client
// does, but only when the reset proves nothing read it: see
// discarded_unread(). Every other request left without a response is a
// failure.
class BackgroundLoad {
 public:
  BackgroundLoad(std::uint16_t port, std::size_t keep_alive_connections)
      : deadline_(Clock::now() + kMaxLoadDuration) {
    threads_.emplace_back([this, port] { run_fresh_connections(port); });
    if (keep_alive_connections > 0) {
      threads_.emplace_back(
          [this, port, keep_alive_connections] { run_keep_alive(port, keep_alive_connections); });
    }
  }
  ~BackgroundLoad() { stop(); }
  BackgroundLoad(const BackgroundLoad&) = delete;
  BackgroundLoad& operator=(const BackgroundLoad&) = delete;

  // Stops and joins; the figures are final afterwards.
  void stop() {
    stop_ = true;
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  // Waits until `count` requests have been answered or have failed.
  bool wait_for_requests(std::size_t count, Milliseconds timeout) const {
    return wait_until([&] { return done() >= count; }, timeout);
  }
  std::size_t done() const { return fresh_requests_ + keep_alive_requests_; }
  std::size_t fresh_requests() const { return fresh_requests_; }
  std::size_t keep_alive_requests() const { return keep_alive_requests_; }
  std::size_t connection_close_responses() const { return connection_close_responses_; }
  std::size_t idle_closes() const { return idle_closes_; }
  std::size_t retries() const { return retries_; }

  std::size_t failure_count() const {
    std::lock_guard lock(mutex_);
    return failure_count_;
  }
  // The first few failures, one per line.
  std::string first_failures() const {
    std::lock_guard lock(mutex_);
    std::string text;
    for (const std::string& failure : failures_) text += "\n  " + failure;
    return text;
  }

 private:
  bool running() const { return !stop_ && done() < kMaxLoadRequests && Clock::now() < deadline_; }

  void record_failure(std::string failure) {
    std::lock_guard lock(mutex_);
    ++failure_count_;
    if (failures_.size() < 10) failures_.push_back(std::move(failure));
  }

  void run_fresh_connections(std::uint16_t port) {
    while (running()) {
      std::string where = "fresh connection request " + std::to_string(fresh_requests_ + 1);
      HttpClient client(port, kLoadIoTimeout);
      HttpReadResult result;
      if (!client.send(get_request("/"))) {
        result.error = client.error();
      } else {
        result = client.read_responses(1);
      }
      if (!result.ok()) {
        record_failure(where + ": " + result.error);
      } else if (!is_hello_world(result.responses[0])) {
        record_failure(where + ": status " + std::to_string(result.responses[0].status) +
                       ", body '" + result.responses[0].body + "'");
      }
      ++fresh_requests_;
    }
  }

  // Sends GET / on `connection`, first opening it if there is none.
  static HttpReadResult exchange(std::unique_ptr<HttpClient>& connection, std::uint16_t port,
                                 std::size_t& answered) {
    if (!connection) {
      connection = std::make_unique<HttpClient>(port, kLoadIoTimeout);
      answered = 0;
    }
    HttpReadResult result;
    if (!connection->send(get_request("/"))) {
      result.error = connection->error();
      return result;
    }
    return connection->read_responses(1);
  }

  // The request went out on a reused connection that the server reset
  // without a byte of response: it closed the connection as idle, and the
  // request reached a closed socket or was discarded unread at the close.
  // Nothing processed it, so a client may send it again on a new connection
  // (RFC 9112, 9.3.1). A server that read the request and then closed
  // without answering sends a FIN, not a reset: that stays a failure.
  static bool discarded_unread(const HttpClient& connection, std::size_t answered,
                               const HttpReadResult& result) {
    return answered > 0 && result.responses.empty() && result.server_closed &&
           connection.tcp_state() == TCP_CLOSE;
  }

  void run_keep_alive(std::uint16_t port, std::size_t count) {
    std::vector<std::unique_ptr<HttpClient>> connections(count);
    std::vector<std::size_t> answered(count, 0);  // responses on the current connection
    for (std::size_t turn = 0; running(); ++turn) {
      std::size_t index = turn % count;
      std::unique_ptr<HttpClient>& connection = connections[index];
      if (connection && connection->server_has_closed()) {
        ++idle_closes_;
        connection.reset();
      }
      std::string where = "keep-alive connection " + std::to_string(index) + ", request ";
      where += connection ? std::to_string(answered[index] + 1) + " on it" : "1 on a new one";
      HttpReadResult result = exchange(connection, port, answered[index]);
      if (!result.ok() && discarded_unread(*connection, answered[index], result)) {
        ++retries_;
        connection.reset();
        where += ", retried on a new connection after a reset";
        result = exchange(connection, port, answered[index]);
      }
      ++keep_alive_requests_;
      if (!result.ok()) {
        record_failure(where + ": " + result.error);
        connection.reset();
        continue;
      }
      const HttpResponse& response = result.responses[0];
      if (!is_hello_world(response)) {
        record_failure(where + ": status " + std::to_string(response.status) + ", body '" +
                       response.body + "'");
      }
      ++answered[index];
      if (!response.keep_alive) {
        ++connection_close_responses_;
        connection.reset();
      } else if (result.server_closed) {
        ++idle_closes_;
        connection.reset();
      }
    }
  }

  const Clock::time_point deadline_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> fresh_requests_{0};
  std::atomic<std::size_t> keep_alive_requests_{0};
  std::atomic<std::size_t> connection_close_responses_{0};
  std::atomic<std::size_t> idle_closes_{0};
  std::atomic<std::size_t> retries_{0};
  mutable std::mutex mutex_;
  std::size_t failure_count_ = 0;      // guarded by mutex_
  std::vector<std::string> failures_;  // guarded by mutex_
  std::vector<std::thread> threads_;   // started once every other member exists
};

// ---- reloads -------------------------------------------------------------------

TEST(Faults, TwoReloadsUnderLoadFailNoRequest) {
  constexpr std::size_t kKeepAliveConnections = 4;
  std::optional<Cluster> cluster = start_cluster(2);
  ASSERT_TRUE(cluster);
  std::optional<json> initial = status_of(*cluster);
  ASSERT_TRUE(initial);
  std::set<pid_t> original = ready_worker_pids(*initial);
  ASSERT_EQ(original.size(), 2u) << initial->dump();

  BackgroundLoad load(cluster->port, kKeepAliveConnections);
  ASSERT_TRUE(load.wait_for_requests(100, kSettleTimeout)) << "the load did not get going";

  ControlClient control(control_path(*cluster));
  ASSERT_TRUE(control.connected()) << control.error();
  const json reload = {{"cmd", "reload"}, {"wait", true}};
  std::vector<std::set<pid_t>> generations{original};
  std::vector<double> reload_ms;
  for (int round = 1; round <= 2; ++round) {
    SCOPED_TRACE("reload " + std::to_string(round));
    Clock::time_point asked_at = Clock::now();
    std::optional<json> reply = control.request(reload, kReloadTimeout);
    ASSERT_TRUE(reply) << "no reply to reload with wait: " << control.error();
    ASSERT_TRUE(is_ok(*reply)) << reply->dump();
    reload_ms.push_back(elapsed_ms(asked_at));
    std::optional<json> status = status_of(*cluster);
    ASSERT_TRUE(status);
    std::set<pid_t> ready = ready_worker_pids(*status);
    EXPECT_EQ(ready.size(), 2u) << status->dump();
    for (pid_t pid : ready) {
      EXPECT_EQ(generations.back().count(pid), 0u)
          << "worker " << pid << " is still ready after the reload: " << status->dump();
    }
    generations.push_back(ready);
  }
  // The load must still be running now, so it spanned both reloads.
  EXPECT_TRUE(load.wait_for_requests(load.done() + 100, kSettleTimeout))
      << "the load stopped before the reloads were over";
  load.stop();

  std::cout << "[ reloads  ] " << reload_ms[0] << " ms and " << reload_ms[1] << " ms; "
            << load.done() << " requests (" << load.fresh_requests() << " on fresh connections, "
            << load.keep_alive_requests() << " keep-alive, " << load.connection_close_responses()
            << " Connection: close, " << load.idle_closes() << " idle closes, " << load.retries()
            << " retried after an idle-close reset), " << load.failure_count()
            << " failed; workers " << describe(generations[0]) << " -> " << describe(generations[1])
            << " -> " << describe(generations[2]) << "\n";
  RecordProperty("requests", static_cast<int>(load.done()));
  EXPECT_EQ(load.failure_count(), 0u)
      << "requests failed during two reloads:" << load.first_failures();
  EXPECT_GE(load.done(), 300u);
  EXPECT_GT(load.keep_alive_requests(), 0u);
  // Each of the 4 drained workers closes each keep-alive connection at most once.
  EXPECT_LE(load.retries(), 4 * kKeepAliveConnections);
  EXPECT_GT(load.fresh_requests(), 0u);

  std::set<pid_t> replaced = generations[0];
  replaced.insert(generations[1].begin(), generations[1].end());
  for (pid_t pid : replaced) {
    EXPECT_TRUE(wait_until([&] { return !pid_alive(pid); }, kSettleTimeout))
        << "replaced worker " << pid << " is still running";
  }
}

// ---- a hung worker -------------------------------------------------------------

TEST(Faults, HungWorkerIsReplacedWithinTimeoutPlusGrace) {
  constexpr Milliseconds kHeartbeatTimeout{1000};
  constexpr Milliseconds kKillTimeout{1000};
  constexpr Milliseconds kMargin{3000};
  std::optional<Cluster> cluster =
      start_cluster(2, {"--heartbeat-interval", "100", "--heartbeat-timeout",
                        std::to_string(kHeartbeatTimeout.count()), "--kill-timeout",
                        std::to_string(kKillTimeout.count())});
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::optional<json> initial = status_of(*cluster);
  ASSERT_TRUE(initial);
  const json victim_record = initial->at("workers").at(0);
  const pid_t victim = static_cast<pid_t>(number(victim_record, "pid"));
  const std::uint64_t slot = number(victim_record, "slot");
  ASSERT_GT(victim, 0) << initial->dump();

  std::size_t before_stop = herd.line_count();
  Clock::time_point stopped_at = Clock::now();
  Clock::time_point deadline = stopped_at + kHeartbeatTimeout + kKillTimeout + kMargin;
  ASSERT_EQ(::kill(victim, SIGSTOP), 0);
  ASSERT_TRUE(wait_until([&] { return process_stopped(victim); }, kIoTimeout));
  // Fresh connections only: keep-alive connections the stopped worker had
  // adopted die with it, which no master can prevent.
  BackgroundLoad load(cluster->port, 0);

  const std::string pid_text = std::to_string(victim);
  std::optional<LineMatch> hung =
      herd.wait_for_line(std::regex("Worker " + pid_text + " missed its heartbeats"),
                         remaining_until(deadline), before_stop);
  double hung_ms = elapsed_ms(stopped_at);
  ASSERT_TRUE(hung) << "no 'Worker " << victim << " missed its heartbeats' line";

  // Once marked hung, it is handed nothing new.
  std::optional<json> marked = status_of(*cluster);
  ASSERT_TRUE(marked);
  const json* hung_record = find_worker_by_pid(*marked, victim);
  std::optional<std::uint64_t> handed_when_marked;
  if (hung_record != nullptr) {
    EXPECT_EQ(hung_record->value("state", ""), "hung") << marked->dump();
    handed_when_marked = number(*hung_record, "connections");
  }
  for (int i = 0; i < 10; ++i) {
    HttpReadResult result = http_get(cluster->port, "/");
    ASSERT_TRUE(result.ok()) << "request " << i << " while the worker is hung: " << result.error;
    EXPECT_TRUE(is_hello_world(result.responses[0])) << "request " << i;
  }
  std::optional<json> later = status_of(*cluster);
  ASSERT_TRUE(later);
  if (const json* still = find_worker_by_pid(*later, victim); still && handed_when_marked) {
    EXPECT_EQ(number(*still, "connections"), *handed_when_marked)
        << "the hung worker was handed connections: " << later->dump();
  }

  std::optional<LineMatch> died =
      herd.wait_for_line(std::regex("Worker " + pid_text + R"( died \(signal 9)"),
                         remaining_until(deadline), before_stop);
  double died_ms = elapsed_ms(stopped_at);
  ASSERT_TRUE(died) << "no 'Worker " << victim << " died (signal 9' within "
                    << (kHeartbeatTimeout + kKillTimeout + kMargin).count() << " ms of SIGSTOP";
  // SIGTERM cannot stop a stopped process; SIGKILL comes a kill-timeout later.
  EXPECT_GE(died_ms - hung_ms, 0.8 * static_cast<double>(kKillTimeout.count()));

  json last;
  bool replaced = wait_until(
      [&] {
        std::optional<json> status = status_of(*cluster);
        if (!status) return false;
        last = *status;
        for (const json& worker : status->at("workers")) {
          if (number(worker, "slot") == slot && worker.value("state", "") == "ready" &&
              number(worker, "pid") != static_cast<std::uint64_t>(victim)) {
            return true;
          }
        }
        return false;
      },
      kSettleTimeout);
  EXPECT_TRUE(replaced) << "no ready replacement in slot " << slot << ": " << last.dump();

  EXPECT_TRUE(load.wait_for_requests(load.done() + 20, kSettleTimeout));
  load.stop();
  std::cout << "[ hung     ] worker " << victim << " stopped; marked hung after " << hung_ms
            << " ms, died of SIGKILL after " << died_ms << " ms; " << load.done()
            << " requests meanwhile, " << load.failure_count() << " failed\n";
  EXPECT_EQ(load.failure_count(), 0u)
      << "requests failed around the hung worker:" << load.first_failures();
}

// ---- a stopped worker holding un-acked connections -------------------------------

TEST(Faults, ConnectionsHandedToAStoppedWorkerAreAllAnswered) {
  constexpr std::size_t kConnections = 12;
  // A long heartbeat timeout: the master must not act on its own here.
  std::optional<Cluster> cluster =
      start_cluster(2, {"--handoff-window", "4", "--heartbeat-timeout", "30000"});
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  std::optional<json> initial = status_of(*cluster);
  ASSERT_TRUE(initial);
  const json stopped_record = initial->at("workers").at(0);
  const pid_t stopped = static_cast<pid_t>(number(stopped_record, "pid"));
  ASSERT_GT(stopped, 0) << initial->dump();

  ASSERT_EQ(::kill(stopped, SIGSTOP), 0);
  ASSERT_TRUE(wait_until([&] { return process_stopped(stopped); }, kIoTimeout));

  std::vector<std::unique_ptr<HttpClient>> clients;
  for (std::size_t i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<HttpClient>(cluster->port, kLoadIoTimeout));
    ASSERT_TRUE(clients.back()->connected())
        << "connection " << i << ": " << clients.back()->error();
    ASSERT_TRUE(clients.back()->send(get_request("/")))
        << "connection " << i << ": " << clients.back()->error();
  }

  // Every connection handed out, some of them to the stopped worker, which
  // can acknowledge none.
  json last;
  std::uint64_t handed_to_stopped = 0;
  bool handed = wait_until(
      [&] {
        std::optional<json> status = status_of(*cluster);
        if (!status) return false;
        last = *status;
        const json* record = find_worker_by_pid(*status, stopped);
        if (record == nullptr) return false;
        handed_to_stopped = number(*record, "connections");
        std::uint64_t handed_total = 0;
        for (const json& worker : status->at("workers")) {
          handed_total += number(worker, "connections");
        }
        return number(status->at("master"), "pending") == 0 && handed_total == kConnections &&
               handed_to_stopped > 0;
      },
      kSettleTimeout);
  ASSERT_TRUE(handed) << "the stopped worker was handed none of " << kConnections
                      << " connections, or some are still pending: " << last.dump();

  std::size_t before_kill = herd.line_count();
  ASSERT_EQ(::kill(stopped, SIGKILL), 0);
  for (std::size_t i = 0; i < kConnections; ++i) {
    HttpReadResult result = clients[i]->read_responses(1);
    ASSERT_TRUE(result.ok()) << "connection " << i << ": " << result.error;
    EXPECT_TRUE(is_hello_world(result.responses[0]))
        << "connection " << i << ": status " << result.responses[0].status;
  }
  std::optional<LineMatch> redispatched = herd.wait_for_line(
      std::regex(R"(re-dispatching (\d+) connections)"), kLogTimeout, before_kill);
  ASSERT_TRUE(redispatched) << "no 're-dispatching' line after the kill";
  EXPECT_EQ(std::stoull((*redispatched)[1]), handed_to_stopped) << redispatched->line;
  std::cout << "[ stopped  ] " << handed_to_stopped << " of " << kConnections
            << " connections were handed to the stopped worker; all " << kConnections
            << " answered after its SIGKILL\n";
}

// ---- a crash loop and an unserved queue --------------------------------------------

TEST(Faults, BinFalseCrashLoopStaysCheapAndReportsBackoff) {
  constexpr Milliseconds kWindow{6000};
  constexpr double kMaxCpuMs = 500;
  constexpr std::size_t kMaxDeaths = 20;
  std::optional<Cluster> cluster =
      start_master(2, {"--exec", "/bin/false", "--min-uptime", "5000"});
  ASSERT_TRUE(cluster);
  HerdProcess& herd = *cluster->herd;
  const pid_t master = herd.pid();

  // What the master costs while its workers keep crashing.
  std::optional<CpuUse> use = cpu_use_over({master}, kWindow);
  ASSERT_TRUE(use) << "the master is gone";
  const double cpu_ms = use->cpu_ms;
  const double window_ms = use->window_ms;

  static const std::regex died(R"(Worker \d+ died)");
  std::size_t deaths = 0;
  for (const std::string& line : herd.lines()) deaths += std::regex_search(line, died) ? 1 : 0;

  std::cout << "[ crash    ] 2 slots of /bin/false: " << deaths << " deaths, master CPU " << cpu_ms
            << " ms over " << window_ms << " ms\n";
  RecordProperty("master_cpu_ms", static_cast<int>(cpu_ms));
  RecordProperty("deaths", static_cast<int>(deaths));
  EXPECT_LT(cpu_ms, kMaxCpuMs) << "the master spins while its workers crash";
  EXPECT_GE(deaths, 2u) << "the workers did not even crash";
  EXPECT_LE(deaths, kMaxDeaths) << "respawns are not backing off";

  json last;
  bool backing_off = wait_until(
      [&] {
        std::optional<json> status = status_of(*cluster);
        if (!status) return false;
        last = *status;
        if (!status->contains("slots") || !(*status)["slots"].is_array()) return false;
        for (const json& slot : (*status)["slots"]) {
          if (slot.value("state", "") == "backoff" && number(slot, "restarts") > 0 &&
              slot.contains("next_attempt_ms") && slot["next_attempt_ms"].is_number() &&
              slot["next_attempt_ms"].get<double>() > 0) {
            return true;
          }
        }
        return false;
      },
      kSettleTimeout);
  ASSERT_TRUE(backing_off) << "status shows no slot in backoff with restarts and a next attempt: "
                           << last.dump();

  const json& slots = last["slots"];
  ASSERT_EQ(slots.size(), 2u) << last.dump();
  std::set<std::uint64_t> indexes;
  for (const json& slot : slots) {
    SCOPED_TRACE("slot " + slot.dump());
    for (const char* key :
         {"slot", "state", "worker", "restarts", "last_exit", "next_attempt_ms"}) {
      EXPECT_TRUE(slot.contains(key)) << "no '" << key << "'";
    }
    indexes.insert(number(slot, "slot"));
    const std::string state = slot.value("state", "");
    EXPECT_TRUE(state == "running" || state == "starting" || state == "backoff") << state;
    EXPECT_TRUE(slot["worker"].is_null() || slot["worker"].is_number_unsigned());
    EXPECT_TRUE(slot["restarts"].is_number_unsigned());
    EXPECT_GT(number(slot, "restarts"), 0u);
    // /bin/false exits with code 1.
    EXPECT_EQ(slot["last_exit"], json({{"code", 1}, {"signal", nullptr}}));
    if (state == "backoff") {
      EXPECT_TRUE(slot["worker"].is_null()) << "a slot in backoff has no worker";
      ASSERT_TRUE(slot["next_attempt_ms"].is_number());
      EXPECT_LE(slot["next_attempt_ms"].get<double>(), 30000.0) << "over the 30 s cap";
    } else {
      EXPECT_TRUE(slot["next_attempt_ms"].is_null()) << "next_attempt_ms outside backoff";
    }
  }
  EXPECT_EQ(indexes, (std::set<std::uint64_t>{0, 1}));

  std::string error;
  std::optional<json> ping = control_request(control_path(*cluster), kPing, kIoTimeout, &error);
  ASSERT_TRUE(ping) << error;
  EXPECT_TRUE(is_ok(*ping)) << ping->dump();
  EXPECT_TRUE(pid_alive(master));
}

TEST(Faults, QueuedConnectionIsAnswered503AfterQueueTimeout) {
  std::optional<Cluster> cluster =
      start_master(1, {"--exec", "/bin/false", "--queue-timeout", "1000"});
  ASSERT_TRUE(cluster);

  Clock::time_point connecting_at = Clock::now();
  HttpClient client(cluster->port);
  ASSERT_TRUE(client.connected()) << client.error();
  ASSERT_TRUE(client.send(get_request("/"))) << client.error();
  // No worker ever becomes ready: the connection waits in the master's queue.
  bool closed = client.wait_for_close(Milliseconds{8000});
  double closed_ms = elapsed_ms(connecting_at);
  ASSERT_TRUE(closed) << "the queued connection is still open after " << closed_ms << " ms";
  std::cout << "[ queue    ] queued connection closed after " << closed_ms << " ms\n";
  EXPECT_GE(closed_ms, 900.0) << "closed before the queue timeout";
  EXPECT_LE(closed_ms, 4000.0) << "closed long after the queue timeout";
  // It was never served, and the client is told so: safe to retry.
  HttpReadResult result = client.read_responses(1);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 503u);
  EXPECT_EQ(result.responses[0].header("retry-after"), "1");
  EXPECT_EQ(result.responses[0].header("connection"), "close");
  EXPECT_TRUE(result.server_closed);

  std::optional<json> status = status_of(*cluster);
  ASSERT_TRUE(status) << "the master does not answer status";
  EXPECT_EQ(number(status->at("master"), "pending"), 0u) << status->dump();
  EXPECT_GE(number(status->at("master"), "connections_total"), 1u) << status->dump();
  std::string error;
  std::optional<json> ping = control_request(control_path(*cluster), kPing, kIoTimeout, &error);
  ASSERT_TRUE(ping) << error;
  EXPECT_TRUE(is_ok(*ping));
  EXPECT_TRUE(pid_alive(cluster->herd->pid()));
}

// ---- recycling -------------------------------------------------------------------

TEST(Faults, WorkerIsRecycledAfterMaxRequests) {
  constexpr std::size_t kMinRequests = 60;
  std::optional<Cluster> cluster =
      start_cluster(1, {"--max-requests", "20", "--heartbeat-interval", "100"});
  ASSERT_TRUE(cluster);
  std::optional<json> initial = status_of(*cluster);
  ASSERT_TRUE(initial);
  ASSERT_EQ(initial->at("workers").size(), 1u) << initial->dump();
  const std::uint64_t first_id = number(initial->at("workers")[0], "id");

  ControlClient events(control_path(*cluster));
  std::optional<json> subscribed = events.request({{"cmd", "events"}});
  ASSERT_TRUE(subscribed) << events.error();
  ASSERT_TRUE(is_ok(*subscribed)) << subscribed->dump();

  // Sequential requests on fresh connections, before, during and after the
  // recycling.
  BackgroundLoad load(cluster->port, 0);
  std::optional<json> recycle;
  std::vector<std::string> seen;
  Clock::time_point deadline = Clock::now() + kSettleTimeout;
  while (!recycle && Clock::now() < deadline) {
    std::optional<json> event = events.read_json(remaining_until(deadline));
    if (!event) break;
    seen.push_back(event->dump());
    if (event->value("event", "") == "recycle") recycle = std::move(event);
  }
  std::string seen_text;
  for (const std::string& line : seen) seen_text += "\n  " + line;
  ASSERT_TRUE(recycle) << "no recycle event after " << load.done() << " requests ("
                       << events.error() << "); events seen:" << seen_text;
  EXPECT_EQ(recycle->value("reason", ""), "max-requests") << recycle->dump();
  EXPECT_EQ(number(*recycle, "id"), first_id) << recycle->dump();

  json last;
  bool replaced = wait_until(
      [&] {
        std::optional<json> status = status_of(*cluster);
        if (!status) return false;
        last = *status;
        for (const json& worker : status->at("workers")) {
          if (number(worker, "id") != first_id && worker.value("state", "") == "ready") return true;
        }
        return false;
      },
      kSettleTimeout);
  EXPECT_TRUE(replaced) << "worker " << first_id << " has no ready successor: " << last.dump();

  EXPECT_TRUE(load.wait_for_requests(std::max(kMinRequests, load.done() + 20), kSettleTimeout));
  load.stop();
  std::cout << "[ recycle  ] worker " << first_id << " recycled (" << recycle->dump() << "); "
            << load.done() << " requests, " << load.failure_count() << " failed\n";
  EXPECT_EQ(load.failure_count(), 0u)
      << "requests failed around the recycling:" << load.first_failures();
}

}  // namespace
}  // namespace herd::e2e
