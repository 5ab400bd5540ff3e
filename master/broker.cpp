#include "master/broker.h"

#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <optional>
#include <span>
#include <utility>

#include "common/errno_text.h"

namespace herd {
namespace {

// Accepts per readiness callback: enough to drain a burst, few enough that
// acks from workers are read in between.
constexpr int kAcceptBatch = 64;
// How long to stop accepting after EMFILE/ENFILE, instead of spinning on it.
constexpr Milliseconds kAcceptRetryAfterFdExhaustion{100};
// Datagrams read from one channel per readiness callback.
constexpr int kChannelReadBudget = 256;

// The answer to a connection no worker took within --queue-timeout: it was
// not served, so a client may retry it.
constexpr std::string_view kQueueTimeoutResponse =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 28\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "\r\n"
    "No worker was free in time.\n";

// Best effort, never blocking: the request already sent is read and dropped
// first, because closing a socket with unread input resets it, and the reset
// could destroy the 503 before the client reads it.
void answer_queue_timeout(int fd) {
  char discard[4096];
  for (int reads = 0; reads < 16 && ::recv(fd, discard, sizeof discard, MSG_DONTWAIT) > 0;
       ++reads) {
  }
  (void)::send(fd, kQueueTimeoutResponse.data(), kQueueTimeoutResponse.size(),
               MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
}

}  // namespace

Broker::Broker(event_base* base, BrokerHost& host, ChannelSender& sender, BrokerSettings settings)
    : base_(base),
      host_(host),
      sender_(sender),
      settings_(settings),
      dispatcher_(settings.handoff_window) {}

Broker::~Broker() = default;

// ---- libevent callbacks ----------------------------------------------------

void Broker::on_accept(evutil_socket_t, short, void* arg) {
  static_cast<Broker*>(arg)->accept_connections();
}

void Broker::on_resume_accept(evutil_socket_t, short, void* arg) {
  static_cast<Broker*>(arg)->resume_accepting();
}

void Broker::on_channel_readable(evutil_socket_t, short, void* arg) {
  auto* channel = static_cast<Channel*>(arg);
  channel->broker->read_channel(channel->worker);
}

void Broker::on_channel_writable(evutil_socket_t, short, void* arg) {
  auto* channel = static_cast<Channel*>(arg);
  Broker* broker = channel->broker;
  channel->blocked = false;
  broker->update_eligibility(*channel);
  broker->dispatch();
}

// ---- accepting -------------------------------------------------------------

void Broker::start_accepting(int listen_fd) {
  listen_fd_ = listen_fd;
  accept_event_.reset(event_new(base_, listen_fd_, EV_READ | EV_PERSIST, on_accept, this));
  resume_accept_event_.reset(evtimer_new(base_, on_resume_accept, this));
  event_add(accept_event_.get(), nullptr);
  accepting_ = true;
}

void Broker::stop() {
  stopped_ = true;
  accepting_ = false;
  accept_event_.reset();
  resume_accept_event_.reset();
  listen_fd_ = -1;
  close_queued();
}

void Broker::accept_connections() {
  for (int i = 0; i < kAcceptBatch && accepting_; ++i) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      hold(UniqueFd(fd));
      continue;
    }
    switch (errno) {
      case EAGAIN:
#if EAGAIN != EWOULDBLOCK
      case EWOULDBLOCK:
#endif
        i = kAcceptBatch;
        break;
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
        break;  // that client is gone; try the next one
      case EMFILE:
      case ENFILE:
      case ENOBUFS:
      case ENOMEM:
        // Level-triggered readiness would call us straight back: back off.
        spdlog::warn("accept4() failed: {}; pausing accepts for {} ms", errno_text(errno),
                     kAcceptRetryAfterFdExhaustion.count());
        pause_accepting(kAcceptRetryAfterFdExhaustion);
        break;
      default:
        spdlog::error("accept4() failed: {}", errno_text(errno));
        i = kAcceptBatch;
        break;
    }
  }
  dispatch();
  if (accepting_ && dispatcher_.queued() >= settings_.max_queued) {
    spdlog::warn("{} connections waiting for a worker; pausing accepts", dispatcher_.queued());
    pause_accepting(Milliseconds{0});
  }
}

void Broker::adopt(UniqueFd connection) {
  hold(std::move(connection));
  dispatch();
}

void Broker::hold(UniqueFd connection) {
  Seq seq = next_seq_++;
  connections_.emplace(seq, HeldConnection{std::move(connection), Clock::now()});
  dispatcher_.enqueue(seq);
  ++connections_total_;
}

void Broker::pause_accepting(Milliseconds retry_after) {
  if (!accepting_) return;
  accepting_ = false;
  event_del(accept_event_.get());
  if (retry_after.count() > 0) arm_timer(resume_accept_event_.get(), retry_after);
}

void Broker::resume_accepting() {
  if (accepting_ || stopped_ || !accept_event_) return;
  accepting_ = true;
  event_add(accept_event_.get(), nullptr);
}

// ---- dispatching -----------------------------------------------------------

// The master keeps its copy of each fd until the worker's ack.
void Broker::dispatch() {
  while (std::optional<Dispatcher::Handoff> handoff = dispatcher_.next()) {
    auto channel = channels_.find(handoff->worker);
    auto connection = connections_.find(handoff->seq);
    // Neither can happen while attach() and close_channel() keep the
    // dispatcher in step; each is undone here rather than spun on.
    if (channel == channels_.end()) {
      spdlog::error("worker id {} was handed connection {} without a channel", handoff->worker,
                    handoff->seq);
      dispatcher_.return_unsent(handoff->worker, handoff->seq);
      dispatcher_.remove_worker(handoff->worker);
      continue;
    }
    if (connection == connections_.end()) {
      spdlog::error("connection {} was handed out without a descriptor", handoff->seq);
      dispatcher_.acknowledge(handoff->worker, std::span<const Seq>(&handoff->seq, 1), true);
      continue;
    }
    Channel& to = *channel->second;
    std::string message = proto::encode(proto::MasterMessage{proto::Conn{handoff->seq}});
    SendResult sent = sender_.send(to.fd.get(), message, connection->second.fd.get());
    int send_errno = errno;
    if (sent == SendResult::kSent) {
      host_.handed(to.worker, 1);
      continue;
    }
    dispatcher_.return_unsent(handoff->worker, handoff->seq);
    if (sent == SendResult::kWouldBlock) {
      // The worker is not reading its channel fast enough; wait for room.
      to.blocked = true;
      event_add(to.write_event.get(), nullptr);
      update_eligibility(to);
    } else {
      spdlog::error("sendmsg() to worker {} failed: {}", host_.worker_pid(to.worker),
                    errno_text(send_errno));
      close_channel(to.worker);
    }
  }
  if (!accepting_ && !stopped_ && accept_event_ &&
      dispatcher_.queued() < settings_.max_queued / 2 &&
      !event_pending(resume_accept_event_.get(), EV_TIMEOUT, nullptr)) {
    resume_accepting();
  }
}

std::optional<Seq> Broker::acknowledge(WorkerId worker, const proto::Ack& ack) {
  Dispatcher::AckOutcome outcome = dispatcher_.acknowledge(worker, ack.seqs, ack.accepted);
  for (Seq seq : outcome.adopted) connections_.erase(seq);
  if (!outcome.unknown.empty()) return outcome.unknown.front();
  dispatch_or_close_queued();
  return std::nullopt;
}

// A connection nobody could take for --queue-timeout is answered 503 and
// closed rather than held forever (with no worker able to start, or every
// worker full, the client learns at once instead of at its own timeout).
// O(expired): the queue is oldest first.
void Broker::expire_queued() {
  TimePoint now = Clock::now();
  std::size_t expired = 0;
  while (std::optional<Seq> oldest = dispatcher_.oldest_queued()) {
    auto connection = connections_.find(*oldest);
    if (connection != connections_.end() &&
        now - connection->second.accepted_at < settings_.queue_timeout) {
      break;
    }
    dispatcher_.drop_oldest();
    if (connection != connections_.end()) {
      answer_queue_timeout(connection->second.fd.get());
      connections_.erase(connection);
    }
    ++expired;
  }
  if (expired > 0) {
    spdlog::warn("answered 503 to {} connections that waited over {} ms for a worker", expired,
                 settings_.queue_timeout.count());
  }
}

void Broker::close_queued() {
  std::vector<Seq> queued = dispatcher_.take_queue();
  if (!queued.empty()) {
    spdlog::warn("closing {} connections that no worker took", queued.size());
  }
  for (Seq seq : queued) connections_.erase(seq);
}

void Broker::dispatch_or_close_queued() {
  if (stopped_) {
    close_queued();
  } else {
    dispatch();
  }
}

// ---- the channels ----------------------------------------------------------

void Broker::attach(WorkerId worker, UniqueFd fd) {
  auto channel = std::make_unique<Channel>();
  channel->broker = this;
  channel->worker = worker;
  channel->fd = std::move(fd);
  channel->read_event.reset(event_new(base_, channel->fd.get(), EV_READ | EV_PERSIST,
                                      on_channel_readable, channel.get()));
  channel->write_event.reset(
      event_new(base_, channel->fd.get(), EV_WRITE, on_channel_writable, channel.get()));
  event_add(channel->read_event.get(), nullptr);
  channels_.insert_or_assign(worker, std::move(channel));
  dispatcher_.add_worker(worker);
}

bool Broker::has_channel(WorkerId worker) const {
  return channels_.count(worker) != 0;
}

void Broker::read_remaining(WorkerId worker) {
  read_channel(worker);  // nothing without a channel
}

void Broker::set_serving(WorkerId worker, bool serving) {
  auto channel = channels_.find(worker);
  if (channel == channels_.end()) return;
  channel->second->serving = serving;
  update_eligibility(*channel->second);
}

void Broker::update_eligibility(const Channel& channel) {
  dispatcher_.set_eligible(channel.worker, channel.serving && !channel.blocked);
}

bool Broker::send(WorkerId worker, const proto::MasterMessage& message) {
  auto channel = channels_.find(worker);
  if (channel == channels_.end()) return false;
  SendResult sent = sender_.send(channel->second->fd.get(), proto::encode(message), -1);
  int send_errno = errno;
  if (sent == SendResult::kSent) return true;
  spdlog::error("sendmsg() of '{}' to worker {} failed: {}", proto::type_name(message),
                host_.worker_pid(worker),
                sent == SendResult::kWouldBlock ? "channel full" : errno_text(send_errno));
  return false;
}

void Broker::read_channel(WorkerId worker) {
  // Each message may close the channel (EOF, a violation, the host's
  // doing): look it up again every time.
  for (int budget = kChannelReadBudget; budget > 0; --budget) {
    auto channel = channels_.find(worker);
    if (channel == channels_.end()) return;
    ReceivedMessage received = receive_message(channel->second->fd.get());
    switch (received.status) {
      case ReceiveStatus::kWouldBlock:
        return;
      case ReceiveStatus::kClosed:
        spdlog::debug("worker {} closed its channel", host_.worker_pid(worker));
        close_channel(worker);
        return;
      case ReceiveStatus::kError:
        spdlog::error("recvmsg() from worker {} failed: {}", host_.worker_pid(worker),
                      errno_text(received.error));
        close_channel(worker);
        return;
      case ReceiveStatus::kMessage:
        break;
    }
    if (!received.fds.empty() || received.control_truncated) {
      host_.protocol_violation(worker, "sent a file descriptor on its channel");
      continue;
    }
    if (received.payload_truncated) {
      host_.protocol_violation(
          worker, "sent a message over " + std::to_string(kMaxMessageBytes) + " bytes");
      continue;
    }
    proto::Decoded<proto::WorkerMessage> decoded = proto::decode_worker_message(received.payload);
    if (!decoded.message) {
      host_.protocol_violation(worker, "sent a malformed message: " + decoded.error);
      continue;
    }
    host_.handle_message(worker, *decoded.message);
  }
}

// Its un-acked connections go back to the front of the queue for another
// worker.
void Broker::close_channel(WorkerId worker) {
  auto channel = channels_.find(worker);
  if (channel == channels_.end()) return;
  channels_.erase(channel);
  std::vector<Seq> returned = dispatcher_.remove_worker(worker);
  if (!returned.empty()) {
    spdlog::info("re-dispatching {} connections that worker id {} did not acknowledge",
                 returned.size(), worker);
  }
  host_.channel_closed(worker);
  dispatch_or_close_queued();
}

}  // namespace herd
