#include "master/control_server.h"

#include <event2/buffer.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/unix_socket.h"
#include "master/control_handlers.h"

namespace herd {
namespace {

// Whether some process is accepting on the socket at `address`.
bool someone_listens(const sockaddr_un& address) {
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe) return false;
  return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0;
}

}  // namespace

ControlServer::ControlServer(event_base* base, LineHandler handler)
    : base_(base), handler_(std::move(handler)) {}

ControlServer::~ControlServer() {
  // The last replies and events (a stop's final `exit`s) are usually still
  // queued: give each client one non-blocking write before closing.
  for (auto& [id, client] : clients_) {
    evbuffer* output = bufferevent_get_output(client->bev.get());
    if (evbuffer_get_length(output) > 0) {
      evbuffer_write(output, bufferevent_getfd(client->bev.get()));
    }
  }
  clients_.clear();
  accept_event_.reset();
  listen_fd_.reset();
  if (!path_.empty()) ::unlink(path_.c_str());
}

bool ControlServer::open(const std::string& path, std::string& error) {
  sockaddr_un address;
  if (!make_unix_address(path, address, error)) return false;

  struct stat existing;
  if (::lstat(path.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      error = "control socket path " + path + " exists and is not a socket";
      return false;
    }
    if (someone_listens(address)) {
      error = "another herd master is answering on " + path + " (stop it, or use --control)";
      return false;
    }
    ::unlink(path.c_str());  // stale, from a master that died
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    error = std::string("socket(AF_UNIX) failed: ") + std::strerror(errno);
    return false;
  }
  // Created 0600 whatever the umask: never world-connectable, not even briefly.
  mode_t previous = ::umask(0177);
  int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address));
  int bind_errno = errno;
  ::umask(previous);
  if (bound != 0) {
    error = "bind() to " + path + " failed: " + std::strerror(bind_errno);
    return false;
  }
  path_ = path;  // ours now: removed by the destructor
  if (::listen(fd.get(), static_cast<int>(kMaxClients)) != 0) {
    error = "listen() on " + path + " failed: " + std::strerror(errno);
    return false;
  }
  listen_fd_ = std::move(fd);
  accept_event_.reset(event_new(base_, listen_fd_.get(), EV_READ | EV_PERSIST, on_accept, this));
  event_add(accept_event_.get(), nullptr);
  return true;
}

void ControlServer::on_accept(evutil_socket_t, short, void* arg) {
  static_cast<ControlServer*>(arg)->accept_clients();
}

void ControlServer::accept_clients() {
  for (;;) {
    UniqueFd fd(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        spdlog::error("accept4() on control socket {} failed: {}", path_, std::strerror(errno));
      }
      return;
    }
    // The file mode is the first gate; the peer's uid is the one that holds
    // even if someone loosens the mode.
    ucred peer{};
    socklen_t length = sizeof(peer);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) {
      spdlog::error("getsockopt(SO_PEERCRED) on control socket failed: {}", std::strerror(errno));
      continue;
    }
    if (peer.uid != ::geteuid() && peer.uid != 0) {
      spdlog::warn("control: refused a client with uid {} (pid {})", peer.uid, peer.pid);
      std::string refusal = error_reply("permission denied: uid " + std::to_string(peer.uid) +
                                        " is not the master's user")
                                .dump() +
                            "\n";
      ssize_t ignored = ::send(fd.get(), refusal.data(), refusal.size(), MSG_NOSIGNAL);
      (void)ignored;
      continue;
    }
    if (clients_.size() >= kMaxClients) {
      spdlog::warn("control: {} clients connected already; refusing another", kMaxClients);
      std::string refusal = error_reply("too many control clients").dump() + "\n";
      ssize_t ignored = ::send(fd.get(), refusal.data(), refusal.size(), MSG_NOSIGNAL);
      (void)ignored;
      continue;
    }

    auto client = std::make_unique<Client>();
    client->server = this;
    client->id = next_client_++;
    client->bev.reset(bufferevent_socket_new(base_, fd.get(), BEV_OPT_CLOSE_ON_FREE));
    if (!client->bev) continue;
    (void)fd.release();  // the bufferevent owns it now
    bufferevent_setcb(client->bev.get(), on_read, on_write, on_event, client.get());
    timeval idle = to_timeval(kIdleTimeout);
    bufferevent_set_timeouts(client->bev.get(), &idle, nullptr);
    bufferevent_enable(client->bev.get(), EV_READ | EV_WRITE);
    clients_.emplace(client->id, std::move(client));
  }
}

void ControlServer::on_read(bufferevent*, void* arg) {
  auto* client = static_cast<Client*>(arg);
  client->server->read_lines(*client);
}

void ControlServer::on_write(bufferevent*, void* arg) {
  auto* client = static_cast<Client*>(arg);
  if (client->closing) client->server->drop(client->id);
}

void ControlServer::on_event(bufferevent*, short, void* arg) {
  // EOF, error, or the idle timeout.
  auto* client = static_cast<Client*>(arg);
  client->server->drop(client->id);
}

void ControlServer::read_lines(Client& client) {
  ClientId id = client.id;
  evbuffer* input = bufferevent_get_input(client.bev.get());
  while (clients_.count(id) != 0 && !client.closing) {
    if (client.subscribed) {
      // An event stream carries no requests; discard what the client sends.
      evbuffer_drain(input, evbuffer_get_length(input));
      return;
    }
    std::size_t length = 0;
    char* line = evbuffer_readln(input, &length, EVBUFFER_EOL_LF);
    if (line == nullptr) {
      if (evbuffer_get_length(input) > kMaxLineBytes) {
        write_line(client, error_reply("request line over 1 MiB").dump());
        close_after_write(client);
      }
      return;
    }
    std::unique_ptr<char, decltype(&std::free)> owned(line, &std::free);
    if (length > kMaxLineBytes) {
      write_line(client, error_reply("request line over 1 MiB").dump());
      close_after_write(client);
      return;
    }
    std::string_view text(line, length);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.empty()) continue;
    handler_(id, text);  // may send to, subscribe or drop any client
  }
}

void ControlServer::write_line(Client& client, const std::string& line) {
  evbuffer* output = bufferevent_get_output(client.bev.get());
  if (client.subscribed && evbuffer_get_length(output) > kMaxPendingOutput) {
    spdlog::warn("control: dropping an event subscriber that stopped reading");
    drop(client.id);
    return;
  }
  evbuffer_add(output, line.data(), line.size());
  evbuffer_add(output, "\n", 1);
}

void ControlServer::close_after_write(Client& client) {
  client.closing = true;
  bufferevent_disable(client.bev.get(), EV_READ);
}

void ControlServer::drop(ClientId id) {
  clients_.erase(id);
}

void ControlServer::send(ClientId id, const nlohmann::json& message) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  write_line(*it->second, message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void ControlServer::subscribe(ClientId id) {
  auto it = clients_.find(id);
  if (it == clients_.end()) return;
  it->second->subscribed = true;
  wait_without_timeout(id);  // streams may idle
}

void ControlServer::wait_without_timeout(ClientId id) {
  auto it = clients_.find(id);
  if (it != clients_.end()) bufferevent_set_timeouts(it->second->bev.get(), nullptr, nullptr);
}

void ControlServer::publish(const nlohmann::json& event) {
  std::string line = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::vector<ClientId> subscribers;
  for (const auto& [id, client] : clients_) {
    if (client->subscribed) subscribers.push_back(id);
  }
  for (ClientId id : subscribers) {
    auto it = clients_.find(id);
    if (it != clients_.end()) write_line(*it->second, line);
  }
}

}  // namespace herd
