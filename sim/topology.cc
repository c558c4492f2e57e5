#include "sim/topology.h"

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/dijkstra_shortest_paths.hpp>
#include <boost/graph/filtered_graph.hpp>
#include <boost/property_map/property_map.hpp>
#include <stdexcept>

namespace wx::sim {

Proximity proximity(const Placement& a, const Placement& b) {
  if (a.datacenter != b.datacenter) return Proximity::remote;
  if (a.zone != b.zone) return Proximity::same_datacenter;
  if (!a.host.empty() && a.host == b.host) return Proximity::same_host;
  return Proximity::same_zone;
}

LatencyBounds LatencyConfig::bounds(Proximity p) const {
  std::vector<LinkLatency> path;
  switch (p) {
    case Proximity::same_host:
      path = {loopback};
      break;
    case Proximity::same_zone:
      path = {host_link, host_link};
      break;
    case Proximity::same_datacenter:
      path = {host_link, zone_link, zone_link, host_link};
      break;
    case Proximity::remote:
      path = {host_link, zone_link, wan_link, zone_link, host_link};
      break;
  }
  LatencyBounds b{};
  for (const LinkLatency& l : path) {
    b.min += l.min();
    b.max += l.max();
    b.mean += l.mean();
  }
  return b;
}

namespace {

struct VertexProps {
  VertexKind kind = VertexKind::host;
  std::string name;
};
struct EdgeProps {
  LinkId link = 0;
  int64_t weight_ns = 0;  // mean one-way latency: what shortest paths minimise
};
using BoostGraph =
    boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS, VertexProps, EdgeProps>;

// Edge filter: only links that are up carry routes.
struct LinkIsUp {
  const std::vector<Link>* links = nullptr;
  const BoostGraph* g = nullptr;
  template <class Edge>
  bool operator()(const Edge& e) const {
    return (*links)[(*g)[e].link].up;
  }
};

void check_latency(const LinkLatency& l) {
  if (l.base < Duration::zero() || l.jitter < Duration::zero()) {
    throw std::invalid_argument("topology: link latency base and jitter must not be negative");
  }
}

}  // namespace

struct Topology::Graph {
  BoostGraph g;
};

Topology::Topology(LatencyConfig config) : config_(config), graph_(std::make_unique<Graph>()) {
  for (const LinkLatency& l :
       {config_.loopback, config_.host_link, config_.zone_link, config_.wan_link}) {
    check_latency(l);
  }
}

Topology::~Topology() = default;

size_t Topology::vertex_count() const {
  return boost::num_vertices(graph_->g);
}
VertexKind Topology::vertex_kind(VertexId v) const {
  return graph_->g[v].kind;
}
const std::string& Topology::vertex_name(VertexId v) const {
  return graph_->g[v].name;
}

std::string Topology::link_name(LinkId id) const {
  const Link& l = link(id);
  return vertex_name(l.a) + "~" + vertex_name(l.b);
}

VertexId Topology::vertex(VertexKind kind, const std::string& name) {
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second;
  if (vertex_count() >= kVerticesMax)
    throw std::length_error("topology: more than kVerticesMax vertices");
  const VertexId v = static_cast<VertexId>(boost::add_vertex(VertexProps{kind, name}, graph_->g));
  by_name_.emplace(name, v);
  changed(/*routes_too=*/true);
  return v;
}

LinkId Topology::connect(VertexId a, VertexId b, LinkTier tier, LinkLatency latency) {
  check_latency(latency);
  const LinkId id = static_cast<LinkId>(links_.size());
  Link link;
  link.a = a;
  link.b = b;
  link.tier = tier;
  link.latency = latency;
  links_.push_back(link);
  boost::add_edge(a, b, EdgeProps{id, latency.mean().ns()}, graph_->g);
  link_by_ends_.emplace(std::minmax(a, b), id);
  changed(/*routes_too=*/true);
  return id;
}

void Topology::place(NodeId id, const Placement& p) {
  if (p.datacenter.empty() || p.zone.empty()) {
    throw std::invalid_argument("topology: node " + to_string(id) +
                                " needs a datacenter and a zone");
  }
  if (id.value != node_host_.size() + 1) {
    throw std::logic_error("topology: nodes must be placed in id order");
  }
  const std::string dc_name = "dc:" + p.datacenter;
  VertexId core;
  if (auto found = find_datacenter(p.datacenter)) {
    core = *found;
  } else {
    core = vertex(VertexKind::datacenter_core, dc_name);
    for (VertexId other : datacenters_) connect(other, core, LinkTier::wan, config_.wan_link);
    datacenters_.push_back(core);
  }
  const std::string zone_name = "zone:" + p.datacenter + "/" + p.zone;
  VertexId sw;
  if (auto it = by_name_.find(zone_name); it != by_name_.end()) {
    sw = it->second;
  } else {
    sw = vertex(VertexKind::zone_switch, zone_name);
    connect(sw, core, LinkTier::zone, config_.zone_link);
    zones_.emplace_back(p.zone, sw);
    zone_dcs_.push_back(p.datacenter);
  }
  const std::string host_name =
      zone_name.substr(5) + "/" + (p.host.empty() ? "~" + to_string(id) : p.host);
  VertexId host;
  if (auto it = by_name_.find("host:" + host_name); it != by_name_.end()) {
    host = it->second;
  } else {
    host = vertex(VertexKind::host, "host:" + host_name);
    connect(host, sw, LinkTier::host, config_.host_link);
    if (!p.host.empty()) hosts_.emplace_back(p.host, host);
  }
  node_host_.push_back(host);
}

VertexId Topology::host_of(NodeId id) const {
  if (id.value < 1 || id.value > node_host_.size()) {
    throw std::out_of_range("topology: node " + to_string(id) + " is not placed");
  }
  return node_host_[id.value - 1];
}

std::optional<VertexId> Topology::find_datacenter(std::string_view datacenter) const {
  auto it = by_name_.find("dc:" + std::string(datacenter));
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::vector<VertexId> Topology::find_zones(std::string_view zone,
                                           std::string_view datacenter) const {
  std::vector<VertexId> out;
  for (size_t i = 0; i < zones_.size(); ++i) {
    if (zones_[i].first == zone && (datacenter.empty() || zone_dcs_[i] == datacenter)) {
      out.push_back(zones_[i].second);
    }
  }
  return out;
}

std::vector<VertexId> Topology::find_hosts(std::string_view host) const {
  std::vector<VertexId> out;
  for (const auto& [name, v] : hosts_) {
    if (name == host) out.push_back(v);
  }
  return out;
}

std::optional<LinkId> Topology::find_link(VertexId a, VertexId b) const {
  auto it = link_by_ends_.find(std::minmax(a, b));
  if (it == link_by_ends_.end()) return std::nullopt;
  return it->second;
}

LinkId Topology::add_link(VertexId a, VertexId b, LinkLatency latency) {
  if (a == b || a >= vertex_count() || b >= vertex_count()) {
    throw std::invalid_argument("topology: add_link needs two distinct known vertices");
  }
  if (find_link(a, b)) {
    throw std::invalid_argument("topology: " + vertex_name(a) + " and " + vertex_name(b) +
                                " are already linked");
  }
  return connect(a, b, LinkTier::extra, latency);
}

void Topology::changed(bool routes_too) {
  ++version_;
  if (routes_too) {
    trees_.clear();
    routes_.clear();
  }
}

void Topology::set_link_up(LinkId id, bool up) {
  Link& l = links_.at(id);
  if (l.up == up) return;
  l.up = up;
  changed(/*routes_too=*/true);
}

void Topology::set_link_loss(LinkId id, double loss_p) {
  if (!(loss_p >= 0 && loss_p < 1))
    throw std::invalid_argument("topology: link loss_p must be in [0, 1)");
  links_.at(id).loss_p = loss_p;
  changed(/*routes_too=*/false);
}

void Topology::set_link_delay(LinkId id, Duration delay_extra) {
  if (delay_extra < Duration::zero())
    throw std::invalid_argument("topology: extra delay must not be negative");
  links_.at(id).delay_extra = delay_extra;
  changed(/*routes_too=*/false);
}

void Topology::set_link_latency(LinkId id, LinkLatency latency) {
  check_latency(latency);
  Link& l = links_.at(id);
  l.latency = latency;
  auto [e, found] = boost::edge(l.a, l.b, graph_->g);
  if (found) graph_->g[e].weight_ns = latency.mean().ns();
  changed(/*routes_too=*/true);
}

void Topology::reset_link_faults() {
  bool routes_too = false;
  for (Link& l : links_) {
    if (!l.up) routes_too = true;
    l.up = true;
    l.loss_p = 0;
    l.delay_extra = Duration::zero();
  }
  changed(routes_too);
}

const std::vector<VertexId>& Topology::tree_from(VertexId source) {
  auto it = trees_.find(source);
  if (it != trees_.end()) return it->second;
  ++shortest_path_runs_;
  const BoostGraph& g = graph_->g;
  const size_t n = boost::num_vertices(g);
  boost::filtered_graph<BoostGraph, LinkIsUp> up(g, LinkIsUp{&links_, &g});
  std::vector<BoostGraph::vertex_descriptor> pred(n);
  std::vector<int64_t> dist(n);
  auto index = boost::get(boost::vertex_index, g);
  boost::dijkstra_shortest_paths(
      up, source,
      boost::predecessor_map(boost::make_iterator_property_map(pred.begin(), index))
          .distance_map(boost::make_iterator_property_map(dist.begin(), index))
          .weight_map(boost::get(&EdgeProps::weight_ns, g)));
  std::vector<VertexId> tree(n);
  for (size_t v = 0; v < n; ++v) tree[v] = static_cast<VertexId>(pred[v]);
  return trees_.emplace(source, std::move(tree)).first->second;
}

const Route& Topology::route(NodeId a, NodeId b) {
  const VertexId ha = host_of(a), hb = host_of(b);
  const VertexId src = std::min(ha, hb), dst = std::max(ha, hb);
  auto it = routes_.find({src, dst});
  if (it != routes_.end()) return it->second;
  Route r;
  if (src == dst) {
    r.reachable = true;
    r.same_host = true;
    r.latency =
        LatencyBounds{config_.loopback.min(), config_.loopback.max(), config_.loopback.mean()};
  } else {
    const std::vector<VertexId>& pred = tree_from(src);
    // Unreached vertices are their own predecessor (Boost's convention).
    r.reachable = pred[dst] != dst;
    for (VertexId v = dst; r.reachable && v != src; v = pred[v]) {
      const std::optional<LinkId> l = find_link(pred[v], v);
      if (!l) throw std::logic_error("topology: shortest-path tree uses a missing link");
      r.links.push_back(*l);
    }
    std::reverse(r.links.begin(), r.links.end());
    for (LinkId l : r.links) {
      const LinkLatency& lat = links_[l].latency;
      r.latency.min += lat.min();
      r.latency.max += lat.max();
      r.latency.mean += lat.mean();
    }
  }
  return routes_.emplace(std::pair{src, dst}, std::move(r)).first->second;
}

Duration Topology::sample(const Route& r, Rng& rng) const {
  if (r.same_host) return rng.uniform(config_.loopback.min(), config_.loopback.max());
  Duration total;
  for (LinkId id : r.links) {
    const Link& l = links_[id];
    total += rng.uniform(l.latency.min(), l.latency.max()) + l.delay_extra;
  }
  return total;
}

double Topology::loss_p(const Route& r) const {
  double pass_p = 1;
  for (LinkId id : r.links) pass_p *= 1 - links_[id].loss_p;
  return 1 - pass_p;
}

Duration Topology::delay_extra(const Route& r) const {
  Duration total;
  for (LinkId id : r.links) total += links_[id].delay_extra;
  return total;
}

}  // namespace wx::sim
