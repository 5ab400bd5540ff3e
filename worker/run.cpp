#include "herd/run.h"

#include <fcntl.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "common/log.h"
#include "worker/worker.h"

namespace herd {
namespace {

std::optional<long> env_number(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < 0) return std::nullopt;
  return value;
}

std::string env_text(const char* name, const char* fallback) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0' ? text : fallback;
}

}  // namespace

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
  std::optional<long> channel_fd = env_number("HERD_CHANNEL_FD");
  if (!channel_fd || ::fcntl(static_cast<int>(*channel_fd), F_GETFD) < 0) {
    std::cerr << "herd worker: no channel to a herd master (HERD_CHANNEL_FD is "
              << (channel_fd ? "not an open descriptor" : "not set")
              << "). This program serves the connections a herd master hands it; start it "
                 "through herd, e.g. `herd --exec PROGRAM`.\n";
    return 2;
  }

  WorkerSettings settings;
  settings.channel_fd = static_cast<int>(*channel_fd);
  std::optional<long> listen_fd = env_number("HERD_LISTEN_FD");
  if (listen_fd && ::fcntl(static_cast<int>(*listen_fd), F_GETFD) >= 0) {
    settings.listen_fd = static_cast<int>(*listen_fd);
  }
  settings.id = static_cast<std::uint64_t>(env_number("HERD_WORKER_ID").value_or(0));
  settings.slot = static_cast<std::uint64_t>(env_number("HERD_WORKER_SLOT").value_or(0));
  settings.heartbeat_interval =
      Milliseconds{env_number("HERD_HEARTBEAT_INTERVAL_MS").value_or(1000)};
  settings.handoff_window =
      static_cast<std::size_t>(std::max(env_number("HERD_HANDOFF_WINDOW").value_or(1), 1L));
  if (std::optional<long> limit = env_number("HERD_MAX_CONNECTIONS"); limit && *limit > 0) {
    settings.max_connections = static_cast<std::size_t>(*limit);
  }
  settings.connection.keepalive_timeout = options.keepalive_timeout;
  settings.connection.header_timeout = options.header_timeout;
  settings.connection.limits.header_bytes = options.max_header_bytes;
  settings.connection.limits.body_bytes = options.max_body_bytes;
  settings.connection.limits.max_pipelined_requests = options.max_pipelined_requests;

  spdlog::level::level_enum level = spdlog::level::from_str(env_text("HERD_LOG_LEVEL", "info"));
  LogFormat format = env_text("HERD_LOG_FORMAT", "text") == std::string("json") ? LogFormat::kJson
                                                                                : LogFormat::kText;
  // The master tags each line with the time and this worker's id, slot and pid.
  setup_worker_logging(level, format);

  Worker worker(std::move(settings), app);
  return worker.run();
}

}  // namespace herd
