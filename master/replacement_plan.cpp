#include "master/replacement_plan.h"

#include <algorithm>

namespace herd {

bool ReplacementPlan::start_reload(const std::vector<WorkerId>& workers) {
  if (reloading_) return false;
  reloading_ = true;
  for (WorkerId worker : workers) restart(worker);
  return true;
}

void ReplacementPlan::restart(WorkerId worker) {
  if (current_ && current_->old_worker == worker) return;
  if (std::find(queue_.begin(), queue_.end(), worker) != queue_.end()) return;
  queue_.push_back(worker);
}

std::optional<WorkerId> ReplacementPlan::next(const std::function<bool(WorkerId)>& serving) {
  if (current_) return std::nullopt;
  while (!queue_.empty()) {
    WorkerId worker = queue_.front();
    queue_.pop_front();
    if (!serving(worker)) continue;
    current_ = Current{worker, std::nullopt};
    return worker;
  }
  return std::nullopt;
}

void ReplacementPlan::started(WorkerId old_worker, WorkerId successor) {
  if (current_ && current_->old_worker == old_worker) current_->successor = successor;
}

std::optional<WorkerId> ReplacementPlan::successor_ready(WorkerId worker) {
  if (!current_ || current_->successor != worker) return std::nullopt;
  WorkerId old_worker = current_->old_worker;
  replaced_.push_back(old_worker);
  current_.reset();
  return old_worker;
}

ReplacementPlan::Outcome ReplacementPlan::fail(const std::string& why) {
  Outcome outcome{reloading_, replaced_, why, replacing()};
  reset();
  return outcome;
}

std::optional<ReplacementPlan::Outcome> ReplacementPlan::take_finished() {
  if (current_ || !queue_.empty()) return std::nullopt;
  if (replaced_.empty() && !reloading_) return std::nullopt;
  Outcome outcome{reloading_, replaced_, "", std::nullopt};
  reset();
  return outcome;
}

std::optional<WorkerId> ReplacementPlan::successor() const {
  return current_ ? current_->successor : std::nullopt;
}

std::optional<WorkerId> ReplacementPlan::replacing() const {
  return current_ ? std::optional<WorkerId>(current_->old_worker) : std::nullopt;
}

void ReplacementPlan::reset() {
  queue_.clear();
  current_.reset();
  replaced_.clear();
  reloading_ = false;
}

}  // namespace herd
