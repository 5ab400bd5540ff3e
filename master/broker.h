// Broker: the master's connection path (Node's SCHED_RR). Accepts from the
// listener, holds each accepted fd under a `seq`, hands it to a worker over
// that worker's channel, keeps its copy until the worker's ack, re-dispatches
// what a worker refuses or never acknowledged, and answers 503 to what waited
// past --queue-timeout. It owns the channels (one registry, with the pure
// Dispatcher kept in step inside it) and reads them; every message a worker
// sends goes to the BrokerHost (the Master), which supervises.
//
// Invariants: a held fd is queued or in flight to exactly one worker until it
// is acked (then closed here) or answered at the queue timeout; a worker is
// handed a connection only while it is serving (ready, not full: the host
// says), its channel is open and its socket buffer has room.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/event_loop.h"
#include "common/fd_passing.h"
#include "common/unique_fd.h"
#include "master/dispatcher.h"
#include "proto/messages.h"

namespace herd {

// Sends a `conn` datagram with its fd; the shell's is send_message(), tests
// give a fake that records and fails on demand.
class ChannelSender {
 public:
  virtual SendResult send(int channel, std::string_view message, int fd) = 0;

 protected:
  ~ChannelSender() = default;
};

// What the broker tells the master.
class BrokerHost {
 public:
  // A message a worker sent on its channel, decoded; the host acts on it
  // (an `ack` by calling acknowledge()).
  virtual void handle_message(WorkerId worker, const proto::WorkerMessage& message) = 0;
  // The worker broke the channel protocol (a descriptor, an oversized or
  // malformed message); the host replaces it.
  virtual void protocol_violation(WorkerId worker, const std::string& reason) = 0;
  // The worker's channel is gone (closed by either side): nothing more
  // reaches it; its un-acked connections were re-dispatched.
  virtual void channel_closed(WorkerId worker) = 0;
  // `count` connections were sent to the worker.
  virtual void handed(WorkerId worker, std::size_t count) = 0;
  // The pid a log line names the worker by.
  virtual std::int64_t worker_pid(WorkerId worker) const = 0;

 protected:
  ~BrokerHost() = default;
};

struct BrokerSettings {
  std::size_t handoff_window = 16;    // un-acked connections per worker
  Milliseconds queue_timeout{30000};  // longest a connection waits for a worker
  // Connections held waiting for a worker; past it accepting pauses and the
  // kernel's backlog holds the rest.
  std::size_t max_queued = 4096;
};

class Broker {
 public:
  Broker(event_base* base, BrokerHost& host, ChannelSender& sender, BrokerSettings settings);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Accepts from `listen_fd` (not owned) until stop().
  void start_accepting(int listen_fd);
  // Stops accepting for good and closes the queued connections; the
  // connections in flight stay until acked or their worker's channel closes.
  void stop();

  // A worker's channel (the master's end): read from now on; the worker is
  // handed nothing until set_serving(true).
  void attach(WorkerId worker, UniqueFd channel);
  // Closes the worker's channel, re-dispatches what it did not acknowledge
  // and tells the host. Nothing if it has none.
  void close_channel(WorkerId worker);
  bool has_channel(WorkerId worker) const;
  // Reads what the worker sent before it died, so its last acks count.
  void read_remaining(WorkerId worker);
  // Whether the host lets the worker take new connections.
  void set_serving(WorkerId worker, bool serving);

  // Sends one master -> worker message (not `conn`); false if the worker has
  // no channel or the send failed (logged).
  bool send(WorkerId worker, const proto::MasterMessage& message);

  // Takes a newly accepted connection into the queue and dispatches.
  void adopt(UniqueFd connection);
  // Applies a worker's ack. Returns the first seq it was never handed, if
  // any: a protocol violation, left to the host.
  std::optional<Seq> acknowledge(WorkerId worker, const proto::Ack& ack);
  // Hands queued connections out until the queue is empty or no worker has
  // credit.
  void dispatch();
  // Answers 503 to the connections that waited past the queue timeout.
  void expire_queued();

  std::size_t queued() const { return dispatcher_.queued(); }
  std::size_t held() const { return connections_.size(); }
  std::uint64_t connections_total() const { return connections_total_; }

 private:
  // One worker's end of the channel, its events and what decides whether it
  // may be handed a connection.
  struct Channel {
    Broker* broker;
    WorkerId worker;
    UniqueFd fd;
    EventPtr read_event;
    EventPtr write_event;  // armed only while the socket buffer is full
    bool blocked = false;  // the last send would have blocked
    bool serving = false;  // set_serving()
  };
  struct HeldConnection {
    UniqueFd fd;
    TimePoint accepted_at;
  };

  static void on_accept(evutil_socket_t fd, short what, void* arg);
  static void on_resume_accept(evutil_socket_t fd, short what, void* arg);
  static void on_channel_readable(evutil_socket_t fd, short what, void* arg);
  static void on_channel_writable(evutil_socket_t fd, short what, void* arg);

  void accept_connections();
  // Queues an accepted connection under a new seq.
  void hold(UniqueFd connection);
  void pause_accepting(Milliseconds retry_after);
  void resume_accepting();
  void read_channel(WorkerId worker);
  void update_eligibility(const Channel& channel);
  void close_queued();
  // After an ack or a closed channel: stopped, the queue only shrinks.
  void dispatch_or_close_queued();

  event_base* base_;
  BrokerHost& host_;
  ChannelSender& sender_;
  BrokerSettings settings_;

  int listen_fd_ = -1;
  EventPtr accept_event_;
  EventPtr resume_accept_event_;
  bool accepting_ = false;
  bool stopped_ = false;

  Dispatcher dispatcher_;
  std::map<WorkerId, std::unique_ptr<Channel>> channels_;
  std::unordered_map<Seq, HeldConnection> connections_;  // queued or un-acked; closed on ack
  Seq next_seq_ = 1;
  std::uint64_t connections_total_ = 0;
};

// The ChannelSender of the running master: send_message().
class SocketSender final : public ChannelSender {
 public:
  SendResult send(int channel, std::string_view message, int fd) override {
    return send_message(channel, message, fd);
  }
};

}  // namespace herd
