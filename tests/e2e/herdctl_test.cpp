// End-to-end: the real herdctl binary, run as a child process against a fake
// master (canned replies, to pin exit codes and framing) and against the real
// herd master on 127.0.0.1 with an ephemeral port.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/harness.h"

extern char** environ;

namespace herd::e2e {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kHerdctlPath = HERD_BIN_DIR "/herdctl";

// ---- running herdctl --------------------------------------------------------

// Runs herdctl with `args` in the test's environment minus HERD_* and
// XDG_RUNTIME_DIR, plus `env` ("NAME=value").
RunResult run_herdctl(const std::vector<std::string>& args,
                      const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv{kHerdctlPath};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, "HERD_", 5) == 0) continue;
    if (std::strncmp(*entry, "XDG_RUNTIME_DIR=", 16) == 0) continue;
    environment.emplace_back(*entry);
  }
  environment.insert(environment.end(), env.begin(), env.end());
  return run_program(argv, environment);
}

// Runs `herdctl -s <socket> <args>`.
RunResult herdctl(const std::string& socket, std::vector<std::string> args) {
  args.insert(args.begin(), {"-s", socket});
  return run_herdctl(args);
}

std::string control_socket(const Cluster& cluster) {
  return cluster.dir.path() + "/control.sock";
}

// Polls `status --json` until `predicate` holds on the reply (bounded).
bool wait_for_status(const std::string& socket, const std::function<bool(const json&)>& predicate,
                     Milliseconds timeout = kStartTimeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    RunResult result = herdctl(socket, {"status", "--json"});
    json reply = json::parse(result.out, nullptr, false);
    if (result.exit_code == 0 && reply.is_object() && predicate(reply)) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(Milliseconds{100});
  }
}

std::size_t ready_workers(const json& status) {
  std::size_t ready = 0;
  for (const json& worker : status.value("workers", json::array())) {
    if (worker.value("state", "") == "ready") ++ready;
  }
  return ready;
}

std::vector<std::string> fast_supervision() {
  return {"--heartbeat-interval", "200", "--heartbeat-timeout", "3000", "--kill-timeout", "2000"};
}

// ---- a fake master ----------------------------------------------------------

// What the fake master does with one request line.
struct FakeReply {
  FakeReply(std::vector<std::string> lines, bool close, std::vector<std::string> events = {},
            bool subscribe = false)
      : lines(std::move(lines)), close(close), events(std::move(events)), subscribe(subscribe) {}

  std::vector<std::string> lines;  // written, each followed by '\n'
  bool close = true;               // close the connection afterwards
  // Written first, to every connection that subscribed: the real master emits
  // a reload's events before it replies to `reload --wait`.
  std::vector<std::string> events;
  bool subscribe = false;  // this connection now receives `events` (and is never closed)
};

// Listens on <tempdir>/control.sock (or `socket_name` in it) and answers each
// request line with `respond`, serving any number of connections at once.
// Records every request line it read, in the order it read them.
class FakeMaster {
 public:
  explicit FakeMaster(std::function<FakeReply(const std::string&)> respond,
                      const std::string& socket_name = "control.sock")
      : respond_(std::move(respond)), path_(dir_.path() + "/" + socket_name) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path_.data(), path_.size());
    listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int fds[2];
    if (!listener_ ||
        ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(listener_.get(), 8) != 0 || ::pipe2(fds, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "fake master at " << path_ << ": " << std::strerror(errno);
      return;
    }
    stop_read_.reset(fds[0]);
    stop_write_.reset(fds[1]);
    thread_ = std::thread([this] { serve(); });
  }

  ~FakeMaster() {
    if (!thread_.joinable()) return;
    char byte = 1;
    ssize_t ignored = ::write(stop_write_.get(), &byte, 1);
    (void)ignored;
    thread_.join();
  }

  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_.path(); }

  std::vector<std::string> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  struct Connection {
    UniqueFd socket;  // invalid once closed
    std::string pending;
    bool subscribed = false;
  };

  static void send_lines(const Connection& connection, const std::vector<std::string>& lines) {
    for (const std::string& line : lines) {
      std::string bytes = line + "\n";
      if (::send(connection.socket.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) < 0) return;
    }
  }

  // Until the destructor asks to stop: accepts, reads and answers.
  void serve() {
    std::vector<Connection> connections;
    for (;;) {
      std::vector<pollfd> fds{{stop_read_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
      for (const Connection& connection : connections) {
        fds.push_back({connection.socket.get(), POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        ADD_FAILURE() << "fake master: poll() failed: " << std::strerror(errno);
        return;
      }
      if (fds[0].revents != 0) return;
      for (std::size_t index = 0; index + 2 < fds.size(); ++index) {
        if (fds[index + 2].revents != 0) read_requests(connections, index);
      }
      if (fds[1].revents != 0) {
        UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (client) connections.push_back(Connection{std::move(client), {}, false});
      }
      std::erase_if(connections,
                    [](const Connection& connection) { return !connection.socket.valid(); });
    }
  }

  // Answers the complete lines that have arrived on connections[index];
  // closes it on EOF or when a reply says so.
  void read_requests(std::vector<Connection>& connections, std::size_t index) {
    Connection& connection = connections[index];
    char buffer[4096];
    ssize_t count = ::recv(connection.socket.get(), buffer, sizeof(buffer), 0);
    if (count <= 0) {
      connection.socket.reset();
      return;
    }
    connection.pending.append(buffer, static_cast<std::size_t>(count));
    for (std::size_t newline; (newline = connection.pending.find('\n')) != std::string::npos;) {
      std::string line = connection.pending.substr(0, newline);
      connection.pending.erase(0, newline + 1);
      if (connection.subscribed) continue;  // as the real master: a stream takes no requests
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(line);
      }
      FakeReply reply = respond_(line);
      for (const Connection& subscriber : connections) {
        if (subscriber.subscribed && subscriber.socket.valid())
          send_lines(subscriber, reply.events);
      }
      send_lines(connection, reply.lines);
      if (reply.subscribe) {
        connection.subscribed = true;
      } else if (reply.close) {
        connection.socket.reset();
        return;
      }
    }
  }

  std::function<FakeReply(const std::string&)> respond_;
  TempDir dir_;
  std::string path_;
  UniqueFd listener_;
  UniqueFd stop_read_;
  UniqueFd stop_write_;
  mutable std::mutex mutex_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

FakeReply reply_with(std::string line) {
  return FakeReply{{std::move(line)}, true};
}

// ---- the command line alone -------------------------------------------------

TEST(HerdctlCli, HelpExitsZero) {
  RunResult result = run_herdctl({"--help"});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.out.find("Usage: herdctl"), std::string::npos) << result;
  EXPECT_NE(result.out.find("scale"), std::string::npos) << result;
}

TEST(HerdctlCli, NoSubcommandIsAUsageError) {
  RunResult result = run_herdctl({});
  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_TRUE(result.out.empty()) << result;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result;
  EXPECT_EQ(result.err.rfind("herdctl: ", 0), 0u) << result;
}

TEST(HerdctlCli, ScaleWithANonNumberIsAUsageError) {
  RunResult result = run_herdctl({"scale", "notanumber"});
  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_NE(result.err.find("notanumber"), std::string::npos) << result;
}

TEST(HerdctlCli, NegativeIdIsAUsageError) {
  RunResult result = run_herdctl({"restart", "-1"});
  EXPECT_EQ(result.exit_code, 2) << result;
}

TEST(HerdctlCli, SocketAndPortTogetherAreAUsageError) {
  RunResult result = run_herdctl({"-s", "/tmp/x.sock", "-p", "3000", "ping"});
  EXPECT_EQ(result.exit_code, 2) << result;
}

TEST(HerdctlCli, NoMasterAtThePathExitsTwo) {
  TempDir dir;
  std::string path = dir.path() + "/nobody.sock";
  RunResult result = run_herdctl({"-s", path, "ping"});
  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_EQ(result.err, "herdctl: cannot connect to " + path +
                            ": No such file or directory (is herd running? use -s or -p)\n")
      << result;
}

TEST(HerdctlCli, PortNamesTheSocketInXdgRuntimeDir) {
  TempDir dir;
  RunResult result = run_herdctl({"-p", "4321", "ping"}, {"XDG_RUNTIME_DIR=" + dir.path()});
  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_NE(result.err.find(dir.path() + "/herd-4321.sock"), std::string::npos) << result;
}

TEST(HerdctlCli, DefaultSocketIsPort3000InTmp) {
  RunResult result = run_herdctl({"ping", "--timeout", "1"});
  // A herd may really run on this machine; only the path matters here.
  if (result.exit_code == 2) {
    EXPECT_NE(result.err.find("/tmp/herd-3000.sock"), std::string::npos) << result;
  }
}

// ---- against a fake master --------------------------------------------------

TEST(HerdctlFake, PingSendsOneRequestLineAndPrintsTheAnswer) {
  FakeMaster master(
      [](const std::string&) { return reply_with(R"({"ok":true,"pid":4043,"version":"0.1.0"})"); });

  RunResult result = herdctl(master.path(), {"ping"});

  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "herd 0.1.0 (pid 4043) is alive\n") << result;
  EXPECT_TRUE(result.err.empty()) << result;
  EXPECT_EQ(master.requests(), std::vector<std::string>{R"({"cmd":"ping"})"});
}

TEST(HerdctlFake, ArgumentsTravelBesideCmd) {
  FakeMaster master([](const std::string&) { return reply_with(R"({"ok":true})"); });

  EXPECT_EQ(herdctl(master.path(), {"scale", "3"}).exit_code, 0);
  EXPECT_EQ(herdctl(master.path(), {"restart", "7"}).exit_code, 0);
  EXPECT_EQ(herdctl(master.path(), {"stats", "5"}).exit_code, 0);
  EXPECT_EQ(herdctl(master.path(), {"reload", "--wait"}).exit_code, 0);

  std::vector<std::string> requests = master.requests();
  ASSERT_EQ(requests.size(), 5u);
  EXPECT_EQ(json::parse(requests[0]), json({{"cmd", "scale"}, {"workers", 3}}));
  EXPECT_EQ(json::parse(requests[1]), json({{"cmd", "restart"}, {"id", 7}}));
  EXPECT_EQ(json::parse(requests[2]), json({{"cmd", "stats"}, {"id", 5}}));
  // reload --wait subscribes to the events (for its progress) before it asks.
  EXPECT_EQ(json::parse(requests[3]), json({{"cmd", "events"}}));
  EXPECT_EQ(json::parse(requests[4]), json({{"cmd", "reload"}, {"wait", true}}));
}

TEST(HerdctlFake, JsonPrintsTheReplyLineUnchanged) {
  const std::string line = R"({"ok":true,  "pid":4043,"version":"0.1.0","extra":[1,2]})";
  FakeMaster master([&](const std::string&) { return reply_with(line); });

  RunResult result = herdctl(master.path(), {"ping", "--json"});

  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, line + "\n") << result;
}

TEST(HerdctlFake, RefusalExitsOneWithTheErrorOnStderr) {
  FakeMaster master([](const std::string&) {
    return reply_with(R"({"ok":false,"error":"no worker with id 99"})");
  });

  RunResult result = herdctl(master.path(), {"restart", "99"});

  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_TRUE(result.out.empty()) << result;
  EXPECT_EQ(result.err, "herdctl: no worker with id 99\n") << result;
}

TEST(HerdctlFake, NoReplyWithinTheTimeoutExitsTwo) {
  FakeMaster master([](const std::string&) { return FakeReply{{}, false}; });

  Clock::time_point start = Clock::now();
  RunResult result = herdctl(master.path(), {"--timeout", "0.3", "status"});

  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_NE(result.err.find("no reply"), std::string::npos) << result;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(HerdctlFake, CloseWithoutReplyExitsTwo) {
  FakeMaster master([](const std::string&) { return FakeReply{{}, true}; });

  RunResult result = herdctl(master.path(), {"status"});

  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_NE(result.err.find("closed the connection"), std::string::npos) << result;
}

TEST(HerdctlFake, ReplyThatIsNotJsonExitsTwo) {
  FakeMaster master([](const std::string&) { return reply_with("hello?"); });

  RunResult result = herdctl(master.path(), {"status"});

  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_EQ(result.err, "herdctl: unexpected reply from the master: hello?\n") << result;
}

TEST(HerdctlFake, HerdControlEnvironmentNamesTheSocket) {
  FakeMaster master(
      [](const std::string&) { return reply_with(R"({"ok":true,"pid":1,"version":"0.1.0"})"); });

  RunResult result = run_herdctl({"ping"}, {"HERD_CONTROL=" + master.path()});

  EXPECT_EQ(result.exit_code, 0) << result;
}

TEST(HerdctlFake, PortSocketIsFoundInXdgRuntimeDir) {
  FakeMaster master(
      [](const std::string&) { return reply_with(R"({"ok":true,"pid":1,"version":"0.1.0"})"); },
      "herd-4321.sock");

  RunResult result = run_herdctl({"-p", "4321", "ping"}, {"XDG_RUNTIME_DIR=" + master.dir()});

  EXPECT_EQ(result.exit_code, 0) << result;
}

TEST(HerdctlFake, EventsPrintsEachEventUntilTheMasterCloses) {
  FakeMaster master([](const std::string&) {
    return FakeReply{{R"({"ok":true,"events":true})",
                      R"({"event":"spawn","time":1764055801123,"id":4,"slot":0,"pid":4050})",
                      R"({"event":"stop","time":1764055802000})"},
                     true};
  });

  RunResult result = run_herdctl({"-s", master.path(), "events"}, {"TZ=UTC"});

  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out,
            "2025-11-25 07:30:01.123  spawn   id=4 slot=0 pid=4050\n"
            "2025-11-25 07:30:02.000  stop\n")
      << result;
}

TEST(HerdctlFake, EventsJsonPrintsOnlyTheEventLines) {
  FakeMaster master([](const std::string&) {
    return FakeReply{{R"({"ok":true,"events":true})", R"({"event":"stop","time":1})"}, true};
  });

  RunResult result = herdctl(master.path(), {"events", "--json"});

  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "{\"event\":\"stop\",\"time\":1}\n") << result;
}

TEST(HerdctlFake, EventsEndsWithExitZeroOnSigint) {
  FakeMaster master([](const std::string&) {
    return FakeReply{{R"({"ok":true,"events":true})",
                      R"({"event":"scale","time":1,"workers_target":3,"previous":2})"},
                     false};
  });
  HerdProcess events({"-s", master.path(), "events"}, kHerdctlPath);
  ASSERT_GT(events.pid(), 0) << events.start_error();
  ASSERT_TRUE(events.wait_for_line(std::regex("scale +workers_target=3 previous=2")))
      << events.output();

  events.send_signal(SIGINT);
  std::optional<int> status = events.wait_exit(kIoTimeout);

  ASSERT_TRUE(status) << "herdctl events ignored SIGINT";
  EXPECT_TRUE(WIFEXITED(*status)) << "status " << *status;
  EXPECT_EQ(WEXITSTATUS(*status), 0);
}

// ---- reload --wait against a fake master ------------------------------------

constexpr const char* kEventsAck = R"({"ok":true,"events":true})";
constexpr const char* kReplacementDied =
    "the replacement for worker 1 exited (code 1) before it was ready";

// A fake master whose `events` subscription is acknowledged and whose answer
// to `reload --wait` is `reload_events` (to the subscribers) and then `reply`
// (none: the connection stays silent; "" closes it without a reply).
FakeMaster reload_master(std::vector<std::string> reload_events, std::optional<std::string> reply) {
  return FakeMaster([reload_events = std::move(reload_events),
                     reply = std::move(reply)](const std::string& line) {
    json request = json::parse(line, nullptr, false);
    if (request.value("cmd", "") == "events") return FakeReply{{kEventsAck}, false, {}, true};
    if (!reply) return FakeReply{{}, false, reload_events};
    if (reply->empty()) return FakeReply{{}, true, reload_events};
    return FakeReply{{*reply}, true, reload_events};
  });
}

std::vector<std::string> failed_reload_events() {
  return {
      R"({"event":"reload","phase":"start","time":1,"workers":[1,2]})",
      R"({"event":"spawn","time":2,"id":3,"slot":0,"pid":4050})",
      R"({"event":"restart","phase":"start","time":2,"id":1,"successor":3})",
      R"({"event":"exit","time":3,"id":3,"slot":0,"pid":4050,"code":1,"signal":null})",
      std::string(R"({"event":"reload","phase":"failed","time":3,"error":")") + kReplacementDied +
          R"("})",
  };
}

std::string failed_reload_reply() {
  return json({{"ok", false}, {"error", kReplacementDied}}).dump();
}

TEST(HerdctlFake, ReloadWaitPrintsTheProgressOfItsOwnReload) {
  FakeMaster master = reload_master(
      {
          // The end of an earlier reload, still on its way when this one was asked for.
          R"({"event":"reload","phase":"done","time":1,"replaced":[9]})",
          R"({"event":"reload","phase":"start","time":2,"workers":[1,2]})",
          R"({"event":"spawn","time":2,"id":3,"slot":0,"pid":4050})",
          R"({"event":"restart","phase":"start","time":2,"id":1,"successor":3})",
          R"({"event":"ready","time":3,"id":3,"slot":0,"pid":4050})",
          R"({"event":"reload","phase":"progress","time":3,"replaced":1,"by":3,"remaining":1})",
          R"({"event":"restart","phase":"start","time":3,"id":2,"successor":4})",
          R"({"event":"exit","time":4,"id":1,"slot":0,"pid":4043,"code":0,"signal":null})",
          R"({"event":"exit","time":4,"id":7,"slot":5,"pid":4047,"code":0,"signal":null})",
          R"({"event":"reload","phase":"progress","time":5,"replaced":2,"by":4,"remaining":0})",
          R"({"event":"reload","phase":"done","time":5,"replaced":[1,2]})",
      },
      R"({"ok":true,"reloaded":[1,2]})");

  RunResult result = herdctl(master.path(), {"reload", "--wait"});

  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out,
            "replacing 2 workers: 1 2\n"
            "worker 1 -> 3 starting\n"
            "worker 1 -> 3 ready (1 left)\n"
            "worker 2 -> 4 starting\n"
            "worker 1 exited (code 0)\n"
            "worker 2 -> 4 ready (0 left)\n"
            "reload done: replaced 1 2\n"
            "reloaded 2 workers (replaced ids 1, 2)\n")
      << result;
  EXPECT_TRUE(result.err.empty()) << result;
  EXPECT_EQ(master.requests(),
            (std::vector<std::string>{R"({"cmd":"events"})", R"({"cmd":"reload","wait":true})"}));
}

TEST(HerdctlFake, ReloadWaitThatFailsExitsOneWithTheErrorOnStderr) {
  FakeMaster master = reload_master(failed_reload_events(), failed_reload_reply());

  RunResult result = herdctl(master.path(), {"reload", "--wait"});

  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_EQ(result.out, std::string("replacing 2 workers: 1 2\n"
                                    "worker 1 -> 3 starting\n"
                                    "worker 3 exited (code 1)\n"
                                    "reload failed: ") +
                            kReplacementDied + "\n")
      << result;
  EXPECT_EQ(result.err, std::string("herdctl: ") + kReplacementDied + "\n") << result;
}

TEST(HerdctlFake, ReloadWaitJsonPrintsItsEventsThenTheReplyOneObjectPerLine) {
  std::vector<std::string> events = failed_reload_events();
  FakeMaster master = reload_master(events, failed_reload_reply());

  RunResult result = herdctl(master.path(), {"reload", "--wait", "--json"});

  EXPECT_EQ(result.exit_code, 1) << result;
  // Every event of the reload except the spawn (events[1]), which names no
  // worker being replaced yet; then the reply.
  EXPECT_EQ(result.out_lines(), (std::vector<std::string>{events[0], events[2], events[3],
                                                          events[4], failed_reload_reply()}))
      << result;
  for (const std::string& line : result.out_lines()) {
    EXPECT_TRUE(json::parse(line, nullptr, false).is_object()) << line;
  }
  EXPECT_EQ(result.err, std::string("herdctl: ") + kReplacementDied + "\n") << result;
}

TEST(HerdctlFake, ReloadWaitWhileAReloadRunsIsRefusedWithExitOne) {
  FakeMaster master = reload_master(
      // The running reload goes on; none of it is this herdctl's.
      {R"({"event":"reload","phase":"progress","time":1,"replaced":5,"by":6,"remaining":1})"},
      R"({"ok":false,"error":"a reload is already in progress; wait for it to finish"})");

  RunResult result = herdctl(master.path(), {"reload", "--wait"});

  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_TRUE(result.out.empty()) << result;
  EXPECT_EQ(result.err, "herdctl: a reload is already in progress; wait for it to finish\n")
      << result;
}

TEST(HerdctlFake, ReloadWaitWithoutTheEventsStreamStillWaitsForTheReply) {
  FakeMaster master([](const std::string& line) {
    if (json::parse(line, nullptr, false).value("cmd", "") == "events") {
      return reply_with(R"({"ok":false,"error":"unknown command 'events'"})");
    }
    return reply_with(R"({"ok":true,"reloaded":[1]})");
  });

  RunResult result = herdctl(master.path(), {"reload", "--wait"});

  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "reloaded 1 worker (replaced ids 1)\n") << result;
  EXPECT_EQ(result.err,
            "herdctl: not showing the reload's progress (events: unknown command 'events'); "
            "waiting for it to finish\n")
      << result;
}

TEST(HerdctlFake, ReloadWaitGivesUpAtTheTimeoutWithExitTwo) {
  FakeMaster master =
      reload_master({R"({"event":"reload","phase":"start","time":1,"workers":[1]})"}, std::nullopt);

  Clock::time_point start = Clock::now();
  RunResult result = herdctl(master.path(), {"reload", "--wait", "--timeout", "0.5"});

  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_EQ(result.out, "replacing 1 worker: 1\n") << result;
  EXPECT_EQ(result.err, "herdctl: no reply from the master at " + master.path() +
                            " within 0.5 s (use --timeout to wait longer)\n")
      << result;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

TEST(HerdctlFake, ReloadWaitTakesTheEndFromTheEventsWhenTheReplyConnectionCloses) {
  FakeMaster master = reload_master(
      {
          R"({"event":"reload","phase":"start","time":1,"workers":[1]})",
          R"({"event":"restart","phase":"start","time":1,"id":1,"successor":2})",
          R"({"event":"reload","phase":"progress","time":2,"replaced":1,"by":2})",
          R"({"event":"reload","phase":"done","time":2,"replaced":[1]})",
      },
      "");

  RunResult result = herdctl(master.path(), {"reload", "--wait"});

  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out,
            "replacing 1 worker: 1\n"
            "worker 1 -> 2 starting\n"
            "worker 1 -> 2 ready (0 left)\n"
            "reload done: replaced 1\n")
      << result;
}

TEST(HerdctlFake, ReloadWaitWithNeitherReplyNorEventsExitsTwo) {
  FakeMaster master = reload_master({}, "");

  RunResult result = herdctl(master.path(), {"reload", "--wait"});

  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_EQ(result.err,
            "herdctl: the master at " + master.path() + " closed the connection without replying\n")
      << result;
}

// ---- against the real master ------------------------------------------------

TEST(Herdctl, PingPrintsTheMastersPid) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);

  RunResult result = herdctl(control_socket(*cluster), {"ping"});

  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out,
            "herd " HERD_VERSION " (pid " + std::to_string(cluster->herd->pid()) + ") is alive\n")
      << result;
}

TEST(Herdctl, StatusJsonListsTheWorkers) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);

  RunResult result = herdctl(control_socket(*cluster), {"status", "--json"});

  ASSERT_EQ(result.exit_code, 0) << result;
  ASSERT_EQ(result.out_lines().size(), 1u) << result;
  json reply = json::parse(result.out, nullptr, false);
  ASSERT_TRUE(reply.is_object()) << result;
  EXPECT_EQ(reply.value("ok", false), true);
  EXPECT_EQ(reply["master"].value("pid", 0), cluster->herd->pid());
  EXPECT_EQ(reply["master"].value("workers_target", 0), 2);
  ASSERT_TRUE(reply["workers"].is_array());
  EXPECT_EQ(reply["workers"].size(), 2u);
}

TEST(Herdctl, StatusTableHasAHeaderAndOneRowPerWorker) {
  std::optional<Cluster> cluster = start_cluster(3, fast_supervision());
  ASSERT_TRUE(cluster);
  ASSERT_TRUE(wait_for_status(control_socket(*cluster),
                              [](const json& status) { return ready_workers(status) == 3; }));

  RunResult result = herdctl(control_socket(*cluster), {"status"});

  ASSERT_EQ(result.exit_code, 0) << result;
  std::vector<std::string> lines = result.out_lines();
  ASSERT_EQ(lines.size(), 5u) << result;
  EXPECT_NE(lines[0].find("pid " + std::to_string(cluster->herd->pid())), std::string::npos)
      << result;
  EXPECT_NE(lines[0].find("listen 127.0.0.1:" + std::to_string(cluster->port)), std::string::npos)
      << result;
  EXPECT_TRUE(std::regex_search(lines[1], std::regex(R"(^id +slot +pid +state +uptime)")))
      << result;
  for (std::size_t row = 2; row < lines.size(); ++row) {
    EXPECT_TRUE(std::regex_search(lines[row], std::regex(R"(^ *\d+ +\d +\d+ +ready +\d+s )")))
        << lines[row];
  }
}

TEST(Herdctl, StatsCountsTheRequestsServed) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  for (int request = 0; request < 10; ++request) {
    ASSERT_TRUE(http_get(cluster->port, "/").ok());
  }
  ASSERT_TRUE(http_get(cluster->port, "/missing").ok());

  // The counts arrive with the workers' heartbeats.
  json reply;
  bool counted = wait_until(
      [&] {
        RunResult result = herdctl(control_socket(*cluster), {"stats", "--json"});
        reply = json::parse(result.out, nullptr, false);
        return reply.is_object() && reply.value("/total/requests"_json_pointer, 0) >= 11;
      },
      kStartTimeout);
  ASSERT_TRUE(counted) << reply.dump();
  EXPECT_EQ(reply.value("/total/responses/2xx"_json_pointer, 0), 10) << reply.dump();
  EXPECT_EQ(reply.value("/total/responses/4xx"_json_pointer, 0), 1) << reply.dump();

  RunResult table = herdctl(control_socket(*cluster), {"stats"});
  ASSERT_EQ(table.exit_code, 0) << table;
  std::vector<std::string> lines = table.out_lines();
  ASSERT_EQ(lines.size(), 4u) << table;  // header, two workers, total
  EXPECT_TRUE(std::regex_search(lines.back(), std::regex(R"(^total +11 +[\d.]+ +10 +0 +1 +0 )")))
      << table;
}

TEST(Herdctl, StatsForOneWorkerShowsItsDetails) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  RunResult status = herdctl(control_socket(*cluster), {"status", "--json"});
  json reply = json::parse(status.out, nullptr, false);
  ASSERT_TRUE(reply.is_object() && !reply["workers"].empty()) << status;
  std::uint64_t id = reply["workers"][0].value("id", 0ull);
  pid_t pid = reply["workers"][0].value("pid", 0);

  RunResult result = herdctl(control_socket(*cluster), {"stats", std::to_string(id)});

  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.out.find("pid:                 " + std::to_string(pid) + "\n"),
            std::string::npos)
      << result;
  EXPECT_NE(result.out.find("latency:"), std::string::npos) << result;
}

TEST(Herdctl, UnknownWorkerIdExitsOneWithTheErrorOnStderr) {
  std::optional<Cluster> cluster = start_cluster(1, fast_supervision());
  ASSERT_TRUE(cluster);

  RunResult result = herdctl(control_socket(*cluster), {"restart", "9999"});

  EXPECT_EQ(result.exit_code, 1) << result;
  EXPECT_TRUE(result.out.empty()) << result;
  EXPECT_EQ(result.err.rfind("herdctl: ", 0), 0u) << result;
  EXPECT_NE(result.err.find("9999"), std::string::npos) << result;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result;
}

TEST(Herdctl, ScaleUpShowsThreeWorkersInStatus) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);

  RunResult result = herdctl(control_socket(*cluster), {"scale", "3"});

  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(result.out, "scaling from 2 to 3 workers\n") << result;
  EXPECT_TRUE(wait_for_status(control_socket(*cluster), [](const json& status) {
    return status["master"].value("workers_target", 0) == 3 && ready_workers(status) == 3 &&
           status["workers"].size() == 3;
  })) << herdctl(control_socket(*cluster), {"status"});
}

TEST(Herdctl, EventsShowSpawnAndReadyAfterARestart) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  std::string socket = control_socket(*cluster);
  RunResult status = herdctl(socket, {"status", "--json"});
  json reply = json::parse(status.out, nullptr, false);
  ASSERT_TRUE(reply.is_object() && !reply["workers"].empty()) << status;
  std::uint64_t id = reply["workers"][0].value("id", 0ull);
  HerdProcess events({"-s", socket, "events"}, kHerdctlPath);
  ASSERT_GT(events.pid(), 0) << events.start_error();
  ASSERT_TRUE(events.wait_for_line(std::regex("^watching events of"))) << events.output();

  RunResult restart = herdctl(socket, {"restart", std::to_string(id)});

  ASSERT_EQ(restart.exit_code, 0) << restart;
  std::optional<LineMatch> spawn =
      events.wait_for_line(std::regex(R"(^\S+ \S+  spawn +id=(\d+) slot=\d+ pid=\d+$)"));
  ASSERT_TRUE(spawn) << events.output();
  EXPECT_TRUE(events.wait_for_line(std::regex("  ready +id=" + (*spawn)[1] + " "), kLogTimeout,
                                   spawn->index))
      << events.output();

  events.send_signal(SIGINT);
  std::optional<int> exit_status = events.wait_exit(kIoTimeout);
  ASSERT_TRUE(exit_status);
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0)
      << "status " << *exit_status;
}

TEST(Herdctl, StopEndsTheMasterAndTheEventsStream) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  std::string socket = control_socket(*cluster);
  HerdProcess events({"-s", socket, "events"}, kHerdctlPath);
  ASSERT_TRUE(events.wait_for_line(std::regex("^watching events of"))) << events.output();

  RunResult result = herdctl(socket, {"stop"});

  EXPECT_EQ(result.exit_code, 0) << result;
  std::optional<int> herd_status = cluster->herd->wait_exit(kStartTimeout);
  ASSERT_TRUE(herd_status) << "herd still runs after herdctl stop";
  EXPECT_TRUE(WIFEXITED(*herd_status) && WEXITSTATUS(*herd_status) == 0);
  std::optional<int> events_status = events.wait_exit(kIoTimeout);
  ASSERT_TRUE(events_status) << events.output();
  EXPECT_TRUE(WIFEXITED(*events_status) && WEXITSTATUS(*events_status) == 0) << events.output();
  EXPECT_TRUE(events.wait_for_line(std::regex("  stop +shutdown_delay_ms=0$"))) << events.output();

  RunResult after = herdctl(socket, {"ping"});
  EXPECT_EQ(after.exit_code, 2) << after;
}

std::set<std::uint64_t> worker_ids(const json& status) {
  std::set<std::uint64_t> ids;
  for (const json& worker : status.value("workers", json::array())) {
    ids.insert(worker.value("id", 0ull));
  }
  return ids;
}

std::set<std::uint64_t> current_worker_ids(const std::string& socket) {
  RunResult result = herdctl(socket, {"status", "--json"});
  json status = json::parse(result.out, nullptr, false);
  EXPECT_TRUE(result.exit_code == 0 && status.is_object()) << result;
  return status.is_object() ? worker_ids(status) : std::set<std::uint64_t>{};
}

// Writes <dir>/worker, a worker program for --exec: the first worker of each
// slot is the real herd-worker, every later one (a reload's successors) runs
// the shell command `successor` instead.
std::string write_worker_script(const TempDir& dir, const std::string& successor) {
  std::string path = dir.path() + "/worker";
  {
    std::ofstream script(path);
    script << "#!/bin/sh\n"
           << "marker='" << dir.path() << "/slot-'\"$HERD_WORKER_SLOT\"\n"
           << "if [ -e \"$marker\" ]; then " << successor << "; fi\n"
           << ": > \"$marker\"\n"
           << "exec '" << kWorkerPath << "' \"$@\"\n";
  }
  EXPECT_EQ(::chmod(path.c_str(), 0755), 0) << std::strerror(errno);
  return path;
}

TEST(Herdctl, ReloadWaitPrintsProgressAndReplacesEveryWorker) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);
  std::string socket = control_socket(*cluster);
  std::set<std::uint64_t> before = current_worker_ids(socket);
  ASSERT_EQ(before.size(), 2u);

  RunResult result = herdctl(socket, {"reload", "--wait"});

  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(result.err.empty()) << result;
  std::vector<std::string> lines = result.out_lines();
  ASSERT_GE(lines.size(), 6u) << result;
  std::smatch start;
  ASSERT_TRUE(
      std::regex_match(lines.front(), start, std::regex(R"(replacing 2 workers: (\d+) (\d+))")))
      << result;
  EXPECT_EQ((std::set<std::uint64_t>{std::stoull(start[1]), std::stoull(start[2])}), before);
  for (std::uint64_t id : before) {
    std::regex ready("^worker " + std::to_string(id) + R"( -> \d+ ready \(\d+ left\)$)");
    EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                            [&](const std::string& line) { return std::regex_match(line, ready); }),
              1)
        << result;
  }
  EXPECT_TRUE(
      std::regex_match(lines[lines.size() - 2], std::regex(R"(reload done: replaced \d+ \d+)")))
      << result;
  EXPECT_TRUE(
      std::regex_match(lines.back(), std::regex(R"(reloaded 2 workers \(replaced ids \d+, \d+\))")))
      << result;

  // The old workers may still be draining; once gone, every id is new.
  std::set<std::uint64_t> after;
  EXPECT_TRUE(wait_for_status(socket, [&](const json& status) {
    after = worker_ids(status);
    return after.size() == 2 && ready_workers(status) == 2;
  })) << herdctl(socket, {"status"});
  for (std::uint64_t id : after) EXPECT_EQ(before.count(id), 0u) << "worker " << id << " survived";
}

TEST(Herdctl, ReloadWaitJsonPrintsTheEventsAndTheReplyOneObjectPerLine) {
  std::optional<Cluster> cluster = start_cluster(2, fast_supervision());
  ASSERT_TRUE(cluster);

  RunResult result = herdctl(control_socket(*cluster), {"reload", "--wait", "--json"});

  ASSERT_EQ(result.exit_code, 0) << result;
  std::vector<std::string> lines = result.out_lines();
  ASSERT_GE(lines.size(), 3u) << result;
  std::vector<json> objects;
  for (const std::string& line : lines) {
    objects.push_back(json::parse(line, nullptr, false));
    ASSERT_TRUE(objects.back().is_object()) << line;
  }
  EXPECT_EQ(objects.front().value("event", ""), "reload") << result;
  EXPECT_EQ(objects.front().value("phase", ""), "start") << result;
  for (std::size_t index = 0; index + 1 < objects.size(); ++index) {
    EXPECT_TRUE(objects[index].contains("event")) << lines[index];
  }
  EXPECT_EQ(objects[objects.size() - 2].value("phase", ""), "done") << result;
  const json& reply = objects.back();
  EXPECT_EQ(reply.value("ok", false), true) << result;
  EXPECT_EQ(reply.value("reloaded", json()).size(), 2u) << result;
}

TEST(Herdctl, ReloadWaitExitsOneWhenAReplacementDies) {
  TempDir scripts;
  std::vector<std::string> args = fast_supervision();
  args.insert(args.end(), {"--exec", write_worker_script(scripts, "exit 1")});
  std::optional<Cluster> cluster = start_cluster(2, args);
  ASSERT_TRUE(cluster);

  RunResult result = herdctl(control_socket(*cluster), {"reload", "--wait"});

  EXPECT_EQ(result.exit_code, 1) << result;
  std::vector<std::string> lines = result.out_lines();
  ASSERT_GE(lines.size(), 2u) << result;
  EXPECT_TRUE(std::regex_match(lines.front(), std::regex(R"(replacing 2 workers: \d+ \d+)")))
      << result;
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [](const std::string& line) {
    return std::regex_match(line, std::regex(R"(worker \d+ exited \(code 1\))"));
  })) << result;
  std::smatch failed;
  ASSERT_TRUE(std::regex_match(lines.back(), failed, std::regex("reload failed: (.+)"))) << result;
  EXPECT_EQ(result.err, "herdctl: " + failed[1].str() + "\n") << result;
}

TEST(Herdctl, ReloadWaitIsRefusedWhileAReloadRuns) {
  TempDir scripts;
  // Successors never get ready, and the master gives them 20 s: the first
  // reload is still running when the second is asked for.
  std::optional<Cluster> cluster = start_cluster(
      2, {"--heartbeat-interval", "200", "--heartbeat-timeout", "20000", "--kill-timeout", "2000",
          "--exec", write_worker_script(scripts, "exec sleep 60")});
  ASSERT_TRUE(cluster);
  std::string socket = control_socket(*cluster);
  RunResult first = herdctl(socket, {"reload"});
  ASSERT_EQ(first.exit_code, 0) << first;

  RunResult second = herdctl(socket, {"reload", "--wait"});

  EXPECT_EQ(second.exit_code, 1) << second;
  EXPECT_TRUE(second.out.empty()) << second;
  EXPECT_EQ(second.err, "herdctl: a reload is already in progress; wait for it to finish\n")
      << second;
}

}  // namespace
}  // namespace herd::e2e
