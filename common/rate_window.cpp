#include "common/rate_window.h"

namespace herd {

void RateWindow::add(TimePoint at, std::uint64_t cumulative) {
  if (!samples_.empty() && cumulative < samples_.back().value) samples_.clear();
  samples_.push_back(Sample{at, cumulative});
  while (samples_.size() > 2 && at - samples_[1].at >= span_) samples_.pop_front();
}

double RateWindow::rate() const {
  if (samples_.size() < 2) return 0;
  const Sample& first = samples_.front();
  const Sample& last = samples_.back();
  double seconds = std::chrono::duration<double>(last.at - first.at).count();
  if (seconds <= 0) return 0;
  return static_cast<double>(last.value - first.value) / seconds;
}

}  // namespace herd
