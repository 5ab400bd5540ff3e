// The control socket's protocol (herdctl <-> master): every command with its
// arguments, and the top-level fields of the replies, defined once for both
// sides.
//
// Framing: one JSON object per line each way. A request is {"cmd":NAME} with
// its arguments beside `cmd`; a reply is {"ok":true, fields...} or
// {"ok":false,"error":TEXT}. `events` answers {"ok":true,"events":true}, then
// one event object per line. Unknown fields are ignored. See proto/README.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace herd::proto {

enum class ControlCommand { kPing, kStatus, kStats, kRestart, kReload, kScale, kStop, kEvents };

// The most workers `scale` accepts, matching --workers.
inline constexpr std::size_t kMaxWorkers = 1024;

struct ControlRequest {
  ControlCommand command = ControlCommand::kPing;
  std::optional<std::uint64_t> id;       // stats (optional), restart (required)
  std::optional<std::uint64_t> workers;  // scale (required, 1 to kMaxWorkers)
  bool wait = false;                     // reload: reply when the reload is over

  bool operator==(const ControlRequest&) const = default;
};

// The command's wire name: "ping".
std::string_view command_name(ControlCommand command);

// The request object, e.g. {"cmd":"scale","workers":3}.
nlohmann::json encode(const ControlRequest& request);

// A decoded request, or why the line is not one, worded for the operator
// ("unknown command 'x' (try ping, ...)", "'id' must be a non-negative
// integer").
struct DecodedControlRequest {
  std::optional<ControlRequest> request;
  std::string error;
};

// Never throws: any line at all gets a request or an error.
DecodedControlRequest decode_control_request(std::string_view line);

// The fields of the replies, top level first, then those of the objects in
// them (proto/README.md says what each command answers and what each means).
namespace reply {
inline constexpr const char* kOk = "ok";
inline constexpr const char* kError = "error";
inline constexpr const char* kPid = "pid";                       // ping; a worker, the master
inline constexpr const char* kVersion = "version";               // ping
inline constexpr const char* kMaster = "master";                 // status
inline constexpr const char* kWorkers = "workers";               // status, stats
inline constexpr const char* kSlots = "slots";                   // status
inline constexpr const char* kTotal = "total";                   // stats
inline constexpr const char* kRestarting = "restarting";         // restart
inline constexpr const char* kReloading = "reloading";           // reload
inline constexpr const char* kReloaded = "reloaded";             // reload with wait
inline constexpr const char* kWorkersTarget = "workers_target";  // scale
inline constexpr const char* kPrevious = "previous";             // scale
inline constexpr const char* kStopping = "stopping";             // stop
inline constexpr const char* kEvents = "events";                 // events

// A worker object (status, stats; an exited one in stats ID), with pid.
inline constexpr const char* kId = "id";
inline constexpr const char* kSlot = "slot";
inline constexpr const char* kState = "state";
inline constexpr const char* kStartedAt = "started_at";
inline constexpr const char* kUptimeMs = "uptime_ms";
inline constexpr const char* kRestarts = "restarts";
inline constexpr const char* kLastExit = "last_exit";
inline constexpr const char* kConnections = "connections";
inline constexpr const char* kActiveConnections = "active_connections";
inline constexpr const char* kFull = "full";
inline constexpr const char* kRequests = "requests";
inline constexpr const char* kRps = "rps";
inline constexpr const char* kResponses = "responses";
inline constexpr const char* kLatencyUs = "latency_us";
inline constexpr const char* kBytesIn = "bytes_in";
inline constexpr const char* kBytesOut = "bytes_out";
inline constexpr const char* kRssKb = "rss_kb";
inline constexpr const char* kCpuPct = "cpu_pct";
inline constexpr const char* kLastHeartbeatMs = "last_heartbeat_ms";
inline constexpr const char* kExitedAt = "exited_at";
inline constexpr const char* kExit = "exit";
inline constexpr const char* kLastLines = "last_lines";

// The master object (status), besides pid, version, state, uptime_ms and
// workers_target.
inline constexpr const char* kListen = "listen";
inline constexpr const char* kSchedule = "schedule";
inline constexpr const char* kPending = "pending";
inline constexpr const char* kMaxConnections = "max_connections";
inline constexpr const char* kConnectionsTotal = "connections_total";
inline constexpr const char* kRestartsTotal = "restarts_total";

// A slot object (status), besides slot, state, restarts and last_exit.
inline constexpr const char* kWorker = "worker";
inline constexpr const char* kNextAttemptMs = "next_attempt_ms";

// An exit: {code, signal}.
inline constexpr const char* kCode = "code";
inline constexpr const char* kSignal = "signal";

// latency_us: microseconds, null before the first request.
inline constexpr const char* kP50 = "p50";
inline constexpr const char* kP90 = "p90";
inline constexpr const char* kP99 = "p99";
inline constexpr const char* kMax = "max";

// One of last_lines.
inline constexpr const char* kTime = "time";
inline constexpr const char* kStream = "stream";
inline constexpr const char* kLine = "line";
inline constexpr const char* kCut = "cut";
}  // namespace reply

}  // namespace herd::proto
