#include "proto/worker_env.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace herd::proto {
namespace {

constexpr const char* kChannelFd = "HERD_CHANNEL_FD";
constexpr const char* kListenFd = "HERD_LISTEN_FD";
constexpr const char* kWorkerId = "HERD_WORKER_ID";
constexpr const char* kSlot = "HERD_WORKER_SLOT";
constexpr const char* kHeartbeatIntervalMs = "HERD_HEARTBEAT_INTERVAL_MS";
constexpr const char* kHandoffWindow = "HERD_HANDOFF_WINDOW";
constexpr const char* kMaxConnections = "HERD_MAX_CONNECTIONS";
constexpr const char* kLogLevel = "HERD_LOG_LEVEL";
constexpr const char* kLogFormat = "HERD_LOG_FORMAT";

std::string entry(const char* name, const std::string& value) {
  return std::string(name) + "=" + value;
}

// The whole text as a number of type T, nullopt otherwise.
template <typename T>
std::optional<T> number(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  T value{};
  const char* end = text + std::strlen(text);
  auto [stop, error] = std::from_chars(text, end, value);
  if (error != std::errc() || stop != end) return std::nullopt;
  if constexpr (std::is_signed_v<T>) {
    if (value < 0) return std::nullopt;
  }
  return value;
}

}  // namespace

std::vector<std::string> to_environment(const WorkerEnv& env) {
  std::vector<std::string> entries;
  if (env.channel_fd) entries.push_back(entry(kChannelFd, std::to_string(*env.channel_fd)));
  if (env.listen_fd) entries.push_back(entry(kListenFd, std::to_string(*env.listen_fd)));
  entries.push_back(entry(kWorkerId, std::to_string(env.worker_id)));
  entries.push_back(entry(kSlot, std::to_string(env.slot)));
  entries.push_back(entry(kHeartbeatIntervalMs, std::to_string(env.heartbeat_interval_ms)));
  entries.push_back(entry(kHandoffWindow, std::to_string(env.handoff_window)));
  entries.push_back(entry(kMaxConnections, std::to_string(env.max_connections)));
  entries.push_back(entry(kLogLevel, env.log_level));
  entries.push_back(entry(kLogFormat, env.log_format));
  return entries;
}

WorkerEnv read_worker_env(const EnvLookup& lookup) {
  WorkerEnv env;
  env.channel_fd = number<int>(lookup(kChannelFd));
  env.listen_fd = number<int>(lookup(kListenFd));
  env.worker_id = number<std::uint64_t>(lookup(kWorkerId)).value_or(env.worker_id);
  env.slot = number<std::uint64_t>(lookup(kSlot)).value_or(env.slot);
  env.heartbeat_interval_ms =
      number<std::int64_t>(lookup(kHeartbeatIntervalMs)).value_or(env.heartbeat_interval_ms);
  env.handoff_window = std::max<std::size_t>(
      number<std::size_t>(lookup(kHandoffWindow)).value_or(env.handoff_window), 1);
  env.max_connections = number<std::size_t>(lookup(kMaxConnections)).value_or(env.max_connections);
  if (const char* text = lookup(kLogLevel); text != nullptr && *text != '\0') env.log_level = text;
  if (const char* text = lookup(kLogFormat); text != nullptr && *text != '\0')
    env.log_format = text;
  return env;
}

WorkerEnv read_worker_env() {
  return read_worker_env([](const char* name) { return std::getenv(name); });
}

}  // namespace herd::proto
