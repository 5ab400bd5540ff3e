// How many CPUs this process may really use, for --workers' default: the CPUs
// in its affinity mask (taskset, cpusets), capped by a cgroup CPU quota (a
// container's CPU limit), rounded up. Node's os.cpus().length counts the
// machine's CPUs instead, which in a container on a large node starts one
// worker per node CPU whatever the container may use.
// The parsing is pure; available_cpus() reads /proc and /sys.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace herd {

// cgroup v2's cpu.max, "<quota> <period>" or "max <period>": the CPUs the
// quota allows (quota / period), nullopt when unlimited or malformed.
std::optional<double> parse_cpu_max(std::string_view text);

// cgroup v1's cpu.cfs_quota_us and cpu.cfs_period_us: as above; a quota of
// -1 means unlimited.
std::optional<double> parse_cfs_quota(std::string_view quota, std::string_view period);

// Where a cgroup hierarchy holding the CPU controller is, and where this
// process sits in it.
struct CpuCgroup {
  int version = 2;          // 2: cpu.max; 1: cpu.cfs_quota_us and cpu.cfs_period_us
  std::string directory;    // the process's own cgroup directory
  std::string mount_point;  // the hierarchy's mount point: the walk stops there
};

// From the texts of /proc/self/cgroup and /proc/self/mountinfo: the cgroup v2
// hierarchy if the process is in one, else v1's cpu controller; nullopt if
// neither is mounted. A mount of a subtree (a container without its own
// cgroup namespace) is mapped: its root is cut from the process's path.
std::optional<CpuCgroup> find_cpu_cgroup(std::string_view proc_self_cgroup,
                                         std::string_view mountinfo);

// The usable count: the affinity count capped by the quota, rounded up, at
// least 1.
std::size_t usable_cpus(std::size_t affinity_cpus, std::optional<double> quota_cpus);

// The CPUs this process may use now: sched_getaffinity() capped by the
// lowest CPU quota from its cgroup up to the hierarchy's root.
std::size_t available_cpus();

}  // namespace herd
