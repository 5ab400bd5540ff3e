#include "common/fd_passing.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace herd {
namespace {

// Room for a handful of descriptors, so a misbehaving peer that sends several
// gets them all closed instead of leaking them through MSG_CTRUNC.
constexpr std::size_t kMaxFdsPerMessage = 8;

}  // namespace

SendResult send_message(int socket, std::string_view payload, int fd) {
  iovec iov{const_cast<char*>(payload.data()), payload.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;

  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    std::memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }

  for (;;) {
    ssize_t sent = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
    if (sent >= 0) return SendResult::kSent;  // SEQPACKET: all or nothing
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return SendResult::kWouldBlock;
    if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) return SendResult::kPeerGone;
    return SendResult::kError;
  }
}

ReceivedMessage receive_message(int socket) {
  ReceivedMessage result;
  // One receive buffer per thread: the payload is copied out at its real size,
  // so a burst of small messages does not allocate 64 KiB each.
  thread_local char buffer[kMaxMessageBytes];
  iovec iov{buffer, sizeof(buffer)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);

  ssize_t received;
  do {
    received = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (received < 0 && errno == EINTR);

  if (received < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      result.status = ReceiveStatus::kWouldBlock;
    } else if (errno == ECONNRESET) {
      result.status = ReceiveStatus::kClosed;
    } else {
      result.status = ReceiveStatus::kError;
      result.error = errno;
    }
    return result;
  }

  // Take ownership of every descriptor first, so each one is closed on any
  // path below unless the caller moves it out.
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    std::size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      result.fds.emplace_back(fd);
    }
  }
  result.payload_truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  result.control_truncated = (msg.msg_flags & MSG_CTRUNC) != 0;

  // A zero-length read with no descriptors is end-of-file on SEQPACKET.
  if (received == 0 && result.fds.empty() && !result.control_truncated) {
    result.status = ReceiveStatus::kClosed;
    return result;
  }
  result.payload.assign(buffer, static_cast<std::size_t>(received));
  result.status = ReceiveStatus::kMessage;
  return result;
}

bool make_channel_pair(UniqueFd& first, UniqueFd& second) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0) {
    return false;
  }
  first.reset(fds[0]);
  second.reset(fds[1]);
  return true;
}

}  // namespace herd
