// Connection: one adopted client socket in a worker. A thin libevent shell
// (raw read/write events and one timer) around HttpSession, which does the
// HTTP.
//
// I/O: one read() per readiness; responses are written at once with one
// send() per batch, and the write event is armed only when the socket pushes
// back (EAGAIN), so a keep-alive request costs a read and a send and no
// epoll_ctl.
//
// Timeouts: while a request is partly read, the header timeout runs from its
// first byte and is not extended by further bytes (so a client dribbling a
// byte at a time cannot hold the connection); while every request read has
// been answered, the idle keep-alive timeout runs; while the application owes
// a response, no timeout runs (the handler owns that time; a drain's deadline
// bounds it). The timer is re-armed only when a deadline moves earlier: a
// later one is picked up when the timer fires, so steady traffic does not
// touch the timer heap per request.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <boost/intrusive/list.hpp>

#include "common/event_loop.h"
#include "common/unique_fd.h"
#include "worker/byte_buffer.h"
#include "worker/http_session.h"

namespace herd {

struct ConnectionSettings {
  HttpLimits limits;
  std::chrono::milliseconds keepalive_timeout{5000};
  std::chrono::milliseconds header_timeout{10000};
  // Past this much unsent output, stop reading (and so parsing pipelined
  // requests) until the client has read some of it.
  std::size_t max_pending_output = 1024 * 1024;
  // When the worker drains, how long an idle keep-alive connection stays open
  // for its client's next request (answered with Connection: close) before it
  // is closed. Closing at once would race a client about to send.
  std::chrono::milliseconds drain_idle_grace{1000};
  // Whether another process may still hold the descriptor when this
  // connection ends (the master keeps its copy until the worker's ack): then
  // the FIN is sent with shutdown(), as close() would not send it.
  bool descriptor_shared = true;
};

// What a connection needs from its worker.
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  virtual void connection_closed(class Connection* connection) = 0;  // deletes it
  // The connection became idle (waiting for a request, none in progress or
  // owed) or stopped being idle.
  virtual void connection_idle(class Connection* connection, bool idle) = 0;
  virtual void response_written(unsigned status, std::uint64_t latency_us) = 0;
  virtual void count_bytes(std::size_t in, std::size_t out) = 0;
  virtual std::string_view current_date() = 0;
};

// Links a connection into its worker's list of idle ones.
using IdleHook =
    boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

class Connection final : public SessionHost, public IdleHook {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Takes ownership of `fd`. Returns false from start() if libevent refuses.
  Connection(ConnectionOwner& owner, event_base* base, UniqueFd fd,
             const ConnectionSettings& settings, const detail::ExchangeHandler& handler);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool start();
  // The worker is draining: close now if idle, else after the current response.
  void drain();
  // The worker needs the room: closes the connection if it is idle and no
  // request waits unread, as a keep-alive timeout would. Returns whether it
  // closed (and so deleted) it.
  bool reclaim();

  // SessionHost
  TimePoint now() override { return std::chrono::steady_clock::now(); }
  std::string_view date() override { return owner_.current_date(); }
  void output_ready() override;
  void response_written(unsigned status, std::uint64_t latency_us) override {
    owner_.response_written(status, latency_us);
  }

 private:
  enum class Timeout { kNone, kRequest, kIdle, kDrainGrace };

  static void on_readable(evutil_socket_t fd, short what, void* arg);
  static void on_writable(evutil_socket_t fd, short what, void* arg);
  static void on_timer(evutil_socket_t fd, short what, void* arg);
  static void on_output_ready(evutil_socket_t fd, short what, void* arg);

  // Each returns false once the connection is closed (deleted): the caller
  // must return without touching members.
  bool read_input();
  bool process_input();
  bool write_output();
  bool settle(TimePoint now);

  void set_reading(bool reading);
  void enter(Timeout kind);  // tells the owner when idleness changes
  void set_timeout(Timeout kind, TimePoint deadline);
  void update_timeout(TimePoint now);
  bool unread_bytes_waiting() const;
  bool close();  // deletes this; returns false

  ConnectionOwner& owner_;
  const ConnectionSettings& settings_;
  event_base* base_;
  UniqueFd fd_;
  HttpSession session_;
  EventPtr read_event_;
  EventPtr write_event_;  // created at the first EAGAIN; armed while output waits
  EventPtr timer_;
  EventPtr output_ready_event_;  // created at the first late response
  ByteBuffer input_;             // read, not yet consumed by the session
  ByteBuffer output_;            // responses the socket has not taken yet
  bool reading_ = false;
  bool writing_ = false;
  bool close_when_flushed_ = false;
  bool sent_any_ = false;
  bool nodelay_ = false;  // TCP_NODELAY, set before the second send (see write_output)
  bool draining_ = false;
  Timeout timeout_ = Timeout::kNone;
  TimePoint deadline_;
  bool timer_armed_ = false;
  TimePoint timer_fires_at_;
};

}  // namespace herd
