// NotifyPolicy: what the master tells systemd (Type=notify, sd_notify(3)) and
// when, as pure decisions. The master reports its progress and transitions;
// the policy answers with the notification to send, or nothing. Notifier
// (master/notifier.h) sends it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/clock.h"
#include "master/worker_table.h"

namespace herd {

// What a STATUS= line and the READY=1 decision need to know.
struct ServiceSnapshot {
  std::size_t ready_slots = 0;  // slots whose current worker is ready
  std::size_t target = 0;       // slots (--workers, or the last scale)
  std::size_t workers = 0;      // worker processes alive, in any state
  double rps = 0;               // requests per second, summed over workers
  std::size_t queued = 0;       // connections waiting in the master
  bool reloading = false;
  bool stopping = false;
};

// The snapshot of `workers` now, with what only the master knows.
ServiceSnapshot snapshot_of(const WorkerTable& workers, std::size_t queued, bool reloading,
                            bool stopping);

// One line for STATUS=: "4/4 workers ready, 120 req/s, 0 queued", with
// ", reloading" during a reload; "stopping, 3 workers left" once stopping.
std::string status_line(const ServiceSnapshot& snapshot);

class NotifyPolicy {
 public:
  // A STATUS= line alone goes out at most this often, and only when it changed.
  static constexpr Milliseconds kStatusInterval{1000};

  // On every supervision pass: READY=1 (with STATUS=) the first time every
  // slot has a ready worker; otherwise STATUS= when it is due.
  std::string progress(const ServiceSnapshot& snapshot, TimePoint now);
  // RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC, which systemd 253+
  // wants and older versions ignore). Nothing before the first READY=1:
  // systemd still sees the service starting then.
  std::string reload_started(const ServiceSnapshot& snapshot, TimePoint now,
                             std::uint64_t monotonic_usec);
  // READY=1 again once a reload is over, done or failed.
  std::string reload_finished(const ServiceSnapshot& snapshot, TimePoint now);
  // STOPPING=1, once. Afterwards only STATUS= lines: never READY=1 again.
  std::string stopping(const ServiceSnapshot& snapshot, TimePoint now);

 private:
  enum class Phase { kStarting, kReady, kReloading, kStopping };

  // `head` and the STATUS= line, which restarts the status interval.
  std::string with_status(const std::string& head, const ServiceSnapshot& snapshot, TimePoint now);

  Phase phase_ = Phase::kStarting;
  std::string last_status_;
  std::optional<TimePoint> last_status_at_;
};

}  // namespace herd
