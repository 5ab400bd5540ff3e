#include "master/dispatcher.h"

#include <algorithm>

namespace herd {

Dispatcher::Dispatcher(std::size_t window) : window_(std::max<std::size_t>(window, 1)) {}

void Dispatcher::add_worker(WorkerId worker) {
  if (find(worker) == nullptr) workers_.push_back(Slot{worker, false, {}});
}

void Dispatcher::set_eligible(WorkerId worker, bool eligible) {
  if (Slot* slot = find(worker)) slot->eligible = eligible;
}

std::vector<Seq> Dispatcher::remove_worker(WorkerId worker) {
  auto it = std::find_if(workers_.begin(), workers_.end(),
                         [&](const Slot& slot) { return slot.worker == worker; });
  if (it == workers_.end()) return {};
  std::vector<Seq> returned = std::move(it->in_flight);
  queue_.insert(queue_.begin(), returned.begin(), returned.end());
  std::size_t index = static_cast<std::size_t>(it - workers_.begin());
  workers_.erase(it);
  // Keep the cursor on the worker that was next, so removal does not skip one.
  if (index < next_) --next_;
  if (next_ >= workers_.size()) next_ = 0;
  return returned;
}

void Dispatcher::enqueue(Seq seq) {
  queue_.push_back(seq);
}

long Dispatcher::next_with_credit() const {
  for (std::size_t step = 0; step < workers_.size(); ++step) {
    std::size_t index = (next_ + step) % workers_.size();
    const Slot& slot = workers_[index];
    if (slot.eligible && slot.in_flight.size() < window_) return static_cast<long>(index);
  }
  return -1;
}

std::optional<Dispatcher::Handoff> Dispatcher::next() {
  if (queue_.empty()) return std::nullopt;
  long index = next_with_credit();
  if (index < 0) return std::nullopt;
  Slot& slot = workers_[static_cast<std::size_t>(index)];
  Seq seq = queue_.front();
  queue_.pop_front();
  slot.in_flight.push_back(seq);
  next_ = (static_cast<std::size_t>(index) + 1) % workers_.size();
  return Handoff{slot.worker, seq};
}

std::vector<Dispatcher::Handoff> Dispatcher::distribute() {
  std::vector<Handoff> handoffs;
  while (std::optional<Handoff> handoff = next()) handoffs.push_back(*handoff);
  return handoffs;
}

Dispatcher::AckOutcome Dispatcher::acknowledge(WorkerId worker, std::span<const Seq> seqs,
                                               bool accepted) {
  AckOutcome outcome;
  Slot* slot = find(worker);
  std::vector<Seq> refused;
  for (Seq seq : seqs) {
    auto it = slot == nullptr ? std::vector<Seq>::iterator{}
                              : std::find(slot->in_flight.begin(), slot->in_flight.end(), seq);
    if (slot == nullptr || it == slot->in_flight.end()) {
      outcome.unknown.push_back(seq);
      continue;
    }
    slot->in_flight.erase(it);
    (accepted ? outcome.adopted : outcome.refused).push_back(seq);
  }
  queue_.insert(queue_.begin(), outcome.refused.begin(), outcome.refused.end());
  return outcome;
}

void Dispatcher::return_unsent(WorkerId worker, Seq seq) {
  // Only a seq still in flight to `worker` goes back: if the worker was
  // removed meanwhile, remove_worker() already requeued it.
  Slot* slot = find(worker);
  if (slot == nullptr) return;
  auto it = std::find(slot->in_flight.begin(), slot->in_flight.end(), seq);
  if (it == slot->in_flight.end()) return;
  slot->in_flight.erase(it);
  queue_.push_front(seq);
}

std::optional<Seq> Dispatcher::oldest_queued() const {
  if (queue_.empty()) return std::nullopt;
  return queue_.front();
}

void Dispatcher::drop_oldest() {
  if (!queue_.empty()) queue_.pop_front();
}

std::vector<Seq> Dispatcher::take_queue() {
  std::vector<Seq> taken(queue_.begin(), queue_.end());
  queue_.clear();
  return taken;
}

std::size_t Dispatcher::in_flight(WorkerId worker) const {
  const Slot* slot = find(worker);
  return slot == nullptr ? 0 : slot->in_flight.size();
}

bool Dispatcher::has_worker(WorkerId worker) const {
  return find(worker) != nullptr;
}

Dispatcher::Slot* Dispatcher::find(WorkerId worker) {
  for (Slot& slot : workers_) {
    if (slot.worker == worker) return &slot;
  }
  return nullptr;
}

const Dispatcher::Slot* Dispatcher::find(WorkerId worker) const {
  return const_cast<Dispatcher*>(this)->find(worker);
}

}  // namespace herd
