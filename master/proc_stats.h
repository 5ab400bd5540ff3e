// Reading a worker's resource use from /proc/<pid>/stat: CPU time and RSS.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/clock.h"

namespace herd {

struct ProcSample {
  std::uint64_t cpu_ticks = 0;  // utime + stime, in clock ticks
  std::uint64_t rss_kb = 0;
};

// Parses the text of /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted from the last ')'.
std::optional<ProcSample> parse_proc_stat(std::string_view stat, std::uint64_t page_kb);

// Reads /proc/<pid>/stat; nullopt if the process is gone.
std::optional<ProcSample> read_proc_sample(pid_t pid);

// sysconf(_SC_CLK_TCK), read once: the unit of ProcSample::cpu_ticks.
long clock_ticks_per_second();

// CPU use between two samples as a percentage of one core.
double cpu_percent(std::uint64_t ticks_elapsed, Milliseconds wall_elapsed, long ticks_per_second);

}  // namespace herd
