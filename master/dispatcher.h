// Dispatcher: the round-robin hand-off policy (Node's SCHED_RR), as pure logic.
// It decides which worker gets which accepted connection; the master does the
// sendmsg() and owns the descriptors. Connections are named by `seq`, the
// master's id for an accepted fd, which the worker echoes in its `ack`.
//
// Invariants: a seq is either queued or in flight to exactly one worker until
// it is acknowledged; a connection a worker refuses or never acknowledged
// (because it died) goes back to the front of the queue, so none is lost and
// the oldest is served first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

namespace herd {

using WorkerId = std::uint64_t;
using Seq = std::uint64_t;

class Dispatcher {
 public:
  // `window`: how many un-acked connections a worker may hold (>= 1; 1 = Node).
  explicit Dispatcher(std::size_t window);

  struct Handoff {
    WorkerId worker;
    Seq seq;
  };

  // Adds a worker to the end of the rotation, not yet eligible.
  void add_worker(WorkerId worker);
  // Whether the worker may receive new connections (ready, not draining, not hung).
  void set_eligible(WorkerId worker, bool eligible);
  // Drops a worker; its un-acked connections return to the front of the queue,
  // in the order they were handed to it. Returns them.
  std::vector<Seq> remove_worker(WorkerId worker);

  // A newly accepted connection joins the back of the queue.
  void enqueue(Seq seq);

  // Assigns the oldest queued connection to the next eligible worker with
  // credit, rotating from where the last hand-off left off; nothing when the
  // queue is empty or no worker has credit. O(workers).
  std::optional<Handoff> next();
  // next() until it yields nothing.
  std::vector<Handoff> distribute();

  struct AckOutcome {
    std::vector<Seq> adopted;  // the master closes its copies of these
    std::vector<Seq> refused;  // back at the front of the queue
    std::vector<Seq> unknown;  // not in flight to this worker: a protocol violation
  };
  // Applies a worker's `ack`; each known seq frees one unit of its credit.
  AckOutcome acknowledge(WorkerId worker, std::span<const Seq> seqs, bool accepted);

  // Puts a hand-off that could not be sent back at the front of the queue.
  void return_unsent(WorkerId worker, Seq seq);

  // The connection at the front of the queue (the one waiting longest).
  std::optional<Seq> oldest_queued() const;
  void drop_oldest();

  // Removes and returns every queued (not in flight) connection, for shutdown.
  std::vector<Seq> take_queue();

  std::size_t queued() const { return queue_.size(); }
  std::size_t in_flight(WorkerId worker) const;
  std::size_t window() const { return window_; }
  bool has_worker(WorkerId worker) const;

 private:
  struct Slot {
    WorkerId worker;
    bool eligible = false;
    std::vector<Seq> in_flight;  // in hand-off order; small (<= window)
  };

  Slot* find(WorkerId worker);
  const Slot* find(WorkerId worker) const;
  // Index of the next eligible worker with credit, starting at next_; -1 if none.
  long next_with_credit() const;

  std::size_t window_;
  std::vector<Slot> workers_;
  std::size_t next_ = 0;  // rotation cursor into workers_
  std::deque<Seq> queue_;
};

}  // namespace herd
