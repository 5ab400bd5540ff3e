// Socket activation: the listening socket systemd (or systemd-socket-activate)
// started herd with, through LISTEN_FDS and LISTEN_PID (sd_listen_fds(3)).
// herd listens on it instead of binding --host/--port, so the socket, and the
// connections waiting in its backlog, outlive a restart of the master.
#pragma once

#include <string>

#include "common/unique_fd.h"

namespace herd {

struct ActivatedSocket {
  UniqueFd fd;        // invalid when herd was not socket-activated, or on error
  std::string error;  // set when what was passed cannot be used
};

// Takes the socket passed to this process, if any, and clears LISTEN_FDS,
// LISTEN_PID and LISTEN_FDNAMES so the workers do not inherit them. Exactly
// one listening TCP socket is accepted; several descriptors, or one that is
// anything else, is an error.
ActivatedSocket take_activated_socket();

}  // namespace herd
