// A worker's stdout and stderr as the master sees them: bytes split into
// bounded lines, each tagged with the worker it came from, and the last few
// kept so `stats` can show them after the worker dies. Pure: the I/O shell
// (output_capture) reads the pipes and feeds what it read in here.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "master/dispatcher.h"

namespace herd {

enum class OutputStream { kStdout, kStderr };
std::string_view to_string(OutputStream stream);

// The longest line the master logs; the rest of a longer one is dropped.
inline constexpr std::size_t kMaxOutputLineBytes = 16 * 1024;

struct OutputLine {
  std::string text;  // without its newline (nor a CR before it); any bytes
  bool cut = false;  // the worker's line was longer and this is its beginning

  bool operator==(const OutputLine&) const = default;
};

// Splits a byte stream into lines. A line longer than `max_line_bytes` is
// given out as soon as it reaches the limit, marked cut, and the rest of it
// (up to its newline) is dropped: a worker that never writes a newline costs
// the master `max_line_bytes` of memory, not more.
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line_bytes = kMaxOutputLineBytes);

  // Appends to `lines` every line that `bytes` completes. `bytes` may be any
  // piece of the stream: a line may span many calls.
  void feed(std::string_view bytes, std::vector<OutputLine>& lines);
  // The end of the stream: the last line if it had no newline. The splitter
  // starts afresh afterwards.
  std::optional<OutputLine> finish();

 private:
  void complete(std::vector<OutputLine>& lines);

  std::size_t max_line_bytes_;
  std::string pending_;      // the line so far
  bool discarding_ = false;  // after a cut, until the line's newline
};

// `text` with every invalid UTF-8 sequence replaced by U+FFFD, so it can go
// into JSON (logs, control replies) whatever the worker wrote.
std::string to_valid_utf8(std::string_view text);

// One line as `stats` shows it.
struct KeptLine {
  std::int64_t unix_ms = 0;  // when the master read it
  OutputStream stream = OutputStream::kStderr;
  std::string text;  // valid UTF-8, at most kMaxKeptLineBytes
  bool cut = false;

  bool operator==(const KeptLine&) const = default;
};

// The last lines a worker wrote, oldest first. Bounded in lines and in bytes
// per line (a `stats` reply stays small even for a worker that wrote 16 KiB
// lines), so a record costs at most about capacity * kMaxKeptLineBytes.
class OutputRing {
 public:
  static constexpr std::size_t kDefaultCapacity = 50;
  static constexpr std::size_t kMaxKeptLineBytes = 1024;

  explicit OutputRing(std::size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  // Keeps `line`, cut (on a UTF-8 character boundary) to kMaxKeptLineBytes,
  // dropping the oldest line when full.
  void add(KeptLine line);
  const std::deque<KeptLine>& lines() const { return lines_; }

 private:
  std::size_t capacity_;
  std::deque<KeptLine> lines_;
};

// Where a line came from.
struct OutputTag {
  WorkerId worker = 0;
  std::size_t slot = 0;
  pid_t pid = 0;
  OutputStream stream = OutputStream::kStderr;
};

// The text log's form: "[worker 3 slot 1 pid 1234 stderr] the line", with
// " [cut at 16384 bytes]" after a cut line. `line.text` must be valid UTF-8.
std::string text_record(const OutputTag& tag, const OutputLine& line);

// The JSON log's form, without "time" (the logger stamps it). A line that is
// itself a JSON object (a worker logging JSON, as herd-worker does with
// --log-format json) gives its fields, its own "time" renamed "worker_time";
// any other line gives "level": "info" and "msg". Then the tags: "process"
// ("worker 3"), "pid", "worker", "slot", "stream", replacing fields of those
// names, and "cut": true after a cut line. `line.text` must be valid UTF-8.
nlohmann::ordered_json json_record(const OutputTag& tag, const OutputLine& line);

}  // namespace herd
