#include "common/listen_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace herd {
namespace {

std::string syscall_error(const char* call, const std::string& where) {
  return std::string(call) + "() on " + where + " failed: " + std::strerror(errno);
}

// Fills result.host and result.port from the socket's bound address.
bool read_bound_address(int fd, const std::string& where, ListenResult& result) {
  sockaddr_storage bound{};
  socklen_t bound_length = sizeof(bound);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    result.error = syscall_error("getsockname", where);
    return false;
  }
  char text[INET6_ADDRSTRLEN] = {};
  const void* address = nullptr;
  if (bound.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&bound);
    address = &v4->sin_addr;
    result.port = ntohs(v4->sin_port);
  } else if (bound.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&bound);
    address = &v6->sin6_addr;
    result.port = ntohs(v6->sin6_port);
  } else {
    result.error =
        where + " is not an IPv4 or IPv6 socket (family " + std::to_string(bound.ss_family) + ")";
    return false;
  }
  if (::inet_ntop(bound.ss_family, address, text, sizeof(text)) == nullptr) {
    result.error = syscall_error("inet_ntop", where);
    return false;
  }
  result.host = text;
  return true;
}

}  // namespace

bool is_numeric_address(const std::string& host) {
  in6_addr address;
  return ::inet_pton(AF_INET, host.c_str(), &address) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &address) == 1;
}

std::string format_host_port(const std::string& host, std::uint16_t port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

ListenResult open_listen_socket(const std::string& host, std::uint16_t port, int backlog) {
  ListenResult result;
  const std::string where = format_host_port(host, port);

  sockaddr_storage address{};
  socklen_t address_length = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    address_length = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    address_length = sizeof(sockaddr_in6);
  } else {
    result.error = "invalid host '" + host + "': expected a numeric IPv4 or IPv6 address";
    return result;
  }

  UniqueFd fd(::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    result.error = syscall_error("socket", where);
    return result;
  }
  int one = 1;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    result.error = syscall_error("setsockopt(SO_REUSEADDR)", where);
    return result;
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), address_length) != 0) {
    result.error = syscall_error("bind", where);
    return result;
  }
  if (::listen(fd.get(), backlog) != 0) {
    result.error = syscall_error("listen", where);
    return result;
  }

  if (!read_bound_address(fd.get(), where, result)) return result;
  result.host = host;  // as given: the operator's spelling of the same address
  result.fd = std::move(fd);
  return result;
}

ListenResult adopt_listen_socket(UniqueFd fd) {
  ListenResult result;
  const std::string where = "inherited fd " + std::to_string(fd.get());
  int status_flags = ::fcntl(fd.get(), F_GETFL);
  if (status_flags < 0 || ::fcntl(fd.get(), F_SETFL, status_flags | O_NONBLOCK) != 0) {
    result.error = syscall_error("fcntl(O_NONBLOCK)", where);
    return result;
  }
  int descriptor_flags = ::fcntl(fd.get(), F_GETFD);
  if (descriptor_flags < 0 || ::fcntl(fd.get(), F_SETFD, descriptor_flags | FD_CLOEXEC) != 0) {
    result.error = syscall_error("fcntl(FD_CLOEXEC)", where);
    return result;
  }
  if (!read_bound_address(fd.get(), where, result)) return result;
  result.fd = std::move(fd);
  return result;
}

}  // namespace herd
