#include "herdctl/reload_progress.h"

#include <algorithm>

#include "herdctl/format.h"

namespace herd::ctl {

using nlohmann::json;

std::optional<std::string> ReloadProgress::observe(const json& event) {
  if (!event.is_object() || finished()) return std::nullopt;
  std::string name = string_text(event, "event");
  if (name == "reload") return observe_reload(event);
  if (phase_ != Phase::kRunning) return std::nullopt;

  if (name == "restart" && string_text(event, "phase") == "start") {
    // One slot's turn; a `restart` queued behind the reload takes its turn too.
    for (const char* key : {"id", "successor"}) {
      if (std::optional<std::uint64_t> id = worker_id(event, key)) involved_.insert(*id);
    }
    return "worker " + count_text(event, "id") + " -> " + count_text(event, "successor") +
           " starting\n";
  }
  std::optional<std::uint64_t> id = worker_id(event, "id");
  if (!id || involved_.count(*id) == 0) return std::nullopt;
  if (name == "exit")
    return "worker " + std::to_string(*id) + " exited (" + exit_text(&event) + ")\n";
  if (name == "hung") return "worker " + std::to_string(*id) + " hung\n";
  return std::nullopt;
}

std::optional<std::string> ReloadProgress::observe_reload(const json& event) {
  std::string phase = string_text(event, "phase");
  if (phase_ == Phase::kWaitingForStart) {
    if (phase != "start") return std::nullopt;  // the end of an earlier reload
    phase_ = Phase::kRunning;
    const json* workers = field(event, "workers");
    if (workers == nullptr || !workers->is_array()) return "replacing the workers\n";
    to_replace_ = workers->size();
    for (const json& worker : *workers) {
      if (std::optional<std::uint64_t> id = worker_id(worker)) involved_.insert(*id);
    }
    if (workers->empty()) return "nothing to replace\n";
    return "replacing " + plural(workers->size(), "worker") + ": " + id_list_text(*workers) + "\n";
  }
  if (phase == "progress") {
    for (const char* key : {"replaced", "by"}) {
      if (std::optional<std::uint64_t> id = worker_id(event, key)) involved_.insert(*id);
    }
    ++replaced_;
    // The master's count when it sends one; it also knows of restarts queued
    // behind the reload.
    std::string left = count_text(event, "remaining");
    if (left == kMissing && to_replace_) {
      left = std::to_string(*to_replace_ - std::min(*to_replace_, replaced_));
    }
    return "worker " + count_text(event, "replaced") + " -> " + count_text(event, "by") +
           " ready (" + left + " left)\n";
  }
  if (phase == "done") {
    phase_ = Phase::kDone;
    const json* replaced = field(event, "replaced");
    if (replaced == nullptr || !replaced->is_array()) return "reload done\n";
    if (replaced->empty()) return "reload done: nothing replaced\n";
    return "reload done: replaced " + id_list_text(*replaced) + "\n";
  }
  if (phase == "failed") {
    phase_ = Phase::kFailed;
    const json* error = field(event, "error");
    error_ = error != nullptr && error->is_string() ? error->get<std::string>()
                                                    : "the master did not say why";
    return "reload failed: " + error_ + "\n";
  }
  return std::nullopt;
}

}  // namespace herd::ctl
