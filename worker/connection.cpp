#include "worker/connection.h"

#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

namespace herd {

Connection::Connection(ConnectionOwner& owner, event_base* base, UniqueFd fd,
                       const ConnectionSettings& settings, const App& app)
    : owner_(owner), settings_(settings), session_(settings.limits, app, *this) {
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // From here the bufferevent owns the descriptor (BEV_OPT_CLOSE_ON_FREE).
  int raw = fd.get();
  bev_.reset(bufferevent_socket_new(base, raw, BEV_OPT_CLOSE_ON_FREE));
  if (bev_) (void)fd.release();
  timer_.reset(evtimer_new(base, on_timeout, this));
  output_ready_event_.reset(event_new(base, -1, 0, on_output_ready, this));
}

Connection::~Connection() = default;

bool Connection::start() {
  if (!bev_ || !timer_ || !output_ready_event_) return false;
  bufferevent_setcb(bev_.get(), on_read, on_write, on_event, this);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  arm_timer_for_state();
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
  if (output_pending()) {
    close_when_flushed_ = true;
    return;
  }
  // Idle: an active client's next request still gets an answer (with
  // Connection: close); a quiet one is closed when the grace runs out.
  arm_timer_for_state();
}

bool Connection::unread_bytes_waiting() const {
  int waiting = 0;
  if (evbuffer_get_length(bufferevent_get_input(bev_.get())) > 0) return true;
  return ::ioctl(bufferevent_getfd(bev_.get()), FIONREAD, &waiting) == 0 && waiting > 0;
}

// ---- SessionHost -----------------------------------------------------------

std::chrono::steady_clock::time_point Connection::now() {
  return std::chrono::steady_clock::now();
}

std::string_view Connection::date() {
  return owner_.current_date();
}

void Connection::output_ready() {
  // Called from inside the application's code: write from the loop instead.
  event_active(output_ready_event_.get(), EV_WRITE, 0);
}

void Connection::response_written(unsigned status, std::uint64_t latency_us) {
  owner_.response_written(status, latency_us);
}

// ---- libevent callbacks ----------------------------------------------------

void Connection::on_read(bufferevent*, void* arg) {
  static_cast<Connection*>(arg)->process_input();
}

void Connection::on_write(bufferevent*, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  // The output buffer fell to its low watermark (empty).
  if (self->session_.closing() || self->close_when_flushed_) return self->close();
  self->process_input();  // requests held back by a full output buffer
}

void Connection::on_event(bufferevent*, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if ((what & BEV_EVENT_EOF) != 0 && self->output_pending() && (what & BEV_EVENT_ERROR) == 0) {
    // The client half-closed after its request: still send the responses
    // written, then close. Like Node's default (no allowHalfOpen), requests
    // still waiting on the application are aborted then.
    bufferevent_disable(self->bev_.get(), EV_READ);
    self->close_when_flushed_ = true;
    return;
  }
  self->close();
}

void Connection::on_timeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  spdlog::debug("closing connection: {} timeout",
                self->timer_running_ == Timer::kRequest ? "request header" : "keep-alive");
  self->close();
}

void Connection::on_output_ready(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  self->write_output();
  self->process_input();  // requests held back by a full pipeline
}

// ---- the work --------------------------------------------------------------

void Connection::process_input() {
  evbuffer* input = bufferevent_get_input(bev_.get());
  std::size_t length = evbuffer_get_length(input);
  if (length > 0 && !session_.closing() && session_.accepting()) {
    // Beast parses from contiguous memory; requests are small, so this is
    // usually already one chunk.
    const char* data = reinterpret_cast<const char*>(evbuffer_pullup(input, -1));
    HttpSession::FeedResult fed = session_.feed(std::string_view(data, length), now());
    evbuffer_drain(input, fed.consumed);
    owner_.count_bytes(length - buffered_input_, 0);
    buffered_input_ = length - fed.consumed;
    write_output();
  }
  settle();
}

void Connection::write_output() {
  std::string& output = session_.output();
  if (output.empty()) return;
  bufferevent_write(bev_.get(), output.data(), output.size());
  owner_.count_bytes(0, output.size());
  output.clear();
}

void Connection::settle() {
  if (session_.closing()) {
    bufferevent_disable(bev_.get(), EV_READ);
    evtimer_del(timer_.get());
    if (!output_pending()) return close();
    return;  // on_write closes once the output is flushed
  }
  std::size_t pending = evbuffer_get_length(bufferevent_get_output(bev_.get()));
  bool want_read =
      session_.accepting() && pending <= settings_.max_pending_output && !close_when_flushed_;
  if (want_read == read_paused_) {
    read_paused_ = !want_read;
    if (want_read) {
      bufferevent_enable(bev_.get(), EV_READ);
    } else {
      bufferevent_disable(bev_.get(), EV_READ);
    }
  }
  arm_timer_for_state();
}

void Connection::arm_timer_for_state() {
  if (session_.in_request()) {
    if (timer_running_ == Timer::kRequest) return;  // runs from the request's first byte
    timer_running_ = Timer::kRequest;
    arm_timer(timer_.get(), settings_.header_timeout);
  } else if (session_.outstanding() > 0) {
    timer_running_ = Timer::kNone;
    evtimer_del(timer_.get());
  } else if (draining_ && session_.responses_written() > 0) {
    if (timer_running_ == Timer::kDrainGrace) return;  // runs from the drain
    timer_running_ = Timer::kDrainGrace;
    arm_timer(timer_.get(), settings_.drain_idle_grace);
  } else {
    timer_running_ = Timer::kIdle;
    arm_timer(timer_.get(), settings_.keepalive_timeout);
  }
}

bool Connection::output_pending() const {
  return evbuffer_get_length(bufferevent_get_output(bev_.get())) > 0;
}

void Connection::close() {
  owner_.connection_closed(this);
}

}  // namespace herd
