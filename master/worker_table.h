// WorkerTable: every worker the master has started and not yet reaped, and the
// slots (0..N-1) they fill. Pure bookkeeping and decisions, no syscalls: the
// master asks it who is overdue, who must be killed, which slots need a worker.
//
// A slot has at most one current worker and, during a restart or reload, one
// successor: started beside the current one, it takes the slot over when it
// is ready (promote()), and the master then drains the old one. So the number
// of ready workers never drops during a replacement.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/rate_window.h"
#include "master/dispatcher.h"
#include "master/worker_output.h"
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
  bool full = false;         // at --max-connections with none idle (its `capacity`): handed nothing
  proto::WorkerStats stats;  // as of the last heartbeat
  RateWindow request_rate;   // requests per second over recent heartbeats
  std::uint64_t rss_kb = 0;  // from /proc, sampled at each heartbeat
  double cpu_pct = 0;        // over the time between the last two samples
  std::uint64_t cpu_ticks = 0;
  TimePoint cpu_sampled_at;
  std::optional<TimePoint> kill_at;  // SIGKILL when reached (after SIGTERM or drain)
  std::uint64_t request_limit = 0;   // recycle after this many requests (0 = never)
  bool recycling = false;            // queued for replacement by a limit
  OutputRing output;                 // the last lines it wrote to stdout and stderr
};

// A worker after its exit, as its slot keeps it for `stats`.
struct ExitedWorker {
  WorkerRecord record;  // as it was when it exited, its last lines included
  ExitStatus status;
  TimePoint exited_at;
  std::int64_t exited_at_ms = 0;  // wall clock
};

// A slot as `status` shows it.
struct SlotView {
  std::size_t slot = 0;
  std::optional<WorkerId> worker;
  std::optional<WorkerId> successor;
  std::uint64_t restarts = 0;
  std::optional<ExitStatus> last_exit;
  std::optional<TimePoint> respawn_at;  // set while the slot is empty
};

// Respawn delay for a slot whose workers keep dying young: none for the first
// early death, then doubling from `initial` up to `max`. A worker that lived
// at least `young` resets the count. So a crash loop costs at most one spawn
// per `max`, never a spin.
struct RespawnBackoff {
  Milliseconds young{5000};
  Milliseconds initial{100};
  Milliseconds max{30000};

  Milliseconds delay_after(unsigned early_deaths) const;
};

class WorkerTable {
 public:
  WorkerTable(std::size_t target, RespawnBackoff backoff = {});

  // Hands out the id for the next worker (unique, increasing, like Node's worker.id).
  WorkerId allocate_id() { return next_id_++; }
  // Records a freshly spawned worker for `slot`: its current worker if the
  // slot is empty, else its successor.
  WorkerRecord& add(WorkerId id, std::size_t slot, pid_t pid, TimePoint now, std::int64_t unix_ms);

  WorkerRecord* find(WorkerId id);
  const WorkerRecord* find(WorkerId id) const;
  WorkerRecord* find_by_pid(pid_t pid);

  // Retires a reaped worker: its slot keeps it as its last exit (replacing
  // the one before). If it was its slot's current worker, the slot is
  // scheduled for respawn per the backoff (unless a successor is on its way);
  // if it was a successor, the replacement is off. Returns the record, or
  // nothing if the pid is not a worker of ours.
  std::optional<WorkerRecord> remove_exited(pid_t pid, TimePoint now,
                                            const ExitStatus& status = {});

  // Whether `worker` is the successor waiting to take over its slot.
  bool is_successor(WorkerId worker) const;
  // Whether `worker` is its slot's current worker.
  bool is_current(WorkerId worker) const;
  // Each slot's current worker, unless it is draining: what a reload replaces.
  std::vector<WorkerId> serving_workers() const;
  // The ready successor takes its slot over; returns the worker it replaces
  // (to be drained), if that one is still there.
  std::optional<WorkerId> promote(WorkerId successor);

  // Changes the number of slots. Growing adds empty slots (due at once);
  // shrinking drops the highest ones and returns their workers (current and
  // successors), which the master drains.
  std::vector<WorkerId> set_target(std::size_t target);

  // Empty slots below the target whose respawn time has come.
  std::vector<std::size_t> slots_due(TimePoint now) const;
  // Starting workers not ready within `timeout` of their spawn, and ready
  // workers silent for longer than `timeout`.
  std::vector<WorkerId> overdue(TimePoint now, Milliseconds timeout) const;
  // Workers whose SIGKILL deadline has passed.
  std::vector<WorkerId> past_kill_deadline(TimePoint now) const;
  // The earliest pending respawn of an empty slot.
  std::optional<TimePoint> next_respawn() const;

  std::vector<SlotView> slots() const;
  std::uint64_t restarts(std::size_t slot) const;
  std::uint64_t restarts_total() const { return restarts_total_; }
  // How the slot's most recent worker to exit ended: a predecessor of its
  // current worker, or a successor that died before it was ready.
  std::optional<ExitStatus> last_exit(std::size_t slot) const;
  // That worker, with its last lines; nullptr if the slot has lost none.
  const ExitedWorker* last_exited(std::size_t slot) const;
  // A worker that has exited and is still kept as its slot's last exit.
  const ExitedWorker* find_exited(WorkerId id) const;
  ExitedWorker* find_exited(WorkerId id);

  // Keeps a line worker `id` wrote, in its record, or in its slot's last
  // exit when the line was read after the worker was reaped. Lines of a
  // worker no longer kept are dropped.
  void keep_output(WorkerId id, KeptLine line);
  // The cumulative stats of every worker that has exited (their last
  // heartbeat), so totals never go down when workers are replaced.
  const proto::WorkerStats& retired_stats() const { return retired_stats_; }

  std::size_t target() const { return slots_.size(); }
  bool empty() const { return workers_.empty(); }
  const std::map<WorkerId, WorkerRecord>& workers() const { return workers_; }

 private:
  struct Slot {
    std::optional<WorkerId> worker;
    std::optional<WorkerId> successor;
    unsigned early_deaths = 0;
    TimePoint respawn_at{};
    std::uint64_t restarts = 0;
    std::optional<ExitedWorker> last_exit;
  };

  RespawnBackoff backoff_;
  std::vector<Slot> slots_;
  std::map<WorkerId, WorkerRecord> workers_;  // ordered by id: oldest first
  WorkerId next_id_ = 1;
  std::uint64_t restarts_total_ = 0;  // never decreases, even when slots are scaled away
  proto::WorkerStats retired_stats_;
};

}  // namespace herd
