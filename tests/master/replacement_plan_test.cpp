#include "master/replacement_plan.h"

#include <gtest/gtest.h>

#include <set>

namespace herd {
namespace {

auto serving_all() {
  return [](WorkerId) { return true; };
}

TEST(ReplacementPlanTest, ReloadReplacesOneWorkerAtATimeInOrder) {
  ReplacementPlan plan;
  ASSERT_TRUE(plan.start_reload({1, 2}));

  EXPECT_EQ(plan.next(serving_all()), 1u);
  EXPECT_FALSE(plan.next(serving_all()).has_value()) << "one replacement in flight at a time";
  plan.started(1, 3);
  EXPECT_EQ(plan.successor(), 3u);
  EXPECT_EQ(plan.successor_ready(3), 1u);

  EXPECT_EQ(plan.next(serving_all()), 2u);
  plan.started(2, 4);
  EXPECT_EQ(plan.successor_ready(4), 2u);

  EXPECT_FALSE(plan.next(serving_all()).has_value());
  std::optional<ReplacementPlan::Outcome> outcome = plan.take_finished();
  ASSERT_TRUE(outcome);
  EXPECT_TRUE(outcome->reload);
  EXPECT_EQ(outcome->replaced, (std::vector<WorkerId>{1, 2}));
  EXPECT_TRUE(outcome->failure.empty());
  EXPECT_FALSE(plan.reloading());
}

TEST(ReplacementPlanTest, OnlyTheSuccessorInFlightCountsAsReady) {
  ReplacementPlan plan;
  plan.restart(1);
  ASSERT_EQ(plan.next(serving_all()), 1u);
  plan.started(1, 5);

  EXPECT_FALSE(plan.successor_ready(7).has_value()) << "some other worker said ready";
  EXPECT_TRUE(plan.in_flight());
  EXPECT_EQ(plan.successor_ready(5), 1u);
}

TEST(ReplacementPlanTest, ASecondReloadIsRefusedWhileOneRuns) {
  ReplacementPlan plan;
  ASSERT_TRUE(plan.start_reload({1}));

  EXPECT_FALSE(plan.start_reload({1}));
}

TEST(ReplacementPlanTest, AFailedSuccessorDropsTheRestAndKeepsTheOldWorkers) {
  ReplacementPlan plan;
  ASSERT_TRUE(plan.start_reload({1, 2, 3}));
  ASSERT_EQ(plan.next(serving_all()), 1u);
  plan.started(1, 4);
  ASSERT_EQ(plan.successor_ready(4), 1u);
  ASSERT_EQ(plan.next(serving_all()), 2u);
  plan.started(2, 5);

  ReplacementPlan::Outcome outcome = plan.fail("worker 5 exited");

  EXPECT_TRUE(outcome.reload);
  EXPECT_EQ(outcome.replaced, (std::vector<WorkerId>{1}));
  EXPECT_EQ(outcome.failure, "worker 5 exited");
  EXPECT_FALSE(plan.next(serving_all()).has_value()) << "worker 3 is not replaced after a failure";
  EXPECT_FALSE(plan.reloading());
  EXPECT_FALSE(plan.take_finished().has_value());
}

TEST(ReplacementPlanTest, WorkersThatAreGoneAreSkipped) {
  ReplacementPlan plan;
  ASSERT_TRUE(plan.start_reload({1, 2}));
  std::set<WorkerId> gone{1};

  EXPECT_EQ(plan.next([&](WorkerId id) { return gone.count(id) == 0; }), 2u);
}

TEST(ReplacementPlanTest, AReloadOfNoWorkersFinishesAtOnce) {
  ReplacementPlan plan;
  ASSERT_TRUE(plan.start_reload({}));

  EXPECT_FALSE(plan.next(serving_all()).has_value());
  std::optional<ReplacementPlan::Outcome> outcome = plan.take_finished();
  ASSERT_TRUE(outcome);
  EXPECT_TRUE(outcome->reload);
  EXPECT_TRUE(outcome->replaced.empty());
}

TEST(ReplacementPlanTest, ARestartIsNotQueuedTwice) {
  ReplacementPlan plan;
  plan.restart(1);
  plan.restart(1);
  ASSERT_EQ(plan.next(serving_all()), 1u);
  plan.restart(1);  // already in flight
  plan.started(1, 2);
  ASSERT_EQ(plan.successor_ready(2), 1u);

  EXPECT_FALSE(plan.next(serving_all()).has_value());
  std::optional<ReplacementPlan::Outcome> outcome = plan.take_finished();
  ASSERT_TRUE(outcome);
  EXPECT_FALSE(outcome->reload);
  EXPECT_EQ(outcome->replaced, (std::vector<WorkerId>{1}));
}

TEST(ReplacementPlanTest, NothingFinishesWhenNothingWasAsked) {
  ReplacementPlan plan;

  EXPECT_FALSE(plan.take_finished().has_value());
}

}  // namespace
}  // namespace herd
