// herdctl top's pure half: keeps the last samples of the master's `status`
// and `stats` replies and lays them out as the lines of one screen. No I/O and
// no clock reads: herdctl_top_shell polls the master, reads the keyboard and
// draws what render_top() returns, and the tests feed samples directly.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace herd::ctl {

// The most samples a sparkline shows: 20 s at the default interval.
inline constexpr std::size_t kTopHistory = 20;

// One poll of the master: both replies, asked for together on one connection.
struct TopSample {
  nlohmann::json status;  // the reply to {"cmd":"status"}: the master and the slots
  nlohmann::json stats;   // the reply to {"cmd":"stats"}: the workers and the total
};

// The last kTopHistory samples, oldest first. A sample from another master
// (another pid: it was restarted) starts the history over, because the new
// master numbers its workers from 1 again.
class TopHistory {
 public:
  void add(TopSample sample);
  const std::deque<TopSample>& samples() const { return samples_; }

 private:
  std::deque<TopSample> samples_;
};

// One block per value, "▁▂▃▄▅▆▇█", scaled so that `scale` is a full block and 0
// (or less) the lowest; a missing value (the worker did not exist then) is a
// space. With a `scale` of 0 or less every value is the lowest block.
std::string sparkline(const std::vector<std::optional<double>>& values, double scale);

enum class TopMode {
  kLive,   // the terminal view: ends with a blank line and the keys
  kPlain,  // one frame of several for a pipe: no keys, no blank line inside
};

struct TopView {
  TopMode mode = TopMode::kLive;
  std::string socket_path;
  std::uint64_t interval_ms = 1000;
  // Set while the master does not answer: why. The last sample, if there is
  // one, is still shown under the message, marked as such.
  std::optional<std::string> connection_error;
};

// In character cells. A pipe has no size: kUnlimited.
struct ScreenSize {
  std::size_t width = 80;
  std::size_t height = 24;
};
inline constexpr ScreenSize kUnlimited{std::numeric_limits<std::size_t>::max(),
                                       std::numeric_limits<std::size_t>::max()};

// The lines of one frame, without '\n': the master's summary, one row per
// worker of the last sample (by id) and a total row. The columns are id,
// pid, state, restarts, active (connections), rss, cpu, p99, rps, and
// last, as wide as the screen leaves (at most kTopHistory), the rps of the
// recent samples as a sparkline. The workers' sparklines share one scale, the
// busiest worker's peak, so an uneven spread shows; the total row has its own.
//
// At most `size.height` lines and none wider than `size.width` columns (see
// display_width()): when the workers do not fit, the last visible row says how
// many more there are, and the total row stays.
std::vector<std::string> render_top(const std::deque<TopSample>& samples, const TopView& view,
                                    ScreenSize size);

}  // namespace herd::ctl
