// AF_UNIX addressing shared by the master's control socket and herdctl, so
// both agree on where the socket lives and how long its path may be.
#pragma once

#include <sys/un.h>

#include <cstdint>
#include <string>

namespace herd {

// ${XDG_RUNTIME_DIR:-/tmp}/herd-<port>.sock
std::string default_control_path(std::uint16_t port);

// Fills `address` for `path`; false (and `error`) if the path is empty or
// does not fit in sun_path.
bool make_unix_address(const std::string& path, sockaddr_un& address, std::string& error);

}  // namespace herd
