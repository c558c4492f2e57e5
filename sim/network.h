// The simulated network between nodes.
//
// One bidirectional connection per pair of nodes, opened by the first send
// and carrying frames in order in each direction (delivery times per
// direction never decrease), as TCP gives. A connection breaks when either
// end crashes or the receiver's inbox overflows: frames in flight on it are
// lost and the surviving end gets one reset, one latency later. Sending to a
// node that is down is a refused connect: the sender gets a reset after a
// round trip. The next send after a break opens a new connection.
//
// Latencies come from the placements (topology.h) and this network's seeded
// stream. Partitions, loss, clogging and link faults arrive with issue B.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "nodes/runtime/node.h"
#include "nodes/runtime/random.h"
#include "nodes/runtime/transport.h"
#include "sim/topology.h"

namespace wx::sim {

class Simulation;

class Network {
 public:
  Network(Simulation& sim, LatencyConfig latency, Rng rng);

  SendStatus send(NodeId from, NodeId to, std::string frame);
  // Breaks every connection of `node` (it crashed).
  void node_down(NodeId node);
  Duration latency(NodeId from, NodeId to);

  struct Stats {
    uint64_t frames_sent = 0, frames_delivered = 0, frames_lost = 0, bytes_delivered = 0;
    uint64_t resets = 0, refused = 0, overflows = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Connection {
    uint64_t epoch = 0;  // bumped at every break; stale deliveries compare it
    bool open = false;
    TimePoint last_arrival[2];  // per direction: index 0 is lo→hi
  };
  using PairKey = std::pair<uint32_t, uint32_t>;
  static PairKey key(NodeId a, NodeId b) {
    return a.value < b.value ? PairKey{a.value, b.value} : PairKey{b.value, a.value};
  }
  void break_connection(Connection& c, NodeId a, NodeId b, bool notify_a, bool notify_b);
  void schedule_reset(NodeId to, NodeId peer, Duration after);

  Simulation& sim_;
  LatencyConfig latency_;
  Rng rng_;
  std::map<PairKey, Connection> connections_;
  Stats stats_;
};

}  // namespace wx::sim
