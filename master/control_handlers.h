// The control commands (ping, status, stats, restart, reload, scale, stop,
// events) as pure functions: a request line and a view of the master in, a
// reply and the action to take out. The control server and the master do the
// I/O and carry the actions out; tests call these directly.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "master/worker_table.h"
#include "proto/control.h"

namespace herd {

// What the master knows about itself, for `ping` and `status`.
struct MasterView {
  pid_t pid = 0;
  std::string version;
  TimePoint started_at;
  std::string listen;                    // "host:port"
  std::string schedule = "round-robin";  // or "none": the workers accept
  bool stopping = false;
  bool reloading = false;           // a reload is replacing workers now
  std::size_t pending = 0;          // connections queued in the master
  std::size_t max_connections = 0;  // per worker (--max-connections)
  std::uint64_t connections_total = 0;
  std::uint64_t reloads_total = 0;     // reloads started
  std::uint64_t hung_kills_total = 0;  // workers stopped for missing heartbeats or readiness
};

enum class ControlAction { kNone, kRestart, kReload, kScale, kStop, kSubscribe };

struct ControlDecision {
  ControlDecision() = default;
  ControlDecision(nlohmann::json reply_, ControlAction action_ = ControlAction::kNone)
      : reply(std::move(reply_)), action(action_) {}

  nlohmann::json reply;  // null when the reply waits for the action (reload with wait)
  ControlAction action = ControlAction::kNone;
  std::vector<WorkerId> workers;  // kRestart: the one; kReload: those to replace, in order
  std::size_t target = 0;         // kScale
};

// Parses and answers one request line. Never throws: bad input of any kind
// gets {"ok":false,"error":...} and no action.
ControlDecision handle_control_request(std::string_view line, const MasterView& master,
                                       const WorkerTable& workers, TimePoint now);

nlohmann::json error_reply(const std::string& message);

// The `status` reply, for the admin endpoint's /status.
nlohmann::json status_reply(const MasterView& master, const WorkerTable& workers, TimePoint now);

// One worker's fields, as in `status` and `stats` (proto/README.md).
nlohmann::json worker_json(const WorkerRecord& worker, const WorkerTable& table, TimePoint now);

// {"p50","p90","p99","max"} of a histogram, in microseconds.
nlohmann::json latency_json(const LatencyHistogram& histogram);

}  // namespace herd
