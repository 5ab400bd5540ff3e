// herdctl's pure half: turns the master's JSON replies and events into human
// text. No I/O and no clock reads, so the
// tests feed it sample replies directly. Missing, null or mistyped fields
// render as "-" instead of failing: the master's replies may grow or lag.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/control.h"

namespace herd::ctl {

// ---- shared by the views ------------------------------------------------------

// What a cell shows when the master sent nothing usable.
inline constexpr const char* kMissing = "-";

// The value of `key` when `object` is an object holding a non-null value
// there; nullptr otherwise.
const nlohmann::json* field(const nlohmann::json& object, std::string_view key);
// A worker id: a non-negative integer, or nullopt.
std::optional<std::uint64_t> worker_id(const nlohmann::json& value);
std::optional<std::uint64_t> worker_id(const nlohmann::json& object, std::string_view key);
// "code 1", "signal SIGKILL", or "-" for a slot that never lost a worker.
std::string exit_text(const nlohmann::json* last_exit);
// "1 2 5": worker ids as the reload progress lines list them.
std::string id_list_text(const nlohmann::json& ids);
// "1 worker", "2 workers".
std::string plural(std::size_t count, const char* noun);

// ---- human units --------------------------------------------------------------

// "0s", "3s", "5m 2s", "2h 3m", "1d 4h".
std::string format_duration_ms(double milliseconds);
// "512 B", "1.5 KiB", "12.3 MiB", "2.0 GiB".
std::string format_bytes(double bytes);
// "850us", "1.2ms", "2.50s".
std::string format_latency_us(double microseconds);
// "3.5%".
std::string format_percent(double percent);
// "1234.5".
std::string format_rate(double per_second);

// ---- cells of a reply ---------------------------------------------------------
// Each takes an object of the master's reply and one of its keys, and renders
// "-" when the field is missing, null or of the wrong kind.

// The number at `key`, if there is one.
std::optional<double> number_field(const nlohmann::json& object, std::string_view key);
// An integer as the master sent it: "1234".
std::string count_text(const nlohmann::json& object, std::string_view key);
// A string as is; any other value as JSON.
std::string string_text(const nlohmann::json& object, std::string_view key);
// A size in KiB in binary units; 0 means "not sampled yet" and shows as "-".
std::string kib_text(const nlohmann::json& object, std::string_view key);
// `latency_us.<percentile>` of a worker or total object, as
// format_latency_us(); "-" when it has answered no request.
std::string latency_text(const nlohmann::json& object, std::string_view percentile);

// ---- tables -------------------------------------------------------------------

enum class Align { kLeft, kRight };

struct Column {
  std::string title;
  Align align = Align::kLeft;
};

// Columns of a terminal that `text` (UTF-8) takes: one per code point, so
// "▁▂▃" is 3. Every character herdctl prints is one column wide.
std::size_t display_width(std::string_view text);

// Columns padded to their widest cell (display_width()) and separated by two
// spaces, header first, no trailing blanks; every line ends with '\n'. A row
// shorter than `columns` is padded with empty cells.
std::string render_table(const std::vector<Column>& columns,
                         const std::vector<std::vector<std::string>>& rows);

// ---- replies ------------------------------------------------------------------

// How event times are shown; the tests pin kUtc.
enum class TimeZone { kLocal, kUtc };

// The text printed for a successful (`ok:true`) reply to `request`, ending
// with '\n'. The events stream is not handled here: see format_event().
std::string format_reply(const proto::ControlRequest& request, const nlohmann::json& reply);

// "herd 0.1.0 (pid 4043) is alive".
std::string format_ping(const nlohmann::json& reply);
// A summary line about the master, then the worker table.
std::string format_status(const nlohmann::json& reply);
// One line per slot of a `status` reply that waits out a crash-loop backoff,
// each ending with '\n': "slot 1: crash loop, next start in 3s (4 restarts,
// last exit code 1)". Empty when there is none.
std::string format_backoff_slots(const nlohmann::json& reply);
// The traffic table with a total row. With `detailed` (stats ID), a key: value
// view of the one worker instead; with an id, `total` repeats that worker's
// own counters, so it is shown only when the worker is no longer listed.
std::string format_stats(const nlohmann::json& reply, bool detailed);
// key: value lines about one worker object (running, or exited: `exit`),
// then its `last_lines` and its `last_exit`'s, when the object has them.
std::string format_worker_detail(const nlohmann::json& worker, TimeZone zone = TimeZone::kLocal);
// One line for restart, reload, scale and stop.
std::string format_action(proto::ControlCommand command, const nlohmann::json& reply);

// One line per event: "2025-11-25 07:30:01.123  exit    id=3 slot=0 pid=4045 code=1",
// ending with '\n'.
std::string format_event(const nlohmann::json& event, TimeZone zone = TimeZone::kLocal);

// The `error` of an ok:false reply, or a description of what is wrong with
// the reply when it has none.
std::string reply_error(const nlohmann::json& reply);

}  // namespace herd::ctl
