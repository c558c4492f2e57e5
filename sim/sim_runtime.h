// SimNodeRuntime: the Runtime seam implemented on the simulation kernel.
//
// One object per node incarnation, owned by the Simulation. Timers become
// kernel events owned by this incarnation; when it crashes the kernel kills
// the owner, so none of them can run, and teardown() destroys every spawned
// task first (runtime.h).
//
// Local time. Each node has a host clock (LocalClock, below): piecewise linear
// in kernel (global) time, with an offset (clock skew) and a rate (drift, in
// parts per million). The Simulation owns it per node, so it survives
// restarts, and hands every change to the running incarnation. The
// incarnation reads max(host clock, floor): its local time never goes
// backwards — when a change would move the host clock below what this
// incarnation already read (a lower offset), local time stalls at that value
// until the host clock catches up. A new incarnation starts with no floor (a
// restarted process reads the host clock as it is).
//
// Timers. A timer set for local time L fires at the earliest global time at
// which local time reads >= L (LocalClock::global_at, exact integer
// arithmetic, rounded up: never early in local terms). Timers set for the
// future are kept by local deadline in a slot table here; whenever the clock
// changes (offset or rate), every pending one is re-timed at once to its local
// deadline under the new clock, in (deadline, call order). So the kernel event
// of a pending timer is always at the global time its deadline maps to under
// the clock in force: a timer never fires early and never late, however often
// the rate changes before it is due, and timers due at the same local time
// keep their call order. Timers already due when set go straight to the kernel
// (local time only moves forward, so they stay due whatever the clock does).
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "nodes/runtime/runtime.h"
#include "nodes/runtime/transport.h"
#include "sim/kernel.h"
#include "sim/sim_disk.h"

namespace wx::sim {

class Simulation;

// A host clock: local time as a function of global (kernel) time.
//
//   local(g) = l0 + floor((g - g0) * (1e6 + ppm) / 1e6)
//
// through the anchor (g0, l0), at rate 1 + ppm * 1e-6. A change of rate or a
// step of the offset re-anchors at the moment of the change, so the clock is
// continuous across rate changes (a step moves it by exactly the step). All
// arithmetic is integer (128-bit intermediates): no floating point decides an
// event time, so runs are bit-for-bit reproducible. Results beyond the
// 64-bit range saturate. The default clock reads global time exactly.
class LocalClock {
 public:
  // The rate must stay positive: ppm in (-1,000,000, +1,000,000], i.e. a
  // clock runs between (almost) stopped and twice as fast as global time.
  static constexpr int64_t kPpmMin = -999'999;
  static constexpr int64_t kPpmMax = 1'000'000;
  static constexpr int64_t kPpmUnit = 1'000'000;

  LocalClock() = default;
  LocalClock(TimePoint anchor_global, TimePoint anchor_local, int64_t ppm);

  // Local time at global time `g` (non-decreasing in g).
  TimePoint local_at(TimePoint g) const;
  // The earliest global time at which local_at() >= `local` — the exact
  // inverse, rounded up.
  TimePoint global_at(TimePoint local) const;
  // The same clock from `g` on, at a new rate: local_at(g) is unchanged.
  LocalClock with_rate(TimePoint g, int64_t ppm) const;
  // Stepped at `g` to read g + offset, same rate from there.
  LocalClock stepped(TimePoint g, Duration offset) const;
  Duration offset_at(TimePoint g) const { return local_at(g) - g; }
  int64_t rate_ppm() const { return ppm_; }
  TimePoint anchor_global() const { return g0_; }
  TimePoint anchor_local() const { return l0_; }
  static bool valid_ppm(int64_t ppm) { return ppm >= kPpmMin && ppm <= kPpmMax; }

 private:
  TimePoint g0_;
  TimePoint l0_;
  int64_t ppm_ = 0;
};

class SimTransport final : public Transport {
 public:
  SimTransport(Runtime& rt, Simulation& sim, NodeId self);
  SendStatus send(NodeId to, std::string frame) override;
  // The network's entry point; false if the inbox is full.
  bool arrive(Inbound in) { return deliver(std::move(in)); }

 private:
  Simulation& sim_;
  NodeId self_;
};

class SimNodeRuntime final : public Runtime {
 public:
  SimNodeRuntime(Simulation& sim, NodeId id, uint32_t incarnation, OwnerId owner, uint64_t seed,
                 std::string disk_uri, LocalClock clock);
  ~SimNodeRuntime() override;

  NodeId node_id() const override { return id_; }
  TimePoint now() const override;
  TimerId call_at(TimePoint at, UniqueFunction fn) override;
  bool cancel(TimerId id) override;
  // Simulated CPU work: holds the caller for `cost` of virtual time.
  SleepAwaiter compute(Duration cost) override { return sleep(cost); }
  Rng& rng() override { return rng_; }
  Transport& transport() override { return transport_; }
  Disk& disk() override { return disk_; }
  bool buggify(std::string_view site) override;
  LogLevel log_level() const override;
  void log_write(LogLevel level, std::string_view message) override;

  // The host clock from now on (Simulation::set_clock_offset and
  // set_clock_rate call this): local time keeps what it read (floor), every
  // pending timer is re-timed to its local deadline under `clock`.
  void set_clock(LocalClock clock);
  const LocalClock& clock() const { return clock_; }
  // Timers set for the future and not yet fired or cancelled (the slot table).
  size_t pending_timers() const { return timers_.size() - free_timers_.size(); }

  uint32_t incarnation() const { return incarnation_; }
  OwnerId owner() const { return owner_; }
  SimTransport& sim_transport() { return transport_; }
  // Destroys every spawned task (first step of a crash).
  void teardown() { destroy_tasks(); }

 protected:
  void on_task_failed(std::string_view name, std::exception_ptr error) override;

 private:
  Simulation& sim_;
  NodeId id_;
  uint32_t incarnation_;
  OwnerId owner_;
  struct Timer {
    UniqueFunction fn;
    TimePoint local_at;
    uint64_t order = 0;  // call order, for re-timing ties
    EventId event = 0;
    uint32_t generation = 0;
    bool live = false;
  };
  // The global time at which local time reaches `local_at` (now if passed).
  TimePoint to_global(TimePoint local_at) const;
  EventId arm(uint32_t index);
  void fire(uint32_t index, uint32_t generation);
  void release(uint32_t index);

  LocalClock clock_;
  // Local time never reads below this: what it read when the clock last
  // changed (matters when a change moved the host clock back).
  TimePoint clock_floor_ = TimePoint::from_ns(std::numeric_limits<int64_t>::min());
  std::vector<Timer> timers_;
  std::vector<uint32_t> free_timers_;
  uint64_t timer_order_ = 0;
  Rng rng_;
  SimTransport transport_;
  SimDisk disk_;
};

}  // namespace wx::sim
