// ReplacementPlan: restarts, reloads and recycling, as one queue of workers
// to replace one at a time. Pure state: the master spawns each successor,
// drains the old worker once the successor is ready, and reports the outcome.
//
// Invariant: at most one replacement is in flight, so ready capacity dips by
// nothing (the old worker serves until its successor is ready) and a failed
// successor stops the run with every remaining old worker still serving.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "master/dispatcher.h"

namespace herd {

class ReplacementPlan {
 public:
  // A run is over: the queue ran dry, or a successor failed.
  struct Outcome {
    bool reload = false;                  // the run included a whole reload
    std::vector<WorkerId> replaced;       // old workers replaced, in order
    std::string failure;                  // empty on success
    std::optional<WorkerId> interrupted;  // the old worker whose replacement failed
  };

  // Queues a whole reload. Refused (false) while another reload runs.
  bool start_reload(const std::vector<WorkerId>& workers);
  // Queues one worker (restart, recycling); a worker already queued or being
  // replaced is not queued twice.
  void restart(WorkerId worker);

  // The next old worker to replace, skipping those `serving` says are gone
  // or going; nothing while a replacement is in flight or the queue is empty.
  std::optional<WorkerId> next(const std::function<bool(WorkerId)>& serving);
  // The master spawned `successor` for `old_worker`.
  void started(WorkerId old_worker, WorkerId successor);
  // `worker` said ready. If it is the successor in flight, returns the old
  // worker it replaces, which the master now drains.
  std::optional<WorkerId> successor_ready(WorkerId worker);
  // Stops the run: the queue is dropped, the old workers keep serving.
  Outcome fail(const std::string& why);
  // The run's outcome once nothing is queued or in flight (and something was
  // done or a reload was asked for); then the plan is idle again.
  std::optional<Outcome> take_finished();

  bool reloading() const { return reloading_; }
  bool in_flight() const { return current_.has_value(); }
  std::size_t queued() const { return queue_.size(); }
  std::optional<WorkerId> successor() const;
  std::optional<WorkerId> replacing() const;

 private:
  struct Current {
    WorkerId old_worker;
    std::optional<WorkerId> successor;
  };
  void reset();

  std::deque<WorkerId> queue_;
  std::optional<Current> current_;
  std::vector<WorkerId> replaced_;
  bool reloading_ = false;
};

}  // namespace herd
