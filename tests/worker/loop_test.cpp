#include "herd/loop.h"

#include <event2/event.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/event_loop.h"
#include "worker/worker.h"

namespace herd {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class LoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(base_, nullptr);
    guard_.reset(evtimer_new(
        base_.get(), [](evutil_socket_t, short, void*) {}, nullptr));
    ASSERT_NE(guard_, nullptr);
    loop_.emplace(base_.get());
  }

  void TearDown() override {
    // The loop's timer events must go before the base they live on.
    loop_.reset();
    guard_.reset();
  }

  // Runs the event loop one iteration at a time until `done`. The guard timer
  // wakes each iteration within 50 ms and the deadline bounds the whole wait,
  // so a timer that never fires fails the test instead of hanging it.
  bool run_until(const std::function<bool()>& done) {
    Clock::time_point deadline = Clock::now() + 5s;
    while (!done()) {
      if (Clock::now() > deadline) break;
      arm_timer(guard_.get(), 50ms);
      event_base_loop(base_.get(), EVLOOP_ONCE);
    }
    event_del(guard_.get());
    return done();
  }

  // One iteration that does not wait: runs whatever is due now.
  void run_once_without_waiting() { event_base_loop(base_.get(), EVLOOP_NONBLOCK); }

  EventBasePtr base_{event_base_new()};
  EventPtr guard_;
  std::optional<Loop> loop_;
};

TEST_F(LoopTest, AfterRunsCallbackOnceWhenDelayHasPassed) {
  int runs = 0;
  Clock::time_point scheduled = Clock::now();
  Clock::time_point ran_at;

  loop_->after(10ms, [&] {
    ++runs;
    ran_at = Clock::now();
  });

  EXPECT_EQ(runs, 0);
  EXPECT_EQ(loop_->pending_timers(), 1u);
  ASSERT_TRUE(run_until([&] { return runs > 0; }));
  // libevent may time timers with CLOCK_MONOTONIC_COARSE, a few milliseconds
  // behind steady_clock: allow for that, but not for running at once.
  EXPECT_GE(ran_at - scheduled, 5ms);
  EXPECT_EQ(loop_->pending_timers(), 0u);

  // Later iterations must not run it again.
  bool later = false;
  loop_->after(20ms, [&] { later = true; });
  ASSERT_TRUE(run_until([&] { return later; }));
  EXPECT_EQ(runs, 1);
}

TEST_F(LoopTest, TimersRunInOrderOfTheirDeadlines) {
  std::vector<int> order;

  loop_->after(30ms, [&] { order.push_back(30); });
  loop_->after(10ms, [&] { order.push_back(10); });
  loop_->after(20ms, [&] { order.push_back(20); });

  ASSERT_TRUE(run_until([&] { return order.size() == 3; }));
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
}

TEST_F(LoopTest, TimerIdsAreDistinct) {
  Loop::TimerId first = loop_->after(1h, [] {});
  Loop::TimerId second = loop_->after(1h, [] {});
  Loop::TimerId third = loop_->defer([] {});

  EXPECT_NE(first, second);
  EXPECT_NE(second, third);
  EXPECT_NE(first, third);
  EXPECT_EQ(loop_->pending_timers(), 3u);
}

TEST_F(LoopTest, CancelledTimerNeverRuns) {
  bool cancelled_ran = false;
  bool marker_ran = false;
  Loop::TimerId id = loop_->after(10ms, [&] { cancelled_ran = true; });

  EXPECT_TRUE(loop_->cancel(id));
  EXPECT_EQ(loop_->pending_timers(), 0u);
  // Past the cancelled timer's deadline.
  loop_->after(40ms, [&] { marker_ran = true; });
  ASSERT_TRUE(run_until([&] { return marker_ran; }));

  EXPECT_FALSE(cancelled_ran);
}

TEST_F(LoopTest, CancelDestroysTheCallbackAtOnce) {
  auto token = std::make_shared<int>(0);
  Loop::TimerId id = loop_->after(1h, [token] {});
  ASSERT_EQ(token.use_count(), 2);

  ASSERT_TRUE(loop_->cancel(id));

  EXPECT_EQ(token.use_count(), 1);
}

TEST_F(LoopTest, CancelOfTimerThatRanReturnsFalse) {
  bool ran = false;
  Loop::TimerId id = loop_->defer([&] { ran = true; });
  ASSERT_TRUE(run_until([&] { return ran; }));

  EXPECT_FALSE(loop_->cancel(id));
}

TEST_F(LoopTest, CancelTwiceReturnsFalseTheSecondTime) {
  Loop::TimerId id = loop_->after(1h, [] {});

  EXPECT_TRUE(loop_->cancel(id));
  EXPECT_FALSE(loop_->cancel(id));
}

TEST_F(LoopTest, CancelOfUnknownIdReturnsFalse) {
  Loop::TimerId id = loop_->after(1h, [] {});

  EXPECT_FALSE(loop_->cancel(id + 1000));
  EXPECT_EQ(loop_->pending_timers(), 1u);
}

TEST_F(LoopTest, ThrowingCallbackIsCaughtAndLaterTimersStillRun) {
  int thrown = 0;
  bool later_ran = false;
  loop_->defer([&] {
    ++thrown;
    throw std::runtime_error("callback failed");
  });
  loop_->defer([&] {
    ++thrown;
    throw 42;  // not a std::exception
  });
  loop_->after(5ms, [&] { later_ran = true; });

  ASSERT_TRUE(run_until([&] { return later_ran; }));

  EXPECT_EQ(thrown, 2);
  EXPECT_EQ(loop_->pending_timers(), 0u);
}

TEST_F(LoopTest, DeferDoesNotRunBeforeTheLoopDoes) {
  bool ran = false;

  loop_->defer([&] { ran = true; });

  EXPECT_FALSE(ran);
  EXPECT_EQ(loop_->pending_timers(), 1u);
  run_once_without_waiting();
  EXPECT_TRUE(ran);
}

TEST_F(LoopTest, DeferFromCallbackRunsOnTheFollowingIteration) {
  std::vector<int> order;
  loop_->defer([&] {
    order.push_back(1);
    loop_->defer([&] { order.push_back(2); });
  });

  event_base_loop(base_.get(), EVLOOP_ONCE);
  EXPECT_EQ(order, (std::vector<int>{1}));

  event_base_loop(base_.get(), EVLOOP_ONCE);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST_F(LoopTest, CallbackMayCancelAnotherPendingTimer) {
  bool victim_ran = false;
  bool canceller_ran = false;
  bool cancel_result = false;
  Loop::TimerId victim = loop_->after(30ms, [&] { victim_ran = true; });
  loop_->after(5ms, [&] {
    canceller_ran = true;
    cancel_result = loop_->cancel(victim);
  });
  bool marker = false;
  loop_->after(60ms, [&] { marker = true; });

  ASSERT_TRUE(run_until([&] { return marker; }));

  EXPECT_TRUE(canceller_ran);
  EXPECT_TRUE(cancel_result);
  EXPECT_FALSE(victim_ran);
}

TEST_F(LoopTest, CallbackIsDestroyedAfterItRuns) {
  auto token = std::make_shared<int>(0);
  bool ran = false;
  loop_->defer([token, &ran] { ran = true; });
  ASSERT_EQ(token.use_count(), 2);

  ASSERT_TRUE(run_until([&] { return ran; }));

  EXPECT_EQ(token.use_count(), 1);
}

TEST_F(LoopTest, DestroyingLoopDestroysPendingCallbacksUnrun) {
  auto token = std::make_shared<int>(0);
  bool ran = false;
  loop_->after(10ms, [token, &ran] { ran = true; });
  loop_->defer([token, &ran] { ran = true; });
  ASSERT_EQ(token.use_count(), 3);

  loop_.reset();

  EXPECT_EQ(token.use_count(), 1);
  EXPECT_FALSE(ran);
  // Their events went with them: the base has nothing left to run.
  EXPECT_EQ(event_base_loop(base_.get(), EVLOOP_NONBLOCK), 1);
  EXPECT_FALSE(ran);
}

// ~Loop expects a callback's destructor to add timers (dropping a Response can
// do that); those must be destroyed unrun too, not left behind.
TEST_F(LoopTest, TimerAddedWhileLoopIsDestroyedIsDestroyedToo) {
  class AddsTimerWhenDestroyed {
   public:
    AddsTimerWhenDestroyed(Loop* loop, std::shared_ptr<int> token)
        : loop_(loop), token_(std::move(token)) {}
    AddsTimerWhenDestroyed(const AddsTimerWhenDestroyed&) = delete;
    AddsTimerWhenDestroyed& operator=(const AddsTimerWhenDestroyed&) = delete;
    ~AddsTimerWhenDestroyed() {
      loop_->after(1h, [token = token_] {});
    }

   private:
    Loop* loop_;
    std::shared_ptr<int> token_;
  };
  auto token = std::make_shared<int>(0);
  auto adder = std::make_shared<AddsTimerWhenDestroyed>(&*loop_, token);
  loop_->after(1h, [adder] {});
  adder.reset();
  ASSERT_EQ(token.use_count(), 2);

  loop_.reset();

  EXPECT_EQ(token.use_count(), 1) << "the timer added during ~Loop outlived the loop";
}

// Makes herd::loop() see `loop` for one scope, and none after it even if an
// assertion returns early.
class CurrentLoopScope {
 public:
  explicit CurrentLoopScope(Loop* loop) { set_current_loop(loop); }
  ~CurrentLoopScope() { set_current_loop(nullptr); }
  CurrentLoopScope(const CurrentLoopScope&) = delete;
  CurrentLoopScope& operator=(const CurrentLoopScope&) = delete;
};

TEST_F(LoopTest, CurrentLoopThrowsLogicErrorWhenNoneIsSet) {
  EXPECT_THROW(herd::loop(), std::logic_error);
}

TEST_F(LoopTest, CurrentLoopIsTheOneSet) {
  {
    CurrentLoopScope scope(&*loop_);
    EXPECT_EQ(&herd::loop(), &*loop_);
    EXPECT_EQ(herd::loop().base(), base_.get());
  }

  EXPECT_THROW(herd::loop(), std::logic_error);
}

}  // namespace
}  // namespace herd
