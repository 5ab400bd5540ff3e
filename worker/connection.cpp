#include "worker/connection.h"

#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

namespace herd {

Connection::Connection(ConnectionOwner& owner, event_base* base, UniqueFd fd,
                       const ConnectionSettings& settings, const HttpHandler& handler)
    : owner_(owner), settings_(settings), session_(settings.limits, handler) {
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // From here the bufferevent owns the descriptor (BEV_OPT_CLOSE_ON_FREE).
  int raw = fd.get();
  bev_.reset(bufferevent_socket_new(base, raw, BEV_OPT_CLOSE_ON_FREE));
  if (bev_) (void)fd.release();
  timer_.reset(evtimer_new(base, on_timeout, this));
}

Connection::~Connection() = default;

bool Connection::start() {
  if (!bev_ || !timer_) return false;
  bufferevent_setcb(bev_.get(), on_read, on_write, on_event, this);
  bufferevent_enable(bev_.get(), EV_READ | EV_WRITE);
  arm_timer_for_state();
  return true;
}

void Connection::drain() {
  session_.close_after_next_response();
  // A connection still owes a response if a request is partly read, or if it
  // was adopted and has not been answered yet (its request may still be on
  // the wire), or if bytes wait unread in the socket: its response will say
  // Connection: close. The drain deadline bounds how long that can take.
  draining_ = true;
  if (session_.in_request() || !served_ || unread_bytes_waiting()) return;
  if (output_pending()) {
    close_when_flushed_ = true;
    return;
  }
  // Idle: an active client's next request still gets an answer (with
  // Connection: close); a quiet one is closed when the grace runs out.
  request_timer_running_ = false;
  arm_timer(timer_.get(), settings_.drain_idle_grace);
}

bool Connection::unread_bytes_waiting() const {
  int waiting = 0;
  if (evbuffer_get_length(bufferevent_get_input(bev_.get())) > 0) return true;
  return ::ioctl(bufferevent_getfd(bev_.get()), FIONREAD, &waiting) == 0 && waiting > 0;
}

void Connection::on_read(bufferevent*, void* arg) {
  static_cast<Connection*>(arg)->process_input();
}

void Connection::on_write(bufferevent*, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  // The output buffer fell to its low watermark (empty).
  if (self->session_.closing() || self->close_when_flushed_) return self->close();
  if (self->read_paused_) {
    self->read_paused_ = false;
    bufferevent_enable(self->bev_.get(), EV_READ);
    self->process_input();  // pipelined requests may already be buffered
  }
}

void Connection::on_event(bufferevent*, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if ((what & BEV_EVENT_EOF) != 0 && self->output_pending() && (what & BEV_EVENT_ERROR) == 0) {
    // The client half-closed after its request: still send the response,
    // then close.
    bufferevent_disable(self->bev_.get(), EV_READ);
    self->close_when_flushed_ = true;
    return;
  }
  self->close();
}

void Connection::on_timeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  spdlog::debug("closing connection: {} timeout",
                self->session_.in_request() ? "request header" : "keep-alive");
  self->close();
}

void Connection::process_input() {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  evbuffer* input = bufferevent_get_input(bev_.get());
  std::size_t length = evbuffer_get_length(input);
  if (length == 0 || session_.closing()) return;
  // Beast parses from contiguous memory; requests are small, so this is
  // usually already one chunk.
  const char* data = reinterpret_cast<const char*>(evbuffer_pullup(input, -1));

  auto read_at = std::chrono::steady_clock::now();
  if (!session_.in_request()) request_started_at_ = read_at;
  scratch_.clear();
  HttpSession::FeedResult fed =
      session_.feed(std::string_view(data, length), scratch_, owner_.current_date());
  evbuffer_drain(input, fed.consumed);
  if (!scratch_.empty()) bufferevent_write(bev_.get(), scratch_.data(), scratch_.size());
  owner_.count_bytes(length - buffered_input_, scratch_.size());
  buffered_input_ = length - fed.consumed;
  if (fed.requests > 0) {
    served_ = true;
    auto done = std::chrono::steady_clock::now();
    owner_.responses_sent(
        fed,
        static_cast<std::uint64_t>(duration_cast<microseconds>(done - request_started_at_).count()),
        static_cast<std::uint64_t>(duration_cast<microseconds>(done - read_at).count()));
    // A request left partly read began in this read.
    request_started_at_ = read_at;
  }

  if (session_.closing()) {
    bufferevent_disable(bev_.get(), EV_READ);
    evtimer_del(timer_.get());
    if (!output_pending()) return close();
    return;  // on_write closes once the output is flushed
  }
  if (evbuffer_get_length(bufferevent_get_output(bev_.get())) > settings_.max_pending_output) {
    read_paused_ = true;
    bufferevent_disable(bev_.get(), EV_READ);
  }
  arm_timer_for_state();
}

void Connection::arm_timer_for_state() {
  if (draining_ && !session_.in_request()) return;  // the drain grace is running
  if (session_.in_request()) {
    if (request_timer_running_) return;  // runs from the request's first byte
    request_timer_running_ = true;
    arm_timer(timer_.get(), settings_.header_timeout);
  } else {
    request_timer_running_ = false;
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
