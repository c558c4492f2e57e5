#include "sim/kernel.h"

#include <cassert>
#include <stdexcept>

namespace wx::sim {

Kernel::Kernel(size_t trace_records_max) : trace_(trace_records_max) {
  alive_.push_back(1);  // kKernelOwner
  heap_.reserve(1024);
  slots_.reserve(1024);
}

uint32_t Kernel::alloc_slot() {
  if (!free_slots_.empty()) {
    uint32_t s = free_slots_.back();
    free_slots_.pop_back();
    return s;
  }
  if (slots_.size() >= kPendingEventsMax) {
    throw std::length_error("sim kernel: more than kPendingEventsMax pending events");
  }
  slots_.emplace_back();
  return static_cast<uint32_t>(slots_.size() - 1);
}

EventId Kernel::schedule_at(TimePoint at, OwnerId owner, TraceTag tag, UniqueFunction fn) {
  assert(owner < alive_.size());
  if (at < now_) at = now_;
  const uint32_t slot = alloc_slot();
  const uint64_t seq = next_seq_++;
  Slot& s = slots_[slot];
  s.fn = std::move(fn);
  s.seq = seq;
  s.tag = tag;
  s.owner = owner;
  s.cancelled = false;
  heap_push(HeapEntry{at.ns(), seq, slot});
  return make_id(slot, seq);
}

bool Kernel::cancel(EventId id) {
  if (id == 0) return false;
  const uint64_t slot = id >> kSeqBits;
  if (slot >= slots_.size()) return false;
  Slot& s = slots_[slot];
  if (!s.fn || s.cancelled || (s.seq & kSeqMask) != (id & kSeqMask)) return false;
  s.cancelled = true;
  s.fn.reset();  // release captures now; the heap entry is skipped when reached
  return true;
}

void Kernel::note(const TraceTag& tag) { trace_.add(now_, next_seq_++, tag); }

OwnerId Kernel::new_owner() {
  alive_.push_back(1);
  return static_cast<OwnerId>(alive_.size() - 1);
}

void Kernel::kill_owner(OwnerId owner) {
  assert(owner != kKernelOwner && owner < alive_.size());
  alive_[owner] = 0;
}

// A 4-ary min-heap: half the depth of a binary heap and children of a node
// share a cache line or two, which matters once the queue outgrows the cache.
void Kernel::heap_push(HeapEntry e) {
  heap_.push_back(e);
  size_t i = heap_.size() - 1;
  while (i > 0) {
    const size_t parent = (i - 1) / kHeapArity;
    if (!earlier(e, heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = e;
}

Kernel::HeapEntry Kernel::heap_pop() {
  const HeapEntry top = heap_.front();
  const HeapEntry last = heap_.back();
  heap_.pop_back();
  const size_t n = heap_.size();
  if (n > 0) {
    size_t i = 0;
    for (;;) {
      const size_t first = kHeapArity * i + 1;
      if (first >= n) break;
      size_t best = first;
      const size_t end = first + kHeapArity < n ? first + kHeapArity : n;
      for (size_t c = first + 1; c < end; ++c)
        if (earlier(heap_[c], heap_[best])) best = c;
      if (!earlier(heap_[best], last)) break;
      heap_[i] = heap_[best];
      i = best;
    }
    heap_[i] = last;
  }
  return top;
}

bool Kernel::purge_top() {
  while (!heap_.empty()) {
    const HeapEntry& top = heap_.front();
    Slot& s = slots_[top.slot];
    if (!s.cancelled && alive_[s.owner] != 0) return true;
    if (!s.cancelled) ++stale_dropped_;
    s.fn.reset();
    s.cancelled = false;
    free_slots_.push_back(top.slot);
    heap_pop();
  }
  return false;
}

bool Kernel::step() {
  if (failure_ || !purge_top()) return false;
  const HeapEntry e = heap_pop();
  Slot& s = slots_[e.slot];
  assert(e.at_ns >= now_.ns());
  now_ = TimePoint::from_ns(e.at_ns);
  UniqueFunction fn = std::move(s.fn);
  const TraceTag tag = s.tag;
  trace_.add(now_, e.seq, tag);
  free_slots_.push_back(e.slot);  // `s` may be reused by what fn schedules
  ++executed_;
  // A callback that throws (a timer's, a delivery's) fails the run with the
  // exception's text, as a throwing task does; it never escapes the loop.
  try {
    fn();
  } catch (const std::exception& ex) {
    fail(describe_throw(tag, ex.what()));
  } catch (...) {
    fail(describe_throw(tag, "an exception not derived from std::exception"));
  }
  return !failure_;
}

bool Kernel::run_until(TimePoint limit) {
  while (!failure_ && purge_top() && heap_.front().at_ns <= limit.ns()) step();
  if (failure_) return false;
  if (limit > now_) now_ = limit;
  return true;
}

bool Kernel::run_until_idle(uint64_t max_events) {
  const uint64_t stop_at =
      max_events > UINT64_MAX - executed_ ? UINT64_MAX : executed_ + max_events;  // saturating
  while (!failure_ && executed_ < stop_at && step()) {
  }
  return !failure_;
}

std::string Kernel::describe_throw(const TraceTag& tag, std::string_view what) const {
  std::string out = "a " + std::string(to_string(tag.kind)) + " event";
  if (tag.node != 0) out += " of node n" + std::to_string(tag.node);
  out += " threw at " + to_string(now_) + ": ";
  out += what;
  return out;
}

void Kernel::fail(std::string reason) {
  if (!failure_) {
    note(TraceTag{TraceKind::failure, 0, 0});
    failure_ = std::move(reason);
  }
}

std::optional<TimePoint> Kernel::next_event_time() {
  if (!purge_top()) return std::nullopt;
  return TimePoint::from_ns(heap_.front().at_ns);
}

}  // namespace wx::sim
