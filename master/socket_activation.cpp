#include "master/socket_activation.h"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include <cstring>

namespace herd {

ActivatedSocket take_activated_socket() {
  ActivatedSocket result;
  // Also marks the passed descriptors close-on-exec.
  int count = sd_listen_fds(/*unset_environment=*/1);
  if (count == 0) return result;
  if (count < 0) {
    result.error =
        std::string("cannot take the sockets passed in LISTEN_FDS: ") + std::strerror(-count);
    return result;
  }
  if (count > 1) {
    result.error = "systemd passed " + std::to_string(count) +
                   " descriptors (LISTEN_FDS); herd listens on exactly one TCP socket: give "
                   "herd.socket a single ListenStream=";
    return result;
  }
  const int fd = SD_LISTEN_FDS_START;
  int is_listening_tcp = sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, /*listening=*/1, 0);
  if (is_listening_tcp < 0) {
    result.error = "cannot use fd " + std::to_string(fd) +
                   " passed in LISTEN_FDS: " + std::strerror(-is_listening_tcp);
    return result;
  }
  if (is_listening_tcp == 0) {
    result.error = "fd " + std::to_string(fd) +
                   " passed in LISTEN_FDS is not a listening TCP socket (herd.socket needs "
                   "ListenStream= with an IP address or port)";
    return result;
  }
  result.fd.reset(fd);
  return result;
}

}  // namespace herd
