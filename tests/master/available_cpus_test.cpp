#include "master/available_cpus.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>

namespace herd {
namespace {

// Lines as Linux writes them in /proc/self/mountinfo.
constexpr const char* kUnifiedMountinfo =
    "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "25 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";
constexpr const char* kHybridMountinfo =
    "25 21 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755\n"
    "26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:5 - cgroup2 "
    "cgroup2 rw,nsdelegate\n"
    "29 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:9 - cgroup "
    "cgroup rw,cpu,cpuacct\n"
    "30 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup "
    "cgroup rw,memory\n";

TEST(ParseCpuMaxTest, QuotaOverPeriodIsTheCpuCount) {
  EXPECT_EQ(parse_cpu_max("200000 100000\n"), 2.0);
  EXPECT_EQ(parse_cpu_max("50000 100000"), 0.5);
}

TEST(ParseCpuMaxTest, MaxMeansNoLimit) {
  EXPECT_EQ(parse_cpu_max("max 100000\n"), std::nullopt);
}

TEST(ParseCpuMaxTest, MalformedTextIsNoLimit) {
  EXPECT_EQ(parse_cpu_max(""), std::nullopt);
  EXPECT_EQ(parse_cpu_max("200000"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("abc 100000"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("200000 0"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("200000 100000 7"), std::nullopt);
}

TEST(ParseCfsQuotaTest, MinusOneIsNoLimitAndAQuotaIsCpus) {
  EXPECT_EQ(parse_cfs_quota("-1\n", "100000\n"), std::nullopt);
  EXPECT_EQ(parse_cfs_quota("150000\n", "100000\n"), 1.5);
  EXPECT_EQ(parse_cfs_quota("x", "100000"), std::nullopt);
}

TEST(FindCpuCgroupTest, UnifiedHierarchyGivesTheProcessDirectory) {
  std::optional<CpuCgroup> cgroup =
      find_cpu_cgroup("0::/system.slice/herd.service\n", kUnifiedMountinfo);
  ASSERT_TRUE(cgroup);
  EXPECT_EQ(cgroup->version, 2);
  EXPECT_EQ(cgroup->directory, "/sys/fs/cgroup/system.slice/herd.service");
  EXPECT_EQ(cgroup->mount_point, "/sys/fs/cgroup");
}

TEST(FindCpuCgroupTest, RootCgroupIsTheMountPoint) {
  std::optional<CpuCgroup> cgroup = find_cpu_cgroup("0::/\n", kUnifiedMountinfo);
  ASSERT_TRUE(cgroup);
  EXPECT_EQ(cgroup->directory, "/sys/fs/cgroup");
}

// On a hybrid system the cpu controller is v1's even though a v2 tree exists.
TEST(FindCpuCgroupTest, HybridSystemUsesTheV1CpuController) {
  std::optional<CpuCgroup> cgroup =
      find_cpu_cgroup("4:memory:/job\n3:cpu,cpuacct:/job/herd\n0::/\n", kHybridMountinfo);
  ASSERT_TRUE(cgroup);
  EXPECT_EQ(cgroup->version, 1);
  EXPECT_EQ(cgroup->directory, "/sys/fs/cgroup/cpu,cpuacct/job/herd");
  EXPECT_EQ(cgroup->mount_point, "/sys/fs/cgroup/cpu,cpuacct");
}

// A container without its own cgroup namespace sees a mount of its subtree:
// the mount's root is cut from the process's path.
TEST(FindCpuCgroupTest, MountOfASubtreeIsMapped) {
  std::string mountinfo =
      "30 25 0:26 /kubepods/pod1/abc /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n";
  std::optional<CpuCgroup> cgroup = find_cpu_cgroup("0::/kubepods/pod1/abc\n", mountinfo);
  ASSERT_TRUE(cgroup);
  EXPECT_EQ(cgroup->directory, "/sys/fs/cgroup");
  EXPECT_FALSE(find_cpu_cgroup("0::/elsewhere\n", mountinfo)) << "outside what the mount shows";
  EXPECT_FALSE(find_cpu_cgroup("0::/kubepods/pod10\n",
                               "30 25 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 c rw\n"))
      << "a sibling whose name starts alike is not inside";
}

TEST(FindCpuCgroupTest, EscapedMountPointIsDecoded) {
  std::optional<CpuCgroup> cgroup =
      find_cpu_cgroup("0::/a\n", "30 25 0:26 / /mnt/my\\040cgroups rw - cgroup2 cgroup2 rw\n");
  ASSERT_TRUE(cgroup);
  EXPECT_EQ(cgroup->directory, "/mnt/my cgroups/a");
}

TEST(FindCpuCgroupTest, NothingMountedOrNothingKnownIsNoCgroup) {
  EXPECT_FALSE(find_cpu_cgroup("0::/a\n", "22 1 0:21 / /proc rw - proc proc rw\n"));
  EXPECT_FALSE(find_cpu_cgroup("", kUnifiedMountinfo));
  EXPECT_FALSE(find_cpu_cgroup("garbage\n", kUnifiedMountinfo));
  EXPECT_FALSE(find_cpu_cgroup("0::/../outside\n", kUnifiedMountinfo));
}

TEST(UsableCpusTest, QuotaCapsTheAffinityRoundedUp) {
  EXPECT_EQ(usable_cpus(64, 2.0), 2u);
  EXPECT_EQ(usable_cpus(64, 1.5), 2u);
  EXPECT_EQ(usable_cpus(64, 0.25), 1u);
  EXPECT_EQ(usable_cpus(4, 8.0), 4u) << "a quota above the affinity adds nothing";
  EXPECT_EQ(usable_cpus(4, std::nullopt), 4u);
  EXPECT_EQ(usable_cpus(0, std::nullopt), 1u);
}

TEST(AvailableCpusTest, IsAtLeastOneAndAtMostTheMachinesCpus) {
  std::size_t cpus = available_cpus();
  EXPECT_GE(cpus, 1u);
  EXPECT_LE(cpus, static_cast<std::size_t>(std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF))));
}

}  // namespace
}  // namespace herd
