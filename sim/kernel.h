// The simulation kernel: virtual time and one event queue.
//
// Events are ordered by (time, sequence number); the sequence number is
// assigned at scheduling, so events due at the same time run in the order
// they were scheduled. Time is integer nanoseconds and only moves forward.
// Everything runs on the caller's thread; nothing here reads a real clock.
//
// Owners: every event belongs to an owner — the kernel itself (kKernelOwner,
// never dies) or one node incarnation. `kill_owner` makes all of an owner's
// pending events inert: they are dropped when reached, never run, and counted
// in `stale_dropped()`. This is the kernel's guarantee that nothing of a
// crashed incarnation is resumed even if some awaiter forgot to cancel.
//
// Every executed event is added to the Trace (hash, optional records).
// A failure (`fail`) stops every run loop; the caller reads `failure()`.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/runtime/function.h"
#include "nodes/runtime/time.h"
#include "sim/trace.h"

namespace wx::sim {

using OwnerId = uint32_t;
constexpr OwnerId kKernelOwner = 0;

// Identifies one scheduled event for cancellation; 0 is never a valid id.
using EventId = uint64_t;

class Kernel {
 public:
  // Pending events beyond this are a runaway model, not a simulation.
  static constexpr size_t kPendingEventsMax = size_t{1} << 26;

  explicit Kernel(size_t trace_records_max = 0);
  Kernel(const Kernel&) = delete;
  Kernel& operator=(const Kernel&) = delete;

  TimePoint now() const { return now_; }

  // Schedules `fn` at `at` (clamped to now: the past is not reachable).
  EventId schedule_at(TimePoint at, OwnerId owner, TraceTag tag, UniqueFunction fn);
  EventId schedule_after(Duration d, OwnerId owner, TraceTag tag, UniqueFunction fn) {
    return schedule_at(now_ + d, owner, tag, std::move(fn));
  }
  // True if a pending event was cancelled. Unknown, fired or already
  // cancelled ids are a no-op.
  bool cancel(EventId id);

  // Records a lifecycle fact (crash, start, fault…) in the trace at the
  // current time with its own sequence number, as if it were an event.
  void note(const TraceTag& tag);

  OwnerId new_owner();
  void kill_owner(OwnerId owner);
  bool owner_alive(OwnerId owner) const { return alive_[owner] != 0; }

  // Runs the next event. False if there is none or the run has failed.
  bool step();
  // Runs every event due at or before `limit`, then sets now = limit
  // (unless the run failed). Returns false on failure.
  bool run_until(TimePoint limit);
  // Runs until no events are pending or `max_events` have run.
  bool run_until_idle(uint64_t max_events = UINT64_MAX);

  // The first failure reported; stops all run loops. A callback that throws
  // fails the run with the exception's text (the event, node and time named).
  void fail(std::string reason);
  const std::optional<std::string>& failure() const { return failure_; }

  // Queue entries, including cancelled or dead ones not yet reached.
  size_t pending() const { return heap_.size(); }
  // Time of the next live event, if any (drops dead ones at the head).
  std::optional<TimePoint> next_event_time();
  uint64_t events_executed() const { return executed_; }
  uint64_t stale_dropped() const { return stale_dropped_; }
  const Trace& trace() const { return trace_; }

 private:
  std::string describe_throw(const TraceTag& tag, std::string_view what) const;
  struct Slot {
    UniqueFunction fn;
    uint64_t seq = 0;
    TraceTag tag;
    OwnerId owner = kKernelOwner;
    bool cancelled = false;
  };
  struct HeapEntry {
    int64_t at_ns;
    uint64_t seq;
    uint32_t slot;
  };
  static bool earlier(const HeapEntry& a, const HeapEntry& b) {
    return a.at_ns < b.at_ns || (a.at_ns == b.at_ns && a.seq < b.seq);
  }
  // Drops cancelled and dead-owner events at the head; true if a live one remains.
  bool purge_top();
  void heap_push(HeapEntry e);
  HeapEntry heap_pop();
  uint32_t alloc_slot();
  static EventId make_id(uint32_t slot, uint64_t seq) {
    return (static_cast<uint64_t>(slot) << kSeqBits) | (seq & kSeqMask);
  }
  static constexpr size_t kHeapArity = 4;
  static constexpr int kSeqBits = 38;
  static constexpr uint64_t kSeqMask = (uint64_t{1} << kSeqBits) - 1;

  TimePoint now_;
  uint64_t next_seq_ = 1;
  uint64_t executed_ = 0;
  uint64_t stale_dropped_ = 0;
  std::vector<HeapEntry> heap_;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<uint8_t> alive_;
  Trace trace_;
  std::optional<std::string> failure_;
};

}  // namespace wx::sim
