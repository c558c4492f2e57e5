// SimNodeRuntime: the Runtime seam implemented on the simulation kernel.
//
// One object per node incarnation, owned by the Simulation. Timers become
// kernel events owned by this incarnation; when it crashes the kernel kills
// the owner, so none of them can run, and teardown() destroys every spawned
// task first (runtime.h).
//
// Local time is the kernel's time plus this node's clock offset (a clock-skew
// fault), never going backwards: when the offset is lowered on a running
// node, local time stalls at the value it had until global time + offset
// catches up. Timers set for the future are kept by local deadline in a slot
// table here (the kernel event of each is re-timed when the offset changes),
// so a new offset takes effect at once for now() and for every pending timer;
// timers due at the same local time keep their call order. Timers already due
// when set go straight to the kernel (they stay due whatever the clock does).
#pragma once

#include "sim/sim_only.h"

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
                 std::string disk_uri, Duration clock_offset);
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

  // Clock skew from now on (Simulation::set_clock_offset calls this).
  void set_clock_offset(Duration offset);
  Duration clock_offset() const { return clock_offset_; }
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

  Duration clock_offset_;
  // Local time never reads below this (raised when the offset decreases).
  TimePoint clock_floor_ = TimePoint::from_ns(std::numeric_limits<int64_t>::min());
  std::vector<Timer> timers_;
  std::vector<uint32_t> free_timers_;
  uint64_t timer_order_ = 0;
  Rng rng_;
  SimTransport transport_;
  SimDisk disk_;
};

}  // namespace wx::sim
