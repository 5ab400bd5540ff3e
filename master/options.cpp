#include "master/options.h"

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cctype>
#include <filesystem>
#include <iostream>
#include <map>

#include "common/listen_socket.h"
#include "master/available_cpus.h"
#include "master/socket_activation.h"
#include "proto/control.h"

namespace herd {
namespace {

constexpr int kUsageError = 2;

std::string default_worker_program() {
  std::error_code error;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", error);
  if (error) return "herd-worker";
  return (self.parent_path() / "herd-worker").string();
}

// Every long option can also come from HERD_<NAME> (--log-level ->
// HERD_LOG_LEVEL). CLI11 takes the command line first, then the --config
// file, then the environment. The master passes none of them on to its
// workers.
void name_environment_variables(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    const std::vector<std::string>& names = option->get_lnames();
    if (names.empty() || names[0] == "help" || names[0] == "version" || names[0] == "config") {
      continue;
    }
    std::string variable = "HERD_";
    for (char c : names[0]) variable += c == '-' ? '_' : static_cast<char>(std::toupper(c));
    option->envname(variable);
  }
}

}  // namespace

std::optional<int> parse_options(int argc, char** argv, Options& options) {
  MasterConfig& config = options.config;
  config.workers = available_cpus();
  config.worker.program = default_worker_program();
  long heartbeat_interval_ms = config.heartbeat_interval.count();
  long heartbeat_timeout_ms = config.heartbeat_timeout.count();
  long kill_timeout_ms = config.kill_timeout.count();
  std::string log_level = "info";
  std::string log_format = "text";

  CLI::App app{
      "herd: runs an HTTP service as a cluster of worker processes. The master accepts every\n"
      "connection and hands it round-robin to a worker; dead or hung workers are replaced.\n"
      "Arguments after -- are passed to every worker."};
  app.set_version_flag("--version", std::string("herd ") + HERD_VERSION);
  CLI::Option* host_option =
      app.add_option("--host", config.host,
                     "Address to listen on (numeric IPv4 or IPv6); ignored under socket activation")
          ->capture_default_str();
  CLI::Option* port_option =
      app.add_option("--port", config.port,
                     "TCP port to listen on; 0 picks a free one; ignored under socket activation")
          ->capture_default_str();
  app.add_option(
         "--workers", config.workers,
         "Number of worker processes (default: the CPUs herd may use: its affinity, capped by a "
         "cgroup CPU limit)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, proto::kMaxWorkers));
  app.add_option("--exec", config.worker.program,
                 "Worker program (default: herd-worker beside herd)")
      ->capture_default_str();
  std::map<std::string, Schedule> schedules{{"rr", Schedule::kRoundRobin},
                                            {"none", Schedule::kNone}};
  app.add_option("--schedule", config.schedule,
                 "rr: the master accepts and hands connections round-robin (Node's default); "
                 "none: the workers accept from the shared socket (Node's SCHED_NONE)")
      ->transform(CLI::CheckedTransformer(schedules, CLI::ignore_case))
      ->default_str("rr");
  app.add_option("--handoff-window", config.handoff_window,
                 "Connections a worker may hold un-acknowledged (1 = Node's behaviour)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1024}));
  app.add_option("--max-connections", config.max_connections,
                 "Connections each worker holds open at most (0 = its open-descriptor limit less "
                 "64). At the limit a worker closes its longest-idle keep-alive connection for "
                 "a new one; with none idle, new connections wait in the master (--queue-timeout)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 24));
  app.add_option("--heartbeat-interval", heartbeat_interval_ms,
                 "Milliseconds between a worker's heartbeats")
      ->capture_default_str()
      ->check(CLI::Range(10L, 3600000L));
  app.add_option("--heartbeat-timeout", heartbeat_timeout_ms,
                 "Milliseconds of silence (or of starting up) after which a worker is replaced")
      ->capture_default_str()
      ->check(CLI::Range(50L, 86400000L));
  app.add_option("--kill-timeout", kill_timeout_ms,
                 "Milliseconds a stopping or hung worker gets before SIGKILL")
      ->capture_default_str()
      ->check(CLI::Range(0L, 86400000L));
  long shutdown_delay_ms = config.shutdown_delay.count();
  app.add_option("--shutdown-delay", shutdown_delay_ms,
                 "Milliseconds a graceful stop keeps accepting and serving after /readyz turns "
                 "503, before it closes the listener and drains (for load balancers)")
      ->capture_default_str()
      ->check(CLI::Range(0L, 3600000L));
  long min_uptime_ms = config.backoff.young.count();
  long queue_timeout_ms = config.queue_timeout.count();
  std::uint64_t max_rss_mb = 0;
  app.add_option("--min-uptime", min_uptime_ms,
                 "Milliseconds a worker must live to count as started; slots whose workers die "
                 "sooner respawn with backoff (100 ms doubling to 30 s)")
      ->capture_default_str()
      ->check(CLI::Range(0L, 86400000L));
  app.add_option("--queue-timeout", queue_timeout_ms,
                 "Milliseconds a connection may wait in the master for a ready worker before it "
                 "is closed")
      ->capture_default_str()
      ->check(CLI::Range(1L, 86400000L));
  app.add_option("--max-requests", config.max_requests,
                 "Replace a worker after this many requests (0 = never)")
      ->capture_default_str();
  app.add_option("--max-requests-jitter", config.max_requests_jitter,
                 "Add 0..N to each worker's --max-requests, so they do not all recycle at once")
      ->capture_default_str();
  app.add_option("--max-rss", max_rss_mb,
                 "Replace a worker whose RSS exceeds this many MiB (0 = never)")
      ->capture_default_str();
  app.add_option("--control", config.control_path,
                 "Control socket path (default ${XDG_RUNTIME_DIR:-/tmp}/herd-<port>.sock)");
  std::string user;
  std::string group;
  app.add_option("--user", user,
                 "Run the workers as this user (name or uid); the master keeps its own, e.g. "
                 "root for a port below 1024. Needs herd to start as root");
  app.add_option("--group", group,
                 "With --user: the workers' group (name or gid; default: the user's own)");
  std::string admin;
  app.add_option("--admin", admin,
                 "Serve /metrics (Prometheus), /healthz, /readyz and /status over HTTP on "
                 "HOST:PORT, e.g. 127.0.0.1:9090 (default: off)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or critical")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical"}));
  app.add_option("--log-format", log_format, "text or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  std::string& log_file = options.log_file;
  app.add_option("--log-file", log_file,
                 "Append the log (the workers' output included) to this file instead of "
                 "stderr; SIGUSR1 reopens it (for logrotate)");
  std::vector<std::string> worker_args;
  app.add_option("worker-args", worker_args, "Arguments for the worker program (after --)");
  app.allow_extras(false);
  app.set_config("--config", "",
                 "Read options from a TOML file: one `name = value` per option, e.g. "
                 "`workers = 4`, `admin = \"127.0.0.1:9090\"`; the command line wins over it, it "
                 "wins over HERD_<NAME> variables; an unknown name is an error (example: "
                 "scripts/herd.toml)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  name_environment_variables(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ConfigError& error) {
    // CLI11 says "INI was not able to parse <key>" for an unknown key.
    std::string message = error.what();
    const std::string unknown = "INI was not able to parse ";
    if (message.rfind(unknown, 0) == 0) {
      message = "unknown option '" + message.substr(unknown.size()) +
                "' in the --config file (the names are those of `herd --help`, without --)";
    }
    std::cerr << "herd: " << message << "\n";
    return kUsageError;
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; a usage error exits 2, like herdctl.
    app.exit(error);
    return error.get_exit_code() == 0 ? 0 : kUsageError;
  }

  if (config.host == "localhost") config.host = "127.0.0.1";
  if (!is_numeric_address(config.host)) {
    std::cerr << "--host '" << config.host << "' is not a numeric IPv4 or IPv6 address\n";
    return kUsageError;
  }

  if (!admin.empty()) {
    std::string error;
    config.admin = parse_admin_address(admin, error);
    if (!config.admin) {
      std::cerr << "--admin: " << error << "\n";
      return kUsageError;
    }
  }

  if (!group.empty() && user.empty()) {
    std::cerr << "--group needs --user\n";
    return kUsageError;
  }
  if (!user.empty()) {
    std::string error;
    config.worker.credentials = resolve_credentials(user, group, error);
    if (!config.worker.credentials) {
      std::cerr << error << "\n";
      return kUsageError;
    }
    if (::geteuid() != 0) {
      if (config.worker.credentials->uid != ::geteuid() ||
          config.worker.credentials->gid != ::getegid()) {
        std::cerr << "--user " << user << ": herd must start as root to run its workers as "
                  << "another user\n";
        return kUsageError;
      }
      config.worker.credentials.reset();  // already that user: nothing to drop
    }
  }
  if (heartbeat_timeout_ms <= heartbeat_interval_ms) {
    std::cerr << "--heartbeat-timeout (" << heartbeat_timeout_ms
              << " ms) must be longer than --heartbeat-interval (" << heartbeat_interval_ms
              << " ms)\n";
    return kUsageError;
  }
  if (::access(config.worker.program.c_str(), X_OK) != 0) {
    std::cerr << "worker program '" << config.worker.program
              << "' is not an executable file (--exec)\n";
    return kUsageError;
  }

  // Socket activation: systemd's listening socket replaces --host/--port.
  ActivatedSocket activated = take_activated_socket();
  if (!activated.error.empty()) {
    std::cerr << activated.error << "\n";
    return kUsageError;
  }
  config.inherited_listener = std::move(activated.fd);

  config.heartbeat_interval = Milliseconds{heartbeat_interval_ms};
  config.heartbeat_timeout = Milliseconds{heartbeat_timeout_ms};
  config.kill_timeout = Milliseconds{kill_timeout_ms};
  config.shutdown_delay = Milliseconds{shutdown_delay_ms};
  config.backoff.young = Milliseconds{min_uptime_ms};
  config.queue_timeout = Milliseconds{queue_timeout_ms};
  config.max_rss_kb = max_rss_mb * 1024;
  config.worker.args = std::move(worker_args);
  config.log_level = spdlog::level::from_str(log_level);
  config.log_format = log_format == "json" ? LogFormat::kJson : LogFormat::kText;
  config.worker.env.heartbeat_interval_ms = heartbeat_interval_ms;
  config.worker.env.handoff_window = config.handoff_window;
  config.worker.env.log_level = log_level;
  config.worker.env.log_format = log_format;

  options.listen_address_given = host_option->count() > 0 || port_option->count() > 0;
  return std::nullopt;
}

}  // namespace herd
