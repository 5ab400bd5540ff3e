// herdctl reload --wait: the progress of one reload, worded from the master's
// events. Pure, so the tests feed it event sequences.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace herd::ctl {

// Follows one reload through the events stream and words its progress, one
// line per step:
//
//   replacing 2 workers: 1 2
//   worker 1 -> 3 starting
//   worker 1 -> 3 ready (1 left)
//   worker 1 exited (code 0)
//   reload done: replaced 1 2            (or "reload failed: <error>")
//
// herdctl subscribes before it asks for the reload, and the master refuses a
// reload while another runs, so the first reload `start` seen is this one's:
// events before it belong to an earlier reload and are skipped, as is
// everything after its `done` or `failed`. Worker events (exit, hung) are shown
// only for the workers being replaced and their successors.
class ReloadProgress {
 public:
  // The line `event` adds to the progress, ending with '\n'; nullopt when the
  // event is not part of this reload.
  std::optional<std::string> observe(const nlohmann::json& event);

  bool started() const { return phase_ != Phase::kWaitingForStart; }
  // Over, either way: the `done` or `failed` event has been seen.
  bool finished() const { return phase_ == Phase::kDone || phase_ == Phase::kFailed; }
  bool failed() const { return phase_ == Phase::kFailed; }
  // The `error` of the failed event.
  const std::string& error() const { return error_; }

 private:
  enum class Phase { kWaitingForStart, kRunning, kDone, kFailed };

  std::optional<std::string> observe_reload(const nlohmann::json& event);

  Phase phase_ = Phase::kWaitingForStart;
  std::set<std::uint64_t> involved_;       // ids being replaced and their successors
  std::optional<std::size_t> to_replace_;  // as the start event listed them
  std::size_t replaced_ = 0;               // progress events seen
  std::string error_;
};

}  // namespace herd::ctl
