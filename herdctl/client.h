// ControlClient: one of herdctl's blocking connections to the master's control
// socket (AF_UNIX stream, newline-delimited JSON, see proto/README.md). It
// writes request lines and reads reply lines; every wait has a deadline, and
// an optional interrupt fd (a self-pipe a signal handler writes) ends a wait
// early, so a streaming client stops cleanly on SIGINT.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/unique_fd.h"

namespace herd::ctl {

using Milliseconds = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline` as poll() takes them, rounded up so a
// wait never ends a little early and spins; -1 (forever) without a deadline.
int poll_timeout(const std::optional<Clock::time_point>& deadline);

// A reply line is one JSON object; anything this long is not a reply.
inline constexpr std::size_t kMaxLineBytes = 64 * 1024 * 1024;

enum class ReadOutcome {
  kLine,         // `line` holds the next line, without its '\n'
  kClosed,       // the master closed the connection
  kTimeout,      // no complete line before the deadline
  kInterrupted,  // the interrupt fd became readable
  kError,        // `error` says what failed
};

struct ReadResult {
  ReadOutcome outcome = ReadOutcome::kError;
  std::string line;
  std::string error;
};

class ControlClient {
 public:
  // Connects to the socket at `path`; connect() waits at most `timeout` (a
  // master whose listen backlog is full makes it block). On failure
  // connected() is false, error() says why and error_number() holds errno.
  ControlClient(const std::string& path, Milliseconds timeout);

  bool connected() const { return socket_.valid(); }
  // For a caller that polls several connections at once; read_line() with a
  // zero timeout then takes what has arrived.
  int fd() const { return socket_.get(); }
  const std::string& error() const { return error_; }
  int error_number() const { return error_number_; }

  // Writes `line` and a '\n'. False, with error(), on failure or timeout.
  bool send_line(std::string_view line);

  // Returns the next complete line. Waits at most `timeout` (forever when
  // nullopt; a zero timeout reads only what is there already); a readable
  // `interrupt_fd` (if >= 0) ends the wait with kInterrupted. Bytes after the
  // line are kept for the next call.
  ReadResult read_line(std::optional<Milliseconds> timeout, int interrupt_fd = -1);

 private:
  UniqueFd socket_;
  std::string pending_;  // received, not yet returned
  bool peer_closed_ = false;
  std::string error_;
  int error_number_ = 0;
};

}  // namespace herd::ctl
