// Faults: every network and placement fault of a simulation, in one place.
//
// Reached as `sim.faults()`. Rules aimed at nodes through selectors
// (selector.h) each get a FaultId and stay active until healed:
//   partition(groups)      traffic between nodes of different groups is blocked
//                          both ways; nodes in no group are unaffected;
//   block(from, to)        one way only: from → to is blocked, to → from flows;
//   set_loss(a, b, p)      frames between a and b are lost with probability p
//                          each try and retransmitted as TCP would (delayed by
//                          a retransmission timeout, never dropped);
//   add_delay(a, b, d)     frames between a and b take d longer;
//   clog(node, until), clog_pair(a, b, until)
//                          traffic to and from the node (or of the pair) is
//                          held and delivered, in order, when the clog ends.
// Link faults change the topology's link state (topology.h) and reroute:
// set_link_up / set_link_loss / set_link_delay. Outages crash nodes:
// kill_zone / kill_datacenter, undone by restore_zone / restore_datacenter.
// Clocks: set_clock_offset (skew, a step) and set_clock_rate (drift, ppm).
//
// What a node observes (docs/network.md): a block breaks every open
// connection crossing it silently — frames in flight are lost and nobody gets
// a reset, as no RST crosses a real partition — and later sends that way are
// dropped silently; senders learn only by their own timeouts. After the heal
// the next send opens a new connection.
//
// Every fault applied or healed is noted in the trace (TraceKind::fault, the
// node concerned or 0, fnv1a64 of its description) and logged at info level.
// Everything here is deterministic: rules live in a map ordered by FaultId and
// are evaluated in that order; no randomness is drawn here.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nodes/runtime/node.h"
#include "nodes/runtime/time.h"
#include "sim/kernel.h"
#include "sim/selector.h"
#include "sim/topology.h"

namespace wx::sim {

class Simulation;

// Identifies an active fault rule; 0 is never a valid id.
using FaultId = uint64_t;

// What the rules say about traffic between two nodes lo < hi.
struct PairRules {
  bool blocked[2] = {false, false};  // [0]: lo → hi, [1]: hi → lo
  double loss_p = 0;                 // per try, both directions
  Duration delay_extra;              // both directions
  TimePoint clog_until;              // traffic held until then (both directions)
};

class Faults {
 public:
  // Active rules beyond this are a runaway scenario.
  static constexpr size_t kRulesMax = 4096;

  explicit Faults(Simulation& sim);
  Faults(const Faults&) = delete;
  Faults& operator=(const Faults&) = delete;

  // --- partitions -------------------------------------------------------------
  // Traffic between nodes of different groups is blocked both ways. A node
  // matched by several groups belongs to the first. Throws
  // std::invalid_argument with fewer than two groups or an empty group.
  FaultId partition(std::vector<Selectors> groups);
  // partition + heal_after(d).
  FaultId partition_for(std::vector<Selectors> groups, Duration d);
  // Traffic from any node of `from` to any node of `to` is blocked; the other
  // direction is not (unless a node is in both lists).
  FaultId block(Selectors from, Selectors to);

  // --- degradation ------------------------------------------------------------
  // Frames between a node of `a` and a node of `b` (either direction) are
  // lost with probability loss_p per try; see Network for the retransmission
  // model. loss_p in [0, 1): total loss is a partition, use block().
  FaultId set_loss(Selector a, Selector b, double loss_p);
  // Frames between a and b (either direction) take `delay` longer (>= 0).
  FaultId add_delay(Selector a, Selector b, Duration delay);
  // Holds all traffic to and from `node` until `until` (global time); frames
  // are delivered afterwards in order, none dropped. Ends by itself.
  FaultId clog(NodeId node, TimePoint until);
  FaultId clog(NodeId node, Duration d) { return clog(node, now() + d); }
  // Holds the traffic between a and b (both directions) until `until`.
  FaultId clog_pair(NodeId a, NodeId b, TimePoint until);
  FaultId clog_pair(NodeId a, NodeId b, Duration d) { return clog_pair(a, b, now() + d); }

  // --- ending rules -----------------------------------------------------------
  // Removes an active rule; false if `id` is not active (already healed,
  // expired, or unknown).
  bool heal(FaultId id);
  // Schedules heal(id) at now + d.
  void heal_after(FaultId id, Duration d);
  // Heals every rule above and every link fault (all links up, no loss, no
  // extra delay). Zone and datacenter outages stay: restore them.
  void heal_all();
  bool is_active(FaultId id) const { return rules_.count(id) != 0; }
  // Active rules, ascending ids (outages included).
  std::vector<FaultId> active() const;
  // "partition#3 [zone:a] | [zone:b, zone:c]"; empty if not active.
  std::string describe(FaultId id) const;

  // --- links ------------------------------------------------------------------
  // The link between two vertices named by selectors: a node or host selector
  // names a host, a zone selector the zone's switch, a datacenter selector its
  // core. Throws std::invalid_argument if a name is unknown or ambiguous, or
  // the two are not linked.
  LinkId link_between(const Selector& a, const Selector& b) const;
  // Down: routes avoid the link; pairs left without a route are partitioned
  // (their open connections break silently). Up: routes may shorten.
  void set_link_up(LinkId link, bool up);
  void set_link_up(const Selector& a, const Selector& b, bool up) {
    set_link_up(link_between(a, b), up);
  }
  void set_link_loss(LinkId link, double loss_p);
  void set_link_loss(const Selector& a, const Selector& b, double loss_p) {
    set_link_loss(link_between(a, b), loss_p);
  }
  void set_link_delay(LinkId link, Duration delay_extra);
  void set_link_delay(const Selector& a, const Selector& b, Duration delay_extra) {
    set_link_delay(link_between(a, b), delay_extra);
  }

  // --- outages ----------------------------------------------------------------
  // The zone (datacenter) loses power: it goes dark — every open connection to
  // it breaks silently and sends to it are dropped silently, as to a host that
  // is gone (no reset, no refused connect) — and every node placed in it that
  // is up crashes. Killing a zone already dark does nothing. `datacenter`
  // empty: the zone of that name in every datacenter.
  void kill_zone(const std::string& zone, const std::string& datacenter = "");
  // Ends the outage: the zone is reachable again and the nodes the outage
  // crashed are started (those still down, in id order; nodes that were
  // already down before the outage stay down). False if the zone is not dark.
  bool restore_zone(const std::string& zone, const std::string& datacenter = "");
  void kill_datacenter(const std::string& datacenter);
  bool restore_datacenter(const std::string& datacenter);
  // Nodes crashed by the active outage of that zone (datacenter), id order.
  std::vector<NodeId> killed_by_zone(const std::string& zone,
                                     const std::string& datacenter = "") const;

  // --- clocks -----------------------------------------------------------------
  // Skew: the node's clock steps to read global time + offset (same as
  // Simulation::set_clock_offset). Drift: its clock runs at rate
  // 1 + ppm * 1e-6 of global time from now on, continuous (same as
  // Simulation::set_clock_rate; ppm in [LocalClock::kPpmMin, kPpmMax], else
  // std::invalid_argument before any clock changes). Unlike the rules above,
  // a clock is a property of each node, not a rule on traffic: the selector
  // forms apply to the nodes that match when called, in id order, each noted
  // in the trace (a node added later keeps the default clock), and return how
  // many matched. Nothing to heal: set the offset or rate back.
  void set_clock_offset(NodeId node, Duration offset);
  size_t set_clock_offset(const Selectors& nodes, Duration offset);
  void set_clock_rate(NodeId node, int64_t ppm);
  size_t set_clock_rate(const Selectors& nodes, int64_t ppm);

  // --- for the Network --------------------------------------------------------
  PairRules rules_for(NodeId lo, NodeId hi) const;
  // Changes whenever a rule is added or removed.
  uint64_t version() const { return version_; }

 private:
  struct Rule {
    enum class Kind : uint8_t { partition, block, loss, delay, clog, outage };
    Kind kind = Kind::partition;
    // partition: the groups; block: {from, to}; loss, delay, clog of a pair:
    // {{a}, {b}}; clog of a node: {{node}}; outage: {{where}}.
    std::vector<Selectors> groups;
    double loss_p = 0;
    Duration delay;
    TimePoint until;
    EventId expiry = 0;  // clog: the event that heals it
    uint32_t node = 0;   // for the trace: the node concerned, or 0
    std::string description;
  };
  struct Outage {
    FaultId rule = 0;
    std::vector<NodeId> killed;
  };
  TimePoint now() const;
  FaultId add(Rule rule);
  bool remove(FaultId id, bool outage_too);
  void note(uint32_t node, const std::string& what);
  VertexId vertex_of(const Selector& s) const;
  void kill(const Selector& where);
  bool restore(const Selector& where);
  static int group_of(const std::vector<Selectors>& groups, NodeId id, const Placement& p);

  Simulation& sim_;
  std::map<FaultId, Rule> rules_;
  std::map<std::string, Outage> outages_;  // by selector text
  FaultId next_id_ = 1;
  uint64_t version_ = 1;
};

}  // namespace wx::sim
