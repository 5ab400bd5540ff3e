#include "herdctl/client.h"

#include "common/errno_text.h"
#include "common/event_loop.h"
#include "common/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <utility>

namespace herd::ctl {

int poll_timeout(const std::optional<Clock::time_point>& deadline) {
  if (!deadline) return -1;
  auto left = std::chrono::ceil<Milliseconds>(*deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<decltype(left)>(left, 0, 1000 * 1000 * 1000));
}

ControlClient::ControlClient(const std::string& path, Milliseconds timeout) {
  sockaddr_un address;
  if (!make_unix_address(path, address, error_)) {
    error_number_ = ENAMETOOLONG;
    return;
  }

  UniqueFd socket(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!socket) {
    error_number_ = errno;
    error_ = "socket() failed: " + errno_text(error_number_);
    return;
  }
  // SO_SNDTIMEO bounds connect() on AF_UNIX too, and every later send().
  timeval send_timeout = to_timeval(timeout);
  if (::setsockopt(socket.get(), SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout)) !=
      0) {
    error_number_ = errno;
    error_ = "setsockopt(SO_SNDTIMEO) failed: " + errno_text(error_number_);
    return;
  }
  int result;
  do {
    result = ::connect(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  } while (result != 0 && errno == EINTR);
  if (result != 0) {
    error_number_ = errno;
    error_ = error_number_ == EAGAIN || error_number_ == EINPROGRESS
                 ? "the master did not accept the connection in time"
                 : errno_text(error_number_);
    return;
  }
  socket_ = std::move(socket);
}

bool ControlClient::send_line(std::string_view line) {
  std::string bytes(line);
  bytes += '\n';
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    // MSG_NOSIGNAL: a master that went away is an error to report, not SIGPIPE.
    ssize_t count = ::send(socket_.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (count < 0) {
      if (errno == EINTR) continue;
      error_number_ = errno;
      error_ = errno == EAGAIN ? "send() timed out" : "send() failed: " + errno_text(errno);
      return false;
    }
    sent += static_cast<std::size_t>(count);
  }
  return true;
}

ReadResult ControlClient::read_line(std::optional<Milliseconds> timeout, int interrupt_fd) {
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  std::size_t scanned = 0;  // pending_ holds no '\n' before this offset
  for (;;) {
    std::size_t newline = pending_.find('\n', scanned);
    if (newline != std::string::npos) {
      ReadResult result{ReadOutcome::kLine, pending_.substr(0, newline), {}};
      pending_.erase(0, newline + 1);
      return result;
    }
    scanned = pending_.size();
    if (peer_closed_) {
      // A last line without its '\n' is still the master's last word.
      if (pending_.empty()) return {ReadOutcome::kClosed, {}, {}};
      return {ReadOutcome::kLine, std::exchange(pending_, {}), {}};
    }
    if (pending_.size() > kMaxLineBytes) {
      return {ReadOutcome::kError,
              {},
              "a line from the master is longer than " + std::to_string(kMaxLineBytes) + " bytes"};
    }

    std::array<pollfd, 2> fds{};
    fds[0] = {socket_.get(), POLLIN, 0};
    fds[1] = {interrupt_fd, POLLIN, 0};
    nfds_t count = interrupt_fd >= 0 ? 2 : 1;
    int ready = ::poll(fds.data(), count, poll_timeout(deadline));
    if (ready < 0) {
      // A signal meant for us has also written the interrupt fd: poll again.
      if (errno == EINTR) continue;
      return {ReadOutcome::kError, {}, "poll() failed: " + errno_text(errno)};
    }
    if (count == 2 && fds[1].revents != 0) return {ReadOutcome::kInterrupted, {}, {}};
    if (ready == 0) return {ReadOutcome::kTimeout, {}, {}};

    std::array<char, 65536> buffer;
    ssize_t received = ::recv(socket_.get(), buffer.data(), buffer.size(), 0);
    if (received > 0) {
      pending_.append(buffer.data(), static_cast<std::size_t>(received));
    } else if (received == 0 || errno == ECONNRESET) {
      peer_closed_ = true;
    } else if (errno != EINTR && errno != EAGAIN) {
      return {ReadOutcome::kError, {}, "recv() failed: " + errno_text(errno)};
    }
  }
}

}  // namespace herd::ctl
