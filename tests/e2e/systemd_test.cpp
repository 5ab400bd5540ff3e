// End-to-end: herd under systemd. Type=notify is checked by pointing
// NOTIFY_SOCKET at a datagram socket the test owns and reading what herd
// sends (READY=1, RELOADING=1, STOPPING=1, STATUS=, WATCHDOG=1); socket
// activation by running herd under systemd-socket-activate, which passes the
// listening socket the way systemd does (LISTEN_FDS, LISTEN_PID).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "common/unix_socket.h"
#include "tests/e2e/harness.h"

namespace herd::e2e {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kSocketActivate = "/usr/bin/systemd-socket-activate";
const std::regex kWorkerReady(R"(Worker (\d+) ready)");

// The notification datagrams herd sends to NOTIFY_SOCKET, as sd_notify(3)
// writes them: one message per datagram, "NAME=VALUE" lines.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    sockaddr_un address;
    if (!make_unix_address(path, address, error_)) return;
    UniqueFd socket(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!socket) {
      error_ = std::string("socket() failed: ") + std::strerror(errno);
      return;
    }
    if (::bind(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      error_ = "bind() to " + path + " failed: " + std::strerror(errno);
      return;
    }
    socket_ = std::move(socket);
  }

  bool bound() const { return socket_.valid(); }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }
  std::string environment() const { return "NOTIFY_SOCKET=" + path_; }

  // Waits until a message at or after index `from` has the line `line`;
  // returns that message's index.
  std::optional<std::size_t> wait_for(std::string_view line, Milliseconds timeout = kLogTimeout,
                                      std::size_t from = 0) {
    Clock::time_point deadline = Clock::now() + timeout;
    for (std::size_t next = from;;) {
      for (; next < messages_.size(); ++next) {
        if (has_line(messages_[next], line)) return next;
      }
      if (!receive_until(deadline)) return std::nullopt;
    }
  }

  // Waits until `count` messages at or after `from` have the line `line`.
  bool wait_for_count(std::string_view line, std::size_t count, Milliseconds timeout,
                      std::size_t from = 0) {
    Clock::time_point deadline = Clock::now() + timeout;
    for (;;) {
      if (count_lines(line, from) >= count) return true;
      if (!receive_until(deadline)) return false;
    }
  }

  std::size_t count_lines(std::string_view line, std::size_t from = 0) const {
    return static_cast<std::size_t>(
        std::count_if(messages_.begin() + static_cast<std::ptrdiff_t>(from), messages_.end(),
                      [&](const std::string& message) { return has_line(message, line); }));
  }

  const std::vector<std::string>& messages() const { return messages_; }

  // The value of `name` in message `index` ("" if absent).
  std::string field(std::size_t index, std::string_view name) const {
    std::istringstream lines(messages_.at(index));
    std::string prefix = std::string(name) + "=";
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
    }
    return "";
  }

  // Every message so far, for failure output.
  std::string dump() const {
    std::string all;
    for (const std::string& message : messages_) {
      std::string one_line = message;
      std::replace(one_line.begin(), one_line.end(), '\n', ' ');
      all += "  [" + one_line + "]\n";
    }
    return all.empty() ? "  (none)\n" : all;
  }

 private:
  static bool has_line(const std::string& message, std::string_view line) {
    std::istringstream lines(message);
    for (std::string each; std::getline(lines, each);) {
      if (each == line) return true;
    }
    return false;
  }

  // Reads every datagram there is, waiting until `deadline` for the first;
  // false once the deadline has passed with nothing new.
  bool receive_until(Clock::time_point deadline) {
    if (!socket_) return false;
    for (;;) {
      auto remaining = std::chrono::duration_cast<Milliseconds>(deadline - Clock::now()).count();
      if (remaining <= 0) return false;
      pollfd readable{socket_.get(), POLLIN, 0};
      int ready = ::poll(&readable, 1, static_cast<int>(remaining));
      if (ready < 0 && errno != EINTR) return false;
      if (ready <= 0) continue;
      bool received_any = false;
      for (;;) {
        char buffer[4096];
        ssize_t size = ::recv(socket_.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
        if (size < 0) break;
        messages_.emplace_back(buffer, static_cast<std::size_t>(size));
        received_any = true;
      }
      if (received_any) return true;
    }
  }

  std::string path_;
  UniqueFd socket_;
  std::string error_;
  std::vector<std::string> messages_;
};

// A herd started with a notification socket of the test's.
struct NotifiedHerd {
  TempDir dir;
  std::unique_ptr<NotifySocket> notify;
  std::unique_ptr<HerdProcess> herd;

  std::string control() const { return dir.path() + "/control.sock"; }
};

std::vector<std::string> herd_args(const std::string& control, std::size_t workers) {
  return {"--host",    "127.0.0.1", "--port",      "0",    "--workers", std::to_string(workers),
          "--control", control,     "--log-level", "debug"};
}

// Starts herd with NOTIFY_SOCKET pointing at a socket of the test's, and
// `env` beside it. On failure, records it and returns nullopt.
std::optional<NotifiedHerd> start_notified(std::size_t workers, std::vector<std::string> env = {}) {
  NotifiedHerd started;
  if (started.dir.path().empty()) {
    ADD_FAILURE() << "mkdtemp() failed: " << std::strerror(errno);
    return std::nullopt;
  }
  started.notify = std::make_unique<NotifySocket>(started.dir.path() + "/notify.sock");
  if (!started.notify->bound()) {
    ADD_FAILURE() << started.notify->error();
    return std::nullopt;
  }
  env.push_back(started.notify->environment());
  started.herd =
      std::make_unique<HerdProcess>(herd_args(started.control(), workers), kHerdPath, env);
  if (started.herd->pid() < 0) {
    ADD_FAILURE() << "cannot start herd: " << started.herd->start_error();
    return std::nullopt;
  }
  return started;
}

// The state of every worker in a `status` reply.
std::vector<std::string> worker_states(const json& status) {
  std::vector<std::string> states;
  for (const json& worker : status.at("workers")) states.push_back(worker.at("state"));
  return states;
}

// ---- Type=notify --------------------------------------------------------------

TEST(SystemdNotify, ReadyWithStatusOnceEveryWorkerIsReady) {
  std::optional<NotifiedHerd> herd = start_notified(2);
  ASSERT_TRUE(herd);

  std::optional<std::size_t> ready = herd->notify->wait_for("READY=1", kStartTimeout);
  ASSERT_TRUE(ready) << "no READY=1; received:\n" << herd->notify->dump();

  EXPECT_EQ(herd->notify->field(*ready, "STATUS"), "2/2 workers ready, 0 req/s, 0 queued");
  // READY=1 came no earlier than the second worker's ready: both are ready now.
  std::optional<json> status = control_request(herd->control(), {{"cmd", "status"}});
  ASSERT_TRUE(status);
  EXPECT_EQ(worker_states(*status), (std::vector<std::string>{"ready", "ready"})) << status->dump();
  EXPECT_EQ(herd->notify->count_lines("READY=1"), 1u) << herd->notify->dump();

  // Only the master speaks for the service: the workers do not get the socket.
  for (const json& worker : status->at("workers")) {
    std::ifstream file("/proc/" + std::to_string(worker.at("pid").get<int>()) + "/environ");
    std::string environment((std::istreambuf_iterator<char>(file)), {});
    ASSERT_FALSE(environment.empty()) << "cannot read worker " << worker.at("pid");
    EXPECT_EQ(environment.find("NOTIFY_SOCKET="), std::string::npos);
    EXPECT_NE(environment.find("HERD_CHANNEL_FD="), std::string::npos);
  }
}

TEST(SystemdNotify, ReloadingThenReadyAroundAReload) {
  std::optional<NotifiedHerd> herd = start_notified(1);
  ASSERT_TRUE(herd);
  std::optional<std::size_t> ready = herd->notify->wait_for("READY=1", kStartTimeout);
  ASSERT_TRUE(ready) << herd->notify->dump();

  std::optional<json> reply =
      control_request(herd->control(), {{"cmd", "reload"}, {"wait", true}}, kStartTimeout);
  ASSERT_TRUE(reply);
  ASSERT_EQ(reply->value("ok", false), true) << reply->dump();

  std::optional<std::size_t> reloading =
      herd->notify->wait_for("RELOADING=1", kLogTimeout, *ready + 1);
  ASSERT_TRUE(reloading) << herd->notify->dump();
  EXPECT_FALSE(herd->notify->field(*reloading, "MONOTONIC_USEC").empty()) << herd->notify->dump();
  EXPECT_EQ(herd->notify->field(*reloading, "STATUS"),
            "1/1 workers ready, 0 req/s, 0 queued, reloading");
  std::optional<std::size_t> ready_again =
      herd->notify->wait_for("READY=1", kLogTimeout, *reloading + 1);
  ASSERT_TRUE(ready_again) << "no READY=1 after RELOADING=1:\n" << herd->notify->dump();
  EXPECT_EQ(herd->notify->field(*ready_again, "STATUS"), "1/1 workers ready, 0 req/s, 0 queued");
}

TEST(SystemdNotify, ReloadBySighupIsNotifiedToo) {
  std::optional<NotifiedHerd> herd = start_notified(1);
  ASSERT_TRUE(herd);
  std::optional<std::size_t> ready = herd->notify->wait_for("READY=1", kStartTimeout);
  ASSERT_TRUE(ready) << herd->notify->dump();

  ASSERT_TRUE(herd->herd->send_signal(SIGHUP));

  std::optional<std::size_t> reloading =
      herd->notify->wait_for("RELOADING=1", kLogTimeout, *ready + 1);
  ASSERT_TRUE(reloading) << herd->notify->dump();
  EXPECT_TRUE(herd->notify->wait_for("READY=1", kStartTimeout, *reloading + 1))
      << herd->notify->dump();
}

TEST(SystemdNotify, StoppingOnSigterm) {
  std::optional<NotifiedHerd> herd = start_notified(1);
  ASSERT_TRUE(herd);
  std::optional<std::size_t> ready = herd->notify->wait_for("READY=1", kStartTimeout);
  ASSERT_TRUE(ready) << herd->notify->dump();

  ASSERT_TRUE(herd->herd->send_signal(SIGTERM));

  std::optional<std::size_t> stopping =
      herd->notify->wait_for("STOPPING=1", kLogTimeout, *ready + 1);
  ASSERT_TRUE(stopping) << herd->notify->dump();
  EXPECT_EQ(herd->notify->field(*stopping, "STATUS").rfind("stopping, ", 0), 0u)
      << herd->notify->dump();
  std::optional<int> status = herd->herd->wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "herd did not exit after SIGTERM";
  EXPECT_EQ(describe_status(*status), "exit code 0");
  EXPECT_EQ(herd->notify->count_lines("READY=1", *stopping), 0u) << "READY=1 after STOPPING=1:\n"
                                                                 << herd->notify->dump();
}

TEST(SystemdNotify, WatchdogKeepsArrivingWhenWatchdogUsecIsSet) {
  std::optional<NotifiedHerd> herd = start_notified(1, {"WATCHDOG_USEC=200000", "WATCHDOG_PID"});
  ASSERT_TRUE(herd);

  EXPECT_TRUE(herd->notify->wait_for_count("WATCHDOG=1", 3, kStartTimeout))
      << "fewer than 3 WATCHDOG=1; received:\n"
      << herd->notify->dump();
  EXPECT_TRUE(herd->herd->wait_for_line(std::regex("systemd watchdog: WATCHDOG=1 every 100 ms")));
}

// WATCHDOG_PID set by a service manager to herd's own pid: the shell execs
// herd, so its $$ is herd's pid.
TEST(SystemdNotify, WatchdogHonoursWatchdogPidOfHerdItself) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  NotifySocket notify(dir.path() + "/notify.sock");
  ASSERT_TRUE(notify.bound()) << notify.error();
  std::vector<std::string> args{"-c", R"(export WATCHDOG_PID=$$; exec "$0" "$@")", kHerdPath};
  std::vector<std::string> herd = herd_args(dir.path() + "/control.sock", 1);
  args.insert(args.end(), herd.begin(), herd.end());
  HerdProcess process(args, "/bin/sh", {notify.environment(), "WATCHDOG_USEC=200000"});
  ASSERT_GT(process.pid(), 0) << process.start_error();

  EXPECT_TRUE(notify.wait_for_count("WATCHDOG=1", 3, kStartTimeout))
      << "fewer than 3 WATCHDOG=1; received:\n"
      << notify.dump();
}

TEST(SystemdNotify, NoWatchdogWhenWatchdogPidIsAnotherProcess) {
  // pid 1 is never herd.
  std::optional<NotifiedHerd> herd = start_notified(1, {"WATCHDOG_USEC=200000", "WATCHDOG_PID=1"});
  ASSERT_TRUE(herd);

  ASSERT_TRUE(herd->notify->wait_for("READY=1", kStartTimeout)) << herd->notify->dump();
  // The watchdog is set up before the first worker starts, so by the first
  // ready line herd would have logged it.
  ASSERT_TRUE(herd->herd->wait_for_line(kWorkerReady));
  EXPECT_FALSE(herd->herd->wait_for_line(std::regex("systemd watchdog"), Milliseconds{0}));
  EXPECT_EQ(herd->notify->count_lines("WATCHDOG=1"), 0u) << herd->notify->dump();
}

TEST(SystemdNotify, WithoutNotifySocketHerdServesReloadsAndStops) {
  std::optional<Cluster> cluster = start_cluster(1);
  ASSERT_TRUE(cluster);

  HttpReadResult result = http_get(cluster->port, "/");
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 200u);
  std::optional<json> reply =
      control_request(control_path(*cluster), {{"cmd", "reload"}, {"wait", true}}, kStartTimeout);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->value("ok", false), true) << reply->dump();
  ASSERT_TRUE(cluster->herd->send_signal(SIGTERM));
  std::optional<int> status = cluster->herd->wait_exit(kStartTimeout);
  ASSERT_TRUE(status);
  EXPECT_EQ(describe_status(*status), "exit code 0");
  EXPECT_EQ(cluster->herd->output().find("sd_notify"), std::string::npos)
      << cluster->herd->output();
}

TEST(SystemdNotify, AMissingNotifySocketIsLoggedOnceAndHerdServes) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  HerdProcess herd(herd_args(dir.path() + "/control.sock", 1), kHerdPath,
                   {"NOTIFY_SOCKET=" + dir.path() + "/nobody-listens.sock", "WATCHDOG_USEC=100000",
                    "WATCHDOG_PID"});
  ASSERT_GT(herd.pid(), 0) << herd.start_error();
  std::optional<LineMatch> listening =
      herd.wait_for_line(std::regex(R"(listening on 127\.0\.0\.1:(\d+))"), kStartTimeout);
  ASSERT_TRUE(listening);
  ASSERT_TRUE(herd.wait_for_line(kWorkerReady, kStartTimeout));

  HttpClient client(static_cast<std::uint16_t>(std::stoul((*listening)[1])));
  ASSERT_TRUE(client.send(get_request("/"))) << client.error();
  HttpReadResult result = client.read_responses(1);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 200u);
  // Later failures go to the debug level only.
  EXPECT_EQ(herd.wait_for_lines(std::regex(R"(debug: sd_notify\(WATCHDOG=1\) failed)"), 3).size(),
            3u);
  EXPECT_EQ(
      herd.wait_for_lines(std::regex(R"(warning: sd_notify\(.*\) failed)"), 2, Milliseconds{0})
          .size(),
      1u)
      << herd.output();
}

// ---- socket activation ----------------------------------------------------------

// A port that was free a moment ago (bound to port 0, then released).
std::uint16_t recently_free_port() {
  UniqueFd socket(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (!socket || ::bind(socket.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::getsockname(socket.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return 0;
  }
  return ntohs(address.sin_port);
}

// herd (or whatever it execs) under systemd-socket-activate.
struct Activated {
  TempDir dir;
  std::unique_ptr<HerdProcess> process;  // systemd-socket-activate, then herd: one pid
  std::vector<std::uint16_t> ports;

  std::string control() const { return dir.path() + "/control.sock"; }
};

// Runs `systemd-socket-activate -l 127.0.0.1:PORT... herd --workers 1
// --control <dir>/control.sock <extra>` with `sockets` listening ports, and
// waits until it listens. It execs herd at the first connection. A port
// taken in the meantime makes it exit; then it is tried again with others.
std::optional<Activated> start_activated(const std::vector<std::string>& extra,
                                         std::size_t sockets = 1) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    Activated activated;
    if (activated.dir.path().empty()) {
      ADD_FAILURE() << "mkdtemp() failed: " << std::strerror(errno);
      return std::nullopt;
    }
    std::vector<std::string> args;
    for (std::size_t i = 0; i < sockets; ++i) {
      std::uint16_t port = recently_free_port();
      if (port == 0) {
        ADD_FAILURE() << "cannot find a free port: " << std::strerror(errno);
        return std::nullopt;
      }
      activated.ports.push_back(port);
      args.insert(args.end(), {"-l", "127.0.0.1:" + std::to_string(port)});
    }
    // It passes only LISTEN_* and what -E names; the sanitizers' settings must
    // reach herd too.
    for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
      if (std::getenv(name) != nullptr) args.insert(args.end(), {"-E", name});
    }
    args.insert(args.end(), {kHerdPath, "--workers", "1", "--control", activated.control(),
                             "--log-level", "debug"});
    args.insert(args.end(), extra.begin(), extra.end());
    activated.process = std::make_unique<HerdProcess>(args, kSocketActivate);
    if (activated.process->pid() < 0) {
      ADD_FAILURE() << "cannot start " << kSocketActivate << ": "
                    << activated.process->start_error();
      return std::nullopt;
    }
    std::regex listening("Listening on 127\\.0\\.0\\.1:" + std::to_string(activated.ports.back()) +
                         " as");
    if (activated.process->wait_for_line(listening, kStartTimeout)) return activated;
    std::optional<int> status = activated.process->wait_exit(kIoTimeout);
    if (!status) {
      ADD_FAILURE() << kSocketActivate << " neither listens nor exits:\n"
                    << activated.process->output();
      return std::nullopt;
    }
    if (activated.process->output().find("Address already in use") == std::string::npos) {
      ADD_FAILURE() << kSocketActivate << " failed (" << describe_status(*status) << "):\n"
                    << activated.process->output();
      return std::nullopt;
    }
  }
  ADD_FAILURE() << "every port tried was taken";
  return std::nullopt;
}

bool have_socket_activate() {
  return ::access(kSocketActivate, X_OK) == 0;
}

// The first GET starts herd (systemd-socket-activate execs it at the first
// connection) and waits in the socket's backlog until a worker is ready.
void expect_served_and_stopped(Activated& activated, const std::string& schedule) {
  std::uint16_t port = activated.ports.front();
  HttpClient client(port, kStartTimeout);
  ASSERT_TRUE(client.send(get_request("/"))) << client.error();
  HttpReadResult result = client.read_responses(1);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 200u);
  EXPECT_EQ(result.responses[0].body, "Hello World!");

  HerdProcess& herd = *activated.process;
  EXPECT_TRUE(herd.wait_for_line(
      std::regex("socket activation: using the listening socket inherited from systemd")));
  std::string address = "127.0.0.1:" + std::to_string(port);
  std::optional<json> status = control_request(activated.control(), {{"cmd", "status"}});
  ASSERT_TRUE(status);
  EXPECT_EQ(status->at("master").at("listen"), address) << status->dump();
  EXPECT_EQ(status->at("master").at("schedule"), schedule) << status->dump();
  EXPECT_EQ(status->at("master").at("pid"), herd.pid()) << "herd is exec'd in place";

  ASSERT_TRUE(herd.send_signal(SIGTERM));
  std::optional<int> exit = herd.wait_exit(kStartTimeout);
  ASSERT_TRUE(exit) << "herd did not stop after SIGTERM";
  EXPECT_EQ(describe_status(*exit), "exit code 0");
}

TEST(SocketActivation, ServesOnTheInheritedSocket) {
  if (!have_socket_activate()) GTEST_SKIP() << kSocketActivate << " not found (Debian: systemd)";
  std::optional<Activated> activated = start_activated({});
  ASSERT_TRUE(activated);

  expect_served_and_stopped(*activated, "round-robin");
}

TEST(SocketActivation, WorkersAcceptFromTheInheritedSocketWithScheduleNone) {
  if (!have_socket_activate()) GTEST_SKIP() << kSocketActivate << " not found (Debian: systemd)";
  std::optional<Activated> activated = start_activated({"--schedule", "none"});
  ASSERT_TRUE(activated);

  expect_served_and_stopped(*activated, "none");
}

TEST(SocketActivation, HostAndPortGivenAnywayAreIgnoredWithAWarning) {
  if (!have_socket_activate()) GTEST_SKIP() << kSocketActivate << " not found (Debian: systemd)";
  std::optional<Activated> activated = start_activated({"--host", "::1", "--port", "1"});
  ASSERT_TRUE(activated);

  HttpClient client(activated->ports.front(), kStartTimeout);
  ASSERT_TRUE(client.send(get_request("/"))) << client.error();
  HttpReadResult result = client.read_responses(1);
  ASSERT_TRUE(result.ok()) << result.error;
  EXPECT_EQ(result.responses[0].status, 200u);
  EXPECT_TRUE(activated->process->wait_for_line(
      std::regex("--host and --port are ignored: listening on the socket systemd passed")));
}

TEST(SocketActivation, MoreThanOneSocketIsRefused) {
  if (!have_socket_activate()) GTEST_SKIP() << kSocketActivate << " not found (Debian: systemd)";
  std::optional<Activated> activated = start_activated({}, /*sockets=*/2);
  ASSERT_TRUE(activated);

  // The connection makes systemd-socket-activate exec herd, which refuses.
  HttpClient client(activated->ports.front(), kStartTimeout);
  ASSERT_TRUE(client.connected()) << client.error();
  std::optional<int> status = activated->process->wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "herd did not exit";
  EXPECT_EQ(describe_status(*status), "exit code 2");
  EXPECT_TRUE(activated->process->wait_for_line(
      std::regex(R"(systemd passed 2 descriptors \(LISTEN_FDS\); herd listens on exactly one)")));
  EXPECT_FALSE(
      activated->process->wait_for_line(std::regex("Master \\d+ is running"), Milliseconds{0}));
}

// LISTEN_FDS=1 and LISTEN_PID=herd's pid, by a shell that execs herd (so its
// $$ is herd's pid) with fd 3 set up by `redirect_fd3`.
std::unique_ptr<HerdProcess> start_with_fd3(const TempDir& dir, const std::string& redirect_fd3) {
  std::vector<std::string> args{
      "-c", R"(export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@" )" + redirect_fd3, kHerdPath};
  std::vector<std::string> herd = herd_args(dir.path() + "/control.sock", 1);
  args.insert(args.end(), herd.begin(), herd.end());
  return std::make_unique<HerdProcess>(args, "/bin/sh");
}

TEST(SocketActivation, AnInheritedFdThatIsNotASocketIsRefused) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string file = dir.path() + "/not-a-socket";
  std::ofstream(file) << "a regular file\n";
  std::unique_ptr<HerdProcess> herd = start_with_fd3(dir, "3<" + file);
  ASSERT_GT(herd->pid(), 0) << herd->start_error();

  std::optional<int> status = herd->wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "herd did not exit";
  EXPECT_EQ(describe_status(*status), "exit code 2");
  EXPECT_TRUE(herd->wait_for_line(
      std::regex(R"(^fd 3 passed in LISTEN_FDS is not a listening TCP socket)")));
  EXPECT_FALSE(herd->wait_for_line(std::regex("Master \\d+ is running"), Milliseconds{0}))
      << "herd went on after refusing";
}

TEST(SocketActivation, AListenFdThatIsNotOpenIsRefused) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::unique_ptr<HerdProcess> herd = start_with_fd3(dir, "3<&-");
  ASSERT_GT(herd->pid(), 0) << herd->start_error();

  std::optional<int> status = herd->wait_exit(kStartTimeout);
  ASSERT_TRUE(status) << "herd did not exit";
  EXPECT_EQ(describe_status(*status), "exit code 2");
  EXPECT_TRUE(herd->wait_for_line(
      std::regex(R"(cannot take the sockets passed in LISTEN_FDS: Bad file descriptor)")));
}

}  // namespace
}  // namespace herd::e2e
