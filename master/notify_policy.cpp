#include "master/notify_policy.h"

#include <cmath>

namespace herd {

ServiceSnapshot snapshot_of(const WorkerTable& workers, std::size_t queued, bool reloading,
                            bool stopping) {
  ServiceSnapshot snapshot;
  snapshot.target = workers.target();
  snapshot.workers = workers.workers().size();
  snapshot.queued = queued;
  snapshot.reloading = reloading;
  snapshot.stopping = stopping;
  for (const SlotView& slot : workers.slots()) {
    const WorkerRecord* current = slot.worker ? workers.find(*slot.worker) : nullptr;
    if (current != nullptr && current->state == WorkerState::kReady) ++snapshot.ready_slots;
  }
  for (const auto& [id, record] : workers.workers()) snapshot.rps += record.request_rate.rate();
  return snapshot;
}

std::string status_line(const ServiceSnapshot& snapshot) {
  if (snapshot.stopping) {
    return "stopping, " + std::to_string(snapshot.workers) +
           (snapshot.workers == 1 ? " worker left" : " workers left");
  }
  std::string line = std::to_string(snapshot.ready_slots) + "/" + std::to_string(snapshot.target) +
                     " workers ready, " + std::to_string(std::lround(snapshot.rps)) + " req/s, " +
                     std::to_string(snapshot.queued) + " queued";
  if (snapshot.reloading) line += ", reloading";
  return line;
}

std::string NotifyPolicy::progress(const ServiceSnapshot& snapshot, TimePoint now) {
  if (phase_ == Phase::kStarting && !snapshot.stopping && snapshot.target > 0 &&
      snapshot.ready_slots >= snapshot.target) {
    phase_ = Phase::kReady;
    return with_status("READY=1", snapshot, now);
  }
  bool due = !last_status_at_ || now - *last_status_at_ >= kStatusInterval;
  if (!due || status_line(snapshot) == last_status_) return "";
  return with_status("", snapshot, now);
}

std::string NotifyPolicy::reload_started(const ServiceSnapshot& snapshot, TimePoint now,
                                         std::uint64_t monotonic_usec) {
  if (phase_ != Phase::kReady) return "";
  phase_ = Phase::kReloading;
  return with_status("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec), snapshot,
                     now);
}

std::string NotifyPolicy::reload_finished(const ServiceSnapshot& snapshot, TimePoint now) {
  if (phase_ != Phase::kReloading) return "";
  phase_ = Phase::kReady;
  return with_status("READY=1", snapshot, now);
}

std::string NotifyPolicy::stopping(const ServiceSnapshot& snapshot, TimePoint now) {
  if (phase_ == Phase::kStopping) return "";
  phase_ = Phase::kStopping;
  return with_status("STOPPING=1", snapshot, now);
}

std::string NotifyPolicy::with_status(const std::string& head, const ServiceSnapshot& snapshot,
                                      TimePoint now) {
  last_status_ = status_line(snapshot);
  last_status_at_ = now;
  std::string message = head;
  if (!message.empty()) message += '\n';
  return message + "STATUS=" + last_status_;
}

}  // namespace herd
