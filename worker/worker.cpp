#include "worker/worker.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <variant>

namespace herd {
namespace {

// The longest an adopted connection waits for its ack. Each ack wakes the
// master (a context switch on both sides), so under load acks are gathered;
// the master holds its copy of each fd this much longer, which the client
// does not see (the worker sends its FIN itself).
constexpr Milliseconds kAckDelay{1};

}  // namespace

Worker::Worker(WorkerSettings settings, const App& app)
    : settings_(std::move(settings)),
      app_(app),
      channel_(settings_.channel_fd),
      listen_(settings_.listen_fd) {
  // A worker that accepts its connections itself holds their only copies.
  if (listen_) settings_.connection.descriptor_shared = false;
}

Worker::~Worker() {
  // Connections and the application's timers hold events on base_: free them
  // before the base. Connections first: the timers' callbacks may hold
  // responses, whose release must find their connections detached.
  connections_.clear();
  accept_event_.reset();
  set_current_loop(nullptr);
  loop_.reset();
}

int Worker::run() {
  // Backstop for channel EOF: if the master dies, drain and exit.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  ::signal(SIGPIPE, SIG_IGN);
  base_.reset(event_base_new());
  if (!base_) {
    spdlog::critical("event_base_new() failed");
    return 1;
  }
  loop_ = std::make_unique<Loop>(base_.get());
  set_current_loop(loop_.get());
  channel_event_.reset(
      event_new(base_.get(), channel_.get(), EV_READ | EV_PERSIST, on_channel_readable, this));
  channel_write_event_.reset(
      event_new(base_.get(), channel_.get(), EV_WRITE, on_channel_writable, this));
  ack_event_.reset(evtimer_new(base_.get(), on_ack_due, this));
  heartbeat_event_.reset(event_new(base_.get(), -1, EV_PERSIST, on_heartbeat, this));
  drain_deadline_event_.reset(evtimer_new(base_.get(), on_drain_deadline, this));
  room_event_.reset(event_new(base_.get(), -1, 0, on_room, this));
  for (int signal : {SIGTERM, SIGINT}) {
    EventPtr event(evsignal_new(base_.get(), signal, on_signal, this));
    event_add(event.get(), nullptr);
    signal_events_.push_back(std::move(event));
  }
  event_add(channel_event_.get(), nullptr);
  timeval interval = to_timeval(settings_.heartbeat_interval);
  event_add(heartbeat_event_.get(), &interval);

  send(proto::Hello{proto::kProtocolVersion, ::getpid()});
  send(proto::Ready{});
  start_accepting();
  event_base_dispatch(base_.get());
  flush_acks();
  spdlog::debug("worker {} exiting", settings_.id);
  return 0;
}

// ---- libevent callbacks ----------------------------------------------------

void Worker::on_channel_readable(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->read_channel();
}

void Worker::on_channel_writable(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->flush_outbox();
}

void Worker::on_heartbeat(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->send_heartbeat();
}

void Worker::on_drain_deadline(evutil_socket_t, short, void* arg) {
  auto* worker = static_cast<Worker*>(arg);
  spdlog::warn("drain deadline reached with {} connections open; closing them",
               worker->connections_.size());
  event_base_loopexit(worker->base_.get(), nullptr);
}

void Worker::on_room(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->report_room();
}

void Worker::on_signal(evutil_socket_t signal, short, void* arg) {
  auto* worker = static_cast<Worker*>(arg);
  worker->begin_drain(worker->settings_.orphan_drain_timeout,
                      signal == SIGTERM ? "SIGTERM" : "SIGINT");
}

// ---- the channel -----------------------------------------------------------

void Worker::read_channel() {
  // Read everything queued, then answer the connections it brought together.
  for (int budget = 256; budget > 0 && channel_; --budget) {
    ReceivedMessage received = receive_message(channel_.get());
    if (received.status == ReceiveStatus::kWouldBlock) break;
    if (received.status == ReceiveStatus::kClosed) {
      master_gone();
      break;
    }
    if (received.status == ReceiveStatus::kError) {
      spdlog::error("recvmsg() on the channel failed: {}", std::strerror(received.error));
      master_gone();
      break;
    }
    handle_message(received);
  }
  schedule_acks();
}

void Worker::handle_message(ReceivedMessage& received) {
  if (received.payload_truncated) {
    spdlog::error("channel message over {} bytes from the master; ignored", kMaxMessageBytes);
    return;  // any descriptors close with `received`
  }
  proto::Decoded<proto::MasterMessage> decoded = proto::decode_master_message(received.payload);
  if (!decoded.message) {
    spdlog::error("malformed message from the master ({}); ignored", decoded.error);
    return;
  }
  const proto::MasterMessage& message = *decoded.message;
  const auto* conn = std::get_if<proto::Conn>(&message);
  if (conn == nullptr && !received.fds.empty()) {
    spdlog::error("'{}' message came with {} descriptors; closed them", proto::type_name(message),
                  received.fds.size());
    received.fds.clear();
  }

  if (conn != nullptr) {
    if (received.fds.size() != 1 || received.control_truncated) {
      spdlog::error("'conn' {} came with {} descriptors instead of one; refusing it", conn->seq,
                    received.fds.size());
      refused_seqs_.push_back(conn->seq);
      // Out of descriptors (the kernel dropped it): take nothing more until
      // a connection closes or the next heartbeat finds room.
      if (received.control_truncated) set_full(true);
      return;
    }
    adopt(conn->seq, std::move(received.fds[0]));
  } else if (const auto* drain = std::get_if<proto::Drain>(&message)) {
    begin_drain(Milliseconds{drain->deadline_ms}, "the master asked");
  } else if (std::holds_alternative<proto::Ping>(message)) {
    send(proto::Pong{});
  }
}

void Worker::adopt(std::uint64_t seq, UniqueFd fd) {
  // Refused: the master re-dispatches it (to another worker, while this one
  // is full).
  if (draining_ || !make_room() || !open_connection(std::move(fd))) {
    refused_seqs_.push_back(seq);
    return;
  }
  adopted_seqs_.push_back(seq);
}

bool Worker::open_connection(UniqueFd fd) {
  auto connection =
      std::make_unique<Connection>(*this, base_.get(), std::move(fd), settings_.connection, app_);
  if (!connection->start()) {
    spdlog::error("cannot set up a connection: libevent refused it");
    return false;
  }
  Connection* key = connection.get();
  connections_.emplace(key, std::move(connection));
  ++stats_.connections;
  stats_.active_connections = connections_.size();
  return true;
}

// ---- the connection limit ---------------------------------------------------

// Room for one more connection: below the limit, or by closing the
// longest-idle one, as nginx reuses keep-alive connections when its
// worker_connections run out (an idle client loses nothing it asked for;
// HTTP clients reopen). With none idle the worker is full.
bool Worker::make_room() {
  if (connections_.size() < settings_.max_connections) return true;
  // A candidate with a request waiting unread is about to be busy: skip it,
  // but look at only a few, so a full worker's refusal stays cheap.
  int candidates = 8;
  for (auto it = idle_.begin(); it != idle_.end() && candidates-- > 0;) {
    Connection& connection = *it++;
    if (connection.reclaim()) return true;  // deleted it: iterate no further
  }
  set_full(true);
  return false;
}

// A full worker is handed nothing: the master learns it from `capacity`
// before the refusal that follows (so it does not send the refused
// connection straight back), and with --schedule none the worker stops
// accepting and leaves the socket's backlog to the others.
void Worker::set_full(bool full) {
  if (full == full_) return;
  full_ = full;
  spdlog::debug("worker {} {} ({} connections, limit {})", settings_.id,
                full ? "is full" : "has room again", connections_.size(),
                settings_.max_connections);
  if (!listen_) {
    send(proto::Capacity{full});
  } else if (accept_event_) {
    full ? event_del(accept_event_.get()) : event_add(accept_event_.get(), nullptr);
  }
}

void Worker::report_room() {
  if (full_ && !draining_ && (connections_.size() < settings_.max_connections || !idle_.empty())) {
    set_full(false);
  }
}

// ---- accepting (--schedule none) -------------------------------------------

void Worker::start_accepting() {
  if (!listen_) return;
  // Every worker waits on the same socket. Through an epoll set of its own
  // holding the socket with EPOLLEXCLUSIVE (which libevent 2.1 cannot ask
  // for), a new connection wakes one worker rather than all of them.
  accept_epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  epoll_event interest{};
  interest.events = EPOLLIN | EPOLLEXCLUSIVE;
  interest.data.fd = listen_.get();
  int watched = listen_.get();
  if (accept_epoll_ &&
      ::epoll_ctl(accept_epoll_.get(), EPOLL_CTL_ADD, listen_.get(), &interest) == 0) {
    watched = accept_epoll_.get();
  } else {
    spdlog::warn("epoll with EPOLLEXCLUSIVE failed ({}); every worker wakes for each connection",
                 std::strerror(errno));
  }
  accept_event_.reset(event_new(base_.get(), watched, EV_READ | EV_PERSIST, on_acceptable, this));
  if (!accept_event_ || event_add(accept_event_.get(), nullptr) != 0) {
    spdlog::critical("cannot watch the listening socket; this worker serves nothing");
  }
}

void Worker::on_acceptable(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->accept_connection();
}

// One per wakeup, like nginx without multi_accept: the socket stays readable
// while more wait, so a burst is still drained (and shared with the other
// workers), and the common case costs no accept4() failing with EAGAIN.
void Worker::accept_connection() {
  if (!listen_ || !make_room()) return;
  UniqueFd fd(::accept4(listen_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (fd) {
    (void)open_connection(std::move(fd));
  } else if (errno == EMFILE || errno == ENFILE) {
    // Level-triggered readiness would call straight back: pause until a
    // connection closes or the next heartbeat.
    spdlog::warn("accept4() failed: {}; pausing accepts", std::strerror(errno));
    set_full(true);
  } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
    spdlog::error("accept4() failed: {}", std::strerror(errno));
  }
}

void Worker::stop_accepting() {
  accept_event_.reset();
  accept_epoll_.reset();
  listen_.reset();
}

// A refusal is sent at once (the connection waits for another worker), and
// so are adoptions once half the master's window is used: the master never
// stalls for want of credit. Otherwise the ack waits up to kAckDelay for
// more connections to share it.
void Worker::schedule_acks() {
  std::size_t threshold = std::max<std::size_t>(settings_.handoff_window / 2, 1);
  if (!refused_seqs_.empty() || adopted_seqs_.size() >= threshold) {
    flush_acks();
  } else if (!adopted_seqs_.empty() && !event_pending(ack_event_.get(), EV_TIMEOUT, nullptr)) {
    arm_timer(ack_event_.get(), kAckDelay);
  }
}

void Worker::on_ack_due(evutil_socket_t, short, void* arg) {
  static_cast<Worker*>(arg)->flush_acks();
}

void Worker::flush_acks() {
  if (ack_event_) event_del(ack_event_.get());
  if (!adopted_seqs_.empty()) send(proto::Ack{std::exchange(adopted_seqs_, {}), true});
  if (!refused_seqs_.empty()) send(proto::Ack{std::exchange(refused_seqs_, {}), false});
}

void Worker::send(const proto::WorkerMessage& message) {
  if (!channel_) return;
  outbox_.push_back(proto::encode(message));
  flush_outbox();
}

void Worker::flush_outbox() {
  while (channel_ && !outbox_.empty()) {
    SendResult result = send_message(channel_.get(), outbox_.front());
    if (result == SendResult::kSent) {
      outbox_.pop_front();
    } else if (result == SendResult::kWouldBlock) {
      event_add(channel_write_event_.get(), nullptr);
      return;
    } else if (result == SendResult::kPeerGone) {
      return master_gone();
    } else {
      spdlog::error("sendmsg() to the master failed: {}", std::strerror(errno));
      outbox_.pop_front();
    }
  }
}

void Worker::send_heartbeat() {
  report_room();  // a worker that ran out of descriptors tries again
  // A master that is not reading does not need a backlog of stale heartbeats.
  if (!outbox_.empty()) return;
  stats_.active_connections = connections_.size();
  send(proto::Heartbeat{stats_});
}

// ---- draining --------------------------------------------------------------

void Worker::begin_drain(Milliseconds deadline, const char* reason) {
  if (draining_) return;
  draining_ = true;
  stop_accepting();
  flush_acks();  // the master learns what this worker took before it refuses the rest
  spdlog::debug("worker {} draining ({}): {} connections, deadline {} ms", settings_.id, reason,
                connections_.size(), deadline.count());
  arm_timer(drain_deadline_event_.get(), deadline);
  // drain() may close (and delete) the connection: collect first.
  std::vector<Connection*> open;
  open.reserve(connections_.size());
  for (auto& [key, connection] : connections_) open.push_back(key);
  for (Connection* connection : open) connection->drain();
  exit_when_drained();
}

void Worker::exit_when_drained() {
  if (draining_ && connections_.empty()) event_base_loopexit(base_.get(), nullptr);
}

void Worker::master_gone() {
  if (master_gone_) return;
  master_gone_ = true;
  channel_event_.reset();
  channel_write_event_.reset();
  outbox_.clear();
  channel_.reset();
  begin_drain(settings_.orphan_drain_timeout, "the master is gone");
}

// ---- ConnectionOwner -------------------------------------------------------

void Worker::connection_closed(Connection* connection) {
  connections_.erase(connection);
  stats_.active_connections = connections_.size();
  if (full_) event_active(room_event_.get(), EV_TIMEOUT, 0);
  exit_when_drained();
}

void Worker::connection_idle(Connection* connection, bool idle) {
  // Called only when idleness changes: an idle connection is not linked yet.
  if (!idle) {
    connection->unlink();
    return;
  }
  idle_.push_back(*connection);  // the longest idle stay at the front
  if (full_) event_active(room_event_.get(), EV_TIMEOUT, 0);
}

void Worker::response_written(unsigned status, std::uint64_t latency_us) {
  ++stats_.requests;
  switch (status / 100) {
    case 2:
      ++stats_.responses.status_2xx;
      break;
    case 3:
      ++stats_.responses.status_3xx;
      break;
    case 4:
      ++stats_.responses.status_4xx;
      break;
    case 5:
      ++stats_.responses.status_5xx;
      break;
    default:
      break;
  }
  stats_.latency_us.record(latency_us);
  spdlog::debug("Request handled by worker {}", settings_.id);
}

void Worker::count_bytes(std::size_t in, std::size_t out) {
  stats_.bytes_in += in;
  stats_.bytes_out += out;
}

std::string_view Worker::current_date() {
  std::time_t now = ::time(nullptr);
  if (now != date_second_) {
    date_second_ = now;
    date_ = http_date(now);
  }
  return date_;
}

}  // namespace herd
