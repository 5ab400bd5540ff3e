// herd-worker: the default app, started by the herd master. Serves
// GET / -> "Hello World!" on the connections the master hands it.
#include <fcntl.h>

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>

#include "common/log.h"
#include "worker/worker.h"

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

int main(int argc, char** argv) {
  herd::WorkerSettings settings;
  long keepalive_ms = settings.connection.keepalive_timeout.count();
  long header_ms = settings.connection.header_timeout.count();

  CLI::App app{
      "herd-worker: the default herd app (GET / -> Hello World!). It is started by herd, which\n"
      "hands it connections over the channel named by HERD_CHANNEL_FD; it does not listen itself."};
  app.set_version_flag("--version", std::string("herd-worker ") + HERD_VERSION);
  app.add_option("--keepalive-timeout", keepalive_ms,
                 "Milliseconds an idle keep-alive connection is kept open")
      ->capture_default_str()
      ->check(CLI::Range(1L, 3600000L));
  app.add_option("--header-timeout", header_ms, "Milliseconds a client has to send a whole request")
      ->capture_default_str()
      ->check(CLI::Range(1L, 3600000L));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    app.exit(error);
    return error.get_exit_code() == 0 ? 0 : 2;
  }

  std::optional<long> channel_fd = env_number("HERD_CHANNEL_FD");
  if (!channel_fd || ::fcntl(static_cast<int>(*channel_fd), F_GETFD) < 0) {
    std::cerr << "herd-worker: no channel to a herd master (HERD_CHANNEL_FD is "
              << (channel_fd ? "not an open descriptor" : "not set")
              << "). Start it through herd, e.g. `herd --exec " << argv[0] << "`.\n";
    return 2;
  }
  settings.channel_fd = static_cast<int>(*channel_fd);
  settings.id = static_cast<std::uint64_t>(env_number("HERD_WORKER_ID").value_or(0));
  settings.slot = static_cast<std::uint64_t>(env_number("HERD_WORKER_SLOT").value_or(0));
  settings.heartbeat_interval =
      herd::Milliseconds{env_number("HERD_HEARTBEAT_INTERVAL_MS").value_or(1000)};
  settings.connection.keepalive_timeout = herd::Milliseconds{keepalive_ms};
  settings.connection.header_timeout = herd::Milliseconds{header_ms};

  spdlog::level::level_enum level = spdlog::level::from_str(env_text("HERD_LOG_LEVEL", "info"));
  herd::LogFormat format = env_text("HERD_LOG_FORMAT", "text") == std::string("json")
                               ? herd::LogFormat::kJson
                               : herd::LogFormat::kText;
  herd::setup_logging("worker " + std::to_string(settings.id), level, format);

  herd::Worker worker(std::move(settings), herd::hello_world_app);
  return worker.run();
}
