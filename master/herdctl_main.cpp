// herdctl: the operator's command line for a running herd master. Parses the
// command line, sends one request over the control socket, prints the reply
// (as a table, or raw with --json); `events` keeps printing until interrupted,
// and `reload --wait` prints the reload's progress from a second connection
// subscribed to the events; `top` is a live view (herdctl_top_shell).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <utility>

#include "common/unique_fd.h"
#include "common/unix_socket.h"
#include "master/herdctl_client.h"
#include "master/herdctl_format.h"
#include "master/herdctl_top_shell.h"

namespace {

using herd::UniqueFd;
using herd::ctl::Clock;
using herd::ctl::Command;
using herd::ctl::ControlClient;
using herd::ctl::Milliseconds;
using herd::ctl::ReadOutcome;
using herd::ctl::ReadResult;
using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;   // the master answered ok:false (reload --wait: or it failed)
constexpr int kExitNoAnswer = 2;  // usage error, or no (valid) answer from the master

constexpr std::uint16_t kDefaultPort = 3000;
constexpr double kDefaultTimeoutSeconds = 10;
// A reload --wait replaces every worker one slot at a time, each waiting for
// its successor's ready: far longer than any single request.
constexpr double kReloadWaitTimeoutSeconds = 600;
// The master sends a reload's last event before its reply, but on another
// connection: how long to wait for that event once the reply is in.
constexpr Milliseconds kLastEventGrace{1000};
// top refreshes at most 10 times a second and at least once an hour.
constexpr std::uint64_t kDefaultTopIntervalMs = 1000;
constexpr std::uint64_t kMinTopIntervalMs = 100;
constexpr std::uint64_t kMaxTopIntervalMs = 3'600'000;

const char* const kFooter =
    "Socket: -s PATH; else -p PORT gives ${XDG_RUNTIME_DIR:-/tmp}/herd-<PORT>.sock; else\n"
    "$HERD_CONTROL if set; else port 3000.\n"
    "Timeout: a reply must arrive within --timeout seconds (default 10, 600 for\n"
    "reload --wait; 0 waits forever). events streams until SIGINT or until the master\n"
    "closes the connection, then exits 0; with --json it prints one event object per line.\n"
    "reload --wait prints the reload's progress until it is over (--json: its events,\n"
    "then the reply, one JSON object per line).\n"
    "top redraws every --interval ms until q or Ctrl-C; a master that does not answer\n"
    "within --timeout (default 2 intervals, at least 2 s) is shown as gone and asked\n"
    "again every interval. With stdout not a terminal it prints plain frames, separated\n"
    "by a blank line: `herdctl top --iterations 1 | cat` prints one.\n"
    "Exit status: 0 success, 1 the master refused or the reload failed (the error on\n"
    "stderr), 2 cannot connect, no or unreadable reply, or usage error.";

// Written by the signal handler, read by the events loop: the handler only
// records that the operator asked to stop.
int interrupt_write_fd = -1;

extern "C" void on_interrupt(int) {
  int saved_errno = errno;
  char byte = 1;
  ssize_t ignored = ::write(interrupt_write_fd, &byte, 1);
  (void)ignored;
  errno = saved_errno;
}

// A self-pipe whose read end becomes readable on SIGINT or SIGTERM. Returns
// the read end (invalid if the pipe could not be made: the signals then keep
// their default action, which also ends the stream).
UniqueFd install_interrupt_pipe(UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return UniqueFd();
  UniqueFd read_end(fds[0]);
  write_end.reset(fds[1]);
  interrupt_write_fd = write_end.get();
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
  return read_end;
}

void print_error(const std::string& message) {
  std::cerr << "herdctl: " << message << std::endl;
}

std::string seconds_text(double seconds) {
  std::string text = std::to_string(seconds);
  text.erase(text.find_last_not_of('0') + 1);
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text + " s";
}

std::optional<Milliseconds> to_timeout(double seconds) {
  if (seconds <= 0) return std::nullopt;
  return Milliseconds{static_cast<std::int64_t>(seconds * 1000)};
}

// Turns a read that produced no line into its one-line message. Returns the
// exit status for it.
int report_no_reply(const ReadResult& result, const std::string& path, double timeout_seconds) {
  switch (result.outcome) {
    case ReadOutcome::kTimeout:
      print_error("no reply from the master at " + path + " within " +
                  seconds_text(timeout_seconds) + " (use --timeout to wait longer)");
      break;
    case ReadOutcome::kClosed:
      print_error("the master at " + path + " closed the connection without replying");
      break;
    case ReadOutcome::kError:
      print_error("reading from " + path + ": " + result.error);
      break;
    case ReadOutcome::kInterrupted:
      return kExitOk;
    case ReadOutcome::kLine:
      break;
  }
  return kExitNoAnswer;
}

// Prints events as they arrive until the master closes or a signal arrives.
int stream_events(ControlClient& client, int interrupt_fd, bool json_output) {
  bool stopped = false;
  for (;;) {
    ReadResult result = client.read_line(std::nullopt, interrupt_fd);
    switch (result.outcome) {
      case ReadOutcome::kLine: {
        json event = json::parse(result.line, nullptr, /*allow_exceptions=*/false);
        if (event.is_object() && event.contains("event") && event["event"] == "stop") {
          stopped = true;
        }
        if (json_output || event.is_discarded()) {
          std::cout << result.line << std::endl;
        } else {
          std::cout << herd::ctl::format_event(event) << std::flush;
        }
        break;
      }
      case ReadOutcome::kClosed:
        if (!stopped) print_error("the master closed the events stream");
        return kExitOk;
      case ReadOutcome::kInterrupted:
        return kExitOk;
      case ReadOutcome::kTimeout:  // not with an unbounded wait
      case ReadOutcome::kError:
        print_error("reading the events stream: " + result.error);
        return kExitNoAnswer;
    }
  }
}

// Everything the command line says.
struct Options {
  herd::ctl::Request request;
  std::string socket_path;  // resolved: never empty after parse_command_line()
  bool json_output = false;
  double timeout_seconds = kDefaultTimeoutSeconds;
  // `top` is not a request: it polls `status` and `stats` until told to stop.
  std::optional<herd::ctl::TopOptions> top;
};

// The reply `line` as JSON, when it is a reply at all ({"ok":bool,...});
// nullopt, with the complaint printed, otherwise.
std::optional<json> parse_reply(const std::string& line) {
  json reply = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!reply.is_object() || !reply.contains("ok") || !reply["ok"].is_boolean()) {
    print_error("unexpected reply from the master: " + line);
    return std::nullopt;
  }
  return reply;
}

// Prints the reply to anything but `events`: the line itself with --json, the
// error on stderr, the human text otherwise. Returns the exit status.
int print_reply(const Options& options, const std::string& line, const json& reply) {
  if (options.json_output) std::cout << line << std::endl;
  if (!reply["ok"].get<bool>()) {
    print_error(herd::ctl::reply_error(reply));
    return kExitRefused;
  }
  if (!options.json_output) {
    std::cout << herd::ctl::format_reply(options.request, reply) << std::flush;
  }
  return kExitOk;
}

// A second connection to the master, subscribed to its events, for
// reload --wait to show the reload's progress. On failure (the reason on
// stderr) nullopt: reload --wait then waits for its reply without progress.
std::optional<ControlClient> subscribe_to_events(const std::string& path, Milliseconds timeout) {
  std::optional<ControlClient> events(std::in_place, path, timeout);
  herd::ctl::Request subscribe;
  subscribe.command = Command::kEvents;
  std::string failure;
  if (!events->connected()) {
    failure = "cannot connect: " + events->error();
  } else if (!events->send_line(herd::ctl::make_request(subscribe).dump())) {
    failure = "cannot send: " + events->error();
  } else {
    ReadResult result = events->read_line(timeout);
    json ack = result.outcome == ReadOutcome::kLine
                   ? json::parse(result.line, nullptr, /*allow_exceptions=*/false)
                   : json();
    auto is_true = [&ack](const char* key) {
      return ack.is_object() && ack.contains(key) && ack[key] == true;
    };
    if (result.outcome != ReadOutcome::kLine) {
      failure = "no answer to the events request";
    } else if (!is_true("ok") || !is_true("events")) {
      failure = ack.is_object() && ack.contains("error") ? herd::ctl::reply_error(ack)
                                                         : "unexpected answer " + result.line;
    }
  }
  if (failure.empty()) return events;
  print_error("not showing the reload's progress (events: " + failure +
              "); waiting for it to finish");
  return std::nullopt;
}

// Waits for the reply to reload --wait on `client`, printing the reload's
// events from `events` (when subscribed) as they arrive; one poll() covers
// both connections and the whole wait ends at `deadline`. The reply is what
// counts; if its connection closes first (the master drops a connection that
// has sent nothing for 30 s, one waiting for a long reload too), the reload's
// last event says how it ended. Returns the exit status.
int wait_for_reload(ControlClient& client, ControlClient* events, const Options& options,
                    std::optional<Clock::time_point> deadline) {
  herd::ctl::ReloadProgress progress;
  auto show = [&](const std::string& line) {
    json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
    std::optional<std::string> text = progress.observe(event);
    if (!text) return;
    if (options.json_output) {
      std::cout << line << std::endl;
    } else {
      std::cout << *text << std::flush;
    }
  };
  // Shows every event that has arrived; false once the stream has ended.
  auto read_events = [&] {
    for (;;) {
      ReadResult result = events->read_line(Milliseconds{0});
      if (result.outcome == ReadOutcome::kTimeout) return true;
      if (result.outcome != ReadOutcome::kLine) return false;
      show(result.line);
    }
  };

  std::optional<std::string> reply_line;
  bool reply_accepted = false;  // ok:true: the reload ran, so its events came first
  std::optional<Clock::time_point> reply_time;
  std::optional<Clock::time_point> last_event_deadline;
  std::optional<ReadResult> reply_lost;  // the connection ended without a reply
  for (;;) {
    std::optional<Clock::time_point> wait_until = deadline;
    if (reply_line || reply_lost) {
      // Still to come: this reload's last event, if any.
      if (events == nullptr || progress.finished()) break;
      if (reply_lost && !progress.started()) break;
      // A refused reload never started: take only the events already here.
      if (reply_line) {
        wait_until = progress.started() || reply_accepted ? last_event_deadline : reply_time;
      }
    }

    std::array<pollfd, 2> fds{};
    nfds_t count = 0;
    if (events != nullptr) fds[count++] = {events->fd(), POLLIN, 0};
    bool reading_reply = !reply_line && !reply_lost;
    if (reading_reply) fds[count++] = {client.fd(), POLLIN, 0};
    int ready = ::poll(fds.data(), count, herd::ctl::poll_timeout(wait_until));
    if (ready < 0) {
      if (errno == EINTR) continue;
      print_error(std::string("poll() failed: ") + std::strerror(errno));
      return kExitNoAnswer;
    }
    if (ready == 0) {
      if (reply_line) break;  // the last event is not coming; the reply says it all
      return report_no_reply({ReadOutcome::kTimeout, {}, {}}, options.socket_path,
                             options.timeout_seconds);
    }
    // Events first: whatever arrived with the reply was sent before it.
    if (events != nullptr && fds[0].revents != 0 && !read_events()) events = nullptr;
    if (reading_reply && fds[count - 1].revents != 0) {
      ReadResult result = client.read_line(Milliseconds{0});
      if (result.outcome == ReadOutcome::kLine) {
        reply_line = result.line;
        json reply = json::parse(result.line, nullptr, /*allow_exceptions=*/false);
        reply_accepted = reply.is_object() && reply.contains("ok") && reply["ok"] == true;
        reply_time = Clock::now();
        last_event_deadline = *reply_time + kLastEventGrace;
        if (deadline) last_event_deadline = std::min(*last_event_deadline, *deadline);
      } else if (result.outcome != ReadOutcome::kTimeout) {
        reply_lost = result;
      }
    }
  }

  if (reply_line) {
    std::optional<json> reply = parse_reply(*reply_line);
    return reply ? print_reply(options, *reply_line, *reply) : kExitNoAnswer;
  }
  // The master closed the waiting connection, but the events told the end.
  if (progress.failed()) {
    print_error(progress.error());
    return kExitRefused;
  }
  if (progress.finished()) return kExitOk;
  return report_no_reply(*reply_lost, options.socket_path, options.timeout_seconds);
}

// reload --wait: subscribes to the events on a second connection first, so
// the first reload `start` event seen is this reload's, then sends the
// request on `client` and waits. Returns the exit status.
int reload_and_wait(ControlClient& client, const Options& options, Milliseconds connect_timeout) {
  std::optional<Clock::time_point> deadline;
  if (std::optional<Milliseconds> timeout = to_timeout(options.timeout_seconds)) {
    deadline = Clock::now() + *timeout;
  }
  Milliseconds subscribe_timeout = connect_timeout;
  if (deadline) {
    // At least 1 ms: a zero SO_SNDTIMEO would mean no bound at all.
    subscribe_timeout = std::clamp(std::chrono::ceil<Milliseconds>(*deadline - Clock::now()),
                                   Milliseconds{1}, connect_timeout);
  }
  std::optional<ControlClient> events = subscribe_to_events(options.socket_path, subscribe_timeout);

  if (!client.send_line(herd::ctl::make_request(options.request).dump())) {
    print_error("cannot send to " + options.socket_path + ": " + client.error());
    return kExitNoAnswer;
  }
  return wait_for_reload(client, events ? &*events : nullptr, options, deadline);
}

// Fills `options` from argv. Returns the exit status when herdctl should
// stop here (--help, --version, a usage error), nullopt to go on.
std::optional<int> parse_command_line(int argc, char** argv, Options& options) {
  herd::ctl::Request& request = options.request;
  std::uint16_t port = kDefaultPort;

  // CLI11 converts unsigned options with strtoull(), which wraps "-1" around.
  const CLI::Validator not_negative(
      [](std::string& input) {
        return input.find('-') == std::string::npos ? std::string() : "'" + input + "' is negative";
      },
      "");

  CLI::App app{"herdctl: controls a running herd master over its control socket.", "herdctl"};
  app.set_version_flag("--version", std::string("herdctl ") + HERD_VERSION);
  app.footer(kFooter);
  app.failure_message([](const CLI::App*, const CLI::Error& error) {
    return "herdctl: " + std::string(error.what()) + " (see herdctl --help)\n";
  });
  CLI::Option* socket_option =
      app.add_option("-s,--socket", options.socket_path, "Control socket path of the master");
  CLI::Option* port_option =
      app.add_option("-p,--port", port, "The master's --port, to find its default socket")
          ->check(CLI::Range(1, 65535));
  socket_option->excludes(port_option);
  app.add_flag("--json", options.json_output, "Print the master's reply unchanged (one JSON line)");
  CLI::Option* timeout_option =
      app.add_option("--timeout", options.timeout_seconds,
                     "Seconds to wait for the reply (0 = forever; default 10, reload --wait 600)")
          ->check(CLI::NonNegativeNumber);
  app.require_subcommand(1);
  // Global options may also follow the subcommand: `herdctl status --json`.
  app.fallthrough();

  auto add_command = [&app, &request](const char* name, const char* description, Command command) {
    CLI::App* subcommand = app.add_subcommand(name, description);
    subcommand->callback([&request, command] { request.command = command; });
    return subcommand;
  };
  add_command("ping", "Check that the master answers: its version and pid", Command::kPing);
  add_command("status", "The master and a table of its workers", Command::kStatus);
  CLI::App* stats =
      add_command("stats", "Traffic per worker and in total; with ID, everything about one worker",
                  Command::kStats);
  stats->add_option("id", request.id, "Worker id (as in status)")->check(not_negative);
  CLI::App* restart =
      add_command("restart", "Replace one worker; its successor starts first", Command::kRestart);
  restart->add_option("id", request.id, "Worker id (as in status)")
      ->required()
      ->check(not_negative);
  CLI::App* reload = add_command("reload", "Rolling restart of every worker, one slot at a time",
                                 Command::kReload);
  reload->add_flag("--wait", request.wait,
                   "Print the reload's progress until it is over; exit 1 if it failed");
  CLI::App* scale = add_command("scale", "Change the number of workers", Command::kScale);
  scale->add_option("workers", request.workers, "The new worker count")
      ->required()
      ->check(not_negative);
  add_command("stop", "Graceful shutdown of the master and its workers", Command::kStop);
  add_command("events", "Print spawn, ready, exit, hung, reload... events as they happen",
              Command::kEvents);
  std::uint64_t top_interval_ms = kDefaultTopIntervalMs;
  std::uint64_t top_iterations = 0;
  CLI::App* top = app.add_subcommand(
      "top", "Live view of the workers: rps with a sparkline, p99, connections, rss, cpu");
  top->add_option("--interval", top_interval_ms, "Milliseconds between refreshes (default 1000)")
      ->check(CLI::Range(kMinTopIntervalMs, kMaxTopIntervalMs));
  top->add_option("--iterations", top_iterations,
                  "Refreshes to show before exiting (default 0: until q or Ctrl-C)")
      ->check(not_negative);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0, a usage error 2.
    return app.exit(error) == 0 ? kExitOk : kExitNoAnswer;
  }

  // -s, then -p, then $HERD_CONTROL, then the default port.
  if (options.socket_path.empty() && port_option->count() == 0) {
    const char* from_environment = std::getenv("HERD_CONTROL");
    if (from_environment != nullptr) options.socket_path = from_environment;
  }
  if (options.socket_path.empty()) options.socket_path = herd::default_control_path(port);
  if (timeout_option->count() == 0 && request.command == Command::kReload && request.wait) {
    options.timeout_seconds = kReloadWaitTimeoutSeconds;
  }
  if (top->parsed()) {
    if (options.json_output) {
      print_error("top has no --json output; use stats --json (see herdctl --help)");
      return kExitNoAnswer;
    }
    herd::ctl::TopOptions& top_options = options.top.emplace();
    top_options.interval = Milliseconds{static_cast<std::int64_t>(top_interval_ms)};
    top_options.iterations = top_iterations;
    // A refresh that waits for long looks like a frozen screen: unless told
    // otherwise, a master is gone when two intervals pass without its answer.
    top_options.reply_timeout = timeout_option->count() > 0
                                    ? to_timeout(options.timeout_seconds)
                                    : std::max(Milliseconds{2000}, 2 * top_options.interval);
  }
  return std::nullopt;
}

// Connects, sends the request, prints the reply (or the stream of events).
// Returns the exit status.
int run_command(const Options& options) {
  const herd::ctl::Request& request = options.request;
  const std::string& path = options.socket_path;
  // The connection and the request's write get the default bound even when
  // the reply may take forever.
  Milliseconds connect_timeout{static_cast<std::int64_t>(kDefaultTimeoutSeconds * 1000)};

  ControlClient client(path, connect_timeout);
  if (!client.connected()) {
    bool not_running = client.error_number() == ENOENT || client.error_number() == ECONNREFUSED;
    print_error("cannot connect to " + path + ": " + client.error() +
                (not_running ? " (is herd running? use -s or -p)" : ""));
    return kExitNoAnswer;
  }

  if (request.command == Command::kReload && request.wait) {
    return reload_and_wait(client, options, connect_timeout);
  }

  UniqueFd interrupt_write;
  UniqueFd interrupt_read;
  if (request.command == Command::kEvents) interrupt_read = install_interrupt_pipe(interrupt_write);

  if (!client.send_line(herd::ctl::make_request(request).dump())) {
    print_error("cannot send to " + path + ": " + client.error());
    return kExitNoAnswer;
  }
  ReadResult result = client.read_line(to_timeout(options.timeout_seconds), interrupt_read.get());
  if (result.outcome != ReadOutcome::kLine) {
    return report_no_reply(result, path, options.timeout_seconds);
  }
  std::optional<json> reply = parse_reply(result.line);
  if (!reply) return kExitNoAnswer;
  // With --json the events stream shows the events only, not its
  // {"ok":true,"events":true} acknowledgement, so every line is an event.
  if (request.command != Command::kEvents || !(*reply)["ok"].get<bool>()) {
    return print_reply(options, result.line, *reply);
  }
  // Says the subscription holds: until the first event the screen is blank.
  if (!options.json_output) std::cerr << "watching events of " << path << " (Ctrl-C to stop)\n";
  return stream_events(client, interrupt_read.get(), options.json_output);
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (std::optional<int> exit_status = parse_command_line(argc, argv, options)) {
    return *exit_status;
  }
  if (options.top) {
    options.top->socket_path = options.socket_path;
    return herd::ctl::run_top(*options.top);
  }
  return run_command(options);
}
