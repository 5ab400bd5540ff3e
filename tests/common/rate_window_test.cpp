#include "common/rate_window.h"

#include <gtest/gtest.h>

namespace herd {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

// A fixed, arbitrary monotonic origin: the window never reads the clock itself.
const TimePoint kStart = TimePoint{} + hours(1);

TEST(RateWindowTest, EmptyWindowHasNoRate) {
  RateWindow window;

  EXPECT_EQ(window.rate(), 0.0);
}

TEST(RateWindowTest, OneSampleHasNoRate) {
  RateWindow window;

  window.add(kStart, 500);

  EXPECT_EQ(window.rate(), 0.0);
}

TEST(RateWindowTest, EvenlySpacedSamplesGiveTheirSteadyRate) {
  RateWindow window(Milliseconds{5000});

  for (int second = 0; second <= 3; ++second) window.add(kStart + seconds(second), 10 * second);

  EXPECT_DOUBLE_EQ(window.rate(), 10.0);
}

TEST(RateWindowTest, RateIsGrowthOverTheTimeTheSamplesCover) {
  RateWindow window(Milliseconds{5000});

  window.add(kStart, 100);
  window.add(kStart + Milliseconds{250}, 150);

  EXPECT_DOUBLE_EQ(window.rate(), 200.0);
}

TEST(RateWindowTest, BurstStillCountsWhileInsideTheWindow) {
  RateWindow window(Milliseconds{5000});
  window.add(kStart, 0);
  window.add(kStart + seconds(1), 1000);

  for (int second = 2; second <= 4; ++second) window.add(kStart + seconds(second), 1000);

  EXPECT_DOUBLE_EQ(window.rate(), 250.0);  // 1000 requests over the 4 s covered
}

TEST(RateWindowTest, BurstFollowedByIdleDropsOutOfTheWindow) {
  RateWindow window(Milliseconds{5000});
  window.add(kStart, 0);
  window.add(kStart + seconds(1), 1000);
  ASSERT_DOUBLE_EQ(window.rate(), 1000.0);

  for (int second = 2; second <= 10; ++second) window.add(kStart + seconds(second), 1000);

  EXPECT_EQ(window.rate(), 0.0);
}

TEST(RateWindowTest, RateReflectsOnlyTheRecentWindow) {
  RateWindow window(Milliseconds{5000});
  // 100 per second for 10 s, then 10 per second for 5 s.
  std::uint64_t requests = 0;
  for (int second = 0; second <= 10; ++second) {
    window.add(kStart + seconds(second), requests);
    requests += 100;
  }
  requests -= 100;
  for (int second = 11; second <= 15; ++second) {
    requests += 10;
    window.add(kStart + seconds(second), requests);
  }

  EXPECT_DOUBLE_EQ(window.rate(), 10.0);
}

TEST(RateWindowTest, KeepsTheSampleThatCoversTheWindowStart) {
  RateWindow window(Milliseconds{5000});

  window.add(kStart, 0);
  window.add(kStart + seconds(3), 0);
  window.add(kStart + seconds(6), 60);

  // The sample at 0 is older than 5 s but the next one is not, so it still marks the start.
  EXPECT_DOUBLE_EQ(window.rate(), 10.0);
}

TEST(RateWindowTest, CounterGoingBackwardsRestartsTheWindow) {
  RateWindow window(Milliseconds{5000});
  window.add(kStart, 0);
  window.add(kStart + seconds(1), 1000);

  window.add(kStart + seconds(2), 5);  // a new process started counting from zero

  EXPECT_EQ(window.rate(), 0.0);
  window.add(kStart + seconds(3), 25);
  EXPECT_DOUBLE_EQ(window.rate(), 20.0);
}

TEST(RateWindowTest, UnchangedCounterIsNotARestart) {
  RateWindow window(Milliseconds{5000});
  window.add(kStart, 100);
  window.add(kStart + seconds(1), 100);

  window.add(kStart + seconds(2), 120);

  EXPECT_DOUBLE_EQ(window.rate(), 10.0);
}

TEST(RateWindowTest, SamplesAtTheSameInstantHaveNoRate) {
  RateWindow window(Milliseconds{5000});

  window.add(kStart, 100);
  window.add(kStart, 200);

  EXPECT_EQ(window.rate(), 0.0);
}

}  // namespace
}  // namespace herd
