// Simulation: a cluster of nodes on one kernel, one network and one set of
// disks, all driven from one root seed.
//
// Streams derived from the root seed (Rng::derive): "network" for latencies,
// "network.loss" for lost tries, "node"/(id, incarnation) for each
// incarnation's Runtime::rng(), "buggify" for fault points, and any label a
// caller asks for through `derive_rng`.
// None depends on another's use, so adding a node or a consumer of one
// stream does not shift the others.
//
// Node lifecycle (all recorded in the trace):
//   start(id)    constructs a new incarnation (Runtime, then Node, then
//                Node::start) with the node's surviving disk;
//   crash(id)    kills the incarnation: its kernel events become inert, every
//                spawned task is destroyed, then the Node, then the Runtime
//                (closing its database connection, so uncommitted work is
//                lost); its connections break;
//   restart(id)  crash (if up) + start;
//   wipe(id)     crash (if up) + lose the disk; start() later begins empty.
//
// The network: `topology()` is the datacenter graph every node is placed on
// when added (topology.h); `faults()` injects partitions, loss, delay,
// clogging, link and zone outages, clock skew and drift (faults.h); `network()`
// carries the frames (network.h). docs/network.md describes the model.
//
// A task that throws fails the run: `run_*` return false and `failure()`
// says which node and what was thrown. Everything runs on the caller's thread.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/runtime/node.h"
#include "nodes/runtime/runtime.h"
#include "sim/faults.h"
#include "sim/kernel.h"
#include "sim/network.h"
#include "sim/sim_disk.h"
#include "sim/sim_runtime.h"
#include "sim/topology.h"

namespace wx::sim {

struct LogLine {
  TimePoint at;
  NodeId node;
  uint32_t incarnation;
  LogLevel level;
  std::string message;
};

struct SimConfig {
  uint64_t seed = 1;
  LatencyConfig latency;  // per-tier link latencies of the topology
  TcpConfig tcp;          // retransmission timeouts for lossy routes
  LogLevel log_level = LogLevel::warn;
  // Where log lines at or above log_level go; default: stderr.
  std::function<void(const LogLine&)> log_sink;
  size_t trace_records_max = 0;
  bool buggify = false;
  double buggify_site_enable_p = 0.25;  // per site, once per run
  double buggify_fire_p = 0.25;         // per evaluation of an enabled site
};

// What an observer of node lifecycle and faults
// (Simulation::set_lifecycle_observer) sees. Observers only read: they must
// not change the simulation.
struct LifecycleEvent {
  enum class Kind : uint8_t {
    start,  // an incarnation started
    crash,  // an incarnation was destroyed (crash, restart, wipe, outage)
    wipe,   // the node's disk was lost (after its crash)
    fault,  // a fault was applied or healed, or a clock changed (noted in the trace)
  };
  Kind kind = Kind::start;
  TimePoint at;
  NodeId node;               // fault: the node concerned, or 0
  uint32_t incarnation = 0;  // start/crash/wipe: the incarnation; fault: 0
  std::string_view what;     // fault: its description ("outage#3 zone:b"); else empty
};
using LifecycleObserver = std::function<void(const LifecycleEvent&)>;

struct NodeSpec {
  std::string name;
  Placement placement;
  NodeFactory factory;
};

class Simulation {
 public:
  explicit Simulation(SimConfig config);
  ~Simulation();
  Simulation(const Simulation&) = delete;
  Simulation& operator=(const Simulation&) = delete;

  // Node ids are assigned 1, 2, 3… in order of addition.
  NodeId add_node(NodeSpec spec);
  void start(NodeId id);
  void crash(NodeId id);
  void restart(NodeId id);
  void wipe(NodeId id);
  // Clocks (sim_runtime.h, LocalClock). Each node has a host clock that
  // survives restarts; a change takes effect at once for the running
  // incarnation (its pending timers are re-timed to their local deadlines)
  // and holds for later ones. A running node's local time never goes
  // backwards: when a change puts the clock behind what it read, it stalls
  // until the clock catches up. Each change is noted in the trace as a fault.
  //
  // Skew: from now on the node's clock reads global time + offset (a step),
  // then runs on at its rate.
  void set_clock_offset(NodeId id, Duration offset);
  // Drift: from now on the node's clock advances at rate 1 + ppm * 1e-6 of
  // global time, continuing from what it reads now (no step). ppm in
  // [LocalClock::kPpmMin, kPpmMax], else std::invalid_argument.
  void set_clock_rate(NodeId id, int64_t ppm);
  // The node's clock now: local minus global time (a running incarnation may
  // read more while it stalls), and its rate.
  Duration clock_offset(NodeId id) const;
  int64_t clock_rate_ppm(NodeId id) const { return slot(id).clock.rate_ppm(); }
  const LocalClock& clock(NodeId id) const { return slot(id).clock; }

  bool is_up(NodeId id) const;
  uint32_t incarnation(NodeId id) const;
  size_t node_count() const { return nodes_.size(); }
  const NodeSpec& spec(NodeId id) const;
  // The live Node object of `id`, or nullptr if down (or not a T).
  template <class T>
  T* node_as(NodeId id) {
    Slot& s = slot(id);
    return s.node ? dynamic_cast<T*>(s.node.get()) : nullptr;
  }
  SimNodeRuntime* runtime(NodeId id) { return slot(id).rt.get(); }

  // Scripted action at global time `at`, recorded in the trace.
  void at(TimePoint at, std::function<void()> action);

  bool run_until(TimePoint limit) { return kernel_.run_until(limit); }
  bool run_for(Duration d) { return kernel_.run_until(kernel_.now() + d); }
  // Runs until `done()` holds (checked after every event) or `limit`.
  bool run_until(const std::function<bool()>& done, TimePoint limit);

  TimePoint now() const { return kernel_.now(); }
  Kernel& kernel() { return kernel_; }
  Network& network() { return network_; }
  Topology& topology() { return topology_; }
  const Topology& topology() const { return topology_; }
  Faults& faults() { return faults_; }
  const SimConfig& config() const { return config_; }
  uint64_t seed() const { return config_.seed; }
  uint64_t trace_hash() const { return kernel_.trace().hash(); }
  const std::optional<std::string>& failure() const { return kernel_.failure(); }
  Rng derive_rng(std::string_view label, uint64_t index = 0) const {
    return Rng::derive(config_.seed, label, index);
  }

  // One observer of node starts, crashes, wipes and fault notes, or none
  // (empty, the default). Replaces any previous one. Network frames have
  // their own observer (Network::set_frame_observer).
  void set_lifecycle_observer(LifecycleObserver observer) { lifecycle_observer_ = std::move(observer); }
  bool lifecycle_observed() const { return static_cast<bool>(lifecycle_observer_); }

  // --- for SimNodeRuntime / Network / Faults ------------------------------
  // A fault noted in the trace, for the lifecycle observer.
  void observe_fault(uint32_t node, std::string_view what) {
    if (lifecycle_observer_) lifecycle_observer_(LifecycleEvent{LifecycleEvent::Kind::fault, now(), NodeId{node}, 0, what});
  }
  bool buggify(NodeId node, std::string_view site);
  void log(NodeId node, uint32_t incarnation, LogLevel level, std::string_view message);
  // Delivers to the node if it is up and still the incarnation `incarnation`
  // (0: any). False if it is not, or its inbox is full.
  enum class Arrival { delivered, node_gone, inbox_full };
  Arrival arrive(NodeId to, uint32_t incarnation, Inbound in);
  const Placement& placement(NodeId id) const { return spec(id).placement; }
  bool knows(NodeId id) const { return id.value >= 1 && id.value <= nodes_.size(); }

 private:
  struct Slot {
    NodeSpec spec;
    uint32_t incarnation = 0;
    LocalClock clock;  // the host clock (survives restarts)
    std::unique_ptr<SimNodeRuntime> rt;
    std::unique_ptr<Node> node;
  };
  Slot& slot(NodeId id);
  const Slot& slot(NodeId id) const;

  SimConfig config_;
  Kernel kernel_;
  Topology topology_;
  Faults faults_;
  Network network_;
  DiskStore disks_;
  std::vector<Slot> nodes_;
  Rng buggify_rng_;
  std::map<std::string, bool, std::less<>> buggify_sites_;
  LifecycleObserver lifecycle_observer_;
};

}  // namespace wx::sim
