#include "master/worker_table.h"

#include <utility>

#include <algorithm>
#include <cstring>
#include <string>

namespace herd {

std::string_view to_string(WorkerState state) {
  switch (state) {
    case WorkerState::kStarting:
      return "starting";
    case WorkerState::kReady:
      return "ready";
    case WorkerState::kDraining:
      return "draining";
    case WorkerState::kHung:
      return "hung";
    case WorkerState::kExited:
      return "exited";
  }
  return "unknown";
}

std::string describe(const ExitStatus& status) {
  if (status.signal) {
    const char* name = sigabbrev_np(*status.signal);
    return "signal " + std::to_string(*status.signal) +
           (name != nullptr ? std::string(" (SIG") + name + ")" : std::string());
  }
  return "code " + std::to_string(status.code.value_or(0));
}

Milliseconds RespawnBackoff::delay_after(unsigned early_deaths) const {
  if (early_deaths <= 1) return Milliseconds{0};
  Milliseconds delay = initial;
  for (unsigned i = 2; i < early_deaths && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

WorkerTable::WorkerTable(std::size_t target, RespawnBackoff backoff)
    : backoff_(backoff), slots_(target) {}

WorkerRecord& WorkerTable::add(WorkerId id, std::size_t slot, pid_t pid, TimePoint now,
                               std::int64_t unix_ms) {
  WorkerRecord record;
  record.id = id;
  record.slot = slot;
  record.pid = pid;
  record.spawned_at = now;
  record.last_heartbeat = now;
  record.started_at_ms = unix_ms;
  if (slot < slots_.size()) {
    Slot& owner = slots_[slot];
    (owner.worker ? owner.successor : owner.worker) = id;
  }
  return workers_.emplace(id, std::move(record)).first->second;
}

WorkerRecord* WorkerTable::find(WorkerId id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

const WorkerRecord* WorkerTable::find(WorkerId id) const {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

WorkerRecord* WorkerTable::find_by_pid(pid_t pid) {
  for (auto& [id, record] : workers_) {
    if (record.pid == pid) return &record;
  }
  return nullptr;
}

std::optional<WorkerRecord> WorkerTable::remove_exited(pid_t pid, TimePoint now,
                                                       const ExitStatus& status) {
  WorkerRecord* found = find_by_pid(pid);
  if (found == nullptr) return std::nullopt;
  WorkerRecord record = std::move(*found);
  workers_.erase(record.id);
  record.state = WorkerState::kExited;
  retired_stats_.add_cumulative(record.stats);

  if (record.slot >= slots_.size()) return record;  // its slot was scaled away
  Slot& slot = slots_[record.slot];
  if (slot.successor == record.id) {
    slot.successor.reset();  // the replacement failed; the current worker stays
  } else if (slot.worker == record.id) {
    slot.worker.reset();
    ++slot.restarts;
    ++restarts_total_;
    bool died_young = now - record.spawned_at < backoff_.young;
    slot.early_deaths = died_young ? slot.early_deaths + 1 : 0;
    slot.respawn_at = now + backoff_.delay_after(slot.early_deaths);
    if (slot.successor) {
      // The successor on its way takes the slot without a further spawn.
      slot.worker = std::exchange(slot.successor, std::nullopt);
    }
  }
  // Current, failed successor or replaced (drained after its successor took
  // over): it is the slot's most recent exit now.
  std::int64_t lived_ms = std::chrono::duration_cast<Milliseconds>(now - record.spawned_at).count();
  slot.last_exit = ExitedWorker{record, status, now, record.started_at_ms + lived_ms};
  return record;
}

bool WorkerTable::is_successor(WorkerId worker) const {
  const WorkerRecord* record = find(worker);
  return record != nullptr && record->slot < slots_.size() &&
         slots_[record->slot].successor == worker;
}

bool WorkerTable::is_current(WorkerId worker) const {
  const WorkerRecord* record = find(worker);
  return record != nullptr && record->slot < slots_.size() && slots_[record->slot].worker == worker;
}

std::vector<WorkerId> WorkerTable::serving_workers() const {
  std::vector<WorkerId> serving;
  for (const Slot& slot : slots_) {
    if (!slot.worker) continue;
    const WorkerRecord* record = find(*slot.worker);
    if (record != nullptr && record->state != WorkerState::kDraining) serving.push_back(record->id);
  }
  return serving;
}

std::optional<WorkerId> WorkerTable::promote(WorkerId successor) {
  if (!is_successor(successor)) return std::nullopt;
  Slot& slot = slots_[find(successor)->slot];
  std::optional<WorkerId> replaced = slot.worker;
  slot.worker = successor;
  slot.successor.reset();
  slot.early_deaths = 0;
  ++slot.restarts;
  ++restarts_total_;
  return replaced;
}

std::vector<WorkerId> WorkerTable::set_target(std::size_t target) {
  std::vector<WorkerId> removed;
  for (std::size_t i = target; i < slots_.size(); ++i) {
    if (slots_[i].worker) removed.push_back(*slots_[i].worker);
    if (slots_[i].successor) removed.push_back(*slots_[i].successor);
  }
  slots_.resize(target);
  return removed;
}

std::vector<std::size_t> WorkerTable::slots_due(TimePoint now) const {
  std::vector<std::size_t> due;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    if (!slot.worker && !slot.successor && slot.respawn_at <= now) due.push_back(i);
  }
  return due;
}

std::vector<WorkerId> WorkerTable::overdue(TimePoint now, Milliseconds timeout) const {
  std::vector<WorkerId> late;
  for (const auto& [id, record] : workers_) {
    // A starting worker must be ready within `timeout` of its spawn, whatever
    // else it sends; a ready one must not fall silent for longer.
    if (record.state == WorkerState::kStarting && now - record.spawned_at > timeout) {
      late.push_back(id);
    } else if (record.state == WorkerState::kReady && now - record.last_heartbeat > timeout) {
      late.push_back(id);
    }
  }
  return late;
}

std::vector<WorkerId> WorkerTable::past_kill_deadline(TimePoint now) const {
  std::vector<WorkerId> due;
  for (const auto& [id, record] : workers_) {
    if (record.kill_at && *record.kill_at <= now) due.push_back(id);
  }
  return due;
}

std::optional<TimePoint> WorkerTable::next_respawn() const {
  std::optional<TimePoint> earliest;
  for (const Slot& slot : slots_) {
    if (slot.worker || slot.successor) continue;
    if (!earliest || slot.respawn_at < *earliest) earliest = slot.respawn_at;
  }
  return earliest;
}

std::vector<SlotView> WorkerTable::slots() const {
  std::vector<SlotView> views;
  views.reserve(slots_.size());
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    SlotView view{i, slot.worker, slot.successor, slot.restarts, last_exit(i), std::nullopt};
    if (!slot.worker && !slot.successor) view.respawn_at = slot.respawn_at;
    views.push_back(view);
  }
  return views;
}

std::uint64_t WorkerTable::restarts(std::size_t slot) const {
  return slot < slots_.size() ? slots_[slot].restarts : 0;
}

std::optional<ExitStatus> WorkerTable::last_exit(std::size_t slot) const {
  const ExitedWorker* exited = last_exited(slot);
  return exited != nullptr ? std::optional<ExitStatus>(exited->status) : std::nullopt;
}

const ExitedWorker* WorkerTable::last_exited(std::size_t slot) const {
  if (slot >= slots_.size() || !slots_[slot].last_exit) return nullptr;
  return &*slots_[slot].last_exit;
}

const ExitedWorker* WorkerTable::find_exited(WorkerId id) const {
  for (const Slot& slot : slots_) {
    if (slot.last_exit && slot.last_exit->record.id == id) return &*slot.last_exit;
  }
  return nullptr;
}

ExitedWorker* WorkerTable::find_exited(WorkerId id) {
  return const_cast<ExitedWorker*>(std::as_const(*this).find_exited(id));
}

void WorkerTable::keep_output(WorkerId id, KeptLine line) {
  if (WorkerRecord* record = find(id)) return record->output.add(std::move(line));
  // A reaped worker's last bytes may still be in its pipes.
  if (ExitedWorker* exited = find_exited(id)) exited->record.output.add(std::move(line));
}

}  // namespace herd
