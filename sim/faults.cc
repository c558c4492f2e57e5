#include "sim/faults.h"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "sim/simulation.h"

namespace wx::sim {

namespace {

// Locale-independent (fmt ignores LC_NUMERIC): descriptions are hashed.
std::string format_p(double p) { return fmt::format("{:.6g}", p); }

void check_loss(double loss_p) {
  if (!(loss_p >= 0 && loss_p < 1)) {
    throw std::invalid_argument(
        "faults: loss_p must be in [0, 1); total loss is a block or a partition");
  }
}

}  // namespace

Faults::Faults(Simulation& sim) : sim_(sim) {}

TimePoint Faults::now() const {
  return sim_.now();
}

void Faults::note(uint32_t node, const std::string& what) {
  sim_.kernel().note(TraceTag{TraceKind::fault, node, fnv1a64(what)});
  sim_.observe_fault(node, what);
  sim_.log(NodeId{node}, 0, LogLevel::info, "fault: " + what);
}

FaultId Faults::add(Rule rule) {
  if (rules_.size() >= kRulesMax)
    throw std::length_error("faults: more than kRulesMax active rules");
  const FaultId id = next_id_++;
  static constexpr const char* kKindNames[] = {"partition", "block", "loss",
                                               "delay",     "clog",  "outage"};
  rule.description = std::string(kKindNames[static_cast<int>(rule.kind)]) + "#" +
                     std::to_string(id) + " " + rule.description;
  const uint32_t node = rule.node;
  const std::string what = rule.description;
  rules_.emplace(id, std::move(rule));
  ++version_;
  note(node, what);
  return id;
}

bool Faults::remove(FaultId id, bool outage_too) {
  auto it = rules_.find(id);
  if (it == rules_.end()) return false;
  if (it->second.kind == Rule::Kind::outage && !outage_too) return false;
  const bool was_clog = it->second.kind == Rule::Kind::clog;
  if (it->second.expiry != 0) sim_.kernel().cancel(it->second.expiry);
  const uint32_t node = it->second.node;
  const std::string what = "heal " + it->second.description;
  rules_.erase(it);
  ++version_;
  note(node, what);
  if (was_clog) sim_.network().release_holds();
  return true;
}

FaultId Faults::partition(std::vector<Selectors> groups) {
  if (groups.size() < 2)
    throw std::invalid_argument("faults: a partition needs at least two groups");
  std::string body;
  for (size_t i = 0; i < groups.size(); ++i) {
    if (groups[i].empty()) throw std::invalid_argument("faults: a partition group is empty");
    if (i) body += " | ";
    body += sim::describe(groups[i]);
  }
  Rule r;
  r.kind = Rule::Kind::partition;
  r.groups = std::move(groups);
  r.description = std::move(body);
  const FaultId id = add(std::move(r));
  sim_.network().enforce_blocks();
  return id;
}

FaultId Faults::partition_for(std::vector<Selectors> groups, Duration d) {
  const FaultId id = partition(std::move(groups));
  heal_after(id, d);
  return id;
}

FaultId Faults::block(Selectors from, Selectors to) {
  if (from.empty() || to.empty())
    throw std::invalid_argument("faults: block needs nodes on both sides");
  Rule r;
  r.kind = Rule::Kind::block;
  r.description = sim::describe(from) + " -> " + sim::describe(to);
  r.groups = {std::move(from), std::move(to)};
  const FaultId id = add(std::move(r));
  sim_.network().enforce_blocks();
  return id;
}

FaultId Faults::set_loss(Selector a, Selector b, double loss_p) {
  check_loss(loss_p);
  Rule r;
  r.kind = Rule::Kind::loss;
  r.loss_p = loss_p;
  r.description = a.describe() + " ~ " + b.describe() + " loss_p=" + format_p(loss_p);
  r.groups = {{std::move(a)}, {std::move(b)}};
  return add(std::move(r));
}

FaultId Faults::add_delay(Selector a, Selector b, Duration delay) {
  if (delay < Duration::zero()) throw std::invalid_argument("faults: a delay must not be negative");
  Rule r;
  r.kind = Rule::Kind::delay;
  r.delay = delay;
  r.description = a.describe() + " ~ " + b.describe() + " +" + to_string(delay);
  r.groups = {{std::move(a)}, {std::move(b)}};
  return add(std::move(r));
}

FaultId Faults::clog(NodeId node, TimePoint until) {
  if (!sim_.knows(node))
    throw std::invalid_argument("faults: clog of unknown node " + to_string(node));
  Rule r;
  r.kind = Rule::Kind::clog;
  r.until = until;
  r.node = node.value;
  r.description = to_string(node) + " until " + to_string(until);
  r.groups = {{Selector(node)}};
  const FaultId id = add(std::move(r));
  rules_.at(id).expiry = sim_.kernel().schedule_at(
      until, kKernelOwner, TraceTag{TraceKind::callback, 0, id}, [this, id] {
        rules_.at(id).expiry = 0;
        remove(id, false);
      });
  return id;
}

FaultId Faults::clog_pair(NodeId a, NodeId b, TimePoint until) {
  if (!sim_.knows(a) || !sim_.knows(b) || a == b) {
    throw std::invalid_argument("faults: clog_pair needs two distinct known nodes");
  }
  Rule r;
  r.kind = Rule::Kind::clog;
  r.until = until;
  r.description = to_string(a) + " ~ " + to_string(b) + " until " + to_string(until);
  r.groups = {{Selector(a)}, {Selector(b)}};
  const FaultId id = add(std::move(r));
  rules_.at(id).expiry = sim_.kernel().schedule_at(
      until, kKernelOwner, TraceTag{TraceKind::callback, 0, id}, [this, id] {
        rules_.at(id).expiry = 0;
        remove(id, false);
      });
  return id;
}

bool Faults::heal(FaultId id) {
  return remove(id, false);
}

void Faults::heal_after(FaultId id, Duration d) {
  sim_.kernel().schedule_after(d, kKernelOwner, TraceTag{TraceKind::callback, 0, id},
                               [this, id] { heal(id); });
}

void Faults::heal_all() {
  std::vector<FaultId> ids;
  for (const auto& [id, r] : rules_) {
    if (r.kind != Rule::Kind::outage) ids.push_back(id);
  }
  for (FaultId id : ids) remove(id, false);
  sim_.topology().reset_link_faults();
  note(0, "heal all links");
}

std::vector<FaultId> Faults::active() const {
  std::vector<FaultId> out;
  for (const auto& [id, r] : rules_) out.push_back(id);
  return out;
}

std::string Faults::describe(FaultId id) const {
  auto it = rules_.find(id);
  return it == rules_.end() ? std::string() : it->second.description;
}

VertexId Faults::vertex_of(const Selector& s) const {
  const Topology& t = sim_.topology();
  auto one = [&](const std::vector<VertexId>& found) -> VertexId {
    if (found.size() != 1) {
      throw std::invalid_argument("faults: " + s.describe() +
                                  (found.empty() ? " names no vertex" : " is ambiguous"));
    }
    return found[0];
  };
  switch (s.kind) {
    case Selector::Kind::node:
      if (!sim_.knows(s.node))
        throw std::invalid_argument("faults: unknown node " + to_string(s.node));
      return t.host_of(s.node);
    case Selector::Kind::host:
      return one(t.find_hosts(s.name));
    case Selector::Kind::zone:
      return one(t.find_zones(s.name, s.in_datacenter));
    case Selector::Kind::datacenter: {
      auto v = t.find_datacenter(s.name);
      return one(v ? std::vector<VertexId>{*v} : std::vector<VertexId>{});
    }
  }
  throw std::invalid_argument("faults: bad selector");
}

LinkId Faults::link_between(const Selector& a, const Selector& b) const {
  const VertexId va = vertex_of(a), vb = vertex_of(b);
  auto l = sim_.topology().find_link(va, vb);
  if (!l)
    throw std::invalid_argument("faults: no link between " + a.describe() + " and " + b.describe());
  return *l;
}

void Faults::set_link_up(LinkId link, bool up) {
  Topology& t = sim_.topology();
  if (t.link(link).up == up) return;
  t.set_link_up(link, up);
  note(0, "link " + t.link_name(link) + (up ? " up" : " down"));
  if (!up) sim_.network().enforce_blocks();
}

void Faults::set_link_loss(LinkId link, double loss_p) {
  check_loss(loss_p);
  Topology& t = sim_.topology();
  t.set_link_loss(link, loss_p);
  note(0, "link " + t.link_name(link) + " loss_p=" + format_p(loss_p));
}

void Faults::set_link_delay(LinkId link, Duration delay_extra) {
  Topology& t = sim_.topology();
  t.set_link_delay(link, delay_extra);
  note(0, "link " + t.link_name(link) + " delay +" + to_string(delay_extra));
}

void Faults::kill(const Selector& where) {
  const std::string key = where.describe();
  if (outages_.count(key)) return;
  Rule r;
  r.kind = Rule::Kind::outage;
  r.groups = {{where}};
  r.description = key;
  Outage o;
  o.rule = add(std::move(r));
  // Dark first: connections to the zone break silently, so the crashes below
  // find none open and no peer gets a reset from a host without power.
  sim_.network().enforce_blocks();
  for (uint32_t v = 1; v <= sim_.node_count(); ++v) {
    const NodeId id{v};
    if (!where.matches(id, sim_.placement(id)) || !sim_.is_up(id)) continue;
    sim_.crash(id);
    o.killed.push_back(id);
  }
  outages_.emplace(key, std::move(o));
}

bool Faults::restore(const Selector& where) {
  auto it = outages_.find(where.describe());
  if (it == outages_.end()) return false;
  const Outage o = std::move(it->second);
  outages_.erase(it);
  remove(o.rule, /*outage_too=*/true);
  for (NodeId id : o.killed) {
    if (!sim_.is_up(id)) sim_.start(id);
  }
  return true;
}

void Faults::kill_zone(const std::string& zone, const std::string& datacenter) {
  if (sim_.topology().find_zones(zone, datacenter).empty()) {
    throw std::invalid_argument("faults: kill_zone: no zone '" + zone + "'" +
                                (datacenter.empty() ? "" : " in datacenter '" + datacenter + "'"));
  }
  kill(Selector::zone(zone, datacenter));
}

bool Faults::restore_zone(const std::string& zone, const std::string& datacenter) {
  return restore(Selector::zone(zone, datacenter));
}

void Faults::kill_datacenter(const std::string& datacenter) {
  if (!sim_.topology().find_datacenter(datacenter)) {
    throw std::invalid_argument("faults: kill_datacenter: no datacenter '" + datacenter + "'");
  }
  kill(Selector::datacenter(datacenter));
}

bool Faults::restore_datacenter(const std::string& datacenter) {
  return restore(Selector::datacenter(datacenter));
}

std::vector<NodeId> Faults::killed_by_zone(const std::string& zone,
                                           const std::string& datacenter) const {
  auto it = outages_.find(Selector::zone(zone, datacenter).describe());
  return it == outages_.end() ? std::vector<NodeId>{} : it->second.killed;
}

void Faults::set_clock_offset(NodeId node, Duration offset) {
  sim_.set_clock_offset(node, offset);
}

size_t Faults::set_clock_offset(const Selectors& nodes, Duration offset) {
  size_t n = 0;
  for (uint32_t v = 1; v <= sim_.node_count(); ++v) {
    const NodeId id{v};
    if (!matches_any(nodes, id, sim_.placement(id))) continue;
    sim_.set_clock_offset(id, offset);
    ++n;
  }
  return n;
}

void Faults::set_clock_rate(NodeId node, int64_t ppm) {
  sim_.set_clock_rate(node, ppm);
}

size_t Faults::set_clock_rate(const Selectors& nodes, int64_t ppm) {
  if (!LocalClock::valid_ppm(ppm)) {
    throw std::invalid_argument("faults: clock rate out of range: " + std::to_string(ppm) + " ppm");
  }
  size_t n = 0;
  for (uint32_t v = 1; v <= sim_.node_count(); ++v) {
    const NodeId id{v};
    if (!matches_any(nodes, id, sim_.placement(id))) continue;
    sim_.set_clock_rate(id, ppm);
    ++n;
  }
  return n;
}

int Faults::group_of(const std::vector<Selectors>& groups, NodeId id, const Placement& p) {
  for (size_t i = 0; i < groups.size(); ++i) {
    if (matches_any(groups[i], id, p)) return static_cast<int>(i);
  }
  return -1;
}

PairRules Faults::rules_for(NodeId lo, NodeId hi) const {
  PairRules r;
  const Placement& pl = sim_.placement(lo);
  const Placement& ph = sim_.placement(hi);
  auto pair_matches = [&](const std::vector<Selectors>& g) {
    return (matches_any(g[0], lo, pl) && matches_any(g[1], hi, ph)) ||
           (matches_any(g[0], hi, ph) && matches_any(g[1], lo, pl));
  };
  double pass_p = 1;
  for (const auto& [id, rule] : rules_) {
    switch (rule.kind) {
      case Rule::Kind::partition: {
        const int gl = group_of(rule.groups, lo, pl), gh = group_of(rule.groups, hi, ph);
        if (gl >= 0 && gh >= 0 && gl != gh) r.blocked[0] = r.blocked[1] = true;
        break;
      }
      case Rule::Kind::block:
        if (matches_any(rule.groups[0], lo, pl) && matches_any(rule.groups[1], hi, ph))
          r.blocked[0] = true;
        if (matches_any(rule.groups[0], hi, ph) && matches_any(rule.groups[1], lo, pl))
          r.blocked[1] = true;
        break;
      case Rule::Kind::loss:
        if (pair_matches(rule.groups)) pass_p *= 1 - rule.loss_p;
        break;
      case Rule::Kind::delay:
        if (pair_matches(rule.groups)) r.delay_extra += rule.delay;
        break;
      case Rule::Kind::clog: {
        const bool hit = rule.groups.size() == 1 ? matches_any(rule.groups[0], lo, pl) ||
                                                       matches_any(rule.groups[0], hi, ph)
                                                 : pair_matches(rule.groups);
        if (hit && rule.until > r.clog_until) r.clog_until = rule.until;
        break;
      }
      case Rule::Kind::outage:
        if (matches_any(rule.groups[0], lo, pl) || matches_any(rule.groups[0], hi, ph)) {
          r.blocked[0] = r.blocked[1] = true;
        }
        break;
    }
  }
  r.loss_p = 1 - pass_p;
  return r;
}

}  // namespace wx::sim
