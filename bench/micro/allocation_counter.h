// Counts heap allocations made by the calling thread, through a replacement of
// the global operator new linked into the benchmark binary only. Benchmarks
// report allocations per item with it: allocations are the cost a
// micro-benchmark most easily hides behind a warm allocator.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>

namespace herd::bench {

// operator new calls made by this thread so far (all sizes; new[] and the
// nothrow forms included, the over-aligned forms not).
std::uint64_t allocations_on_this_thread();

// Sets the "allocs/item" counter: allocations since `before` (a value of
// allocations_on_this_thread() taken just before the timed loop) per item
// processed.
inline void report_allocations_per_item(benchmark::State& state, std::uint64_t before,
                                        std::int64_t items) {
  std::uint64_t allocations = allocations_on_this_thread() - before;
  state.counters["allocs/item"] =
      items > 0 ? static_cast<double>(allocations) / static_cast<double>(items) : 0.0;
}

}  // namespace herd::bench
