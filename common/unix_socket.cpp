#include "common/unix_socket.h"

#include <sys/socket.h>

#include <cstdlib>
#include <cstring>

namespace herd {

std::string default_control_path(std::uint16_t port) {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  std::string dir = runtime != nullptr && *runtime != '\0' ? runtime : "/tmp";
  return dir + "/herd-" + std::to_string(port) + ".sock";
}

bool make_unix_address(const std::string& path, sockaddr_un& address, std::string& error) {
  std::memset(&address, 0, sizeof(address));
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    error = "socket path '" + path + "' must be 1 to " +
            std::to_string(sizeof(address.sun_path) - 1) + " bytes long";
    return false;
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace herd
