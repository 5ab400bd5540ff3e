#include "herdctl/format.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>  // sigabbrev_np
#include <ctime>
#include <string_view>

namespace herd::ctl {
namespace {

using nlohmann::json;
namespace reply = proto::reply;

// snprintf into a std::string; every format here is short and fixed.
template <typename... Args>
std::string printf_string(const char* format, Args... args) {
  std::array<char, 64> buffer{};
  int length = std::snprintf(buffer.data(), buffer.size(), format, args...);
  if (length < 0) return kMissing;
  return std::string(buffer.data(),
                     std::min<std::size_t>(static_cast<std::size_t>(length), buffer.size() - 1));
}

// Integers as the master sent them ("1234"), anything else as "-".
std::string integer_text(const json* value) {
  if (value == nullptr) return kMissing;
  if (value->is_number_unsigned()) return std::to_string(value->get<std::uint64_t>());
  if (value->is_number_integer()) return std::to_string(value->get<std::int64_t>());
  if (value->is_number_float()) return printf_string("%.0f", value->get<double>());
  return kMissing;
}

// Applies `format` to the number at `key`, or "-" when there is none.
template <typename Format>
std::string unit_text(const json& object, std::string_view key, Format format) {
  std::optional<double> value = number_field(object, key);
  return value ? format(*value) : kMissing;
}

std::string response_text(const json& object, std::string_view class_name) {
  const json* responses = field(object, reply::kResponses);
  return responses == nullptr ? kMissing : count_text(*responses, class_name);
}

// "SIGKILL" for 9; the master may also send a name already.
std::string signal_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (!value.is_number_integer()) return value.dump();
  int signal = value.get<int>();
  const char* abbreviation = ::sigabbrev_np(signal);
  if (abbreviation == nullptr) return std::to_string(signal);
  return std::string("SIG") + abbreviation;
}

// "2025-11-25 07:30:01.123" for a Unix time in milliseconds.
std::string wall_time_text(std::int64_t unix_ms, TimeZone zone) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  long millis = static_cast<long>(unix_ms % 1000);
  if (millis < 0) {
    millis += 1000;
    seconds -= 1;
  }
  std::tm parts{};
  bool converted = zone == TimeZone::kUtc ? ::gmtime_r(&seconds, &parts) != nullptr
                                          : ::localtime_r(&seconds, &parts) != nullptr;
  if (!converted) return std::to_string(unix_ms);
  std::array<char, 32> date{};
  std::strftime(date.data(), date.size(), "%Y-%m-%d %H:%M:%S", &parts);
  return printf_string("%s.%03ld", date.data(), millis);
}

const std::vector<json>& workers_of(const json& reply) {
  static const std::vector<json> kNone;
  const json* workers = field(reply, reply::kWorkers);
  if (workers == nullptr || !workers->is_array()) return kNone;
  return workers->get_ref<const json::array_t&>();
}

// Workers by id, so the table reads in spawn order whatever the master sent.
std::vector<json> sorted_workers(const json& reply) {
  std::vector<json> workers = workers_of(reply);
  std::stable_sort(workers.begin(), workers.end(), [](const json& left, const json& right) {
    return number_field(left, reply::kId).value_or(0) < number_field(right, reply::kId).value_or(0);
  });
  return workers;
}

std::string join_ids(const json& ids, std::string_view separator) {
  std::string text;
  for (const json& id : ids) {
    if (!text.empty()) text += separator;
    text += integer_text(&id);
  }
  return text;
}

// "1, 2, 5".
std::string ids_text(const json& ids) {
  return join_ids(ids, ", ");
}

// Lines of "label:  value" with the values in one column.
std::string render_details(const std::vector<std::pair<std::string, std::string>>& details) {
  std::size_t width = 0;
  for (const auto& [label, value] : details) width = std::max(width, label.size() + 1);
  std::string text;
  for (const auto& [label, value] : details) {
    std::string key = label + ":";
    key.resize(width, ' ');
    text += key + "  " + value + "\n";
  }
  return text;
}

// A worker's line, safe for a terminal: control characters (escape
// sequences included) as \xHH; tabs stay. The line is valid UTF-8, so the
// C1 controls (U+0080..U+009F, CSI among them) are 0xC2 0x80..0x9F.
std::string printable_line(const std::string& text) {
  std::string shown;
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto byte = static_cast<unsigned char>(text[i]);
    auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    if ((byte < 0x20 && byte != '\t') || byte == 0x7F) {
      shown += printf_string("\\x%02x", byte);
    } else if (byte == 0xC2 && next >= 0x80 && next <= 0x9F) {
      shown += printf_string("\\u%04x", next);
      ++i;
    } else {
      shown += text[i];
    }
  }
  return shown;
}

// "<heading>:" then "  2025-11-25 07:30:01.123  stderr  the line" for each
// of `lines` (the `last_lines` of a worker), or "<heading>: none".
std::string output_lines_text(const std::string& heading, const json& lines, TimeZone zone) {
  if (!lines.is_array() || lines.empty()) return heading + ": none\n";
  std::string text = heading + ":\n";
  for (const json& line : lines) {
    std::string time = kMissing;
    if (const json* unix_ms = field(line, reply::kTime); unix_ms && unix_ms->is_number()) {
      time = wall_time_text(unix_ms->get<std::int64_t>(), zone);
    }
    const json* cut = field(line, reply::kCut);
    const json* content = field(line, reply::kLine);
    text += "  " + time + "  " + string_text(line, reply::kStream) + "  " +
            printable_line(content != nullptr && content->is_string() ? content->get<std::string>()
                                                                      : std::string()) +
            (cut != nullptr && *cut == true ? " [cut]" : "") + "\n";
  }
  return text;
}

// The last lines of a worker (`stats ID`) and of its slot's last worker to
// exit, when the reply has them.
std::string worker_output_text(const json& worker, TimeZone zone) {
  std::string text;
  if (const json* lines = field(worker, reply::kLastLines)) {
    text += "\n" + output_lines_text("last lines", *lines, zone);
  }
  const json* last_exit = field(worker, reply::kLastExit);
  if (const json* lines = last_exit ? field(*last_exit, reply::kLastLines) : nullptr) {
    text += "\n" + output_lines_text("last lines of worker " + count_text(*last_exit, reply::kId) +
                                         " (pid " + count_text(*last_exit, reply::kPid) + ", " +
                                         exit_text(last_exit) + ")",
                                     *lines, zone);
  }
  return text;
}

std::vector<std::pair<std::string, std::string>> traffic_details(const json& object) {
  return {
      {"requests", count_text(object, reply::kRequests)},
      {"rps", unit_text(object, reply::kRps, format_rate)},
      {"responses", "2xx " + response_text(object, "2xx") + "  3xx " +
                        response_text(object, "3xx") + "  4xx " + response_text(object, "4xx") +
                        "  5xx " + response_text(object, "5xx")},
      {"latency", "p50 " + latency_text(object, reply::kP50) + "  p90 " +
                      latency_text(object, reply::kP90) + "  p99 " +
                      latency_text(object, reply::kP99) + "  max " +
                      latency_text(object, reply::kMax)},
      {"bytes in", unit_text(object, reply::kBytesIn, format_bytes)},
      {"bytes out", unit_text(object, reply::kBytesOut, format_bytes)},
  };
}

}  // namespace

// ---- shared by the views ------------------------------------------------------

const json* field(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto found = object.find(key);
  if (found == object.end() || found->is_null()) return nullptr;
  return &*found;
}

std::string exit_text(const json* last_exit) {
  if (last_exit == nullptr || !last_exit->is_object()) return kMissing;
  if (const json* signal = field(*last_exit, reply::kSignal)) {
    return "signal " + signal_text(*signal);
  }
  if (field(*last_exit, reply::kCode) != nullptr) {
    return "code " + count_text(*last_exit, reply::kCode);
  }
  return kMissing;
}

std::string id_list_text(const json& ids) {
  return join_ids(ids, " ");
}

std::optional<std::uint64_t> worker_id(const json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(value.get<std::int64_t>());
  }
  return std::nullopt;
}

std::optional<std::uint64_t> worker_id(const json& object, std::string_view key) {
  const json* value = field(object, key);
  return value == nullptr ? std::nullopt : worker_id(*value);
}

std::string plural(std::size_t count, const char* noun) {
  return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

// ---- human units --------------------------------------------------------------

std::string format_duration_ms(double milliseconds) {
  if (!(milliseconds > 0)) milliseconds = 0;  // also catches NaN
  auto seconds = static_cast<std::uint64_t>(milliseconds / 1000.0);
  constexpr std::uint64_t kMinute = 60, kHour = 60 * kMinute, kDay = 24 * kHour;
  if (seconds < kMinute) return std::to_string(seconds) + "s";
  if (seconds < kHour) {
    return std::to_string(seconds / kMinute) + "m " + std::to_string(seconds % kMinute) + "s";
  }
  if (seconds < kDay) {
    return std::to_string(seconds / kHour) + "h " + std::to_string(seconds % kHour / kMinute) + "m";
  }
  return std::to_string(seconds / kDay) + "d " + std::to_string(seconds % kDay / kHour) + "h";
}

std::string format_bytes(double bytes) {
  if (!(bytes > 0)) bytes = 0;
  if (bytes < 1024.0) return printf_string("%.0f B", bytes);
  static constexpr std::array<const char*, 5> kUnits{"KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = bytes / 1024.0;
  std::size_t unit = 0;
  // Promote before "%.1f" would round up to "1024.0".
  while (value >= 1023.95 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  return printf_string("%.1f %s", value, kUnits[unit]);
}

std::string format_latency_us(double microseconds) {
  if (!(microseconds > 0)) microseconds = 0;
  if (microseconds < 999.5) return printf_string("%.0fus", microseconds);
  double milliseconds = microseconds / 1000.0;
  if (milliseconds < 999.95) return printf_string("%.1fms", milliseconds);
  return printf_string("%.2fs", milliseconds / 1000.0);
}

std::string format_percent(double percent) {
  if (std::isnan(percent)) return kMissing;
  return printf_string("%.1f%%", percent);
}

std::string format_rate(double per_second) {
  if (std::isnan(per_second)) return kMissing;
  return printf_string("%.1f", per_second);
}

// ---- cells of a reply ---------------------------------------------------------

std::optional<double> number_field(const json& object, std::string_view key) {
  const json* value = field(object, key);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  return value->get<double>();
}

std::string count_text(const json& object, std::string_view key) {
  return integer_text(field(object, key));
}

std::string string_text(const json& object, std::string_view key) {
  const json* value = field(object, key);
  if (value == nullptr) return kMissing;
  if (value->is_string()) return value->get<std::string>();
  return value->dump();
}

// "ready", or "ready,full" while the worker is at --max-connections with
// none idle (it is handed nothing).
std::string worker_state_text(const json& worker) {
  const json* full = field(worker, reply::kFull);
  bool is_full = full != nullptr && full->is_boolean() && full->get<bool>();
  return string_text(worker, reply::kState) + (is_full ? ",full" : "");
}

// A live process always has some memory: 0 means "not sampled yet" (a worker
// that has not sent its first heartbeat).
std::string kib_text(const json& object, std::string_view key) {
  std::optional<double> kib = number_field(object, key);
  return kib && *kib > 0 ? format_bytes(*kib * 1024.0) : kMissing;
}

// An empty histogram reports 0 for every percentile: shown as "-", since no
// request took 0us.
std::string latency_text(const json& object, std::string_view percentile) {
  const json* latency = field(object, reply::kLatencyUs);
  if (latency == nullptr || number_field(object, reply::kRequests) == 0.0) return kMissing;
  return unit_text(*latency, percentile, format_latency_us);
}

// ---- tables -------------------------------------------------------------------

std::size_t display_width(std::string_view text) {
  // Continuation bytes (10xxxxxx) do not start a character.
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char byte) {
    return (static_cast<unsigned char>(byte) & 0xC0) != 0x80;
  }));
}

std::string render_table(const std::vector<Column>& columns,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(columns.size());
  for (std::size_t column = 0; column < columns.size(); ++column) {
    widths[column] = display_width(columns[column].title);
    for (const auto& row : rows) {
      if (column < row.size()) {
        widths[column] = std::max(widths[column], display_width(row[column]));
      }
    }
  }
  auto render_line = [&](auto cell_at) {
    std::string line;
    for (std::size_t column = 0; column < columns.size(); ++column) {
      const std::string& cell = cell_at(column);
      std::size_t width = display_width(cell);
      std::string padding(widths[column] - std::min(widths[column], width), ' ');
      if (column > 0) line += "  ";
      line += columns[column].align == Align::kRight ? padding + cell : cell + padding;
    }
    line.erase(line.find_last_not_of(' ') + 1);
    return line + "\n";
  };
  static const std::string kEmpty;
  std::string text =
      render_line([&](std::size_t column) -> const std::string& { return columns[column].title; });
  for (const auto& row : rows) {
    text += render_line([&](std::size_t column) -> const std::string& {
      return column < row.size() ? row[column] : kEmpty;
    });
  }
  return text;
}

// ---- replies ------------------------------------------------------------------

std::string format_reply(const proto::ControlRequest& request, const json& reply) {
  switch (request.command) {
    case proto::ControlCommand::kPing:
      return format_ping(reply);
    case proto::ControlCommand::kStatus:
      return format_status(reply);
    case proto::ControlCommand::kStats:
      return format_stats(reply, /*detailed=*/request.id.has_value());
    case proto::ControlCommand::kRestart:
    case proto::ControlCommand::kReload:
    case proto::ControlCommand::kScale:
    case proto::ControlCommand::kStop:
      return format_action(request.command, reply);
    case proto::ControlCommand::kEvents:
      break;
  }
  return reply.dump() + "\n";
}

std::string format_ping(const json& reply) {
  return "herd " + string_text(reply, reply::kVersion) + " (pid " + count_text(reply, reply::kPid) +
         ") is alive\n";
}

std::string format_backoff_slots(const json& reply) {
  const json* slots = field(reply, reply::kSlots);
  if (slots == nullptr || !slots->is_array()) return "";
  std::string text;
  for (const json& slot : *slots) {
    const json* state = field(slot, reply::kState);
    if (state == nullptr || *state != "backoff") continue;
    text += "slot " + count_text(slot, reply::kSlot) + ": crash loop, next start in " +
            unit_text(slot, reply::kNextAttemptMs, format_duration_ms) + " (" +
            count_text(slot, reply::kRestarts) + " restarts, last exit " +
            exit_text(field(slot, reply::kLastExit)) + ")\n";
  }
  return text;
}

std::string format_status(const json& reply) {
  static const json kNoMaster = json::object();
  const json* master_field = field(reply, reply::kMaster);
  const json& master = master_field != nullptr ? *master_field : kNoMaster;
  std::vector<json> workers = sorted_workers(reply);
  std::size_t ready = std::count_if(workers.begin(), workers.end(), [](const json& worker) {
    const json* state = field(worker, reply::kState);
    return state != nullptr && *state == "ready";
  });

  std::string text = "herd " + string_text(master, reply::kVersion) + "  pid " +
                     count_text(master, reply::kPid) + "  " + string_text(master, reply::kState) +
                     "  listen " + string_text(master, reply::kListen) + "  up " +
                     unit_text(master, reply::kUptimeMs, format_duration_ms) + "  workers " +
                     std::to_string(ready) + "/" + count_text(master, reply::kWorkersTarget) +
                     " ready  pending " + count_text(master, reply::kPending) + "  connections " +
                     count_text(master, reply::kConnectionsTotal) + "  restarts " +
                     count_text(master, reply::kRestartsTotal) + "\n";
  std::string backoff = format_backoff_slots(reply);
  if (workers.empty()) return text + "no workers\n" + backoff;

  static const std::vector<Column> kColumns{
      {"id", Align::kRight},       {"slot", Align::kRight},   {"pid", Align::kRight},
      {"state", Align::kLeft},     {"uptime", Align::kRight}, {"restarts", Align::kRight},
      {"requests", Align::kRight}, {"rps", Align::kRight},    {"p99", Align::kRight},
      {"rss", Align::kRight},      {"cpu", Align::kRight},
  };
  std::vector<std::vector<std::string>> rows;
  for (const json& worker : workers) {
    rows.push_back({
        count_text(worker, reply::kId),
        count_text(worker, reply::kSlot),
        count_text(worker, reply::kPid),
        worker_state_text(worker),
        unit_text(worker, reply::kUptimeMs, format_duration_ms),
        count_text(worker, reply::kRestarts),
        count_text(worker, reply::kRequests),
        unit_text(worker, reply::kRps, format_rate),
        latency_text(worker, reply::kP99),
        kib_text(worker, reply::kRssKb),
        unit_text(worker, reply::kCpuPct, format_percent),
    });
  }
  return text + render_table(kColumns, rows) + backoff;
}

std::string format_stats(const json& reply, bool detailed) {
  static const json kNoTotal = json::object();
  const json* total_field = field(reply, reply::kTotal);
  const json& total = total_field != nullptr ? *total_field : kNoTotal;
  std::vector<json> workers = sorted_workers(reply);
  if (detailed && workers.size() == 1) return format_worker_detail(workers.front());
  if (detailed) {
    // The worker has gone; what it served still counts in `total`.
    return "not running\n" + render_details(traffic_details(total));
  }

  static const std::vector<Column> kColumns{
      {"id", Align::kRight},   {"slot", Align::kRight},     {"pid", Align::kRight},
      {"state", Align::kLeft}, {"requests", Align::kRight}, {"rps", Align::kRight},
      {"2xx", Align::kRight},  {"3xx", Align::kRight},      {"4xx", Align::kRight},
      {"5xx", Align::kRight},  {"in", Align::kRight},       {"out", Align::kRight},
      {"p50", Align::kRight},  {"p90", Align::kRight},      {"p99", Align::kRight},
      {"max", Align::kRight},
  };
  auto traffic_cells = [](const json& object) {
    return std::vector<std::string>{
        count_text(object, reply::kRequests),
        unit_text(object, reply::kRps, format_rate),
        response_text(object, "2xx"),
        response_text(object, "3xx"),
        response_text(object, "4xx"),
        response_text(object, "5xx"),
        unit_text(object, reply::kBytesIn, format_bytes),
        unit_text(object, reply::kBytesOut, format_bytes),
        latency_text(object, reply::kP50),
        latency_text(object, reply::kP90),
        latency_text(object, reply::kP99),
        latency_text(object, reply::kMax),
    };
  };
  std::vector<std::vector<std::string>> rows;
  for (const json& worker : workers) {
    std::vector<std::string> row{count_text(worker, reply::kId), count_text(worker, reply::kSlot),
                                 count_text(worker, reply::kPid),
                                 string_text(worker, reply::kState)};
    std::vector<std::string> traffic = traffic_cells(worker);
    row.insert(row.end(), traffic.begin(), traffic.end());
    rows.push_back(std::move(row));
  }
  // The total includes workers that have exited, so it may exceed the rows' sum.
  std::vector<std::string> total_row{"total", "", "", ""};
  std::vector<std::string> traffic = traffic_cells(total);
  total_row.insert(total_row.end(), traffic.begin(), traffic.end());
  rows.push_back(std::move(total_row));
  return render_table(kColumns, rows);
}

std::string format_worker_detail(const json& worker, TimeZone zone) {
  std::string started = kMissing;
  if (const json* started_at = field(worker, reply::kStartedAt);
      started_at && started_at->is_number()) {
    started = wall_time_text(started_at->get<std::int64_t>(), zone);
  }
  std::string heartbeat = unit_text(worker, reply::kLastHeartbeatMs, [](double ms) {
    return (ms < 1000 ? printf_string("%.0fms", ms) : format_duration_ms(ms)) + " ago";
  });
  std::vector<std::pair<std::string, std::string>> details{
      {"id", count_text(worker, reply::kId)},
      {"slot", count_text(worker, reply::kSlot)},
      {"pid", count_text(worker, reply::kPid)},
      {"state", string_text(worker, reply::kState)},
      {"started at", started},
      {"uptime", unit_text(worker, reply::kUptimeMs, format_duration_ms)},
      {"restarts", count_text(worker, reply::kRestarts)},
      {"last exit", exit_text(field(worker, reply::kLastExit))},
      {"connections", count_text(worker, reply::kConnections)},
      {"active connections", count_text(worker, reply::kActiveConnections)},
  };
  std::vector<std::pair<std::string, std::string>> traffic = traffic_details(worker);
  details.insert(details.end(), traffic.begin(), traffic.end());
  details.insert(details.end(), {
                                    {"rss", kib_text(worker, reply::kRssKb)},
                                    {"cpu", unit_text(worker, reply::kCpuPct, format_percent)},
                                    {"last heartbeat", heartbeat},
                                });
  if (const json* exit = field(worker, reply::kExit)) {
    // A worker that has exited (`stats ID` answers from its slot's last exit).
    std::string exited = exit_text(exit);
    if (const json* at = field(worker, reply::kExitedAt); at && at->is_number()) {
      exited += " at " + wall_time_text(at->get<std::int64_t>(), zone);
    }
    details.insert(details.begin() + 4, {"exited", exited});
  }
  return render_details(details) + worker_output_text(worker, zone);
}

std::string format_action(proto::ControlCommand command, const json& reply) {
  switch (command) {
    case proto::ControlCommand::kRestart:
      return "restarting worker " + count_text(reply, reply::kRestarting) +
             ": its replacement takes over once ready\n";
    case proto::ControlCommand::kReload: {
      if (const json* reloaded = field(reply, reply::kReloaded); reloaded && reloaded->is_array()) {
        return "reloaded " + plural(reloaded->size(), reply::kWorker) +
               (reloaded->empty() ? "" : " (replaced ids " + ids_text(*reloaded) + ")") + "\n";
      }
      const json* reloading = field(reply, reply::kReloading);
      if (reloading == nullptr || !reloading->is_array()) return "reloading\n";
      if (reloading->empty()) return "nothing to reload\n";
      return "reloading " + plural(reloading->size(), reply::kWorker) +
             " one slot at a time (ids " + ids_text(*reloading) + ")\n";
    }
    case proto::ControlCommand::kScale: {
      std::string target = count_text(reply, reply::kWorkersTarget);
      std::string previous = count_text(reply, reply::kPrevious);
      if (target == previous) return "already at " + target + " workers\n";
      return "scaling from " + previous + " to " + target + " workers\n";
    }
    case proto::ControlCommand::kStop:
      return "herd is stopping: workers finish their requests, then the master exits\n";
    default:
      break;
  }
  return reply.dump() + "\n";
}

std::string format_event(const json& event, TimeZone zone) {
  std::string time = kMissing;
  if (const json* unix_ms = field(event, "time"); unix_ms && unix_ms->is_number()) {
    time = wall_time_text(unix_ms->get<std::int64_t>(), zone);
  }
  std::string name = string_text(event, "event");
  if (name.size() < 7) name.resize(7, ' ');
  std::string line = time + "  " + name;

  // Identity first, in a fixed order, then whatever else the event carries.
  static constexpr std::array<std::string_view, 8> kLeading{
      "id", "slot", "pid", "phase", "code", "signal", "workers_target", "previous"};
  auto append = [&line](std::string_view key, const json& value) {
    std::string text;
    if (key == "signal") {
      text = signal_text(value);
    } else if (value.is_string()) {
      text = value.get<std::string>();
      if (text.empty() || text.find_first_of(" \t\"=") != std::string::npos) text = value.dump();
    } else {
      text = value.dump();
    }
    line += " ";
    line += key;
    line += "=" + text;
  };
  for (std::string_view key : kLeading) {
    if (const json* value = field(event, key)) {
      append(key, *value);
    }
  }
  if (event.is_object()) {
    for (const auto& [key, value] : event.items()) {
      if (key == "event" || key == "time" || value.is_null()) continue;
      if (std::find(kLeading.begin(), kLeading.end(), key) != kLeading.end()) continue;
      append(key, value);
    }
  }
  line.erase(line.find_last_not_of(' ') + 1);
  return line + "\n";
}

std::string reply_error(const json& reply) {
  if (!reply.is_object()) return "unexpected reply from the master: " + reply.dump();
  if (const json* error = field(reply, reply::kError); error && error->is_string()) {
    return error->get<std::string>();
  }
  return "the master refused the request without saying why: " + reply.dump();
}

}  // namespace herd::ctl
