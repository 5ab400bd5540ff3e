#include "common/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "common/unique_fd.h"

namespace herd {
namespace {

constexpr const char* kTextPattern = "%Y-%m-%d %H:%M:%S.%e [%n] %^%l%$: %v";
constexpr const char* kJsonPattern =
    R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","process":"%n","pid":%P,"msg":%*})";
// Captured worker lines arrive tagged; only the time is added. In JSON, the
// message is the members of the record's object and its closing brace.
constexpr const char* kCapturedTextPattern = "%Y-%m-%d %H:%M:%S.%e %v";
constexpr const char* kCapturedJsonPattern = R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ",%v)";

// Renders the message as a JSON string, so any text in it stays valid JSON.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string quoted = nlohmann::json(std::string(msg.payload.data(), msg.payload.size()))
                             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(quoted.data(), quoted.data() + quoted.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

// Where every logger's lines go: stderr, or a file that can be reopened at
// its path. Shared by the sinks of the master's two loggers (its own lines and
// captured worker lines), which need sinks of their own because spdlog keeps
// the formatter in the sink.
class LogDestination {
 public:
  // Opens `path` for appending, creating it mode 0640.
  static UniqueFd open_file(const std::string& path, std::string& error) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
    if (!fd) error = "cannot open log file " + path + ": " + std::strerror(errno);
    return fd;
  }

  void use_file(std::string path, UniqueFd fd) {
    std::lock_guard lock(mutex_);
    path_ = std::move(path);
    file_ = std::move(fd);
  }

  std::string path() const {
    std::lock_guard lock(mutex_);
    return path_;
  }

  // The new file is open before the old one is closed, so a failure leaves
  // the old one in use.
  bool reopen(std::string& error) {
    std::string path = this->path();
    if (path.empty()) return true;
    UniqueFd fd = open_file(path, error);
    if (!fd) return false;
    std::lock_guard lock(mutex_);
    file_ = std::move(fd);
    return true;
  }

  // One write() per line where the kernel allows, so lines from the master
  // and (without a file) from a worker started by hand do not interleave.
  void write(const char* data, std::size_t size) {
    std::lock_guard lock(mutex_);
    int fd = file_ ? file_.get() : STDERR_FILENO;
    while (size > 0) {
      ssize_t written = ::write(fd, data, size);
      if (written < 0 && errno == EINTR) continue;
      if (written <= 0) return;  // nowhere left to say so
      data += written;
      size -= static_cast<std::size_t>(written);
    }
  }

 private:
  mutable std::mutex mutex_;
  std::string path_;  // "" for stderr
  UniqueFd file_;     // invalid for stderr
};

class DestinationSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit DestinationSink(std::shared_ptr<LogDestination> destination)
      : destination_(std::move(destination)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    destination_->write(line.data(), line.size());
  }
  void flush_() override {}

 private:
  std::shared_ptr<LogDestination> destination_;
};

struct LogState {
  std::shared_ptr<LogDestination> destination;
  std::shared_ptr<spdlog::logger> captured;  // worker lines, in the master
};

LogState& state() {
  static LogState instance;
  return instance;
}

std::unique_ptr<spdlog::formatter> make_formatter(const char* pattern, bool json) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(
      json ? spdlog::pattern_time_type::utc : spdlog::pattern_time_type::local);
  if (json) formatter->add_flag<JsonMessageFlag>('*');
  formatter->set_pattern(pattern);
  return formatter;
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name,
                                            std::shared_ptr<LogDestination> destination,
                                            std::unique_ptr<spdlog::formatter> formatter,
                                            spdlog::level::level_enum level) {
  auto logger = std::make_shared<spdlog::logger>(
      name, std::make_shared<DestinationSink>(std::move(destination)));
  logger->set_formatter(std::move(formatter));
  logger->set_level(level);
  return logger;
}

void install(const std::string& name, spdlog::level::level_enum level, LogFormat format,
             std::shared_ptr<LogDestination> destination) {
  bool json = format == LogFormat::kJson;
  spdlog::set_default_logger(make_logger(
      name, destination, make_formatter(json ? kJsonPattern : kTextPattern, json), level));
  state().captured =
      make_logger("captured", destination,
                  make_formatter(json ? kCapturedJsonPattern : kCapturedTextPattern, json),
                  spdlog::level::trace);
  state().destination = std::move(destination);
}

}  // namespace

void setup_logging(const std::string& name, spdlog::level::level_enum level, LogFormat format) {
  install(name, level, format, std::make_shared<LogDestination>());
}

bool setup_logging(const std::string& name, spdlog::level::level_enum level, LogFormat format,
                   const std::string& file, std::string& error) {
  auto destination = std::make_shared<LogDestination>();
  if (!file.empty()) {
    UniqueFd fd = LogDestination::open_file(file, error);
    if (!fd) return false;
    destination->use_file(file, std::move(fd));
  }
  install(name, level, format, std::move(destination));
  return true;
}

std::string log_file_path() {
  return state().destination ? state().destination->path() : std::string();
}

bool reopen_log_file(std::string& error) {
  return !state().destination || state().destination->reopen(error);
}

void setup_worker_logging(spdlog::level::level_enum level, LogFormat format) {
  bool json = format == LogFormat::kJson;
  spdlog::set_default_logger(
      make_logger("worker", std::make_shared<LogDestination>(),
                  make_formatter(json ? R"({"level":"%l","msg":%*})" : "%l: %v", json), level));
}

void log_captured_text(std::string_view record) {
  if (state().captured) {
    state().captured->log(spdlog::level::info, spdlog::string_view_t(record.data(), record.size()));
  }
}

void log_captured_json(const nlohmann::ordered_json& record) {
  if (!state().captured || !record.is_object() || record.empty()) return;
  std::string members = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // Past the opening brace: the pattern supplies it, with the time first.
  state().captured->log(spdlog::level::info,
                        spdlog::string_view_t(members.data() + 1, members.size() - 1));
}

}  // namespace herd
