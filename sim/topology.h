// The datacenter network as a graph: where nodes live and how frames get
// from one to another.
//
// Datacenters contain zones, zones contain hosts (Placement). The graph
// (Boost.Graph, undirected) has one vertex per host, one switch per zone and
// one core per datacenter; its edges are links: host–zone switch,
// zone switch–datacenter core, and a full mesh of WAN links between the
// datacenter cores. Vertices and links are created on demand as nodes are
// placed; `add_link` adds more (a direct zone–zone fibre, say).
//
// Each link has a one-way latency of `base + uniform[0, jitter]`, drawn per
// frame and per link, and runtime state: up or down, a loss probability and
// an extra delay (faults.h sets them). The route between two hosts is the
// shortest path by mean latency (Dijkstra) over the links that are up; a
// frame's latency is the sum of one sample per link of that route plus the
// links' extra delays. Two nodes on one host talk over loopback. Routes are
// cached and recomputed only after the graph or a link's up/down state or
// latency changes; loss and extra delay do not move routes (a degraded link
// still carries traffic, as routing protocols do not see gray failures).
//
// Owned by the Simulation; one thread; nothing here draws randomness except
// `sample`, from the stream it is given.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nodes/runtime/node.h"
#include "nodes/runtime/random.h"
#include "nodes/runtime/time.h"

namespace wx::sim {

struct Placement {
  std::string datacenter = "dc1";
  std::string zone = "zone-a";
  std::string host;  // empty: a host of its own
};

// One link's one-way latency: base + uniform[0, jitter], drawn per frame.
struct LinkLatency {
  Duration base;
  Duration jitter;
  Duration min() const { return base; }
  Duration max() const { return base + jitter; }
  Duration mean() const { return base + jitter / 2; }
};

// Bounds of a one-way latency over some path, without faults.
struct LatencyBounds {
  Duration min, max, mean;
};

enum class Proximity { same_host, same_zone, same_datacenter, remote };
Proximity proximity(const Placement& a, const Placement& b);

// Per-tier link latencies. The defaults give, one way between two nodes:
// same host 10–30 µs; same zone (2 host links) 0.1–0.3 ms; other zone of the
// datacenter (2 host + 2 zone links) 0.9–1.7 ms; other datacenter (2 host +
// 2 zone + 1 WAN link) about 26–37 ms.
struct LatencyConfig {
  LinkLatency loopback{microseconds(10), microseconds(20)};     // two nodes on one host
  LinkLatency host_link{microseconds(50), microseconds(100)};   // host – zone switch
  LinkLatency zone_link{microseconds(400), microseconds(300)};  // zone switch – datacenter core
  LinkLatency wan_link{milliseconds(25), milliseconds(10)};     // core – core

  // One-way bounds between two nodes at proximity `p` over the default
  // topology with every link up: what tests assert against.
  LatencyBounds bounds(Proximity p) const;
};

using VertexId = uint32_t;
using LinkId = uint32_t;

enum class VertexKind : uint8_t { host, zone_switch, datacenter_core };
enum class LinkTier : uint8_t { host, zone, wan, extra };

struct Link {
  VertexId a = 0, b = 0;
  LinkTier tier = LinkTier::extra;
  LinkLatency latency;
  // Runtime state (faults).
  bool up = true;
  double loss_p = 0;     // per frame crossing the link, either direction
  Duration delay_extra;  // added to every frame crossing it
};

// A path between two hosts.
struct Route {
  bool reachable = false;
  bool same_host = false;
  std::vector<LinkId> links;  // from the lower node id's host to the other's
  LatencyBounds latency;      // sum over the links' configured latency (no faults)
};

class Topology {
 public:
  // Links between two vertices are unique; more than this many vertices is a
  // modelling mistake, not a datacenter.
  static constexpr size_t kVerticesMax = size_t{1} << 20;

  explicit Topology(LatencyConfig config);
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;

  // Places node `id`; ids must come 1, 2, 3… (Simulation::add_node). Creates
  // the datacenter core, zone switch and host, with their links, on first use.
  // Throws std::invalid_argument on an empty datacenter or zone name.
  void place(NodeId id, const Placement& placement);
  VertexId host_of(NodeId id) const;

  // --- vertices and links ---------------------------------------------------
  std::optional<VertexId> find_datacenter(std::string_view datacenter) const;
  // Zone switches named `zone` (in `datacenter` if not empty), in creation order.
  std::vector<VertexId> find_zones(std::string_view zone, std::string_view datacenter = "") const;
  // Hosts named `host` (in any zone), in creation order.
  std::vector<VertexId> find_hosts(std::string_view host) const;
  std::optional<LinkId> find_link(VertexId a, VertexId b) const;
  // A new link (e.g. a direct zone–zone fibre). Throws std::invalid_argument
  // if a == b, either is unknown, or they are already linked.
  LinkId add_link(VertexId a, VertexId b, LinkLatency latency);

  size_t vertex_count() const;
  size_t link_count() const { return links_.size(); }
  const Link& link(LinkId id) const { return links_.at(id); }
  VertexKind vertex_kind(VertexId v) const;
  // "dc:sh", "zone:sh/sh-a", "host:sh/sh-a/h1" ("host:sh/sh-a/~n3" for a
  // node's own host).
  const std::string& vertex_name(VertexId v) const;
  // "zone:sh/sh-a~dc:sh"
  std::string link_name(LinkId id) const;

  // Changes a link's configured latency (routes are recomputed). Link
  // faults (up/down, loss, extra delay) are set through Faults, which also
  // notes them in the trace and breaks the connections they cut.
  void set_link_latency(LinkId id, LinkLatency latency);

  // --- routes -----------------------------------------------------------------
  // The current route between the hosts of a and b (symmetric). The reference
  // stays valid until the next change that bumps version().
  const Route& route(NodeId a, NodeId b);
  // One frame's latency along `route`: a sample per link plus the links'
  // extra delays (loopback if same host). Draws from `rng`.
  Duration sample(const Route& route, Rng& rng) const;
  double loss_p(const Route& route) const;
  Duration delay_extra(const Route& route) const;

  const LatencyConfig& config() const { return config_; }
  // Changes whenever a route, or a link's loss or extra delay, may have changed.
  uint64_t version() const { return version_; }
  // Dijkstra runs so far (one per source host after each change).
  uint64_t shortest_path_runs() const { return shortest_path_runs_; }

 private:
  friend class Faults;
  // Link faults. Each call bumps version(); up/down also clears the route
  // cache. loss_p must be in [0, 1).
  void set_link_up(LinkId id, bool up);
  void set_link_loss(LinkId id, double loss_p);
  void set_link_delay(LinkId id, Duration delay_extra);
  // Every link up, without loss or extra delay (latencies stay).
  void reset_link_faults();

  struct Graph;  // the Boost graph, kept out of this header
  VertexId vertex(VertexKind kind, const std::string& name);
  LinkId connect(VertexId a, VertexId b, LinkTier tier, LinkLatency latency);
  void changed(bool routes_too);
  const std::vector<VertexId>& tree_from(VertexId source);

  LatencyConfig config_;
  std::unique_ptr<Graph> graph_;
  std::vector<Link> links_;
  std::map<std::string, VertexId, std::less<>> by_name_;
  std::vector<VertexId> datacenters_;                    // cores, creation order
  std::vector<std::pair<std::string, VertexId>> zones_;  // (zone name, switch)
  std::vector<std::string> zone_dcs_;                    // datacenter of zones_[i]
  std::vector<std::pair<std::string, VertexId>> hosts_;  // (host name, vertex), named hosts only
  std::vector<VertexId> node_host_;                      // index: node id - 1
  std::map<std::pair<VertexId, VertexId>, LinkId> link_by_ends_;
  // Caches, cleared on route changes.
  std::map<VertexId, std::vector<VertexId>> trees_;  // source → predecessor per vertex
  std::map<std::pair<VertexId, VertexId>, Route> routes_;
  uint64_t version_ = 1;
  uint64_t shortest_path_runs_ = 0;
};

}  // namespace wx::sim
