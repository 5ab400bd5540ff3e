#include "master/worker_table.h"

#include <csignal>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace herd {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;

// A fixed, arbitrary monotonic origin: the table never reads the clock itself.
const TimePoint kStart = TimePoint{} + hours(1);

// A backoff with round numbers: young < 2 s, 100 ms doubling up to 1 s.
RespawnBackoff test_backoff() {
  return RespawnBackoff{Milliseconds{2000}, Milliseconds{100}, Milliseconds{1000}};
}

// Spawns a worker into `slot` at `now` and returns its pid.
pid_t spawn(WorkerTable& table, std::size_t slot, TimePoint now) {
  static pid_t next_pid = 1000;
  pid_t pid = next_pid++;
  table.add(table.allocate_id(), slot, pid, now, /*unix_ms=*/1'700'000'000'000);
  return pid;
}

TEST(WorkerTableTest, AllocatesIncreasingUniqueIds) {
  WorkerTable table(2);

  WorkerId first = table.allocate_id();
  WorkerId second = table.allocate_id();
  WorkerId third = table.allocate_id();

  EXPECT_LT(first, second);
  EXPECT_LT(second, third);
}

TEST(WorkerTableTest, EverySlotIsDueAtStart) {
  WorkerTable table(3);

  EXPECT_EQ(table.target(), 3u);
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(table.slots_due(kStart), (std::vector<std::size_t>{0, 1, 2}));
}

TEST(WorkerTableTest, AddedWorkerFillsItsSlot) {
  WorkerTable table(2);

  spawn(table, 1, kStart);

  EXPECT_EQ(table.slots_due(kStart), (std::vector<std::size_t>{0}));
  spawn(table, 0, kStart);
  EXPECT_TRUE(table.slots_due(kStart).empty());
  EXPECT_FALSE(table.next_respawn().has_value());
}

TEST(WorkerTableTest, AddRecordsAStartingWorker) {
  WorkerTable table(1);
  WorkerId id = table.allocate_id();

  WorkerRecord& record = table.add(id, 0, 4321, kStart, 1234);

  EXPECT_EQ(record.id, id);
  EXPECT_EQ(record.slot, 0u);
  EXPECT_EQ(record.pid, 4321);
  EXPECT_EQ(record.state, WorkerState::kStarting);
  EXPECT_EQ(record.spawned_at, kStart);
  EXPECT_EQ(record.last_heartbeat, kStart);
  EXPECT_EQ(record.started_at_ms, 1234);
  EXPECT_FALSE(record.kill_at.has_value());
  EXPECT_EQ(table.find(id), &record);
  EXPECT_EQ(table.find_by_pid(4321), &record);
}

TEST(WorkerTableTest, FindsNothingForUnknownIdOrPid) {
  WorkerTable table(1);
  spawn(table, 0, kStart);

  EXPECT_EQ(table.find(999), nullptr);
  EXPECT_EQ(table.find_by_pid(1), nullptr);
}

TEST(WorkerTableTest, ListsWorkersOldestFirst) {
  WorkerTable table(3);
  WorkerId first = table.allocate_id();
  WorkerId second = table.allocate_id();
  table.add(second, 1, 20, kStart, 0);
  table.add(first, 0, 10, kStart, 0);

  std::vector<WorkerId> ids;
  for (const auto& [id, record] : table.workers()) ids.push_back(id);

  EXPECT_EQ(ids, (std::vector<WorkerId>{first, second}));
}

TEST(WorkerTableTest, RemoveExitedFreesSlotAndCountsRestart) {
  WorkerTable table(2, test_backoff());
  spawn(table, 0, kStart);
  pid_t pid = spawn(table, 1, kStart);
  TimePoint exit_time = kStart + hours(1);

  std::optional<WorkerRecord> removed = table.remove_exited(pid, exit_time);

  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(removed->pid, pid);
  EXPECT_EQ(removed->slot, 1u);
  EXPECT_EQ(removed->state, WorkerState::kExited);
  EXPECT_EQ(table.find_by_pid(pid), nullptr);
  EXPECT_EQ(table.slots_due(exit_time), (std::vector<std::size_t>{1}));
  EXPECT_EQ(table.restarts(0), 0u);
  EXPECT_EQ(table.restarts(1), 1u);
  EXPECT_EQ(table.restarts_total(), 1u);
}

TEST(WorkerTableTest, RemoveExitedReturnsNothingForUnknownPid) {
  WorkerTable table(1);
  spawn(table, 0, kStart);

  EXPECT_FALSE(table.remove_exited(424242, kStart).has_value());
  EXPECT_TRUE(table.slots_due(kStart).empty());
  EXPECT_EQ(table.restarts_total(), 0u);
  EXPECT_FALSE(table.empty());
}

TEST(WorkerTableTest, ReplacedWorkerExitLeavesItsSlotToTheReplacement) {
  WorkerTable table(1, test_backoff());
  pid_t old_pid = spawn(table, 0, kStart);
  pid_t new_pid = spawn(table, 0, kStart + hours(1));  // a reload replaces it
  WorkerId old_id = table.find_by_pid(old_pid)->id;
  WorkerId new_id = table.find_by_pid(new_pid)->id;
  ASSERT_TRUE(table.is_successor(new_id));

  EXPECT_EQ(table.promote(new_id), old_id);
  ASSERT_TRUE(table.remove_exited(old_pid, kStart + hours(2), ExitStatus{0, std::nullopt}));

  EXPECT_TRUE(table.slots_due(kStart + hours(2)).empty());
  EXPECT_TRUE(table.is_current(new_id));
  EXPECT_EQ(table.restarts(0), 1u);
  ASSERT_TRUE(table.last_exit(0).has_value());
  EXPECT_EQ(table.last_exit(0)->code, 0);
}

TEST(WorkerTableTest, SuccessorTakesTheSlotWhenTheCurrentWorkerDiesFirst) {
  WorkerTable table(1, test_backoff());
  pid_t old_pid = spawn(table, 0, kStart);
  pid_t new_pid = spawn(table, 0, kStart + hours(1));
  WorkerId new_id = table.find_by_pid(new_pid)->id;

  ASSERT_TRUE(table.remove_exited(old_pid, kStart + hours(2), ExitStatus{std::nullopt, 9}));

  EXPECT_TRUE(table.slots_due(kStart + hours(3)).empty()) << "no extra spawn for the slot";
  EXPECT_TRUE(table.is_current(new_id));
  EXPECT_FALSE(table.promote(new_id).has_value());
}

TEST(WorkerTableTest, FailedSuccessorLeavesTheCurrentWorkerInPlace) {
  WorkerTable table(1, test_backoff());
  pid_t old_pid = spawn(table, 0, kStart);
  pid_t new_pid = spawn(table, 0, kStart + hours(1));
  WorkerId old_id = table.find_by_pid(old_pid)->id;

  ASSERT_TRUE(table.remove_exited(new_pid, kStart + hours(1) + milliseconds(5)));

  EXPECT_TRUE(table.is_current(old_id));
  EXPECT_EQ(table.restarts(0), 0u);
  EXPECT_TRUE(table.slots_due(kStart + hours(2)).empty());
}

TEST(WorkerTableTest, ScalingDownReturnsTheWorkersOfDroppedSlots) {
  WorkerTable table(3, test_backoff());
  spawn(table, 0, kStart);
  spawn(table, 1, kStart);
  pid_t highest = spawn(table, 2, kStart);

  std::vector<WorkerId> removed = table.set_target(2);

  EXPECT_EQ(removed, (std::vector<WorkerId>{table.find_by_pid(highest)->id}));
  EXPECT_EQ(table.target(), 2u);
  ASSERT_TRUE(table.remove_exited(highest, kStart + hours(1)));
  EXPECT_TRUE(table.slots_due(kStart + hours(1)).empty()) << "a dropped slot is not respawned";
}

TEST(WorkerTableTest, ScalingUpAddsSlotsDueAtOnce) {
  WorkerTable table(1, test_backoff());
  spawn(table, 0, kStart);

  EXPECT_TRUE(table.set_target(3).empty());

  EXPECT_EQ(table.slots_due(kStart), (std::vector<std::size_t>{1, 2}));
}

TEST(WorkerTableTest, ExitedWorkersStatsStayInTheRetiredTotals) {
  WorkerTable table(1, test_backoff());
  pid_t pid = spawn(table, 0, kStart);
  table.find_by_pid(pid)->stats.requests = 40;
  table.find_by_pid(pid)->stats.responses.status_2xx = 39;
  table.find_by_pid(pid)->stats.latency_us.record(100, 40);

  ASSERT_TRUE(table.remove_exited(pid, kStart + hours(1)));

  EXPECT_EQ(table.retired_stats().requests, 40u);
  EXPECT_EQ(table.retired_stats().responses.status_2xx, 39u);
  EXPECT_EQ(table.retired_stats().latency_us.count(), 40u);
}

TEST(WorkerTableTest, FirstEarlyDeathRespawnsImmediately) {
  WorkerTable table(1, test_backoff());
  pid_t pid = spawn(table, 0, kStart);
  TimePoint death = kStart + milliseconds(10);

  ASSERT_TRUE(table.remove_exited(pid, death).has_value());

  EXPECT_EQ(table.slots_due(death), (std::vector<std::size_t>{0}));
  EXPECT_EQ(table.next_respawn(), death);
}

TEST(WorkerTableTest, RepeatedEarlyDeathsGrowDelayUpToMax) {
  WorkerTable table(1, test_backoff());
  const std::vector<milliseconds> expected = {
      milliseconds(0),   milliseconds(100),  milliseconds(200),  milliseconds(400),
      milliseconds(800), milliseconds(1000), milliseconds(1000), milliseconds(1000)};

  TimePoint now = kStart;
  for (std::size_t death = 0; death < expected.size(); ++death) {
    pid_t pid = spawn(table, 0, now);
    now += milliseconds(50);  // dies young
    ASSERT_TRUE(table.remove_exited(pid, now).has_value());

    TimePoint respawn_at = now + expected[death];
    EXPECT_EQ(table.next_respawn(), respawn_at) << "after early death " << death + 1;
    if (expected[death] > milliseconds(0)) {
      EXPECT_TRUE(table.slots_due(respawn_at - milliseconds(1)).empty())
          << "after early death " << death + 1;
    }
    EXPECT_EQ(table.slots_due(respawn_at), (std::vector<std::size_t>{0}))
        << "after early death " << death + 1;
    now = respawn_at;
  }
  EXPECT_EQ(table.restarts(0), expected.size());
}

TEST(WorkerTableTest, LongLivedWorkerResetsBackoff) {
  WorkerTable table(1, test_backoff());
  TimePoint now = kStart;
  for (int i = 0; i < 4; ++i) {
    pid_t pid = spawn(table, 0, now);
    now += milliseconds(50);
    ASSERT_TRUE(table.remove_exited(pid, now).has_value());
  }
  ASSERT_EQ(table.next_respawn(), now + milliseconds(400));
  now += milliseconds(400);

  pid_t survivor = spawn(table, 0, now);
  now += milliseconds(2000);  // lived exactly `young`: not young any more
  ASSERT_TRUE(table.remove_exited(survivor, now).has_value());
  EXPECT_EQ(table.slots_due(now), (std::vector<std::size_t>{0}));

  pid_t next = spawn(table, 0, now);
  now += milliseconds(50);  // the first early death after the reset
  ASSERT_TRUE(table.remove_exited(next, now).has_value());
  EXPECT_EQ(table.slots_due(now), (std::vector<std::size_t>{0}));
}

TEST(WorkerTableTest, BackoffIsPerSlot) {
  WorkerTable table(2, test_backoff());
  TimePoint now = kStart;
  for (int i = 0; i < 3; ++i) {  // slot 0 now waits 200 ms
    pid_t pid = spawn(table, 0, now);
    now += milliseconds(50);
    ASSERT_TRUE(table.remove_exited(pid, now).has_value());
  }
  pid_t other = spawn(table, 1, now);
  now += milliseconds(50);

  ASSERT_TRUE(table.remove_exited(other, now).has_value());

  EXPECT_EQ(table.slots_due(now), (std::vector<std::size_t>{1}));
  EXPECT_EQ(table.restarts(0), 3u);
  EXPECT_EQ(table.restarts(1), 1u);
  EXPECT_EQ(table.restarts_total(), 4u);
}

TEST(WorkerTableTest, NextRespawnIsEarliestEmptySlot) {
  WorkerTable table(2, test_backoff());
  TimePoint now = kStart;
  for (int i = 0; i < 2; ++i) {  // slot 0 waits 100 ms from its last death
    pid_t pid = spawn(table, 0, now);
    now += milliseconds(50);
    ASSERT_TRUE(table.remove_exited(pid, now).has_value());
  }
  TimePoint slot0_respawn = now + milliseconds(100);
  pid_t other = spawn(table, 1, now);
  ASSERT_TRUE(table.remove_exited(other, now + milliseconds(10)).has_value());

  EXPECT_EQ(table.next_respawn(), now + milliseconds(10));
  spawn(table, 1, now + milliseconds(10));
  EXPECT_EQ(table.next_respawn(), slot0_respawn);
}

TEST(WorkerTableTest, RestartsOfSlotOutsideTargetIsZero) {
  WorkerTable table(1);

  EXPECT_EQ(table.restarts(5), 0u);
}

TEST(BackoffTest, DelayIsZeroUntilSecondEarlyDeathThenDoublesToMax) {
  RespawnBackoff backoff = test_backoff();

  EXPECT_EQ(backoff.delay_after(0), Milliseconds(0));
  EXPECT_EQ(backoff.delay_after(1), Milliseconds(0));
  EXPECT_EQ(backoff.delay_after(2), Milliseconds(100));
  EXPECT_EQ(backoff.delay_after(3), Milliseconds(200));
  EXPECT_EQ(backoff.delay_after(5), Milliseconds(800));
  EXPECT_EQ(backoff.delay_after(6), Milliseconds(1000));
}

TEST(BackoffTest, DelayStaysAtMaxForEndlessCrashLoop) {
  RespawnBackoff backoff = test_backoff();

  EXPECT_EQ(backoff.delay_after(64), Milliseconds(1000));
  EXPECT_EQ(backoff.delay_after(100000), Milliseconds(1000));
  EXPECT_EQ(backoff.delay_after(~0u), Milliseconds(1000));
}

TEST(BackoffTest, InitialAboveMaxIsCappedAtMax) {
  RespawnBackoff backoff{Milliseconds{2000}, Milliseconds{5000}, Milliseconds{1000}};

  EXPECT_EQ(backoff.delay_after(2), Milliseconds(1000));
}

TEST(WorkerTableTest, OverdueListsSilentStartingAndReadyWorkers) {
  WorkerTable table(2);
  WorkerId starting = table.allocate_id();
  table.add(starting, 0, 10, kStart, 0);
  WorkerId ready = table.allocate_id();
  table.add(ready, 1, 11, kStart, 0).state = WorkerState::kReady;

  EXPECT_EQ(table.overdue(kStart + milliseconds(5001), Milliseconds(5000)),
            (std::vector<WorkerId>{starting, ready}));
}

TEST(WorkerTableTest, OverdueNeedsSilenceLongerThanTimeout) {
  WorkerTable table(1);
  spawn(table, 0, kStart);

  EXPECT_TRUE(table.overdue(kStart + milliseconds(5000), Milliseconds(5000)).empty());
}

TEST(WorkerTableTest, RecentHeartbeatIsNotOverdue) {
  WorkerTable table(1);
  WorkerId id = table.allocate_id();
  WorkerRecord& record = table.add(id, 0, 10, kStart, 0);
  record.state = WorkerState::kReady;
  record.last_heartbeat = kStart + milliseconds(4000);

  EXPECT_TRUE(table.overdue(kStart + milliseconds(8000), Milliseconds(5000)).empty());
}

TEST(WorkerTableTest, DrainingAndHungWorkersAreNeverOverdue) {
  WorkerTable table(2);
  table.add(table.allocate_id(), 0, 10, kStart, 0).state = WorkerState::kDraining;
  table.add(table.allocate_id(), 1, 11, kStart, 0).state = WorkerState::kHung;

  EXPECT_TRUE(table.overdue(kStart + hours(1), Milliseconds(5000)).empty());
}

TEST(WorkerTableTest, PastKillDeadlineListsWorkersWhoseDeadlineIsReached) {
  WorkerTable table(3);
  WorkerId passed = table.allocate_id();
  table.add(passed, 0, 10, kStart, 0).kill_at = kStart + milliseconds(100);
  WorkerId reached = table.allocate_id();
  table.add(reached, 1, 11, kStart, 0).kill_at = kStart + milliseconds(200);
  WorkerId future = table.allocate_id();
  table.add(future, 2, 12, kStart, 0).kill_at = kStart + milliseconds(201);

  EXPECT_EQ(table.past_kill_deadline(kStart + milliseconds(200)),
            (std::vector<WorkerId>{passed, reached}));
}

TEST(WorkerTableTest, WorkerWithoutKillDeadlineIsNeverKilled) {
  WorkerTable table(1);
  spawn(table, 0, kStart);

  EXPECT_TRUE(table.past_kill_deadline(kStart + hours(1000)).empty());
}

TEST(WorkerTableTest, DescribesNormalExitByCode) {
  EXPECT_EQ(describe(ExitStatus{0, std::nullopt}), "code 0");
  EXPECT_EQ(describe(ExitStatus{3, std::nullopt}), "code 3");
}

TEST(WorkerTableTest, DescribesKillBySignalWithItsName) {
  EXPECT_EQ(describe(ExitStatus{std::nullopt, SIGKILL}), "signal 9 (SIGKILL)");
  EXPECT_EQ(describe(ExitStatus{std::nullopt, SIGTERM}), "signal 15 (SIGTERM)");
  EXPECT_EQ(describe(ExitStatus{std::nullopt, SIGSEGV}), "signal 11 (SIGSEGV)");
}

TEST(WorkerTableTest, DescribesUnnamedSignalByNumberOnly) {
  EXPECT_EQ(describe(ExitStatus{std::nullopt, 200}), "signal 200");
}

TEST(WorkerTableTest, NamesEveryWorkerState) {
  EXPECT_EQ(to_string(WorkerState::kStarting), "starting");
  EXPECT_EQ(to_string(WorkerState::kReady), "ready");
  EXPECT_EQ(to_string(WorkerState::kDraining), "draining");
  EXPECT_EQ(to_string(WorkerState::kHung), "hung");
  EXPECT_EQ(to_string(WorkerState::kExited), "exited");
}

}  // namespace
}  // namespace herd

namespace herd {
namespace {

TEST(WorkerTableTest, StartingWorkerThatKeepsTalkingButNeverGetsReadyIsOverdue) {
  WorkerTable table(1);
  TimePoint spawned = TimePoint{} + std::chrono::hours(1);
  WorkerRecord& worker = table.add(table.allocate_id(), 0, 4321, spawned, 0);
  // Heartbeats keep arriving, but no `ready`.
  worker.last_heartbeat = spawned + std::chrono::milliseconds(1900);

  EXPECT_TRUE(table.overdue(spawned + std::chrono::milliseconds(1500), Milliseconds{2000}).empty());
  EXPECT_EQ(table.overdue(spawned + std::chrono::milliseconds(2001), Milliseconds{2000}),
            (std::vector<WorkerId>{worker.id}));
}

KeptLine kept(std::string text) {
  return KeptLine{0, OutputStream::kStderr, std::move(text), false};
}

std::vector<std::string> texts(const OutputRing& output) {
  std::vector<std::string> result;
  for (const KeptLine& line : output.lines()) result.push_back(line.text);
  return result;
}

TEST(WorkerTableTest, KeepsAWorkersLinesInItsRecord) {
  WorkerTable table(1, test_backoff());
  pid_t pid = spawn(table, 0, kStart);
  WorkerId id = table.find_by_pid(pid)->id;

  table.keep_output(id, kept("one"));
  table.keep_output(id, kept("two"));

  EXPECT_EQ(texts(table.find(id)->output), (std::vector<std::string>{"one", "two"}));
}

TEST(WorkerTableTest, SlotKeepsItsLastExitedWorkerWithItsLines) {
  WorkerTable table(1, test_backoff());
  pid_t pid = spawn(table, 0, kStart);
  WorkerId id = table.find_by_pid(pid)->id;
  table.keep_output(id, kept("last words"));

  table.remove_exited(pid, kStart + hours(1), ExitStatus{std::nullopt, SIGSEGV});

  const ExitedWorker* exited = table.find_exited(id);
  ASSERT_NE(exited, nullptr);
  EXPECT_EQ(exited, table.last_exited(0));
  EXPECT_EQ(exited->record.pid, pid);
  EXPECT_EQ(exited->record.state, WorkerState::kExited);
  EXPECT_EQ(exited->status.signal, SIGSEGV);
  EXPECT_EQ(exited->exited_at, kStart + hours(1));
  EXPECT_EQ(exited->exited_at_ms, 1'700'000'000'000 + 3'600'000);
  EXPECT_EQ(texts(exited->record.output), (std::vector<std::string>{"last words"}));
  EXPECT_EQ(table.slots()[0].last_exit->signal, SIGSEGV);
}

TEST(WorkerTableTest, LinesReadAfterTheReapGoToTheExitedWorker) {
  WorkerTable table(1, test_backoff());
  pid_t pid = spawn(table, 0, kStart);
  WorkerId id = table.find_by_pid(pid)->id;
  table.remove_exited(pid, kStart + hours(1), ExitStatus{1, std::nullopt});

  table.keep_output(id, kept("late"));
  table.keep_output(999, kept("nobody's"));

  EXPECT_EQ(texts(table.find_exited(id)->record.output), (std::vector<std::string>{"late"}));
}

TEST(WorkerTableTest, SlotKeepsOnlyItsMostRecentExit) {
  WorkerTable table(2, test_backoff());
  pid_t first = spawn(table, 0, kStart);
  pid_t other_slot = spawn(table, 1, kStart);
  WorkerId first_id = table.find_by_pid(first)->id;
  WorkerId other_id = table.find_by_pid(other_slot)->id;
  table.remove_exited(first, kStart + hours(1), ExitStatus{1, std::nullopt});
  table.remove_exited(other_slot, kStart + hours(1), ExitStatus{2, std::nullopt});
  pid_t second = spawn(table, 0, kStart + hours(1));
  WorkerId second_id = table.find_by_pid(second)->id;

  table.remove_exited(second, kStart + hours(2), ExitStatus{3, std::nullopt});

  EXPECT_EQ(table.find_exited(first_id), nullptr);
  ASSERT_NE(table.find_exited(second_id), nullptr);
  ASSERT_NE(table.find_exited(other_id), nullptr) << "another slot's exit was dropped";
  EXPECT_EQ(table.last_exit(0)->code, 3);
  EXPECT_EQ(table.last_exit(1)->code, 2);
}

TEST(WorkerTableTest, ASuccessorThatDiesBeforeReadyIsItsSlotsLastExit) {
  WorkerTable table(1, test_backoff());
  pid_t current = spawn(table, 0, kStart);
  pid_t successor = spawn(table, 0, kStart + hours(1));
  WorkerId successor_id = table.find_by_pid(successor)->id;
  table.keep_output(successor_id, kept("cannot bind"));

  table.remove_exited(successor, kStart + hours(1), ExitStatus{1, std::nullopt});

  EXPECT_TRUE(table.is_current(table.find_by_pid(current)->id));
  EXPECT_EQ(table.restarts(0), 0u) << "the current worker was not replaced";
  ASSERT_NE(table.last_exited(0), nullptr);
  EXPECT_EQ(table.last_exited(0)->record.id, successor_id);
  EXPECT_EQ(table.last_exit(0)->code, 1);
  EXPECT_EQ(texts(table.last_exited(0)->record.output), (std::vector<std::string>{"cannot bind"}));
}

TEST(WorkerTableTest, AWorkerOfAScaledAwaySlotIsNotKept) {
  WorkerTable table(2, test_backoff());
  spawn(table, 0, kStart);
  pid_t removed = spawn(table, 1, kStart);
  WorkerId removed_id = table.find_by_pid(removed)->id;
  table.set_target(1);

  ASSERT_TRUE(table.remove_exited(removed, kStart + hours(1), ExitStatus{0, std::nullopt}));

  EXPECT_EQ(table.find_exited(removed_id), nullptr);
}

}  // namespace
}  // namespace herd
