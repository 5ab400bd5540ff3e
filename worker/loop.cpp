#include "herd/loop.h"

#include <event2/event.h>

#include <spdlog/spdlog.h>

#include <exception>
#include <stdexcept>
#include <utility>

#include "common/event_loop.h"

namespace herd {
namespace {
thread_local Loop* current_loop = nullptr;
}  // namespace

void set_current_loop(Loop* loop) {
  current_loop = loop;
}

Loop& loop() {
  if (current_loop == nullptr) {
    throw std::logic_error("herd::loop() called outside herd::run: there is no worker loop");
  }
  return *current_loop;
}

struct Loop::Timer {
  Loop* loop;
  TimerId id;
  std::chrono::steady_clock::time_point due;
  EventPtr event;
  std::function<void()> callback;
};

Loop::Loop(event_base* base) : base_(base) {}

Loop::~Loop() {
  // A callback's destructor may release a Response, which may cancel or add
  // timers: take the map each round until nothing is left.
  while (!timers_.empty()) {
    std::map<TimerId, Timer*> pending = std::exchange(timers_, {});
    for (auto& [id, timer] : pending) delete timer;
  }
}

Loop::TimerId Loop::after(std::chrono::milliseconds delay, std::function<void()> callback) {
  auto* timer = new Timer{this, next_id_++, std::chrono::steady_clock::now() + delay, nullptr,
                          std::move(callback)};
  timer->event.reset(evtimer_new(base_, on_timer, timer));
  if (!timer->event) {
    delete timer;
    throw std::runtime_error("evtimer_new() failed");
  }
  // Measure the delay from now, not from the loop iteration's cached time.
  event_base_update_cache_time(base_);
  arm_timer(timer->event.get(), delay);
  timers_.emplace(timer->id, timer);
  return timer->id;
}

bool Loop::cancel(TimerId id) {
  auto found = timers_.find(id);
  if (found == timers_.end()) return false;
  Timer* timer = found->second;
  timers_.erase(found);
  delete timer;
  return true;
}

void Loop::on_timer(evutil_socket_t, short, void* arg) {
  auto* timer = static_cast<Timer*>(arg);
  // libevent times with the coarse monotonic clock (4 ms ticks here) and may
  // fire a little early; a timer never runs before its delay has passed.
  auto early = timer->due - std::chrono::steady_clock::now();
  if (early > std::chrono::steady_clock::duration::zero()) {
    auto rest = std::chrono::ceil<std::chrono::milliseconds>(early);
    arm_timer(timer->event.get(), rest);
    return;
  }
  // Out of the map before running, so the callback may schedule or cancel
  // freely; freed after, with whatever handles its closure holds.
  timer->loop->timers_.erase(timer->id);
  std::unique_ptr<Timer> owned(timer);
  try {
    owned->callback();
  } catch (const std::exception& error) {
    spdlog::error("timer callback threw: {}", error.what());
  } catch (...) {
    spdlog::error("timer callback threw a non-exception");
  }
}

}  // namespace herd
