#include "worker/connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

namespace herd {
namespace {

// The first read's buffer; it grows (doubling) for larger requests.
constexpr std::size_t kReadChunk = 4096;

bool would_block(int error) {
  return error == EAGAIN || error == EWOULDBLOCK || error == EINTR;
}

}  // namespace

Connection::Connection(ConnectionOwner& owner, event_base* base, UniqueFd fd,
                       const ConnectionSettings& settings, const detail::ExchangeHandler& handler)
    : owner_(owner),
      settings_(settings),
      base_(base),
      fd_(std::move(fd)),
      session_(settings.limits, handler, *this) {
  read_event_.reset(event_new(base, fd_.get(), EV_READ | EV_PERSIST, on_readable, this));
  timer_.reset(evtimer_new(base, on_timer, this));
}

// Members go in reverse order: the events before the descriptor they watch.
Connection::~Connection() {
  // The master keeps its copy of the descriptor until the ack arrives, which is
  // often after a quick response (acks are gathered for up to a millisecond):
  // the last close() does the TCP close. Sending the FIN here tells the client
  // at once, and keeps that work on the worker, off the master's one core.
  if (settings_.descriptor_shared) ::shutdown(fd_.get(), SHUT_WR);
}

bool Connection::start() {
  if (!read_event_ || !timer_) return false;
  set_reading(true);
  update_timeout(now());
  return true;
}

void Connection::drain() {
  session_.drain();
  draining_ = true;
  // A connection still owes a response if a request is partly read or
  // waiting on the application, or if it was adopted and has not been
  // answered yet (its request may still be on the wire), or if bytes wait
  // unread in the socket: that response will say Connection: close. The
  // drain deadline bounds how long that can take.
  if (session_.in_request() || session_.outstanding() > 0 || session_.responses_written() == 0 ||
      unread_bytes_waiting()) {
    return;
  }
  if (!output_.empty()) {
    close_when_flushed_ = true;
    return;
  }
  // Idle: an active client's next request still gets an answer (with
  // Connection: close); a quiet one is closed when the grace runs out.
  update_timeout(now());
}

bool Connection::reclaim() {
  if (timeout_ != Timeout::kIdle || unread_bytes_waiting()) return false;
  spdlog::debug("closing an idle connection to make room for a new one");
  close();
  return true;
}

bool Connection::unread_bytes_waiting() const {
  int waiting = 0;
  if (!input_.empty()) return true;
  return ::ioctl(fd_.get(), FIONREAD, &waiting) == 0 && waiting > 0;
}

void Connection::output_ready() {
  // Called from inside the application's code: write from the loop instead.
  if (!output_ready_event_) {
    output_ready_event_.reset(event_new(base_, -1, 0, on_output_ready, this));
    if (!output_ready_event_) {
      spdlog::error("event_new() failed: a late response waits for the next read");
      return;
    }
  }
  event_active(output_ready_event_.get(), EV_WRITE, 0);
}

// ---- libevent callbacks ----------------------------------------------------

void Connection::on_readable(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->read_input()) self->process_input();
}

void Connection::on_writable(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (!self->write_output() || !self->output_.empty()) return;
  if (self->session_.closing() || self->close_when_flushed_) {
    self->close();
    return;
  }
  self->process_input();  // requests held back by a full output buffer
}

void Connection::on_timer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  self->timer_armed_ = false;
  if (self->timeout_ == Timeout::kNone) return;
  TimePoint now = self->now();
  if (now < self->deadline_) {
    // The deadline moved later since the timer was armed.
    self->set_timeout(self->timeout_, self->deadline_);
    return;
  }
  spdlog::debug("closing connection: {} timeout",
                self->timeout_ == Timeout::kRequest ? "request header" : "keep-alive");
  self->close();
}

void Connection::on_output_ready(evutil_socket_t, short, void* arg) {
  // A late response: write it, then read requests held back by a full
  // pipeline.
  static_cast<Connection*>(arg)->process_input();
}

// ---- the work --------------------------------------------------------------

bool Connection::read_input() {
  char* space = input_.writable(kReadChunk);
  ssize_t received = ::read(fd_.get(), space, input_.writable_size());
  if (received > 0) {
    input_.commit(static_cast<std::size_t>(received));
    owner_.count_bytes(static_cast<std::size_t>(received), 0);
    return true;
  }
  if (received < 0 && would_block(errno)) return true;
  if (received < 0) {
    spdlog::debug("read() from a client failed: {}", std::strerror(errno));
    return close();
  }
  // EOF. A client that half-closed after its requests still gets the
  // responses already written; like Node's default (no allowHalfOpen),
  // requests still waiting on the application are aborted.
  if (output_.empty()) return close();
  set_reading(false);
  close_when_flushed_ = true;
  return true;
}

bool Connection::process_input() {
  // One clock read serves the request's start and the timeout that follows.
  TimePoint now = this->now();
  if (!input_.empty() && !session_.closing() && session_.accepting()) {
    HttpSession::FeedResult fed = session_.feed(input_.readable(), now);
    input_.consume(fed.consumed);
  }
  return write_output() && settle(now);
}

bool Connection::write_output() {
  std::string& produced = session_.output();
  if (!produced.empty()) {
    owner_.count_bytes(0, produced.size());
    output_.append(produced);
    produced.clear();
  }
  while (!output_.empty()) {
    // Nagle's algorithm can only hold back a send while earlier data is
    // unacknowledged, never the first: a connection that carries one
    // response (Connection: close) is spared the setsockopt, as in nginx.
    if (sent_any_ && !nodelay_) {
      int one = 1;
      ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      nodelay_ = true;
    }
    std::string_view pending = output_.readable();
    ssize_t sent = ::send(fd_.get(), pending.data(), pending.size(), MSG_NOSIGNAL);
    if (sent < 0 && would_block(errno)) {
      if (errno == EINTR) continue;
      break;
    }
    if (sent < 0) {
      spdlog::debug("send() to a client failed: {}", std::strerror(errno));
      return close();
    }
    output_.consume(static_cast<std::size_t>(sent));
    sent_any_ = true;
  }
  bool want_write = !output_.empty();
  if (want_write != writing_) {
    if (want_write && !write_event_) {
      write_event_.reset(event_new(base_, fd_.get(), EV_WRITE | EV_PERSIST, on_writable, this));
      if (!write_event_) {
        spdlog::error("event_new() failed for a client's output; closing it");
        return close();
      }
    }
    want_write ? event_add(write_event_.get(), nullptr) : event_del(write_event_.get());
    writing_ = want_write;
  }
  return true;
}

bool Connection::settle(TimePoint now) {
  if (session_.closing()) {
    set_reading(false);
    enter(Timeout::kNone);
    if (output_.empty()) return close();
    close_when_flushed_ = true;  // on_writable closes once the output is taken
    return true;
  }
  set_reading(session_.accepting() && output_.size() <= settings_.max_pending_output &&
              !close_when_flushed_);
  update_timeout(now);
  return true;
}

void Connection::set_reading(bool reading) {
  if (reading == reading_) return;
  reading ? event_add(read_event_.get(), nullptr) : event_del(read_event_.get());
  reading_ = reading;
}

void Connection::update_timeout(TimePoint now) {
  if (session_.in_request()) {
    if (timeout_ != Timeout::kRequest)
      set_timeout(Timeout::kRequest, now + settings_.header_timeout);
  } else if (session_.outstanding() > 0) {
    enter(Timeout::kNone);  // a timer still armed finds nothing to do
  } else if (draining_ && session_.responses_written() > 0) {
    if (timeout_ != Timeout::kDrainGrace) {
      set_timeout(Timeout::kDrainGrace, now + settings_.drain_idle_grace);
    }
  } else {
    set_timeout(Timeout::kIdle, now + settings_.keepalive_timeout);
  }
}

void Connection::enter(Timeout kind) {
  bool was_idle = timeout_ == Timeout::kIdle;
  timeout_ = kind;
  if (was_idle != (kind == Timeout::kIdle)) owner_.connection_idle(this, !was_idle);
}

void Connection::set_timeout(Timeout kind, TimePoint deadline) {
  enter(kind);
  deadline_ = deadline;
  // An armed timer that fires no later than the deadline will re-arm itself.
  if (timer_armed_ && timer_fires_at_ <= deadline) return;
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now());
  arm_timer(timer_.get(),
            std::max(delay, std::chrono::milliseconds{0}) + std::chrono::milliseconds{1});
  timer_armed_ = true;
  timer_fires_at_ = deadline;
}

bool Connection::close() {
  owner_.connection_closed(this);
  return false;
}

}  // namespace herd
