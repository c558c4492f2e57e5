// The simulated network between nodes: connections over the topology,
// under the faults.
//
// Connections. One bidirectional connection per pair of nodes, opened by the
// first send, with an epoch bumped at every break. Each direction is a FIFO
// queue of frames in flight; the head is delivered at its arrival time (or at
// once if that has passed), so frames arrive in the order sent, whole, or not
// at all, as TCP gives. A connection breaks when
//   * either end crashes: frames in flight are lost, the surviving end gets
//     one reset one latency later (the crashed host's kernel closes the socket);
//   * the receiver's inbox overflows, or too many frames are in flight one
//     way (TcpConfig::in_flight_frames_max): both ends get a reset;
//   * a fault blocks it (partition, one-way block, zone/datacenter outage, no
//     route left): frames in flight are lost and nobody gets a reset — no RST
//     crosses a partition; senders learn by their own timeouts.
// Sending to a node that is down is a refused connect: the sender gets a reset
// after a round trip (if both directions are open). The next send after a
// break opens a new connection.
//
// Blocked directions. A send in a blocked direction is dropped silently and
// counted. If a connection is open at that moment (opened by the peer in the
// other direction of a one-way block), that direction of it is poisoned: it
// has a gap, so it never delivers again; the next send that way after the heal
// replaces the connection (silently), while the other direction keeps flowing
// until then.
//
// Latency, loss, clogs. A frame's latency is a sample over its route (one per
// link, topology.h) plus the extra delays of link and rule faults. Loss is
// modelled as TCP experiences it: each try of a frame is lost with the route's
// loss probability and retransmitted after a retransmission timeout that
// starts at TcpConfig::rto_initial and doubles per consecutive loss of that
// frame (capped at rto_max, at most retransmits_max times), so the frame is
// delayed, never dropped, and the frames behind it wait (FIFO). A clog holds
// the head of every queue it covers until it ends, then delivers them in
// order. Per-pair fault rules and routes are cached on the connection and
// recomputed only when the faults' or the topology's version changes.
//
// Randomness: latencies from the "network" stream, loss from "network.loss",
// both derived from the root seed.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <unordered_map>
#include <string>
#include <string_view>
#include <utility>

#include "nodes/runtime/node.h"
#include "nodes/runtime/random.h"
#include "nodes/runtime/transport.h"
#include "sim/faults.h"
#include "sim/kernel.h"
#include "sim/topology.h"

namespace wx::sim {

class Simulation;

// Frames in flight one way on one connection, beyond which it breaks.
constexpr size_t kInFlightFramesMaxDefault = size_t{1} << 16;

// The retransmission model used for lossy routes (Linux defaults), and the
// bound on what one connection may hold in flight.
struct TcpConfig {
  Duration rto_initial = milliseconds(200);  // TCP_RTO_MIN
  Duration rto_max = seconds(120);           // TCP_RTO_MAX
  uint32_t retransmits_max = 15;             // tcp_retries2; the try after that gets through
  // A send that finds this many frames in flight its way (a long clog, a
  // very lossy route) breaks the connection: both ends get a reset, as when
  // a socket's buffers overflow. Our send() never blocks, so this is the
  // back-pressure a node sees.
  size_t in_flight_frames_max = kInFlightFramesMaxDefault;
};

// What an observer of the network (Network::set_frame_observer) sees of one
// frame. Observers only read: they must not change the simulation.
struct FrameEvent {
  enum class Kind : uint8_t {
    sent,       // send() was called (before any fault decides the frame's fate)
    delivered,  // the frame reached the receiver's inbox
    lost,       // it reached the receiver's host, but the node was gone or its inbox full
  };
  Kind kind = Kind::sent;
  NodeId from, to;
  TimePoint sent_at;  // when send() was called
  TimePoint at;       // now (= sent_at for `sent`)
  size_t bytes = 0;
  std::string_view frame;  // `sent` only (empty otherwise): the bytes, valid during the call
  uint64_t tag = 0;        // delivered/lost: what the observer returned for the frame's `sent`
};
// Called synchronously for every frame event. For a `sent` event it returns a
// tag the network keeps with the frame and hands back with its delivered or
// lost event (0 for frames sent while no observer was set); for the others
// the return value is ignored. Frames dropped by a fault at send, or lost in
// flight when their connection breaks, get no second event.
using FrameObserver = std::function<uint64_t(const FrameEvent&)>;

class Network {
 public:
  Network(Simulation& sim, Topology& topology, Faults& faults, TcpConfig tcp, Rng latency_rng,
          Rng loss_rng);
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  SendStatus send(NodeId from, NodeId to, std::string frame);
  // Breaks every connection of `node` (it crashed); peers get resets.
  void node_down(NodeId node);
  // After a fault that may block traffic: every open connection now blocked
  // in either direction breaks silently.
  void enforce_blocks();
  // After a clog ended early: held queue heads are re-timed.
  void release_holds();

  // The one-way path between a and b now, for tests and tools: the route's
  // latency bounds plus the extra delays of link and rule faults (loss
  // retransmissions and clogs not included).
  struct Path {
    bool reachable = false;            // a route exists over links that are up
    bool blocked[2] = {false, false};  // [0]: a → b, [1]: b → a (rules or no route)
    size_t links = 0;                  // hops; 0 on one host
    LatencyBounds latency;
    double loss_p = 0;
  };
  Path path(NodeId a, NodeId b);

  struct ConnectionInfo {
    bool open = false;
    uint64_t epoch = 0;            // 0: never opened
    size_t in_flight[2] = {0, 0};  // [0]: a → b
  };
  ConnectionInfo connection(NodeId a, NodeId b) const;

  // frames_sent = frames_delivered + frames_lost + frames in flight.
  struct Stats {
    uint64_t frames_sent = 0, frames_delivered = 0, frames_lost = 0, bytes_delivered = 0;
    uint64_t resets = 0, refused = 0, overflows = 0;  // overflows: inbox or in-flight
    uint64_t frames_dropped_blocked = 0;  // sent into a blocked direction (part of frames_lost)
    uint64_t frames_retransmitted = 0;    // frames delayed by at least one loss
    uint64_t retransmits = 0;             // lost tries in all
    uint64_t frames_clogged = 0;          // frames held by a clog
    uint64_t connections_opened = 0;
    uint64_t connections_broken_silently = 0;  // by blocks
  };
  const Stats& stats() const { return stats_; }
  const TcpConfig& tcp() const { return tcp_; }

  // One observer of every frame (FrameEvent), or none (empty function, the
  // default: then nothing is computed for it). Replaces any previous one.
  void set_frame_observer(FrameObserver observer) { frame_observer_ = std::move(observer); }
  bool frame_observed() const { return static_cast<bool>(frame_observer_); }

 private:
  struct InFlight {
    TimePoint arrival;
    std::string frame;
    uint64_t hash = 0;  // for the trace
    uint32_t to_incarnation = 0;
    bool clogged = false;
    TimePoint sent_at;  // for the frame observer
    uint64_t tag = 0;   // the frame observer's, from the `sent` event
  };
  struct Direction {
    std::deque<InFlight> queue;
    EventId pump = 0;       // the scheduled delivery of the head, 0 if none
    TimePoint pump_at;      // when it is scheduled
    bool poisoned = false;  // a send was dropped while open: never delivers again
  };
  struct Policy {
    uint64_t topology_version = 0, faults_version = 0;
    Route route;
    PairRules rules;  // blocked includes "no route"; loss_p includes links
  };
  struct Connection {
    NodeId lo, hi;
    uint64_t epoch = 0;
    bool open = false;
    Direction dir[2];  // 0: lo → hi
    Policy policy;
  };
  using PairKey = std::pair<uint32_t, uint32_t>;
  static int direction(NodeId from, NodeId to) { return from.value < to.value ? 0 : 1; }

  Connection& connection_for(NodeId a, NodeId b);
  const Policy& policy(Connection& c);
  Duration one_way(const Policy& p);
  Duration retransmit_delay(double loss_p);
  void open(Connection& c);
  void break_connection(Connection& c, bool notify_lo, bool notify_hi);
  void schedule_reset(Connection& c, NodeId to, Duration after);
  void schedule_pump(Connection& c, int d, TimePoint at);
  void pump(Connection& c, int d);

  Simulation& sim_;
  Topology& topology_;
  Faults& faults_;
  TcpConfig tcp_;
  Rng latency_rng_;
  Rng loss_rng_;
  std::map<PairKey, Connection> connections_;  // ordered: faults walk it
  // connection_for's index into connections_ (map nodes never move); only
  // looked up, never iterated, so its order cannot reach any output.
  std::unordered_map<uint64_t, Connection*> connection_index_;
  Stats stats_;
  FrameObserver frame_observer_;
};

}  // namespace wx::sim
