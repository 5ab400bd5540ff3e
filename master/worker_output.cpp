#include "master/worker_output.h"

#include <algorithm>

namespace herd {
namespace {

// Deeper JSON is logged as a plain line: parsing is iterative, but dumping
// is recursive, and a 16 KiB line could nest 8000 levels.
constexpr int kMaxLiftedDepth = 16;

bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// A line that is a JSON object, or nothing.
std::optional<nlohmann::ordered_json> json_object(const std::string& text) {
  std::size_t start = text.find_first_not_of(" \t");
  if (start == std::string::npos || text[start] != '{') return std::nullopt;
  bool too_deep = false;
  auto limit_depth = [&too_deep](int depth, nlohmann::ordered_json::parse_event_t,
                                 nlohmann::ordered_json&) {
    if (depth > kMaxLiftedDepth) too_deep = true;
    return !too_deep;
  };
  nlohmann::ordered_json parsed =
      nlohmann::ordered_json::parse(text, limit_depth, /*allow_exceptions=*/false);
  if (too_deep || !parsed.is_object()) return std::nullopt;
  return parsed;
}

}  // namespace

std::string_view to_string(OutputStream stream) {
  return stream == OutputStream::kStdout ? "stdout" : "stderr";
}

// ---- LineSplitter ------------------------------------------------------------

LineSplitter::LineSplitter(std::size_t max_line_bytes)
    : max_line_bytes_(std::max<std::size_t>(max_line_bytes, 1)) {}

void LineSplitter::feed(std::string_view bytes, std::vector<OutputLine>& lines) {
  while (!bytes.empty()) {
    std::size_t newline = bytes.find('\n');
    std::string_view piece = bytes.substr(0, newline);  // all of it without a newline
    if (!discarding_) {
      // A CR before the newline is not part of the line, so not of its length.
      bool before_newline_cr = newline != std::string_view::npos && piece.ends_with('\r');
      std::size_t length = piece.size() - (before_newline_cr ? 1 : 0);
      std::size_t room = max_line_bytes_ - pending_.size();
      if (length <= room) {
        pending_.append(piece);
      } else {
        // Give out what fits now rather than hold an unbounded line.
        pending_.append(piece.substr(0, room));
        lines.push_back({std::move(pending_), true});
        pending_.clear();
        discarding_ = true;
      }
    }
    if (newline == std::string_view::npos) return;
    if (discarding_) {
      discarding_ = false;
    } else {
      complete(lines);
    }
    bytes.remove_prefix(newline + 1);
  }
}

void LineSplitter::complete(std::vector<OutputLine>& lines) {
  if (!pending_.empty() && pending_.back() == '\r') pending_.pop_back();
  lines.push_back({std::move(pending_), false});
  pending_.clear();
}

std::optional<OutputLine> LineSplitter::finish() {
  bool had_partial = !pending_.empty();
  discarding_ = false;
  if (!had_partial) return std::nullopt;
  OutputLine line{std::move(pending_), false};
  pending_.clear();
  return line;
}

// ---- UTF-8 -------------------------------------------------------------------

std::string to_valid_utf8(std::string_view text) {
  if (is_ascii(text)) return std::string(text);
  // nlohmann's encoder validates UTF-8 and, told to, replaces what is not;
  // parsing the result back undoes the JSON escaping.
  std::string quoted =
      nlohmann::json(std::string(text))
          .dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
  return nlohmann::json::parse(quoted).get<std::string>();
}

// ---- OutputRing --------------------------------------------------------------

void OutputRing::add(KeptLine line) {
  if (capacity_ == 0) return;
  if (line.text.size() > kMaxKeptLineBytes) {
    // Back up to the start of a character: the text is valid UTF-8, and
    // continuation bytes are 10xxxxxx.
    std::size_t end = kMaxKeptLineBytes;
    while (end > 0 && (static_cast<unsigned char>(line.text[end]) & 0xC0) == 0x80) --end;
    line.text.resize(end);
    line.cut = true;
  }
  if (lines_.size() == capacity_) lines_.pop_front();
  lines_.push_back(std::move(line));
}

// ---- records -----------------------------------------------------------------

std::string text_record(const OutputTag& tag, const OutputLine& line) {
  std::string record = "[worker " + std::to_string(tag.worker) + " slot " +
                       std::to_string(tag.slot) + " pid " + std::to_string(tag.pid) + " " +
                       std::string(to_string(tag.stream)) + "] " + line.text;
  if (line.cut) record += " [cut at " + std::to_string(kMaxOutputLineBytes) + " bytes]";
  return record;
}

nlohmann::ordered_json json_record(const OutputTag& tag, const OutputLine& line) {
  std::optional<nlohmann::ordered_json> lifted = line.cut ? std::nullopt : json_object(line.text);
  nlohmann::ordered_json record;
  if (lifted) {
    record = std::move(*lifted);
    if (auto time = record.find("time"); time != record.end()) {
      nlohmann::ordered_json worker_time = std::move(*time);
      record.erase("time");
      record["worker_time"] = std::move(worker_time);
    }
  } else {
    record["level"] = "info";
  }
  record["process"] = "worker " + std::to_string(tag.worker);
  record["pid"] = tag.pid;
  record["worker"] = tag.worker;
  record["slot"] = tag.slot;
  record["stream"] = to_string(tag.stream);
  if (!lifted) record["msg"] = line.text;
  if (line.cut) record["cut"] = true;
  return record;
}

}  // namespace herd
