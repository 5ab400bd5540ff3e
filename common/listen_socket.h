// Opening the master's listening TCP socket (IPv4 or IPv6 host), or taking
// over one it inherited (systemd socket activation).
#pragma once

#include <cstdint>
#include <string>

#include "common/unique_fd.h"

namespace herd {

struct ListenResult {
  UniqueFd fd;
  std::string host;        // the bound address, numeric ("0.0.0.0", "::1")
  std::uint16_t port = 0;  // the bound port, useful when 0 was asked for
  std::string error;       // set when fd is invalid: "bind() to 0.0.0.0:80 failed: ..."
};

// Binds and listens on host:port with SO_REUSEADDR, non-blocking and
// close-on-exec. `host` is a numeric IPv4 or IPv6 address ("0.0.0.0", "::1").
ListenResult open_listen_socket(const std::string& host, std::uint16_t port, int backlog);

// Takes over a listening TCP socket this process was started with: makes it
// non-blocking and close-on-exec and reads the address it is bound to. The
// caller has checked that it is a listening TCP socket; `fd` is closed on
// failure.
ListenResult adopt_listen_socket(UniqueFd fd);

// Whether `host` is a numeric IPv4 or IPv6 address.
bool is_numeric_address(const std::string& host);

// "host:port", with brackets around an IPv6 host.
std::string format_host_port(const std::string& host, std::uint16_t port);

}  // namespace herd
