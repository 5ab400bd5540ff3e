#include "master/output_capture.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

namespace herd {
namespace {

// Per wakeup, one pipe's worth: a chatty worker is never left blocked on a
// full pipe for long, and cannot keep the master from its other events.
constexpr std::size_t kReadBudget = 64 * 1024;
// For a worker that has exited: all a pipe can hold, unless a child it left
// behind keeps writing (the rest then comes through the loop).
constexpr std::size_t kDrainBudget = 1024 * 1024;
constexpr std::size_t kReadChunk = 16 * 1024;

}  // namespace

OutputCapture::OutputCapture(event_base* base, LogFormat format, LineHandler on_line)
    : base_(base), format_(format), on_line_(std::move(on_line)) {}

OutputCapture::~OutputCapture() = default;

void OutputCapture::watch(WorkerId worker, std::size_t slot, pid_t pid, UniqueFd stdout_pipe,
                          UniqueFd stderr_pipe) {
  add({worker, slot, pid, OutputStream::kStdout}, std::move(stdout_pipe));
  add({worker, slot, pid, OutputStream::kStderr}, std::move(stderr_pipe));
}

void OutputCapture::add(const OutputTag& tag, UniqueFd fd) {
  if (!fd) return;
  auto pipe = std::make_unique<Pipe>(Pipe{this, tag, std::move(fd), nullptr, LineSplitter()});
  pipe->read_event.reset(
      event_new(base_, pipe->fd.get(), EV_READ | EV_PERSIST, on_readable, pipe.get()));
  if (!pipe->read_event || event_add(pipe->read_event.get(), nullptr) != 0) {
    spdlog::error("cannot watch worker {}'s {}: libevent refused it; its output is lost",
                  tag.worker, to_string(tag.stream));
    return;
  }
  pipes_[{tag.worker, tag.stream}] = std::move(pipe);
}

void OutputCapture::drain(WorkerId worker) {
  for (OutputStream stream : {OutputStream::kStdout, OutputStream::kStderr}) {
    auto it = pipes_.find({worker, stream});
    if (it != pipes_.end()) read(*it->second, kDrainBudget);
  }
}

void OutputCapture::on_readable(evutil_socket_t, short, void* arg) {
  auto* pipe = static_cast<Pipe*>(arg);
  pipe->owner->read(*pipe, kReadBudget);
}

// May close (and free) `pipe`: nothing touches it after close().
void OutputCapture::read(Pipe& pipe, std::size_t budget) {
  std::array<char, kReadChunk> buffer;
  std::vector<OutputLine> lines;
  while (budget > 0) {
    ssize_t received = ::read(pipe.fd.get(), buffer.data(), std::min(buffer.size(), budget));
    if (received < 0 && errno == EINTR) continue;
    if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (received <= 0) {
      if (received < 0) {
        spdlog::error("read() of worker {}'s {} failed: {}", pipe.tag.worker,
                      to_string(pipe.tag.stream), std::strerror(errno));
      }
      for (OutputLine& line : lines) emit(pipe.tag, std::move(line));
      if (std::optional<OutputLine> last = pipe.splitter.finish()) emit(pipe.tag, std::move(*last));
      return close(pipe);
    }
    budget -= static_cast<std::size_t>(received);
    pipe.splitter.feed({buffer.data(), static_cast<std::size_t>(received)}, lines);
  }
  for (OutputLine& line : lines) emit(pipe.tag, std::move(line));
}

void OutputCapture::emit(const OutputTag& tag, OutputLine line) {
  line.text = to_valid_utf8(line.text);
  if (format_ == LogFormat::kJson) {
    log_captured_json(json_record(tag, line));
  } else {
    log_captured_text(text_record(tag, line));
  }
  if (on_line_) on_line_(tag.worker, tag.stream, line);
}

void OutputCapture::close(Pipe& pipe) {
  pipes_.erase({pipe.tag.worker, pipe.tag.stream});
}

}  // namespace herd
