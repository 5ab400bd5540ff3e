// Datagram send/receive with an optional SCM_RIGHTS descriptor, for the
// master<->worker channel (AF_UNIX SOCK_SEQPACKET: one sendmsg = one message).
// Received descriptors arrive close-on-exec (MSG_CMSG_CLOEXEC) and are owned by
// UniqueFd, so every unexpected descriptor is closed without extra code.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"

namespace herd {

// The largest message a channel peer may send. A longer datagram is truncated
// by the kernel and reported as such, never silently cut.
inline constexpr std::size_t kMaxMessageBytes = 64 * 1024;

enum class SendResult { kSent, kWouldBlock, kPeerGone, kError };

// Sends `payload` as one datagram, with `fd` attached when fd >= 0. The caller
// keeps its own copy of `fd`. errno is preserved for kError.
SendResult send_message(int socket, std::string_view payload, int fd = -1);

enum class ReceiveStatus { kMessage, kWouldBlock, kClosed, kError };

struct ReceivedMessage {
  ReceiveStatus status = ReceiveStatus::kWouldBlock;
  std::string payload;
  std::vector<UniqueFd> fds;       // every descriptor that came with the message
  bool payload_truncated = false;  // MSG_TRUNC: the datagram was over kMaxMessageBytes
  bool control_truncated = false;  // MSG_CTRUNC: descriptors were dropped by the kernel
  int error = 0;                   // errno for kError
};

// Receives one datagram without blocking (the socket should be O_NONBLOCK).
ReceivedMessage receive_message(int socket);

// socketpair(AF_UNIX, SOCK_SEQPACKET) with both ends close-on-exec and
// non-blocking. Returns false (errno set) on failure.
bool make_channel_pair(UniqueFd& first, UniqueFd& second);

}  // namespace herd
