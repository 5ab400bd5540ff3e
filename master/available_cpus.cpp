#include "master/available_cpus.h"

#include <sched.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace herd {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    std::size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return text;
}

std::optional<long long> parse_integer(std::string_view text) {
  text = trim(text);
  long long value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<double> quota_over_period(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return std::nullopt;
  return static_cast<double>(quota) / static_cast<double>(period);
}

// mountinfo writes a space in a path as \040 (and tab, newline, backslash
// likewise, in octal).
std::string unescape_mount_path(std::string_view text) {
  std::string path;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      int code = 0;
      bool octal = true;
      for (std::size_t j = 1; j <= 3; ++j) {
        if (text[i + j] < '0' || text[i + j] > '7') {
          octal = false;
          break;
        }
        code = code * 8 + (text[i + j] - '0');
      }
      if (octal) {
        path += static_cast<char>(code);
        i += 3;
        continue;
      }
    }
    path += text[i];
  }
  return path;
}

struct Mount {
  std::string root;
  std::string mount_point;
};

// The first mount of `filesystem` ("cgroup2", or "cgroup" with `option` among
// its super options).
std::optional<Mount> find_mount(std::string_view mountinfo, std::string_view filesystem,
                                std::string_view option) {
  for (std::string_view line : split(mountinfo, '\n')) {
    std::vector<std::string_view> fields = split(trim(line), ' ');
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4) continue;
    if (dash[1] != filesystem) continue;
    if (!option.empty()) {
      std::vector<std::string_view> options = split(dash[3], ',');
      if (std::find(options.begin(), options.end(), option) == options.end()) continue;
    }
    return Mount{unescape_mount_path(fields[3]), unescape_mount_path(fields[4])};
  }
  return std::nullopt;
}

// The directory of cgroup `path` under `mount`, or nullopt if the path is
// outside what the mount shows.
std::optional<std::string> directory_of(const Mount& mount, std::string_view path) {
  if (path.empty() || path.front() != '/' || path.find("/..") != std::string_view::npos) {
    return std::nullopt;
  }
  if (mount.root != "/") {
    if (path.substr(0, mount.root.size()) != mount.root ||
        (path.size() > mount.root.size() && path[mount.root.size()] != '/')) {
      return std::nullopt;
    }
    path.remove_prefix(mount.root.size());
  }
  std::string directory = mount.mount_point;
  if (path.size() > 1) directory += std::string(path);
  while (directory.size() > 1 && directory.back() == '/') directory.pop_back();
  return directory;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) return std::nullopt;
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::size_t affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    int count = CPU_COUNT(&set);
    if (count > 0) return static_cast<std::size_t>(count);
  }
  unsigned count = std::thread::hardware_concurrency();
  return count == 0 ? 1 : count;
}

// The lowest quota from the process's cgroup up to the hierarchy's root: a
// limit on any ancestor binds too.
std::optional<double> cgroup_cpu_quota() {
  std::optional<std::string> cgroups = read_file("/proc/self/cgroup");
  std::optional<std::string> mountinfo = read_file("/proc/self/mountinfo");
  if (!cgroups || !mountinfo) return std::nullopt;
  std::optional<CpuCgroup> cgroup = find_cpu_cgroup(*cgroups, *mountinfo);
  if (!cgroup) return std::nullopt;

  std::optional<double> lowest;
  for (std::string directory = cgroup->directory;; directory.erase(directory.rfind('/'))) {
    std::optional<double> quota;
    if (cgroup->version == 2) {
      if (std::optional<std::string> text = read_file(directory + "/cpu.max")) {
        quota = parse_cpu_max(*text);
      }
    } else {
      std::optional<std::string> quota_text = read_file(directory + "/cpu.cfs_quota_us");
      std::optional<std::string> period_text = read_file(directory + "/cpu.cfs_period_us");
      if (quota_text && period_text) quota = parse_cfs_quota(*quota_text, *period_text);
    }
    if (quota && (!lowest || *quota < *lowest)) lowest = quota;
    if (directory.size() <= cgroup->mount_point.size()) break;
  }
  return lowest;
}

}  // namespace

std::optional<double> parse_cpu_max(std::string_view text) {
  std::vector<std::string_view> fields = split(trim(text), ' ');
  if (fields.size() != 2 || fields[0] == "max") return std::nullopt;
  return parse_cfs_quota(fields[0], fields[1]);  // the same two numbers
}

std::optional<double> parse_cfs_quota(std::string_view quota, std::string_view period) {
  std::optional<long long> quota_us = parse_integer(quota);
  std::optional<long long> period_us = parse_integer(period);
  if (!quota_us || !period_us) return std::nullopt;
  return quota_over_period(*quota_us, *period_us);
}

std::optional<CpuCgroup> find_cpu_cgroup(std::string_view proc_self_cgroup,
                                         std::string_view mountinfo) {
  std::optional<std::string_view> unified_path;
  std::optional<std::string_view> v1_cpu_path;
  for (std::string_view line : split(proc_self_cgroup, '\n')) {
    line = trim(line);
    std::size_t first = line.find(':');
    std::size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    std::string_view controllers = line.substr(first + 1, second - first - 1);
    std::string_view path = line.substr(second + 1);
    if (line.substr(0, first) == "0" && controllers.empty()) {
      unified_path = path;
    } else {
      std::vector<std::string_view> names = split(controllers, ',');
      if (std::find(names.begin(), names.end(), "cpu") != names.end()) v1_cpu_path = path;
    }
  }
  // A controller lives in one hierarchy only: on a hybrid system the cpu
  // controller is v1's, and the v2 tree beside it has no cpu.max.
  int version = v1_cpu_path ? 1 : 2;
  std::optional<std::string_view> path = v1_cpu_path ? v1_cpu_path : unified_path;
  if (!path) return std::nullopt;
  std::optional<Mount> mount =
      version == 1 ? find_mount(mountinfo, "cgroup", "cpu") : find_mount(mountinfo, "cgroup2", "");
  if (!mount) return std::nullopt;
  std::optional<std::string> directory = directory_of(*mount, *path);
  if (!directory) return std::nullopt;
  return CpuCgroup{version, *directory, mount->mount_point};
}

std::size_t usable_cpus(std::size_t affinity_cpus, std::optional<double> quota_cpus) {
  std::size_t count = std::max<std::size_t>(affinity_cpus, 1);
  if (quota_cpus && *quota_cpus > 0) {
    auto allowed = static_cast<std::size_t>(std::ceil(*quota_cpus - 1e-9));
    count = std::min(count, std::max<std::size_t>(allowed, 1));
  }
  return count;
}

std::size_t available_cpus() {
  return usable_cpus(affinity_cpus(), cgroup_cpu_quota());
}

}  // namespace herd
