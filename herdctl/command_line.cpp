#include "herdctl/command_line.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

#include "common/unix_socket.h"
#include "herdctl/exit_status.h"

namespace herd::ctl {
namespace {

using Command = proto::ControlCommand;

constexpr std::uint16_t kDefaultPort = 3000;
// A reload --wait replaces every worker one slot at a time, each waiting for
// its successor's ready: far longer than any single request.
constexpr double kReloadWaitTimeoutSeconds = 600;
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

void print_error(const std::string& message) {
  std::cerr << "herdctl: " << message << std::endl;
}

}  // namespace

std::optional<int> parse_command_line(int argc, char** argv, Options& options) {
  proto::ControlRequest& request = options.request;
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
  if (options.socket_path.empty()) options.socket_path = default_control_path(port);
  if (timeout_option->count() == 0 && request.command == Command::kReload && request.wait) {
    options.timeout_seconds = kReloadWaitTimeoutSeconds;
  }
  if (top->parsed()) {
    if (options.json_output) {
      print_error("top has no --json output; use stats --json (see herdctl --help)");
      return kExitNoAnswer;
    }
    TopOptions& top_options = options.top.emplace();
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

std::optional<Milliseconds> to_timeout(double seconds) {
  if (seconds <= 0) return std::nullopt;
  return Milliseconds{static_cast<std::int64_t>(seconds * 1000)};
}

}  // namespace herd::ctl
