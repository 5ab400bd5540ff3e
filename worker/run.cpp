#include "herd/run.h"

#include <fcntl.h>

#include <CLI/CLI.hpp>

#include <iostream>
#include <optional>
#include <string>

#include "common/log.h"
#include "proto/worker_env.h"
#include "worker/worker.h"

namespace herd {

int run(const App& app, int argc, char** argv) {
  RunOptions options;
  long keepalive_ms = options.keepalive_timeout.count();
  long header_ms = options.header_timeout.count();
  std::string program = argc > 0 ? argv[0] : "worker";

  CLI::App cli{"A herd worker. The herd master starts it (herd --exec " + program +
               ") and hands it connections over the channel named by HERD_CHANNEL_FD; it does "
               "not listen itself. Arguments after `--` on herd's command line come here."};
  cli.set_version_flag("--version", std::string("herd ") + HERD_VERSION);
  cli.add_option("--keepalive-timeout", keepalive_ms,
                 "Milliseconds an idle keep-alive connection is kept open")
      ->capture_default_str()
      ->check(CLI::Range(1L, 3600000L));
  cli.add_option("--header-timeout", header_ms,
                 "Milliseconds a client has to send a whole request, from its first byte")
      ->capture_default_str()
      ->check(CLI::Range(1L, 3600000L));
  cli.add_option("--max-body-bytes", options.max_body_bytes,
                 "Largest request body accepted; larger ones are answered 413")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 34));
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    cli.exit(error);
    return error.get_exit_code() == 0 ? 0 : 2;
  }
  options.keepalive_timeout = std::chrono::milliseconds{keepalive_ms};
  options.header_timeout = std::chrono::milliseconds{header_ms};
  return run(app, options);
}

int run(const App& app, const RunOptions& options) {
  proto::WorkerEnv env = proto::read_worker_env();
  if (!env.channel_fd || ::fcntl(*env.channel_fd, F_GETFD) < 0) {
    std::cerr << "herd worker: no channel to a herd master (HERD_CHANNEL_FD is "
              << (env.channel_fd ? "not an open descriptor" : "not set")
              << "). This program serves the connections a herd master hands it; start it "
                 "through herd, e.g. `herd --exec PROGRAM`.\n";
    return 2;
  }

  WorkerSettings settings;
  settings.channel_fd = *env.channel_fd;
  if (env.listen_fd && ::fcntl(*env.listen_fd, F_GETFD) >= 0) settings.listen_fd = *env.listen_fd;
  settings.id = env.worker_id;
  settings.slot = env.slot;
  settings.heartbeat_interval = Milliseconds{env.heartbeat_interval_ms};
  settings.handoff_window = env.handoff_window;
  if (env.max_connections > 0) settings.max_connections = env.max_connections;
  settings.connection.keepalive_timeout = options.keepalive_timeout;
  settings.connection.header_timeout = options.header_timeout;
  settings.connection.limits.header_bytes = options.max_header_bytes;
  settings.connection.limits.body_bytes = options.max_body_bytes;
  settings.connection.limits.max_pipelined_requests = options.max_pipelined_requests;

  spdlog::level::level_enum level = spdlog::level::from_str(env.log_level);
  LogFormat format = env.log_format == "json" ? LogFormat::kJson : LogFormat::kText;
  // The master tags each line with the time and this worker's id, slot and pid.
  setup_worker_logging(level, format);

  Worker worker(std::move(settings), app);
  return worker.run();
}

}  // namespace herd
