// Logging set-up shared by the master and the workers: spdlog, text by
// default, one JSON object per line with --log-format json. The master writes
// to stderr or to a --log-file that SIGUSR1 reopens (logrotate); a worker
// writes to its stderr, which the master captures and tags.
#pragma once

#include <spdlog/spdlog.h>

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <string_view>

namespace herd {

enum class LogFormat { kText, kJson };

// Configures the default logger to write to stderr. `name` prefixes text
// lines ("master").
void setup_logging(const std::string& name, spdlog::level::level_enum level, LogFormat format);

// The same, writing to `file` instead, opened for appending (created mode
// 0640). Returns false, and why in `error`, if it cannot be opened; nothing
// is set up then.
bool setup_logging(const std::string& name, spdlog::level::level_enum level, LogFormat format,
                   const std::string& file, std::string& error);

// The log file's path, or "" when logging to stderr.
std::string log_file_path();

// Opens the log file's path anew and writes there from now on: after
// logrotate renamed the file, new lines go to a new file at the path. On
// failure the old file stays in use and `error` says why. Does nothing when
// logging to stderr.
bool reopen_log_file(std::string& error);

// For a worker run by the master: lines carry only the level and the message
// ("info: ..." or {"level":"info","msg":"..."}). The master captures the
// worker's stderr and adds the time and the worker's id, slot and pid.
void setup_worker_logging(spdlog::level::level_enum level, LogFormat format);

// Writes a line captured from a worker to the master's log, stamped with the
// time, whatever the log level: the worker chose to write it. `record` is
// already tagged: text_record() or json_record() of master/worker_output.h.
void log_captured_text(std::string_view record);
void log_captured_json(const nlohmann::ordered_json& record);

}  // namespace herd
