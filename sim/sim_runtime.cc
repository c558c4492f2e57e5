#include "sim/sim_runtime.h"

#include <algorithm>
#include <cassert>
#include <exception>
#include <stdexcept>
#include <string>

#include "sim/simulation.h"

namespace wx::sim {

SimTransport::SimTransport(Runtime& rt, Simulation& sim, NodeId self)
    : Transport(rt, kFrameBytesMaxDefault, kInboxFramesMaxDefault), sim_(sim), self_(self) {}

SendStatus SimTransport::send(NodeId to, std::string frame) {
  if (frame.size() > frame_bytes_max()) return SendStatus::frame_too_large;
  if (to == self_) return SendStatus::to_self;
  if (!sim_.knows(to)) return SendStatus::unknown_peer;
  return sim_.network().send(self_, to, std::move(frame));
}

// --- LocalClock -----------------------------------------------------------------

namespace {

using i128 = __int128;

// Floor and ceiling of a / b for b > 0, any sign of a.
i128 floor_div(i128 a, i128 b) {
  const i128 q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
i128 ceil_div(i128 a, i128 b) {
  const i128 q = a / b;
  return (a % b != 0 && a > 0) ? q + 1 : q;
}
int64_t saturate(i128 v) {
  if (v > std::numeric_limits<int64_t>::max()) return std::numeric_limits<int64_t>::max();
  if (v < std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

}  // namespace

LocalClock::LocalClock(TimePoint anchor_global, TimePoint anchor_local, int64_t ppm)
    : g0_(anchor_global), l0_(anchor_local), ppm_(ppm) {
  if (!valid_ppm(ppm)) throw std::invalid_argument("clock rate out of range: " + std::to_string(ppm) + " ppm");
}

TimePoint LocalClock::local_at(TimePoint g) const {
  if (ppm_ == 0) {  // the common case, without 128-bit division
    int64_t d, r;
    if (!__builtin_sub_overflow(g.ns(), g0_.ns(), &d) && !__builtin_add_overflow(l0_.ns(), d, &r)) {
      return TimePoint::from_ns(r);
    }
  }
  const i128 dg = i128{g.ns()} - g0_.ns();
  return TimePoint::from_ns(saturate(i128{l0_.ns()} + floor_div(dg * (kPpmUnit + ppm_), kPpmUnit)));
}

TimePoint LocalClock::global_at(TimePoint local) const {
  // local_at(g) >= L  <=>  floor((g - g0) f / U) >= L - l0  <=>  (g - g0) f / U >= L - l0
  // (the right side is an integer)  <=>  g - g0 >= ceil((L - l0) U / f), f = U + ppm > 0.
  if (ppm_ == 0) {
    int64_t d, r;
    if (!__builtin_sub_overflow(local.ns(), l0_.ns(), &d) && !__builtin_add_overflow(g0_.ns(), d, &r)) {
      return TimePoint::from_ns(r);
    }
  }
  const i128 dl = i128{local.ns()} - l0_.ns();
  return TimePoint::from_ns(saturate(i128{g0_.ns()} + ceil_div(dl * kPpmUnit, kPpmUnit + ppm_)));
}

LocalClock LocalClock::with_rate(TimePoint g, int64_t ppm) const { return LocalClock(g, local_at(g), ppm); }

LocalClock LocalClock::stepped(TimePoint g, Duration offset) const {
  return LocalClock(g, TimePoint::from_ns(saturate(i128{g.ns()} + offset.ns())), ppm_);
}

// --- SimNodeRuntime ---------------------------------------------------------------

SimNodeRuntime::SimNodeRuntime(Simulation& sim, NodeId id, uint32_t incarnation, OwnerId owner,
                               uint64_t seed, std::string disk_uri, LocalClock clock)
    : sim_(sim),
      id_(id),
      incarnation_(incarnation),
      owner_(owner),
      clock_(clock),
      rng_(seed),
      transport_(*this, sim, id),
      disk_(std::move(disk_uri)) {}

SimNodeRuntime::~SimNodeRuntime() {
  // The Simulation calls teardown() before destroying the Node; this covers
  // a runtime destroyed without a Node (e.g. a factory that threw).
  destroy_tasks();
}

TimePoint SimNodeRuntime::now() const {
  return std::max(clock_.local_at(sim_.kernel().now()), clock_floor_);
}

TimePoint SimNodeRuntime::to_global(TimePoint local_at) const {
  // At or before now: at once. Later: the floor is below local_at, so local
  // time reaches it when the host clock does.
  const TimePoint global_now = sim_.kernel().now();
  if (local_at <= now()) return global_now;
  return std::max(clock_.global_at(local_at), global_now);
}

EventId SimNodeRuntime::arm(uint32_t index) {
  Timer& t = timers_[index];
  const uint32_t generation = t.generation;
  return sim_.kernel().schedule_at(to_global(t.local_at), owner_,
                                   TraceTag{TraceKind::timer, id_.value, 0},
                                   [this, index, generation] { fire(index, generation); });
}

// Two kinds of TimerId, told apart by the top bit:
//  * a timer already due when set (a channel wake-up, a yield) can never need
//    re-timing — local time only moves forward, so it stays due — and goes
//    straight to the kernel: its id is the kernel's EventId, top bit clear;
//  * a timer in the future lives in the slot table: top bit set, then 31 bits
//    of generation, then slot index + 1 (never 0); a stale id of a reused slot
//    has the wrong generation.
namespace {
constexpr uint64_t kTableTimerBit = uint64_t{1} << 63;
constexpr uint32_t kGenerationMask = 0x7fffffffu;
}  // namespace

TimerId SimNodeRuntime::call_at(TimePoint at, UniqueFunction fn) {
  const TimePoint global_now = sim_.kernel().now();
  if (at <= now()) {
    const EventId id = sim_.kernel().schedule_at(
        global_now, owner_, TraceTag{TraceKind::timer, id_.value, 0}, std::move(fn));
    // Kernel ids keep the top bit clear below 2^25 event slots in use at once
    // (its limit is 2^26); past that the two kinds would be confused.
    if (id & kTableTimerBit) {
      throw std::length_error("sim runtime: more than 2^25 pending kernel events");
    }
    return id;
  }
  uint32_t index;
  if (!free_timers_.empty()) {
    index = free_timers_.back();
    free_timers_.pop_back();
  } else {
    index = static_cast<uint32_t>(timers_.size());
    timers_.emplace_back();
  }
  Timer& t = timers_[index];
  t.fn = std::move(fn);
  t.local_at = at;
  t.order = timer_order_++;
  t.generation = (t.generation + 1) & kGenerationMask;
  t.live = true;
  t.event = arm(index);
  return kTableTimerBit | (static_cast<uint64_t>(t.generation) << 32) | (uint64_t{index} + 1);
}

void SimNodeRuntime::release(uint32_t index) {
  Timer& t = timers_[index];
  t.fn.reset();
  t.live = false;
  t.event = 0;
  free_timers_.push_back(index);
}

void SimNodeRuntime::fire(uint32_t index, uint32_t generation) {
  Timer& t = timers_[index];
  if (!t.live || t.generation != generation) return;
  // Every clock change re-times pending timers (set_clock), so the event is
  // never early: local time has reached the deadline.
  assert(now() >= t.local_at);
  UniqueFunction fn = std::move(t.fn);
  release(index);  // before the call: fn may set timers (and grow timers_)
  fn();
}

bool SimNodeRuntime::cancel(TimerId id) {
  if (!(id & kTableTimerBit)) return sim_.kernel().cancel(id);
  const uint64_t low = id & 0xffffffffULL;
  if (low == 0 || low > timers_.size()) return false;
  const uint32_t index = static_cast<uint32_t>(low - 1);
  Timer& t = timers_[index];
  if (!t.live || t.generation != (static_cast<uint32_t>(id >> 32) & kGenerationMask)) return false;
  sim_.kernel().cancel(t.event);
  release(index);
  return true;
}

void SimNodeRuntime::set_clock(LocalClock clock) {
  clock_floor_ = now();  // never below what was read (a stall if `clock` is behind)
  clock_ = clock;
  // Re-time every pending timer to its local deadline, in (deadline, call
  // order) so that ties keep the order they were set in.
  std::vector<uint32_t> pending;
  for (uint32_t i = 0; i < timers_.size(); ++i) {
    if (timers_[i].live) pending.push_back(i);
  }
  std::sort(pending.begin(), pending.end(), [this](uint32_t a, uint32_t b) {
    const Timer& x = timers_[a];
    const Timer& y = timers_[b];
    return x.local_at != y.local_at ? x.local_at < y.local_at : x.order < y.order;
  });
  for (uint32_t i : pending) {
    sim_.kernel().cancel(timers_[i].event);
    timers_[i].event = arm(i);
  }
}

bool SimNodeRuntime::buggify(std::string_view site) { return sim_.buggify(id_, site); }

LogLevel SimNodeRuntime::log_level() const { return sim_.config().log_level; }

void SimNodeRuntime::log_write(LogLevel level, std::string_view message) {
  sim_.log(id_, incarnation_, level, message);
}

void SimNodeRuntime::on_task_failed(std::string_view name, std::exception_ptr error) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  std::string reason = "node " + to_string(id_) + " (" + sim_.spec(id_).name + ", incarnation " +
                       std::to_string(incarnation_) + ") task '" + std::string(name) + "' threw: " + what;
  log_write(LogLevel::error, reason);
  sim_.kernel().fail(std::move(reason));
}

}  // namespace wx::sim
