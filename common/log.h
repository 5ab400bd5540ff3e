// Logging set-up shared by the master and the workers: spdlog to stderr, text
// by default, one JSON object per line with --log-format json.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace herd {

enum class LogFormat { kText, kJson };

// Configures the default logger. `name` prefixes text lines ("master", "worker 3").
void setup_logging(const std::string& name, spdlog::level::level_enum level, LogFormat format);

}  // namespace herd
