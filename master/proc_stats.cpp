#include "master/proc_stats.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <string>

#include "common/unique_fd.h"

namespace herd {

long clock_ticks_per_second() {
  static const long ticks = ::sysconf(_SC_CLK_TCK);
  return ticks;
}

std::optional<ProcSample> parse_proc_stat(std::string_view stat, std::uint64_t page_kb) {
  std::size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);

  // Fields after the command, counted from 3 (state): utime 14, stime 15, rss 24.
  std::uint64_t utime = 0, stime = 0, rss_pages = 0;
  int field = 2;
  std::size_t position = 0;
  while (position < rest.size() && field < 24) {
    while (position < rest.size() && (rest[position] == ' ' || rest[position] == '\n')) ++position;
    std::size_t end = rest.find_first_of(" \n", position);
    if (end == std::string_view::npos) end = rest.size();
    ++field;
    std::string_view token = rest.substr(position, end - position);
    std::uint64_t* target = field == 14   ? &utime
                            : field == 15 ? &stime
                            : field == 24 ? &rss_pages
                                          : nullptr;
    if (target != nullptr) {
      auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), *target);
      if (ec != std::errc{} || ptr != token.data() + token.size()) return std::nullopt;
    }
    position = end;
  }
  if (field < 24) return std::nullopt;
  return ProcSample{utime + stime, rss_pages * page_kb};
}

std::optional<ProcSample> read_proc_sample(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buffer[1024];
  ssize_t length = ::read(fd.get(), buffer, sizeof(buffer));
  if (length <= 0) return std::nullopt;
  static const std::uint64_t page_kb = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)) / 1024;
  return parse_proc_stat(std::string_view(buffer, static_cast<std::size_t>(length)), page_kb);
}

double cpu_percent(std::uint64_t ticks_elapsed, Milliseconds wall_elapsed, long ticks_per_second) {
  if (wall_elapsed.count() <= 0 || ticks_per_second <= 0) return 0;
  double cpu_seconds = static_cast<double>(ticks_elapsed) / static_cast<double>(ticks_per_second);
  return 100.0 * cpu_seconds / (static_cast<double>(wall_elapsed.count()) / 1000.0);
}

}  // namespace herd
