#include "master/dispatcher.h"

#include <optional>
#include <vector>

#include <gtest/gtest.h>

namespace herd {
namespace {

// The workers of `handoffs`, in order.
std::vector<WorkerId> workers_of(const std::vector<Dispatcher::Handoff>& handoffs) {
  std::vector<WorkerId> workers;
  for (const Dispatcher::Handoff& handoff : handoffs) workers.push_back(handoff.worker);
  return workers;
}

// The seqs of `handoffs`, in order.
std::vector<Seq> seqs_of(const std::vector<Dispatcher::Handoff>& handoffs) {
  std::vector<Seq> seqs;
  for (const Dispatcher::Handoff& handoff : handoffs) seqs.push_back(handoff.seq);
  return seqs;
}

void add_eligible(Dispatcher& dispatcher, std::initializer_list<WorkerId> workers) {
  for (WorkerId worker : workers) {
    dispatcher.add_worker(worker);
    dispatcher.set_eligible(worker, true);
  }
}

void enqueue_range(Dispatcher& dispatcher, Seq first, Seq last) {
  for (Seq seq = first; seq <= last; ++seq) dispatcher.enqueue(seq);
}

// Acknowledges one seq as adopted, expecting the dispatcher to know it.
void adopt(Dispatcher& dispatcher, WorkerId worker, Seq seq) {
  std::vector<Seq> seqs{seq};
  Dispatcher::AckOutcome outcome = dispatcher.acknowledge(worker, seqs, true);
  EXPECT_EQ(outcome.adopted, seqs) << "worker " << worker << " seq " << seq;
}

TEST(DispatcherTest, NextIsEmptyWithoutQueuedConnections) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1});

  EXPECT_FALSE(dispatcher.next().has_value());
  EXPECT_TRUE(dispatcher.distribute().empty());
}

TEST(DispatcherTest, NewWorkerGetsNothingUntilEligible) {
  Dispatcher dispatcher(1);
  dispatcher.add_worker(1);
  dispatcher.enqueue(100);

  EXPECT_FALSE(dispatcher.next().has_value());
  EXPECT_EQ(dispatcher.queued(), 1u);

  dispatcher.set_eligible(1, true);
  std::optional<Dispatcher::Handoff> handoff = dispatcher.next();
  ASSERT_TRUE(handoff.has_value());
  EXPECT_EQ(handoff->worker, 1u);
  EXPECT_EQ(handoff->seq, 100u);
}

TEST(DispatcherTest, RotatesAcrossWorkersInOrder) {
  Dispatcher dispatcher(10);
  add_eligible(dispatcher, {1, 2, 3});
  enqueue_range(dispatcher, 1, 7);

  std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();

  EXPECT_EQ(workers_of(handoffs), (std::vector<WorkerId>{1, 2, 3, 1, 2, 3, 1}));
  EXPECT_EQ(seqs_of(handoffs), (std::vector<Seq>{1, 2, 3, 4, 5, 6, 7}));
}

TEST(DispatcherTest, RotationResumesAfterLastHandoffAcrossCalls) {
  Dispatcher dispatcher(10);
  add_eligible(dispatcher, {1, 2, 3});

  std::vector<WorkerId> workers;
  for (Seq seq = 1; seq <= 4; ++seq) {
    dispatcher.enqueue(seq);
    std::optional<Dispatcher::Handoff> handoff = dispatcher.next();
    ASSERT_TRUE(handoff.has_value());
    workers.push_back(handoff->worker);
  }

  EXPECT_EQ(workers, (std::vector<WorkerId>{1, 2, 3, 1}));
}

TEST(DispatcherTest, WindowOfOneAllowsOneInFlightPerWorker) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1, 2});
  enqueue_range(dispatcher, 1, 5);

  std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();

  EXPECT_EQ(workers_of(handoffs), (std::vector<WorkerId>{1, 2}));
  EXPECT_EQ(dispatcher.in_flight(1), 1u);
  EXPECT_EQ(dispatcher.in_flight(2), 1u);
  EXPECT_EQ(dispatcher.queued(), 3u);
  EXPECT_FALSE(dispatcher.next().has_value());
}

TEST(DispatcherTest, WindowAboveOneAllowsThatManyInFlightPerWorker) {
  Dispatcher dispatcher(3);
  add_eligible(dispatcher, {1});
  enqueue_range(dispatcher, 1, 5);

  std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();

  EXPECT_EQ(seqs_of(handoffs), (std::vector<Seq>{1, 2, 3}));
  EXPECT_EQ(dispatcher.in_flight(1), 3u);
  EXPECT_EQ(dispatcher.queued(), 2u);
}

TEST(DispatcherTest, ZeroWindowIsTreatedAsOne) {
  Dispatcher dispatcher(0);
  add_eligible(dispatcher, {1});
  enqueue_range(dispatcher, 1, 2);

  EXPECT_EQ(dispatcher.window(), 1u);
  EXPECT_EQ(dispatcher.distribute().size(), 1u);
}

TEST(DispatcherTest, QueuedConnectionsDrainInArrivalOrderAsAcksFreeCredit) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1});
  enqueue_range(dispatcher, 1, 4);

  std::vector<Seq> served;
  for (std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute(); !handoffs.empty();
       handoffs = dispatcher.distribute()) {
    ASSERT_EQ(handoffs.size(), 1u);
    served.push_back(handoffs[0].seq);
    adopt(dispatcher, 1, handoffs[0].seq);
  }

  EXPECT_EQ(served, (std::vector<Seq>{1, 2, 3, 4}));
  EXPECT_EQ(dispatcher.queued(), 0u);
  EXPECT_EQ(dispatcher.in_flight(1), 0u);
}

TEST(DispatcherTest, AckedCreditGoesToThatWorkerWhenOthersAreFull) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1, 2, 3});
  enqueue_range(dispatcher, 1, 4);
  ASSERT_EQ(dispatcher.distribute().size(), 3u);

  adopt(dispatcher, 2, 2);
  std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();

  ASSERT_EQ(handoffs.size(), 1u);
  EXPECT_EQ(handoffs[0].worker, 2u);
  EXPECT_EQ(handoffs[0].seq, 4u);
}

TEST(DispatcherTest, SkipsWorkersThatAreNotEligible) {
  Dispatcher dispatcher(10);
  add_eligible(dispatcher, {1, 2, 3});
  dispatcher.set_eligible(2, false);
  enqueue_range(dispatcher, 1, 4);

  std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();

  EXPECT_EQ(workers_of(handoffs), (std::vector<WorkerId>{1, 3, 1, 3}));
}

TEST(DispatcherTest, IneligibleWorkerKeepsItsInFlightConnections) {
  Dispatcher dispatcher(2);
  add_eligible(dispatcher, {1, 2});
  enqueue_range(dispatcher, 1, 2);
  ASSERT_EQ(dispatcher.distribute().size(), 2u);

  dispatcher.set_eligible(1, false);  // draining
  enqueue_range(dispatcher, 3, 4);
  std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();

  EXPECT_EQ(workers_of(handoffs), (std::vector<WorkerId>{2}));
  EXPECT_EQ(dispatcher.in_flight(1), 1u);
  adopt(dispatcher, 1, 1);  // a draining worker's ack is still honoured
}

TEST(DispatcherTest, NoHandoffWhenNoWorkerIsEligible) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1, 2});
  dispatcher.set_eligible(1, false);
  dispatcher.set_eligible(2, false);
  dispatcher.enqueue(1);

  EXPECT_FALSE(dispatcher.next().has_value());
  EXPECT_EQ(dispatcher.queued(), 1u);
}

TEST(DispatcherTest, RedispatchesUnackedSeqsToAnotherWorkerWhenWorkerIsRemoved) {
  Dispatcher dispatcher(2);
  add_eligible(dispatcher, {1, 2});
  enqueue_range(dispatcher, 1, 6);
  // 1 -> w1, 2 -> w2, 3 -> w1, 4 -> w2; 5 and 6 stay queued.
  ASSERT_EQ(workers_of(dispatcher.distribute()), (std::vector<WorkerId>{1, 2, 1, 2}));

  std::vector<Seq> returned = dispatcher.remove_worker(1);

  EXPECT_EQ(returned, (std::vector<Seq>{1, 3}));
  EXPECT_FALSE(dispatcher.has_worker(1));
  EXPECT_EQ(dispatcher.queued(), 4u);
  adopt(dispatcher, 2, 2);
  adopt(dispatcher, 2, 4);
  std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();
  EXPECT_EQ(workers_of(handoffs), (std::vector<WorkerId>{2, 2}));
  EXPECT_EQ(seqs_of(handoffs), (std::vector<Seq>{1, 3}));
  EXPECT_EQ(dispatcher.take_queue(), (std::vector<Seq>{5, 6}));
}

TEST(DispatcherTest, RemovedWorkersSeqsGoAheadOfQueuedOnesInHandoffOrder) {
  Dispatcher dispatcher(3);
  add_eligible(dispatcher, {1});
  enqueue_range(dispatcher, 1, 5);
  ASSERT_EQ(dispatcher.distribute().size(), 3u);
  adopt(dispatcher, 1, 2);  // only 1 and 3 remain un-acked

  std::vector<Seq> returned = dispatcher.remove_worker(1);

  EXPECT_EQ(returned, (std::vector<Seq>{1, 3}));
  EXPECT_EQ(dispatcher.take_queue(), (std::vector<Seq>{1, 3, 4, 5}));
}

TEST(DispatcherTest, RemovingUnknownWorkerChangesNothing) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1});
  enqueue_range(dispatcher, 1, 2);
  ASSERT_EQ(dispatcher.distribute().size(), 1u);

  EXPECT_TRUE(dispatcher.remove_worker(42).empty());
  EXPECT_EQ(dispatcher.queued(), 1u);
  EXPECT_EQ(dispatcher.in_flight(1), 1u);
}

TEST(DispatcherTest, AcceptedAckFreesCreditAndReportsAdopted) {
  Dispatcher dispatcher(2);
  add_eligible(dispatcher, {1});
  enqueue_range(dispatcher, 1, 2);
  ASSERT_EQ(dispatcher.distribute().size(), 2u);

  std::vector<Seq> seqs{2, 1};
  Dispatcher::AckOutcome outcome = dispatcher.acknowledge(1, seqs, true);

  EXPECT_EQ(outcome.adopted, (std::vector<Seq>{2, 1}));
  EXPECT_TRUE(outcome.refused.empty());
  EXPECT_TRUE(outcome.unknown.empty());
  EXPECT_EQ(dispatcher.in_flight(1), 0u);
  EXPECT_EQ(dispatcher.queued(), 0u);
}

TEST(DispatcherTest, RefusedAcksGoBackToFrontOfQueueInOrder) {
  Dispatcher dispatcher(3);
  add_eligible(dispatcher, {1});
  enqueue_range(dispatcher, 1, 5);
  ASSERT_EQ(dispatcher.distribute().size(), 3u);

  std::vector<Seq> seqs{1, 3};
  Dispatcher::AckOutcome outcome = dispatcher.acknowledge(1, seqs, false);

  EXPECT_EQ(outcome.refused, (std::vector<Seq>{1, 3}));
  EXPECT_TRUE(outcome.adopted.empty());
  EXPECT_TRUE(outcome.unknown.empty());
  EXPECT_EQ(dispatcher.in_flight(1), 1u);
  EXPECT_EQ(dispatcher.take_queue(), (std::vector<Seq>{1, 3, 4, 5}));
}

TEST(DispatcherTest, RefusedConnectionIsOfferedToNextWorkerInRotation) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1, 2});
  dispatcher.enqueue(1);
  ASSERT_EQ(workers_of(dispatcher.distribute()), (std::vector<WorkerId>{1}));

  std::vector<Seq> seqs{1};
  ASSERT_EQ(dispatcher.acknowledge(1, seqs, false).refused, seqs);
  std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();

  ASSERT_EQ(handoffs.size(), 1u);
  EXPECT_EQ(handoffs[0].worker, 2u);
  EXPECT_EQ(handoffs[0].seq, 1u);
}

TEST(DispatcherTest, ReportsSeqsNotInFlightToThatWorkerAsUnknown) {
  Dispatcher dispatcher(2);
  add_eligible(dispatcher, {1, 2});
  enqueue_range(dispatcher, 1, 2);
  ASSERT_EQ(dispatcher.distribute().size(), 2u);  // 1 -> w1, 2 -> w2

  std::vector<Seq> seqs{1, 2, 99};
  Dispatcher::AckOutcome outcome = dispatcher.acknowledge(1, seqs, true);

  EXPECT_EQ(outcome.adopted, (std::vector<Seq>{1}));
  EXPECT_EQ(outcome.unknown, (std::vector<Seq>{2, 99}));
  EXPECT_EQ(dispatcher.in_flight(2), 1u);  // another worker's seq is untouched
}

TEST(DispatcherTest, ReportsSecondAckOfSameSeqAsUnknown) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1});
  dispatcher.enqueue(1);
  ASSERT_EQ(dispatcher.distribute().size(), 1u);
  adopt(dispatcher, 1, 1);

  std::vector<Seq> seqs{1};
  Dispatcher::AckOutcome outcome = dispatcher.acknowledge(1, seqs, false);

  EXPECT_EQ(outcome.unknown, seqs);
  EXPECT_TRUE(outcome.refused.empty());
  EXPECT_EQ(dispatcher.queued(), 0u);  // a bogus refusal does not requeue
}

TEST(DispatcherTest, ReportsEveryAckedSeqOfUnknownWorkerAsUnknown) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1});
  dispatcher.enqueue(1);
  ASSERT_EQ(dispatcher.distribute().size(), 1u);
  std::vector<Seq> returned = dispatcher.remove_worker(1);

  Dispatcher::AckOutcome outcome = dispatcher.acknowledge(1, returned, true);

  EXPECT_EQ(outcome.unknown, (std::vector<Seq>{1}));
  EXPECT_TRUE(outcome.adopted.empty());
  EXPECT_EQ(dispatcher.queued(), 1u);
}

TEST(DispatcherTest, ReturnUnsentPutsSeqAtFrontAndFreesCredit) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1});
  enqueue_range(dispatcher, 1, 3);
  std::optional<Dispatcher::Handoff> handoff = dispatcher.next();
  ASSERT_TRUE(handoff.has_value());

  dispatcher.return_unsent(handoff->worker, handoff->seq);

  EXPECT_EQ(dispatcher.in_flight(1), 0u);
  EXPECT_EQ(dispatcher.queued(), 3u);
  std::optional<Dispatcher::Handoff> retried = dispatcher.next();
  ASSERT_TRUE(retried.has_value());
  EXPECT_EQ(retried->seq, 1u);
}

TEST(DispatcherTest, ReturnUnsentAfterWorkerRemovalDoesNotQueueSeqTwice) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1});
  dispatcher.enqueue(7);
  std::optional<Dispatcher::Handoff> handoff = dispatcher.next();
  ASSERT_TRUE(handoff.has_value());
  ASSERT_EQ(dispatcher.remove_worker(1), (std::vector<Seq>{7}));  // already requeued

  dispatcher.return_unsent(handoff->worker, handoff->seq);

  // A seq is queued or in flight exactly once, or one client gets two workers.
  EXPECT_EQ(dispatcher.take_queue(), (std::vector<Seq>{7}));
}

TEST(DispatcherTest, TakeQueueReturnsQueuedInOrderAndLeavesInFlight) {
  Dispatcher dispatcher(1);
  add_eligible(dispatcher, {1});
  enqueue_range(dispatcher, 1, 4);
  ASSERT_EQ(dispatcher.distribute().size(), 1u);

  EXPECT_EQ(dispatcher.take_queue(), (std::vector<Seq>{2, 3, 4}));
  EXPECT_EQ(dispatcher.queued(), 0u);
  EXPECT_TRUE(dispatcher.take_queue().empty());
  EXPECT_EQ(dispatcher.in_flight(1), 1u);
}

TEST(DispatcherTest, CursorKeepsItsTurnWhenEarlierWorkerIsRemoved) {
  Dispatcher dispatcher(10);
  add_eligible(dispatcher, {1, 2, 3});
  enqueue_range(dispatcher, 1, 2);
  ASSERT_EQ(workers_of(dispatcher.distribute()), (std::vector<WorkerId>{1, 2}));

  (void)dispatcher.remove_worker(1);  // requeues seq 1
  std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();

  // Worker 3 was next; removing worker 1 must not make the rotation skip it.
  EXPECT_EQ(workers_of(handoffs), (std::vector<WorkerId>{3}));
}

TEST(DispatcherTest, CursorMovesToFollowingWorkerWhenNextWorkerIsRemoved) {
  Dispatcher dispatcher(10);
  add_eligible(dispatcher, {1, 2, 3});
  dispatcher.enqueue(1);
  ASSERT_EQ(workers_of(dispatcher.distribute()), (std::vector<WorkerId>{1}));

  (void)dispatcher.remove_worker(2);
  enqueue_range(dispatcher, 2, 3);

  EXPECT_EQ(workers_of(dispatcher.distribute()), (std::vector<WorkerId>{3, 1}));
}

TEST(DispatcherTest, CursorWrapsWhenLastWorkerWasNextAndIsRemoved) {
  Dispatcher dispatcher(10);
  add_eligible(dispatcher, {1, 2, 3});
  enqueue_range(dispatcher, 1, 2);
  ASSERT_EQ(workers_of(dispatcher.distribute()), (std::vector<WorkerId>{1, 2}));

  (void)dispatcher.remove_worker(3);
  enqueue_range(dispatcher, 3, 4);

  EXPECT_EQ(workers_of(dispatcher.distribute()), (std::vector<WorkerId>{1, 2}));
}

TEST(DispatcherTest, CursorStaysValidWhenEveryWorkerIsRemovedAndOneAdded) {
  Dispatcher dispatcher(10);
  add_eligible(dispatcher, {1, 2});
  dispatcher.enqueue(1);
  ASSERT_EQ(dispatcher.distribute().size(), 1u);
  (void)dispatcher.remove_worker(1);
  (void)dispatcher.remove_worker(2);
  EXPECT_FALSE(dispatcher.next().has_value());

  add_eligible(dispatcher, {3});

  std::optional<Dispatcher::Handoff> handoff = dispatcher.next();
  ASSERT_TRUE(handoff.has_value());
  EXPECT_EQ(handoff->worker, 3u);
  EXPECT_EQ(handoff->seq, 1u);
}

TEST(DispatcherTest, NewWorkerJoinsEndOfRotation) {
  Dispatcher dispatcher(10);
  add_eligible(dispatcher, {1, 2});
  dispatcher.enqueue(1);
  ASSERT_EQ(workers_of(dispatcher.distribute()), (std::vector<WorkerId>{1}));

  add_eligible(dispatcher, {3});
  enqueue_range(dispatcher, 2, 5);

  EXPECT_EQ(workers_of(dispatcher.distribute()), (std::vector<WorkerId>{2, 3, 1, 2}));
}

TEST(DispatcherTest, AddingKnownWorkerAgainKeepsOneTurnInRotation) {
  Dispatcher dispatcher(10);
  add_eligible(dispatcher, {1, 2});
  dispatcher.add_worker(1);
  enqueue_range(dispatcher, 1, 4);

  EXPECT_EQ(workers_of(dispatcher.distribute()), (std::vector<WorkerId>{1, 2, 1, 2}));
}

TEST(DispatcherTest, ReportsMembershipAndZeroInFlightForUnknownWorker) {
  Dispatcher dispatcher(1);
  dispatcher.add_worker(1);

  EXPECT_TRUE(dispatcher.has_worker(1));
  EXPECT_FALSE(dispatcher.has_worker(2));
  EXPECT_EQ(dispatcher.in_flight(2), 0u);
}

}  // namespace
}  // namespace herd
