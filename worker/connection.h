// Connection: one adopted client socket in a worker. A thin libevent shell
// (bufferevent + timers) around HttpSession, which does the HTTP.
//
// Timeouts: while a request is partly read, the header timeout runs from its
// first byte and is not extended by further bytes (so a client dribbling a
// byte at a time cannot hold the connection); while every request read has
// been answered, the idle keep-alive timeout runs; while the application owes
// a response, no timer runs (the handler owns that time; a drain's deadline
// bounds it).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/event_loop.h"
#include "common/unique_fd.h"
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
};

// What a connection needs from its worker.
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  virtual void connection_closed(class Connection* connection) = 0;  // deletes it
  virtual void response_written(unsigned status, std::uint64_t latency_us) = 0;
  virtual void count_bytes(std::size_t in, std::size_t out) = 0;
  virtual std::string_view current_date() = 0;
};

class Connection final : public SessionHost {
 public:
  // Takes ownership of `fd`. Returns false from start() if libevent refuses.
  Connection(ConnectionOwner& owner, event_base* base, UniqueFd fd,
             const ConnectionSettings& settings, const App& app);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool start();
  // The worker is draining: close now if idle, else after the current response.
  void drain();

  // SessionHost
  std::chrono::steady_clock::time_point now() override;
  std::string_view date() override;
  void output_ready() override;
  void response_written(unsigned status, std::uint64_t latency_us) override;

 private:
  static void on_read(bufferevent* bev, void* arg);
  static void on_write(bufferevent* bev, void* arg);
  static void on_event(bufferevent* bev, short what, void* arg);
  static void on_timeout(evutil_socket_t fd, short what, void* arg);
  static void on_output_ready(evutil_socket_t fd, short what, void* arg);

  void process_input();
  void write_output();
  // After input or output: close, pause reading, or arm the timer the state
  // calls for. The last thing a callback does (it may delete this).
  void settle();
  void arm_timer_for_state();
  bool output_pending() const;
  bool unread_bytes_waiting() const;
  void close();  // deletes this

  ConnectionOwner& owner_;
  const ConnectionSettings& settings_;
  HttpSession session_;
  BufferEventPtr bev_;
  EventPtr timer_;
  EventPtr output_ready_event_;  // runs write_output() from the loop, for late responses
  enum class Timer { kNone, kRequest, kIdle, kDrainGrace };
  Timer timer_running_ = Timer::kNone;
  bool read_paused_ = false;
  bool close_when_flushed_ = false;
  bool draining_ = false;
  std::size_t buffered_input_ = 0;  // input bytes already counted, left unparsed
};

}  // namespace herd
