// ControlServer: the master's control socket (AF_UNIX stream, mode 0600).
// Accepts local clients of the master's uid (or root), splits what they send
// into lines for the master to answer, writes the replies, and streams events
// to clients that subscribed. The protocol is in proto/README.md.
//
// Limits, so no client can disturb the master: at most kMaxClients at once,
// lines up to kMaxLineBytes, kIdleTimeout of silence before a (non-subscribed)
// client is dropped, and a subscriber that stops reading is dropped once
// kMaxPendingOutput of events wait for it.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/event_loop.h"
#include "common/unique_fd.h"

namespace herd {

class ControlServer {
 public:
  using ClientId = std::uint64_t;
  // Called once per request line (without its newline).
  using LineHandler = std::function<void(ClientId client, std::string_view line)>;

  static constexpr std::size_t kMaxClients = 64;
  static constexpr std::size_t kMaxLineBytes = 1024 * 1024;
  static constexpr std::size_t kMaxPendingOutput = 4 * 1024 * 1024;
  static constexpr Milliseconds kIdleTimeout{30000};

  ControlServer(event_base* base, LineHandler handler);
  ~ControlServer();  // closes every client and removes the socket file
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Creates the socket at `path`. A stale socket file (nobody answering) is
  // replaced; a live one, or a path that is not a socket, is an error.
  bool open(const std::string& path, std::string& error);
  const std::string& path() const { return path_; }

  // Writes one line to a client; does nothing if it has gone.
  void send(ClientId client, const nlohmann::json& message);
  // Turns the client's connection into a stream of events.
  void subscribe(ClientId client);
  // Lifts the idle timeout of a client that waits for a slow reply.
  void wait_without_timeout(ClientId client);
  // Sends an event line to every subscriber.
  void publish(const nlohmann::json& event);

 private:
  struct Client {
    ControlServer* server;
    ClientId id;
    BufferEventPtr bev;
    bool subscribed = false;
    bool closing = false;  // close once the output is written
  };

  static void on_accept(evutil_socket_t fd, short what, void* arg);
  static void on_read(bufferevent* bev, void* arg);
  static void on_write(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);

  void accept_clients();
  void read_lines(Client& client);
  void write_line(Client& client, const std::string& line);
  void close_after_write(Client& client);
  void drop(ClientId client);

  event_base* base_;
  LineHandler handler_;
  std::string path_;  // set once the socket file is ours to remove
  UniqueFd listen_fd_;
  EventPtr accept_event_;
  std::map<ClientId, std::unique_ptr<Client>> clients_;
  ClientId next_client_ = 1;
};

}  // namespace herd
