// The worker's environment: what the master tells each worker it starts, in
// HERD_* variables (Node hands NODE_CHANNEL_FD and NODE_UNIQUE_ID the same
// way). Defined once: the master writes it, the worker runtime reads it.
// proto/README.md lists the variables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herd::proto {

// Every variable the master sets starts so; the master passes none of its own
// on, so a worker sees exactly what this master meant.
inline constexpr std::string_view kWorkerEnvPrefix = "HERD_";

struct WorkerEnv {
  std::optional<int> channel_fd;              // HERD_CHANNEL_FD: the master's channel
  std::optional<int> listen_fd;               // HERD_LISTEN_FD: the listener, with --schedule none
  std::uint64_t worker_id = 0;                // HERD_WORKER_ID
  std::uint64_t slot = 0;                     // HERD_WORKER_SLOT
  std::int64_t heartbeat_interval_ms = 1000;  // HERD_HEARTBEAT_INTERVAL_MS
  std::size_t handoff_window = 1;   // HERD_HANDOFF_WINDOW: connections un-acked at once, >= 1
  std::size_t max_connections = 0;  // HERD_MAX_CONNECTIONS: 0, no limit
  std::string log_level = "info";   // HERD_LOG_LEVEL: spdlog's names
  std::string log_format = "text";  // HERD_LOG_FORMAT: text or json

  bool operator==(const WorkerEnv&) const = default;
};

// "NAME=value" entries, one per variable set (a missing fd has none).
std::vector<std::string> to_environment(const WorkerEnv& env);

// Reads the variables through `lookup` (getenv by default). A variable that is
// missing, empty or not a non-negative number leaves its default.
using EnvLookup = std::function<const char*(const char* name)>;
WorkerEnv read_worker_env(const EnvLookup& lookup);
WorkerEnv read_worker_env();

}  // namespace herd::proto
