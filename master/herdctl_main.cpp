// herdctl: the operator's command line for a running herd master. Parses the
// command line, sends one request over the control socket, prints the reply
// (as a table, or raw with --json); `events` keeps printing until interrupted.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "common/unique_fd.h"
#include "master/herdctl_client.h"
#include "master/herdctl_format.h"

namespace {

using herd::UniqueFd;
using herd::ctl::Command;
using herd::ctl::ControlClient;
using herd::ctl::Milliseconds;
using herd::ctl::ReadOutcome;
using herd::ctl::ReadResult;
using nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitRefused = 1;   // the master answered ok:false
constexpr int kExitNoAnswer = 2;  // usage error, or no (valid) answer from the master

constexpr std::uint16_t kDefaultPort = 3000;
constexpr double kDefaultTimeoutSeconds = 10;
// A reload --wait replaces every worker one slot at a time, each waiting for
// its successor's ready: far longer than any single request.
constexpr double kReloadWaitTimeoutSeconds = 600;

const char* const kFooter =
    "Socket: -s PATH; else -p PORT gives ${XDG_RUNTIME_DIR:-/tmp}/herd-<PORT>.sock; else\n"
    "$HERD_CONTROL if set; else port 3000.\n"
    "Timeout: a reply must arrive within --timeout seconds (default 10, 600 for\n"
    "reload --wait; 0 waits forever). events streams until SIGINT or until the master\n"
    "closes the connection, then exits 0; with --json it prints one event object per line.\n"
    "Exit status: 0 success, 1 the master refused (its error on stderr), 2 cannot\n"
    "connect, no or unreadable reply, or usage error.";

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
};

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
  reload->add_flag("--wait", request.wait, "Reply only once the reload is over");
  CLI::App* scale = add_command("scale", "Change the number of workers", Command::kScale);
  scale->add_option("workers", request.workers, "The new worker count")
      ->required()
      ->check(not_negative);
  add_command("stop", "Graceful shutdown of the master and its workers", Command::kStop);
  add_command("events", "Print spawn, ready, exit, hung, reload... events as they happen",
              Command::kEvents);

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
  if (options.socket_path.empty()) options.socket_path = herd::ctl::default_socket_path(port);
  if (timeout_option->count() == 0 && request.command == Command::kReload && request.wait) {
    options.timeout_seconds = kReloadWaitTimeoutSeconds;
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
  json reply = json::parse(result.line, nullptr, /*allow_exceptions=*/false);
  if (!reply.is_object() || !reply.contains("ok") || !reply["ok"].is_boolean()) {
    print_error("unexpected reply from the master: " + result.line);
    return kExitNoAnswer;
  }
  bool ok = reply["ok"].get<bool>();

  // With --json the events stream shows the events only, not its
  // {"ok":true,"events":true} acknowledgement, so every line is an event.
  if (options.json_output && !(ok && request.command == Command::kEvents)) {
    std::cout << result.line << std::endl;
  }
  if (!ok) {
    print_error(herd::ctl::reply_error(reply));
    return kExitRefused;
  }
  if (request.command == Command::kEvents) {
    // Says the subscription holds: until the first event the screen is blank.
    if (!options.json_output) std::cerr << "watching events of " << path << " (Ctrl-C to stop)\n";
    return stream_events(client, interrupt_read.get(), options.json_output);
  }
  if (!options.json_output) std::cout << herd::ctl::format_reply(request, reply) << std::flush;
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (std::optional<int> exit_status = parse_command_line(argc, argv, options)) {
    return *exit_status;
  }
  return run_command(options);
}
