// Loop: the worker's event loop, as handlers see it. Everything in a worker
// runs on this one thread; an asynchronous handler keeps its Response and
// completes it from a callback run here (a timer, or I/O it registers on the
// libevent base). Callbacks run one at a time, never concurrently with a
// handler, so application state needs no locks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>

struct event_base;
struct event;

namespace herd {

class Loop {
 public:
  using TimerId = std::uint64_t;

  explicit Loop(event_base* base);
  ~Loop();  // cancels pending timers, destroying their callbacks unrun
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // The libevent base, for I/O of the application's own (bufferevents to a
  // backend, evdns). Events on it must be freed before herd::run returns.
  event_base* base() const { return base_; }

  // Runs `callback` once, `delay` from now (never earlier). An exception escaping it is logged
  // and dropped. Returns an id for cancel().
  TimerId after(std::chrono::milliseconds delay, std::function<void()> callback);
  // Runs `callback` on the next loop iteration.
  TimerId defer(std::function<void()> callback) {
    return after(std::chrono::milliseconds{0}, std::move(callback));
  }
  // Cancels a pending timer; false if it already ran or was cancelled.
  bool cancel(TimerId id);
  std::size_t pending_timers() const { return timers_.size(); }

 private:
  struct Timer;
  static void on_timer(int fd, short what, void* arg);

  event_base* base_;
  TimerId next_id_ = 1;
  std::map<TimerId, Timer*> timers_;
};

// The loop of the worker running on this thread, inside herd::run. Throws
// std::logic_error elsewhere.
Loop& loop();

}  // namespace herd
