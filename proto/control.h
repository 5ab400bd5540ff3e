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

// "ping, status, stats, restart, reload, scale, stop, events", for errors.
inline constexpr std::string_view kControlCommandList =
    "ping, status, stats, restart, reload, scale, stop, events";

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

// The top-level fields of the replies (proto/README.md lists what each
// command answers; the worker objects' fields are listed there too).
namespace reply {
inline constexpr const char* kOk = "ok";
inline constexpr const char* kError = "error";
inline constexpr const char* kPid = "pid";                       // ping
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
}  // namespace reply

}  // namespace herd::proto
