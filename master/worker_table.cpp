#include "master/worker_table.h"

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
  if (slot < slots_.size()) slots_[slot].worker = record.id;
  return workers_.emplace(record.id, record).first->second;
}

WorkerRecord* WorkerTable::find(WorkerId id) {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

WorkerRecord* WorkerTable::find_by_pid(pid_t pid) {
  for (auto& [id, record] : workers_) {
    if (record.pid == pid) return &record;
  }
  return nullptr;
}

std::optional<WorkerRecord> WorkerTable::remove_exited(pid_t pid, TimePoint now) {
  WorkerRecord* found = find_by_pid(pid);
  if (found == nullptr) return std::nullopt;
  WorkerRecord record = *found;
  workers_.erase(record.id);
  record.state = WorkerState::kExited;

  if (record.slot < slots_.size() && slots_[record.slot].worker == record.id) {
    Slot& slot = slots_[record.slot];
    slot.worker.reset();
    ++slot.restarts;
    bool died_young = now - record.spawned_at < backoff_.young;
    slot.early_deaths = died_young ? slot.early_deaths + 1 : 0;
    slot.respawn_at = now + backoff_.delay_after(slot.early_deaths);
  }
  return record;
}

std::vector<std::size_t> WorkerTable::slots_due(TimePoint now) const {
  std::vector<std::size_t> due;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (!slots_[i].worker && slots_[i].respawn_at <= now) due.push_back(i);
  }
  return due;
}

std::vector<WorkerId> WorkerTable::overdue(TimePoint now, Milliseconds timeout) const {
  std::vector<WorkerId> late;
  for (const auto& [id, record] : workers_) {
    bool watched = record.state == WorkerState::kStarting || record.state == WorkerState::kReady;
    if (watched && now - record.last_heartbeat > timeout) late.push_back(id);
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
    if (slot.worker) continue;
    if (!earliest || slot.respawn_at < *earliest) earliest = slot.respawn_at;
  }
  return earliest;
}

std::uint64_t WorkerTable::restarts(std::size_t slot) const {
  return slot < slots_.size() ? slots_[slot].restarts : 0;
}

std::uint64_t WorkerTable::restarts_total() const {
  std::uint64_t total = 0;
  for (const Slot& slot : slots_) total += slot.restarts;
  return total;
}

}  // namespace herd
