// Monotonic and wall-clock time in the units the protocol uses.
#pragma once

#include <chrono>
#include <cstdint>

namespace herd {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Milliseconds = std::chrono::milliseconds;

inline std::int64_t unix_time_ms() {
  return std::chrono::duration_cast<Milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace herd
