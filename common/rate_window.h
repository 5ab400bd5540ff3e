// RateWindow: a recent rate from samples of a cumulative counter (requests
// reported in heartbeats). Keeps the samples of the last `span`; the rate is
// the counter's growth across them divided by the time they cover.
#pragma once

#include <cstdint>
#include <deque>

#include "common/clock.h"

namespace herd {

class RateWindow {
 public:
  explicit RateWindow(Milliseconds span = Milliseconds{5000}) : span_(span) {}

  // Adds a sample; a counter that went backwards (a new process) restarts
  // the window. Samples older than the span are dropped, keeping one sample
  // at or beyond its start so the window stays covered. O(1) amortised.
  void add(TimePoint at, std::uint64_t cumulative);
  // Per second over the window; 0 with fewer than two samples.
  double rate() const;

 private:
  struct Sample {
    TimePoint at;
    std::uint64_t value;
  };
  Milliseconds span_;
  std::deque<Sample> samples_;
};

}  // namespace herd
