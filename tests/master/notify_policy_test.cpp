#include "master/notify_policy.h"

#include <gtest/gtest.h>

#include <string>

namespace herd {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

// A fixed, arbitrary monotonic origin: the policy never reads the clock itself.
const TimePoint kStart = TimePoint{} + hours(1);

ServiceSnapshot running(std::size_t ready, std::size_t target) {
  ServiceSnapshot snapshot;
  snapshot.ready_slots = ready;
  snapshot.target = target;
  snapshot.workers = ready;
  return snapshot;
}

ServiceSnapshot stopping(std::size_t workers) {
  ServiceSnapshot snapshot;
  snapshot.workers = workers;
  snapshot.stopping = true;
  return snapshot;
}

// Brings a policy to the state after its first READY=1.
NotifyPolicy ready_policy() {
  NotifyPolicy policy;
  EXPECT_EQ(policy.progress(running(2, 2), kStart).rfind("READY=1\n", 0), 0u);
  return policy;
}

TEST(NotifyPolicyTest, ReadyOnceEverySlotHasAReadyWorker) {
  NotifyPolicy policy;

  EXPECT_EQ(policy.progress(running(1, 2), kStart), "STATUS=1/2 workers ready, 0 req/s, 0 queued");
  EXPECT_EQ(policy.progress(running(2, 2), kStart + milliseconds(100)),
            "READY=1\nSTATUS=2/2 workers ready, 0 req/s, 0 queued");
}

TEST(NotifyPolicyTest, ReadyIsSentOnlyTheFirstTime) {
  NotifyPolicy policy = ready_policy();

  // A worker dies and comes back: that is not a new start-up.
  policy.progress(running(1, 2), kStart + milliseconds(1000));
  std::string again = policy.progress(running(2, 2), kStart + milliseconds(2000));

  EXPECT_EQ(again, "STATUS=2/2 workers ready, 0 req/s, 0 queued");
}

TEST(NotifyPolicyTest, StatusAtMostOncePerIntervalAndOnlyWhenChanged) {
  NotifyPolicy policy = ready_policy();
  ServiceSnapshot busy = running(2, 2);
  busy.rps = 119.6;
  busy.queued = 3;

  EXPECT_EQ(policy.progress(busy, kStart + milliseconds(999)), "") << "within the interval";
  EXPECT_EQ(policy.progress(busy, kStart + milliseconds(1000)),
            "STATUS=2/2 workers ready, 120 req/s, 3 queued");
  EXPECT_EQ(policy.progress(busy, kStart + milliseconds(5000)), "") << "unchanged";
}

TEST(NotifyPolicyTest, ReloadingThenReadyAroundAReload) {
  NotifyPolicy policy = ready_policy();
  ServiceSnapshot reloading = running(2, 2);
  reloading.reloading = true;

  EXPECT_EQ(policy.reload_started(reloading, kStart + milliseconds(10), 123456789),
            "RELOADING=1\nMONOTONIC_USEC=123456789\n"
            "STATUS=2/2 workers ready, 0 req/s, 0 queued, reloading");
  EXPECT_EQ(policy.progress(reloading, kStart + milliseconds(5000)), "")
      << "no READY=1 while the reload runs";
  EXPECT_EQ(policy.reload_finished(running(2, 2), kStart + milliseconds(6000)),
            "READY=1\nSTATUS=2/2 workers ready, 0 req/s, 0 queued");
  EXPECT_EQ(policy.reload_finished(running(2, 2), kStart + milliseconds(7000)), "")
      << "one READY=1 per reload";
}

TEST(NotifyPolicyTest, NoReloadNoticeBeforeTheFirstReady) {
  NotifyPolicy policy;
  ServiceSnapshot reloading = running(0, 2);
  reloading.reloading = true;

  EXPECT_EQ(policy.reload_started(reloading, kStart, 1), "");
  EXPECT_EQ(policy.reload_finished(running(0, 2), kStart), "");
  EXPECT_EQ(policy.progress(running(2, 2), kStart + milliseconds(100)).rfind("READY=1\n", 0), 0u)
      << "start-up still ends with READY=1";
}

TEST(NotifyPolicyTest, StoppingOnceAndNeverReadyAfterIt) {
  NotifyPolicy policy = ready_policy();
  ServiceSnapshot reloading = running(2, 2);
  reloading.reloading = true;
  policy.reload_started(reloading, kStart, 1);

  EXPECT_EQ(policy.stopping(stopping(2), kStart + milliseconds(10)),
            "STOPPING=1\nSTATUS=stopping, 2 workers left");
  EXPECT_EQ(policy.stopping(stopping(2), kStart + milliseconds(20)), "");
  EXPECT_EQ(policy.reload_finished(stopping(2), kStart + milliseconds(30)), "")
      << "the reload failed because of the stop: no READY=1";
  EXPECT_EQ(policy.progress(stopping(1), kStart + milliseconds(1010)),
            "STATUS=stopping, 1 worker left");
}

TEST(NotifyPolicyTest, AStopBeforeStartUpEndsIsNeverReady) {
  NotifyPolicy policy;

  EXPECT_EQ(policy.stopping(stopping(1), kStart), "STOPPING=1\nSTATUS=stopping, 1 worker left");
  EXPECT_EQ(policy.progress(stopping(0), kStart + milliseconds(2000)).find("READY=1"),
            std::string::npos);
}

TEST(NotifyPolicyTest, NoWorkersTargetedIsNotReady) {
  NotifyPolicy policy;

  EXPECT_EQ(policy.progress(running(0, 0), kStart).find("READY=1"), std::string::npos);
}

TEST(NotifyPolicyTest, SnapshotCountsSlotsWhoseCurrentWorkerIsReady) {
  WorkerTable table(3);
  for (std::size_t slot = 0; slot < 3; ++slot) {
    table.add(table.allocate_id(), slot, static_cast<pid_t>(1000 + slot), kStart, 0);
  }
  table.find(1)->state = WorkerState::kReady;
  table.find(2)->state = WorkerState::kReady;
  // A ready successor of slot 2 does not fill it until it is promoted.
  WorkerId successor = table.allocate_id();
  table.add(successor, 2, 2000, kStart, 0);
  table.find(successor)->state = WorkerState::kReady;

  ServiceSnapshot snapshot = snapshot_of(table, 7, /*reloading=*/true, /*stopping=*/false);

  EXPECT_EQ(snapshot.ready_slots, 2u);
  EXPECT_EQ(snapshot.target, 3u);
  EXPECT_EQ(snapshot.workers, 4u);
  EXPECT_EQ(snapshot.queued, 7u);
  EXPECT_EQ(status_line(snapshot), "2/3 workers ready, 0 req/s, 7 queued, reloading");
}

}  // namespace
}  // namespace herd
