// Worker: one herd-worker process. Adopts the connections the master hands it
// over the channel (fd 3), serves them with one libevent loop, reports
// heartbeats, and drains on request or when the master goes away.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/intrusive/list.hpp>

#include "common/clock.h"
#include "common/event_loop.h"
#include "common/fd_passing.h"
#include "common/unique_fd.h"
#include "herd/app.h"
#include "herd/loop.h"
#include "proto/messages.h"
#include "worker/connection.h"

namespace herd {

struct WorkerSettings {
  int channel_fd = 3;
  // With the master's --schedule none: the shared listening socket this
  // worker accepts from itself (HERD_LISTEN_FD); -1 when the master hands
  // connections over the channel.
  int listen_fd = -1;
  std::uint64_t id = 0;
  std::uint64_t slot = 0;
  Milliseconds heartbeat_interval{1000};
  // The master's --handoff-window (HERD_HANDOFF_WINDOW): how many connections
  // it hands this worker before waiting for an ack. Acks are coalesced up to
  // half of it; 1 acks every connection at once.
  std::size_t handoff_window = 1;
  // The master's --max-connections (HERD_MAX_CONNECTIONS): connections held
  // at most. At the limit the longest-idle one is closed for a new one; with
  // none idle the worker is full (see make_room()).
  std::size_t max_connections = 65536;
  // How long to finish in-flight requests after SIGTERM or losing the master.
  Milliseconds orphan_drain_timeout{1000};
  ConnectionSettings connection;
};

class Worker final : public ConnectionOwner {
 public:
  Worker(WorkerSettings settings, const App& app);
  ~Worker() override;

  // Says hello and ready, then serves until drained. Returns the exit code.
  int run();

  void connection_closed(Connection* connection) override;
  void connection_idle(Connection* connection, bool idle) override;
  void response_written(unsigned status, std::uint64_t latency_us) override;
  void count_bytes(std::size_t in, std::size_t out) override;
  std::string_view current_date() override;

 private:
  static void on_channel_readable(evutil_socket_t fd, short what, void* arg);
  static void on_channel_writable(evutil_socket_t fd, short what, void* arg);
  static void on_ack_due(evutil_socket_t fd, short what, void* arg);
  static void on_heartbeat(evutil_socket_t fd, short what, void* arg);
  static void on_drain_deadline(evutil_socket_t fd, short what, void* arg);
  static void on_signal(evutil_socket_t signal, short what, void* arg);
  static void on_acceptable(evutil_socket_t fd, short what, void* arg);
  static void on_room(evutil_socket_t fd, short what, void* arg);

  void read_channel();
  void handle_message(ReceivedMessage& received);
  void adopt(std::uint64_t seq, UniqueFd fd);
  bool open_connection(UniqueFd fd);
  bool make_room();
  void set_full(bool full);
  void report_room();
  void start_accepting();
  void accept_connection();
  void stop_accepting();
  void schedule_acks();
  void flush_acks();
  void send(const proto::WorkerMessage& message);
  void flush_outbox();
  void send_heartbeat();
  void begin_drain(Milliseconds deadline, const char* reason);
  void exit_when_drained();
  void master_gone();

  WorkerSettings settings_;
  const App& app_;
  EventBasePtr base_;
  std::unique_ptr<Loop> loop_;  // the application's view of base_
  UniqueFd channel_;
  EventPtr channel_event_;
  EventPtr channel_write_event_;  // armed while the outbox holds messages
  // Messages the channel had no room for, in order. An ack must never be
  // dropped (the master would hold that connection forever); a heartbeat may.
  std::deque<std::string> outbox_;
  EventPtr ack_event_;  // flushes coalesced acks at the latest kAckDelay after an adoption
  EventPtr heartbeat_event_;
  EventPtr drain_deadline_event_;
  EventPtr room_event_;  // report_room() from the loop, not from inside a connection
  std::vector<EventPtr> signal_events_;
  UniqueFd listen_;        // --schedule none only
  UniqueFd accept_epoll_;  // holds listen_ with EPOLLEXCLUSIVE; libevent watches it
  EventPtr accept_event_;
  // Idle connections, longest idle first; declared before connections_ so it
  // outlives them (each unlinks itself when it is deleted).
  boost::intrusive::list<Connection, boost::intrusive::constant_time_size<false>> idle_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;

  std::vector<std::uint64_t> adopted_seqs_;  // not yet acked; see schedule_acks()
  std::vector<std::uint64_t> refused_seqs_;
  proto::WorkerStats stats_;
  bool draining_ = false;
  bool master_gone_ = false;
  // At max_connections with none idle: the master was told (`capacity`), or
  // with --schedule none, accepting is paused.
  bool full_ = false;

  std::time_t date_second_ = 0;
  std::string date_;
};

// Makes herd::loop() return `loop` on this thread (nullptr: none).
void set_current_loop(Loop* loop);

}  // namespace herd
