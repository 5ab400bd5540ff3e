// The Prometheus text exposition (format 0.0.4) of the master and its
// workers, as a pure function of what the master knows: the admin endpoint's
// /metrics serves it, tests call it directly. The metric names and labels are
// listed in the README ("Operating herd").
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "master/control_handlers.h"
#include "master/worker_table.h"

namespace herd {

// The latency histogram's Prometheus buckets (`le`), in microseconds.
inline constexpr std::uint64_t kLatencyBucketsUs[] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

// `ticks_per_second` converts the workers' CPU time (clock ticks, from /proc).
std::string render_metrics(const MasterView& master, const WorkerTable& workers, TimePoint now,
                           long ticks_per_second);

// A label value with \, " and newline escaped as the exposition format asks.
std::string escape_label_value(std::string_view value);

}  // namespace herd
