// libFuzzer target: a datagram from a worker, with 0 to 3 descriptors
// attached, through the master's channel receive (recvmsg, SCM_RIGHTS,
// MSG_CMSG_CLOEXEC) and the message decoder; and the same bytes as a
// message to a worker. Whatever comes in: no crash, no leak (every
// descriptor received is owned and closed), and whatever decodes encodes
// back to something that decodes to the same message.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/fd_passing.h"
#include "common/unique_fd.h"
#include "proto/messages.h"

namespace {

struct Channel {
  herd::UniqueFd worker_end;
  herd::UniqueFd master_end;
  herd::UniqueFd spare;  // a descriptor to attach: /dev/null
};

Channel& channel() {
  static Channel pair = [] {
    Channel made;
    if (!herd::make_channel_pair(made.worker_end, made.master_end)) __builtin_trap();
    made.spare = herd::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    return made;
  }();
  return pair;
}

// sendmsg with `count` copies of `fd` attached.
bool send_with_fds(int socket, const std::string& payload, int fd, int count) {
  iovec part{const_cast<char*>(payload.data()), payload.size()};
  msghdr message{};
  message.msg_iov = &part;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))];
  if (count > 0) {
    std::memset(control, 0, sizeof(control));
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(count * sizeof(int));
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(count * sizeof(int));
    for (int i = 0; i < count; ++i)
      std::memcpy(CMSG_DATA(header) + i * sizeof(int), &fd, sizeof(int));
  }
  return ::sendmsg(socket, &message, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0;
}

template <typename Message, typename Decode>
void check_round_trip(const std::string& text, Decode decode) {
  herd::proto::Decoded<Message> decoded = decode(text);
  if (!decoded.message) return;
  std::string again = herd::proto::encode(*decoded.message);
  herd::proto::Decoded<Message> redecoded = decode(again);
  if (!redecoded.message) __builtin_trap();
  if (herd::proto::encode(*redecoded.message) != again) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  int descriptors = input.ConsumeIntegralInRange(0, 3);
  std::string payload = input.ConsumeRemainingBytesAsString();
  if (payload.empty()) payload = " ";  // a SEQPACKET datagram of 0 bytes reads as EOF
  Channel& pair = channel();

  if (send_with_fds(pair.worker_end.get(), payload, pair.spare.get(), descriptors)) {
    herd::ReceivedMessage received = herd::receive_message(pair.master_end.get());
    if (received.status != herd::ReceiveStatus::kMessage) __builtin_trap();
    if (received.payload != payload) __builtin_trap();
    if (received.fds.size() != static_cast<std::size_t>(descriptors)) __builtin_trap();
    for (const herd::UniqueFd& fd : received.fds) {
      if ((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) == 0) __builtin_trap();
    }
    check_round_trip<herd::proto::WorkerMessage>(received.payload,
                                                 herd::proto::decode_worker_message);
  }
  check_round_trip<herd::proto::MasterMessage>(payload, herd::proto::decode_master_message);
  return 0;
}
