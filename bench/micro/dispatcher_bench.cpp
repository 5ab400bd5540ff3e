// Dispatcher: the master's cost to pick a worker for an accepted connection
// and to retire it on the worker's ack, by number of workers. The policy is
// O(workers) per pick in the worst case; these show where that starts to tell.
#include "master/dispatcher.h"

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "bench/micro/allocation_counter.h"

namespace herd {
namespace {

constexpr std::size_t kWindow = 4;  // the master's default --handoff-window

Dispatcher eligible_workers(std::size_t workers) {
  Dispatcher dispatcher(kWindow);
  for (WorkerId worker = 1; worker <= workers; ++worker) {
    dispatcher.add_worker(worker);
    dispatcher.set_eligible(worker, true);
  }
  return dispatcher;
}

// A steady trickle: each connection is queued, handed off and acknowledged
// before the next arrives, so the rotation advances one worker per item.
void BM_DispatcherNextAcknowledge(benchmark::State& state) {
  Dispatcher dispatcher = eligible_workers(static_cast<std::size_t>(state.range(0)));
  Seq seq = 0;
  std::uint64_t adopted = 0;
  std::uint64_t allocations_before = bench::allocations_on_this_thread();
  for (auto _ : state) {
    dispatcher.enqueue(++seq);
    std::optional<Dispatcher::Handoff> handoff = dispatcher.next();
    if (!handoff || handoff->seq != seq) {
      state.SkipWithError("the queued connection was not handed off");
      break;
    }
    Seq acked[] = {handoff->seq};
    Dispatcher::AckOutcome outcome = dispatcher.acknowledge(handoff->worker, acked, true);
    adopted += outcome.adopted.size();
    benchmark::DoNotOptimize(outcome);
  }
  bench::report_allocations_per_item(state, allocations_before, state.iterations());
  if (adopted != static_cast<std::uint64_t>(state.iterations()) || dispatcher.queued() != 0) {
    state.SkipWithError("a handed-off connection was not adopted");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DispatcherNextAcknowledge)->Arg(2)->Arg(8)->Arg(64);

// A burst: enough connections to fill every worker's window arrive at once,
// are distributed in one go, then acknowledged one by one. Each pick scans
// from the cursor, and an ack searches its worker's in-flight list.
void BM_DispatcherDistributeBurst(benchmark::State& state) {
  std::size_t workers = static_cast<std::size_t>(state.range(0));
  std::size_t burst = workers * kWindow;
  Dispatcher dispatcher = eligible_workers(workers);
  Seq seq = 0;
  std::uint64_t adopted = 0;
  std::uint64_t allocations_before = bench::allocations_on_this_thread();
  for (auto _ : state) {
    for (std::size_t i = 0; i < burst; ++i) dispatcher.enqueue(++seq);
    std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();
    if (handoffs.size() != burst) {
      state.SkipWithError("the burst did not fill every window");
      break;
    }
    for (const Dispatcher::Handoff& handoff : handoffs) {
      Seq acked[] = {handoff.seq};
      adopted += dispatcher.acknowledge(handoff.worker, acked, true).adopted.size();
    }
    benchmark::DoNotOptimize(handoffs.data());
  }
  std::int64_t items = state.iterations() * static_cast<std::int64_t>(burst);
  bench::report_allocations_per_item(state, allocations_before, items);
  if (adopted != static_cast<std::uint64_t>(items) || dispatcher.queued() != 0) {
    state.SkipWithError("a handed-off connection was not adopted");
  }
  state.SetItemsProcessed(items);
}
BENCHMARK(BM_DispatcherDistributeBurst)->Arg(2)->Arg(8)->Arg(64);

// The worst pick: every worker but the one just behind the cursor is at its
// window, so next() scans the whole rotation to find credit.
void BM_DispatcherNextAllButOneBusy(benchmark::State& state) {
  std::size_t workers = static_cast<std::size_t>(state.range(0));
  Dispatcher dispatcher = eligible_workers(workers);
  Seq seq = 0;
  // Fill every window, then free one slot of the last worker: the cursor is
  // back on the first worker, so the free slot is the rotation's far end.
  for (std::size_t i = 0; i < workers * kWindow; ++i) dispatcher.enqueue(++seq);
  std::vector<Dispatcher::Handoff> handoffs = dispatcher.distribute();
  const Dispatcher::Handoff& last = handoffs.back();
  Seq freed[] = {last.seq};
  dispatcher.acknowledge(last.worker, freed, true);

  std::uint64_t adopted = 0;
  for (auto _ : state) {
    dispatcher.enqueue(++seq);
    std::optional<Dispatcher::Handoff> handoff = dispatcher.next();
    if (!handoff || handoff->worker != last.worker) {
      state.SkipWithError("the pick did not land on the one worker with credit");
      break;
    }
    Seq acked[] = {handoff->seq};
    adopted += dispatcher.acknowledge(handoff->worker, acked, true).adopted.size();
    benchmark::ClobberMemory();
  }
  if (adopted != static_cast<std::uint64_t>(state.iterations())) {
    state.SkipWithError("a handed-off connection was not adopted");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DispatcherNextAllButOneBusy)->Arg(2)->Arg(8)->Arg(64);

}  // namespace
}  // namespace herd
