#include "herdctl/top.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <string_view>
#include <utility>

#include "herdctl/format.h"

namespace herd::ctl {
namespace {

using nlohmann::json;
namespace reply = proto::reply;

constexpr std::array<std::string_view, 8> kBlocks{"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
// A sparkline narrower than this says nothing: the column is left out.
constexpr std::size_t kMinSparklineWidth = 4;
constexpr std::string_view kMissing = "-";

const json& object_field(const json& object, const char* key) {
  static const json kNone = json::object();
  if (!object.is_object()) return kNone;
  auto found = object.find(key);
  return found != object.end() && found->is_object() ? *found : kNone;
}

// The worker objects of a reply, by id.
std::vector<const json*> workers_by_id(const json& reply) {
  std::vector<const json*> workers;
  if (!reply.is_object()) return workers;
  auto found = reply.find(reply::kWorkers);
  if (found == reply.end() || !found->is_array()) return workers;
  for (const json& worker : *found) workers.push_back(&worker);
  std::stable_sort(workers.begin(), workers.end(), [](const json* left, const json* right) {
    return number_field(*left, reply::kId).value_or(0) <
           number_field(*right, reply::kId).value_or(0);
  });
  return workers;
}

// The rps of every worker with an id in one `stats` reply.
std::map<double, double> rps_by_id(const json& stats) {
  std::map<double, double> rates;
  for (const json* worker : workers_by_id(stats)) {
    std::optional<double> id = number_field(*worker, reply::kId);
    std::optional<double> rps = number_field(*worker, reply::kRps);
    if (id && rps) rates[*id] = *rps;
  }
  return rates;
}

// "1s", "500ms", "1.5s", "5m 0s".
std::string interval_text(std::uint64_t milliseconds) {
  if (milliseconds < 1000) return std::to_string(milliseconds) + "ms";
  if (milliseconds % 1000 == 0) return format_duration_ms(static_cast<double>(milliseconds));
  std::array<char, 32> text{};
  std::snprintf(text.data(), text.size(), "%.1fs", static_cast<double>(milliseconds) / 1000.0);
  return text.data();
}

std::string rate_text(const json& object) {
  std::optional<double> rps = number_field(object, reply::kRps);
  return rps ? format_rate(*rps) : std::string(kMissing);
}

std::string percent_text(const json& object) {
  std::optional<double> cpu = number_field(object, reply::kCpuPct);
  return cpu ? format_percent(*cpu) : std::string(kMissing);
}

// "herd 0.1.0  pid 4043  running  listen 0.0.0.0:3000  up 5s  workers 2/2 ready
// pending 0  connections 99": `herdctl status`'s summary without the restarts,
// which the total row has, so it fits 120 columns.
std::string master_line(const json& status) {
  const json& master = object_field(status, reply::kMaster);
  std::vector<const json*> workers = workers_by_id(status);
  std::size_t ready = std::count_if(workers.begin(), workers.end(), [](const json* worker) {
    return string_text(*worker, reply::kState) == "ready";
  });
  std::optional<double> uptime_ms = number_field(master, reply::kUptimeMs);
  return "herd " + string_text(master, reply::kVersion) + "  pid " +
         count_text(master, reply::kPid) + "  " + string_text(master, reply::kState) + "  listen " +
         string_text(master, reply::kListen) + "  up " +
         (uptime_ms ? format_duration_ms(*uptime_ms) : std::string(kMissing)) + "  workers " +
         std::to_string(ready) + "/" + count_text(master, reply::kWorkersTarget) +
         " ready  pending " + count_text(master, reply::kPending) + "  connections " +
         count_text(master, reply::kConnectionsTotal);
}

// The first `width` columns of `line`, cut between characters.
std::string truncate_to_width(const std::string& line, std::size_t width) {
  std::size_t characters = 0;
  for (std::size_t byte = 0; byte < line.size(); ++byte) {
    if ((static_cast<unsigned char>(line[byte]) & 0xC0) == 0x80) continue;
    if (characters == width) return line.substr(0, byte);
    ++characters;
  }
  return line;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

// Sums `key` over `workers`; nullopt when no worker has it.
std::optional<double> sum_of(const std::vector<const json*>& workers, const char* key) {
  std::optional<double> sum;
  for (const json* worker : workers) {
    if (std::optional<double> value = number_field(*worker, key)) sum = sum.value_or(0) + *value;
  }
  return sum;
}

// The table of the newest sample: its title line, one line per worker and the
// total line, each column as wide as its widest cell, and the sparkline column
// as wide as `width` leaves.
struct Table {
  std::string title;
  std::vector<std::string> workers;
  std::string total;
};

const std::vector<Column> kColumns{
    {"id", Align::kRight},       {"pid", Align::kRight},    {"state", Align::kLeft},
    {"restarts", Align::kRight}, {"active", Align::kRight}, {"rss", Align::kRight},
    {"cpu", Align::kRight},      {"p99", Align::kRight},    {"rps", Align::kRight},
};

Table render_table_of(const std::deque<TopSample>& samples, const TopView& view,
                      std::size_t width) {
  const TopSample& newest = samples.back();
  std::vector<const json*> workers = workers_by_id(newest.stats);
  const json& total = object_field(newest.stats, reply::kTotal);
  const json& master = object_field(newest.status, reply::kMaster);

  std::vector<std::vector<std::string>> rows;
  for (const json* worker : workers) {
    rows.push_back({count_text(*worker, reply::kId), count_text(*worker, reply::kPid),
                    string_text(*worker, reply::kState), count_text(*worker, reply::kRestarts),
                    count_text(*worker, reply::kActiveConnections),
                    kib_text(*worker, reply::kRssKb), percent_text(*worker),
                    latency_text(*worker, reply::kP99), rate_text(*worker)});
  }
  std::optional<double> active = sum_of(workers, reply::kActiveConnections);
  std::optional<double> rss_kb = sum_of(workers, reply::kRssKb);
  std::optional<double> cpu = sum_of(workers, reply::kCpuPct);
  // The master's count also covers slots with no worker right now.
  std::string restarts = count_text(master, reply::kRestartsTotal);
  if (restarts == kMissing) {
    std::optional<double> sum = sum_of(workers, reply::kRestarts);
    if (sum) restarts = std::to_string(static_cast<std::uint64_t>(*sum));
  }
  rows.push_back(
      {"total", "", "", restarts,
       active ? std::to_string(static_cast<std::uint64_t>(*active)) : std::string(kMissing),
       rss_kb && *rss_kb > 0 ? format_bytes(*rss_kb * 1024.0) : std::string(kMissing),
       cpu ? format_percent(*cpu) : std::string(kMissing), latency_text(total, reply::kP99),
       rate_text(total)});

  // The other columns first: the sparkline gets the room they leave.
  std::size_t used = 0;
  for (std::size_t column = 0; column < kColumns.size(); ++column) {
    std::size_t widest = display_width(kColumns[column].title);
    for (const auto& row : rows) widest = std::max(widest, display_width(row[column]));
    used += widest + 2;  // the separator before the next column
  }
  std::size_t sparkline_width = width > used ? std::min(width - used, kTopHistory) : 0;

  std::vector<Column> columns = kColumns;
  if (sparkline_width >= kMinSparklineWidth) {
    // The last `sparkline_width` samples, padded on the left while there are
    // fewer, so every row's newest block is in the same column.
    std::size_t shown = std::min(sparkline_width, samples.size());
    std::size_t padding = sparkline_width - shown;
    auto window_begin = samples.end() - static_cast<std::ptrdiff_t>(shown);
    std::vector<std::map<double, double>> rates;
    std::vector<std::optional<double>> totals(padding);
    for (auto sample = window_begin; sample != samples.end(); ++sample) {
      rates.push_back(rps_by_id(sample->stats));
      totals.push_back(number_field(object_field(sample->stats, reply::kTotal), reply::kRps));
    }
    double scale = 0;
    for (const auto& rate : rates) {
      for (const auto& [id, rps] : rate) scale = std::max(scale, rps);
    }
    for (std::size_t row = 0; row < workers.size(); ++row) {
      std::vector<std::optional<double>> values(padding);
      std::optional<double> id = number_field(*workers[row], "id");
      for (const auto& rate : rates) {
        auto found = id ? rate.find(*id) : rate.end();
        values.push_back(found != rate.end() ? std::optional<double>(found->second) : std::nullopt);
      }
      rows[row].push_back(sparkline(values, scale));
    }
    double total_scale = 0;
    for (const auto& value : totals) total_scale = std::max(total_scale, value.value_or(0));
    rows.back().push_back(sparkline(totals, total_scale));
    columns.push_back({"last " + interval_text(view.interval_ms * sparkline_width), Align::kLeft});
  }

  std::vector<std::string> lines = split_lines(render_table(columns, rows));
  Table table;
  table.title = lines.front();
  table.workers.assign(lines.begin() + 1, lines.end() - 1);
  table.total = lines.back();
  return table;
}

}  // namespace

void TopHistory::add(TopSample sample) {
  if (!samples_.empty()) {
    std::optional<double> previous =
        number_field(object_field(samples_.back().status, reply::kMaster), reply::kPid);
    std::optional<double> current =
        number_field(object_field(sample.status, reply::kMaster), reply::kPid);
    if (previous != current) samples_.clear();
  }
  samples_.push_back(std::move(sample));
  while (samples_.size() > kTopHistory) samples_.pop_front();
}

std::string sparkline(const std::vector<std::optional<double>>& values, double scale) {
  std::string line;
  for (const std::optional<double>& value : values) {
    if (!value) {
      line += ' ';
      continue;
    }
    std::size_t level = 0;
    if (*value > 0 && scale > 0) {
      // Any traffic at all is at least the second block, so "idle" and "a
      // little" look different.
      double scaled = std::round(*value / scale * static_cast<double>(kBlocks.size() - 1));
      level = static_cast<std::size_t>(
          std::clamp(scaled, 1.0, static_cast<double>(kBlocks.size() - 1)));
    }
    line += kBlocks[level];
  }
  return line;
}

std::vector<std::string> render_top(const std::deque<TopSample>& samples, const TopView& view,
                                    ScreenSize size) {
  std::vector<std::string> head;
  if (view.connection_error) {
    head.push_back("NOT CONNECTED: " + *view.connection_error);
    // Plain frames come every interval anyway, or not at all after the last.
    std::string retrying =
        view.mode == TopMode::kLive ? "retrying every " + interval_text(view.interval_ms) : "";
    std::string stale = samples.empty() ? "" : "below is the master's last answer";
    if (!retrying.empty() || !stale.empty()) {
      head.push_back(retrying + (!retrying.empty() && !stale.empty() ? "; " : "") + stale);
    }
  } else if (samples.empty()) {
    head.push_back("waiting for the master at " + view.socket_path);
  }

  std::vector<std::string> workers;
  std::vector<std::string> table_frame;  // the title and total lines
  std::vector<std::string> notes;        // after the table, dropped first
  if (!samples.empty()) {
    const TopSample& newest = samples.back();
    head.push_back(master_line(newest.status));
    Table table = render_table_of(samples, view, size.width);
    table_frame = {table.title, table.total};
    workers = table.workers;
    if (workers.empty()) notes.push_back("no workers");
    for (std::string& line : split_lines(format_backoff_slots(newest.status))) {
      notes.push_back(std::move(line));
    }
  }
  std::vector<std::string> footer;
  if (view.mode == TopMode::kLive) {
    footer = {"", "q quit   refresh " + interval_text(view.interval_ms) + "   " + view.socket_path};
  }

  // Room for the workers once the head and the table's frame are in; the
  // notes, then the footer, take what the workers leave.
  std::size_t fixed = head.size() + table_frame.size();
  std::size_t room = size.height > fixed ? size.height - fixed : 0;
  if (workers.size() > room) {
    std::size_t hidden = workers.size() - (room > 0 ? room - 1 : 0);
    workers.resize(room > 0 ? room - 1 : 0);
    if (room > 0) {
      std::string more = std::to_string(hidden) + " more worker" + (hidden == 1 ? "" : "s");
      workers.push_back("(" + more + ")");
    }
  }
  room -= std::min(room, workers.size());

  std::vector<std::string> lines = head;
  if (!table_frame.empty()) {
    lines.push_back(table_frame.front());
    lines.insert(lines.end(), workers.begin(), workers.end());
    lines.push_back(table_frame.back());
  }
  std::size_t notes_shown = std::min(room, notes.size());
  lines.insert(lines.end(), notes.begin(),
               notes.begin() + static_cast<std::ptrdiff_t>(notes_shown));
  room -= notes_shown;
  if (room >= footer.size()) lines.insert(lines.end(), footer.begin(), footer.end());

  if (lines.size() > size.height) lines.resize(size.height);
  for (std::string& line : lines) line = truncate_to_width(line, size.width);
  return lines;
}

}  // namespace herd::ctl
