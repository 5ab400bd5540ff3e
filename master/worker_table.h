// WorkerTable: every worker the master has started and not yet reaped, and the
// slots (0..N-1) they fill. Pure bookkeeping and decisions, no syscalls: the
// master asks it who is overdue, who must be killed, which slots need a worker.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "master/dispatcher.h"
#include "proto/messages.h"

namespace herd {

enum class WorkerState { kStarting, kReady, kDraining, kHung, kExited };
std::string_view to_string(WorkerState state);

struct ExitStatus {
  std::optional<int> code;    // exited normally with this code
  std::optional<int> signal;  // or was killed by this signal
};
// "code 0" or "signal 9 (SIGKILL)"
std::string describe(const ExitStatus& status);

struct WorkerRecord {
  WorkerId id = 0;
  std::size_t slot = 0;
  pid_t pid = 0;
  WorkerState state = WorkerState::kStarting;
  TimePoint spawned_at;
  std::int64_t started_at_ms = 0;  // wall clock, for operators
  TimePoint last_heartbeat;        // spawn time until the first message
  bool said_hello = false;
  bool channel_open = true;
  std::uint64_t connections_handed = 0;
  proto::WorkerStats stats;
  std::optional<TimePoint> kill_at;  // SIGKILL when reached (after SIGTERM or drain)
};

// Respawn delay for a slot whose workers keep dying young: none for the first
// early death, then doubling from `initial` up to `max`. A worker that lived
// at least `young` resets the count. So a crash loop costs at most one spawn
// per `max`, never a spin.
struct RespawnBackoff {
  Milliseconds young{2000};
  Milliseconds initial{100};
  Milliseconds max{10000};

  Milliseconds delay_after(unsigned early_deaths) const;
};

class WorkerTable {
 public:
  WorkerTable(std::size_t target, RespawnBackoff backoff = {});

  // Hands out the id for the next worker (unique, increasing, like Node's worker.id).
  WorkerId allocate_id() { return next_id_++; }
  // Records a freshly spawned worker, which now fills `slot`.
  WorkerRecord& add(WorkerId id, std::size_t slot, pid_t pid, TimePoint now, std::int64_t unix_ms);

  WorkerRecord* find(WorkerId id);
  WorkerRecord* find_by_pid(pid_t pid);

  // Forgets a reaped worker and schedules its slot's respawn per the backoff.
  // Returns the record, or nothing if the pid is not a worker of ours.
  std::optional<WorkerRecord> remove_exited(pid_t pid, TimePoint now);

  // Empty slots below the target whose respawn time has come.
  std::vector<std::size_t> slots_due(TimePoint now) const;
  // Starting or ready workers that have been silent for longer than `timeout`.
  std::vector<WorkerId> overdue(TimePoint now, Milliseconds timeout) const;
  // Workers whose SIGKILL deadline has passed.
  std::vector<WorkerId> past_kill_deadline(TimePoint now) const;
  // The earliest pending respawn, to wake the loop then.
  std::optional<TimePoint> next_respawn() const;

  std::uint64_t restarts(std::size_t slot) const;
  std::uint64_t restarts_total() const;
  std::size_t target() const { return slots_.size(); }
  bool empty() const { return workers_.empty(); }
  const std::map<WorkerId, WorkerRecord>& workers() const { return workers_; }

 private:
  struct Slot {
    std::optional<WorkerId> worker;
    unsigned early_deaths = 0;
    TimePoint respawn_at{};
    std::uint64_t restarts = 0;
  };

  RespawnBackoff backoff_;
  std::vector<Slot> slots_;
  std::map<WorkerId, WorkerRecord> workers_;  // ordered by id: oldest first
  WorkerId next_id_ = 1;
};

}  // namespace herd
