// SimNodeRuntime: the Runtime seam implemented on the simulation kernel.
//
// One object per node incarnation, owned by the Simulation. Timers become
// kernel events owned by this incarnation; when it crashes the kernel kills
// the owner, so none of them can run, and teardown() destroys every spawned
// task first (runtime.h). Local time is the kernel's time plus this node's
// clock offset (a clock-skew fault), never going backwards.
#pragma once

#include "sim/sim_only.h"

#include <memory>
#include <string>

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
  Duration clock_offset_;
  Rng rng_;
  SimTransport transport_;
  SimDisk disk_;
};

}  // namespace wx::sim
