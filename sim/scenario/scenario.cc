// The scenario reader (see scenario.h).
#include "sim/scenario/scenario.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include "nodes/logic/ticket/ticket.h"

namespace wx::scenario {

namespace {

// Thrown inside the reader, caught at its entry points.
struct Fail {
  Mark at;
  std::string message;
};

Mark mark_of(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

[[noreturn]] void fail(const YAML::Node& n, std::string message) { throw Fail{mark_of(n), std::move(message)}; }
[[noreturn]] void fail_at(Mark at, std::string message) { throw Fail{at, std::move(message)}; }

std::string type_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing (null)";
    case YAML::NodeType::Scalar: return fmt::format("'{}'", n.Scalar().substr(0, 60));
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "nothing";
  }
}

// A mapping whose keys are checked against the known ones; reading a key
// marks it used; finish() rejects whatever is left.
class Map {
 public:
  Map(const YAML::Node& node, std::string path) : node_(node), path_(std::move(path)) {
    if (!node.IsMap()) fail(node, fmt::format("{}: expected a mapping (key: value lines), got {}", where(), type_name(node)));
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar()) fail(it->first, fmt::format("{}: expected a plain key, got {}", where(), type_name(it->first)));
      const std::string key = it->first.Scalar();
      if (!keys_.emplace(key, std::make_pair(it->first, it->second)).second) {
        fail(it->first, fmt::format("{}: key '{}' appears twice", where(), key));
      }
    }
  }
  std::string where() const { return path_.empty() ? std::string("the scenario") : path_; }
  std::string child(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const YAML::Node& node() const { return node_; }
  bool has(const std::string& key) const { return keys_.count(key) != 0; }
  // The value of `key`, or an invalid node if absent. Marks it used.
  std::optional<YAML::Node> get(const std::string& key) {
    auto it = keys_.find(key);
    if (it == keys_.end()) return std::nullopt;
    used_.insert(key);
    return it->second.second;
  }
  YAML::Node require(const std::string& key, std::string_view what) {
    auto v = get(key);
    if (!v) fail(node_, fmt::format("{}: missing key '{}' ({})", where(), key, what));
    return *v;
  }
  // Rejects keys not read, naming the allowed ones.
  void finish(std::initializer_list<std::string_view> allowed) const {
    for (const auto& [key, kv] : keys_) {
      if (used_.count(key) != 0) continue;
      std::string list;
      for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(kv.first, fmt::format("{}: unknown key '{}' (expected one of: {})", where(), key.substr(0, 60), list));
    }
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& [k, v] : keys_) out.push_back(k);
    return out;
  }
  YAML::Node key_node(const std::string& key) const { return keys_.at(key).first; }

 private:
  YAML::Node node_;
  std::string path_;
  std::map<std::string, std::pair<YAML::Node, YAML::Node>> keys_;
  std::set<std::string> used_;
};

std::string scalar(const YAML::Node& n, const std::string& path, std::string_view expected) {
  if (!n.IsScalar()) fail(n, fmt::format("{}: expected {}, got {}", path, expected, type_name(n)));
  return n.Scalar();
}

std::string read_string(const YAML::Node& n, const std::string& path, size_t max_len = 200) {
  std::string s = scalar(n, path, "a string");
  if (s.size() > max_len) fail(n, fmt::format("{}: expected at most {} characters, got {}", path, max_len, s.size()));
  return s;
}

bool read_bool(const YAML::Node& n, const std::string& path) {
  const std::string s = scalar(n, path, "true or false");
  if (s == "true" || s == "yes" || s == "on") return true;
  if (s == "false" || s == "no" || s == "off") return false;
  fail(n, fmt::format("{}: expected true or false, got '{}'", path, s.substr(0, 60)));
}

uint64_t read_uint(const YAML::Node& n, const std::string& path, uint64_t lo, uint64_t hi) {
  const std::string s = scalar(n, path, fmt::format("a whole number from {} to {}", lo, hi));
  uint64_t v = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  auto [p, ec] = std::from_chars(b, e, v);
  if (!s.empty() && s[0] == '-') {
    fail(n, fmt::format("{}: expected a whole number from {} to {}, got a negative number '{}'", path, lo, hi, s.substr(0, 60)));
  }
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && p == e && (v < lo || v > hi))) {
    fail(n, fmt::format("{}: expected a whole number from {} to {}, got {}", path, lo, hi, s.substr(0, 60)));
  }
  if (ec != std::errc() || p != e) {
    fail(n, fmt::format("{}: expected a whole number from {} to {}, got '{}'", path, lo, hi, s.substr(0, 60)));
  }
  return v;
}

double read_number(const YAML::Node& n, const std::string& path, double lo, double hi) {
  const std::string s = scalar(n, path, fmt::format("a number from {} to {}", lo, hi));
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v)) {
    fail(n, fmt::format("{}: expected a number from {} to {}, got '{}'", path, lo, hi, s.substr(0, 60)));
  }
  if (v < lo || v > hi) fail(n, fmt::format("{}: expected a number from {} to {}, got {}", path, lo, hi, s.substr(0, 60)));
  return v;
}

// A fraction: 0.99 or "99%".
double read_fraction(const YAML::Node& n, const std::string& path) {
  std::string s = scalar(n, path, "a fraction such as 0.99 or 99%");
  double scale = 1;
  if (!s.empty() && s.back() == '%') {
    s.pop_back();
    scale = 100;
  }
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v) || v < 0 || v / scale > 1) {
    fail(n, fmt::format("{}: expected a fraction from 0 to 1 (such as 0.99) or a percentage (such as 99%), got '{}'",
                        path, n.Scalar().substr(0, 60)));
  }
  return v / scale;
}

Duration read_duration(const YAML::Node& n, const std::string& path, Duration lo, Duration hi) {
  const std::string s = scalar(n, path, "a duration with a unit, such as 250ms, 30s or 2m");
  if (!s.empty() && s[0] == '-') {
    fail(n, fmt::format("{}: expected a duration of at least {}, got a negative duration '{}'", path, to_string(lo),
                        s.substr(0, 60)));
  }
  auto d = parse_duration(s);
  if (!d) {
    fail(n, fmt::format("{}: expected a duration with a unit (ns, us, ms, s, m, h), such as 250ms, 30s or 2m; got '{}'",
                        path, s.substr(0, 60)));
  }
  if (*d < lo || *d > hi) {
    fail(n, fmt::format("{}: expected a duration from {} to {}, got {}", path, to_string(lo), to_string(hi),
                        s.substr(0, 60)));
  }
  return *d;
}

double read_rate(const YAML::Node& n, const std::string& path, double max_per_min) {
  const std::string s = scalar(n, path, "a rate such as 500/s, 3/min or 10/h");
  auto r = parse_rate_per_min(s);
  if (!r) {
    fail(n, fmt::format("{}: expected a rate with a unit (/s, /min or /m, /h), such as 500/s or 3/min; got '{}'", path,
                        s.substr(0, 60)));
  }
  if (!(*r > 0) || *r > max_per_min) {
    fail(n, fmt::format("{}: expected a rate above 0 and at most {}/min, got {}", path, max_per_min, s.substr(0, 60)));
  }
  return *r;
}

template <typename F>
void for_each_item(const YAML::Node& n, const std::string& path, size_t max_items, std::string_view what, F&& f) {
  if (!n.IsSequence()) fail(n, fmt::format("{}: expected a list of {}, got {}", path, what, type_name(n)));
  if (n.size() > max_items) fail(n, fmt::format("{}: expected at most {} entries, got {}", path, max_items, n.size()));
  size_t i = 0;
  for (const YAML::Node& item : n) {
    f(item, fmt::format("{}[{}]", path, i));
    ++i;
  }
}

// --- the deployment context targets are checked against -----------------------

struct Context {
  std::string file;
  const deploy::Deployment* deployment = nullptr;
  std::set<std::string> zones, node_names, roles;
  std::string datacenter;  // the first
  std::vector<deploy::DatacenterSpec> datacenters;
  bool multi() const { return datacenters.size() > 1; }
  std::vector<std::string> datacenter_names() const {
    std::vector<std::string> out;
    for (const auto& dc : datacenters) out.push_back(dc.name);
    return out;
  }
  const deploy::DatacenterSpec* find_datacenter(std::string_view name) const {
    for (const auto& dc : datacenters) {
      if (dc.name == name) return &dc;
    }
    return nullptr;
  }
};

std::string list_names(const std::set<std::string>& names) {
  std::string out;
  size_t i = 0;
  for (const auto& x : names) {
    if (i++ == 12) return out + ", ...";
    out += (out.empty() ? "" : ", ") + x;
  }
  return out;
}

// A zone as written in a target or kill_zone: "b" or "dc2/b". Returns the
// form a Target holds: with one datacenter the bare zone, with several
// always "DATACENTER/ZONE" (a bare name must be in exactly one datacenter).
// `truncate`: the zone list in the error stops after 12 (as targets did).
std::string resolve_zone(const Context& ctx, const YAML::Node& n, const std::string& path, const std::string& z,
                         bool truncate) {
  auto zone_list = [&](const std::set<std::string>& zones) {
    return truncate ? list_names(zones) : join(std::vector<std::string>(zones.begin(), zones.end()), ", ");
  };
  const size_t slash = z.find('/');
  if (slash != std::string::npos) {
    const std::string dc_name = z.substr(0, slash);
    const std::string zone = z.substr(slash + 1);
    const deploy::DatacenterSpec* dc = ctx.find_datacenter(dc_name);
    if (dc == nullptr) {
      fail(n, fmt::format("{}: unknown datacenter '{}' in zone '{}' (the deployment's datacenters: {})", path,
                          dc_name.substr(0, 60), z.substr(0, 60), join(ctx.datacenter_names(), ", ")));
    }
    if (std::find(dc->zones.begin(), dc->zones.end(), zone) == dc->zones.end()) {
      fail(n, fmt::format("{}: unknown zone '{}' (datacenter {} has zones: {})", path, z.substr(0, 60), dc->name,
                          join(dc->zones, ", ")));
    }
    return ctx.multi() ? z : zone;
  }
  if (!ctx.multi()) {
    if (ctx.zones.count(z) == 0) {
      fail(n, fmt::format("{}: unknown zone '{}' (the deployment's zones: {})", path, z.substr(0, 60), zone_list(ctx.zones)));
    }
    return z;
  }
  std::vector<std::string> in;  // qualified names of the zones called z
  std::set<std::string> all;
  for (const auto& dc : ctx.datacenters) {
    for (const std::string& zone : dc.zones) {
      all.insert(dc.name + "/" + zone);
      if (zone == z) in.push_back(dc.name + "/" + zone);
    }
  }
  if (in.empty()) {
    fail(n, fmt::format("{}: unknown zone '{}' (the deployment's zones: {})", path, z.substr(0, 60), zone_list(all)));
  }
  if (in.size() > 1) {
    fail(n, fmt::format("{}: zone '{}' is ambiguous: {} datacenters have one; name it with its datacenter: {}", path, z,
                        in.size(), join(in, ", ")));
  }
  return in.front();
}

// A datacenter named by `dc:NAME` or kill_datacenter.
void check_datacenter(const Context& ctx, const YAML::Node& n, const std::string& path, const std::string& name,
                      bool target) {
  if (ctx.find_datacenter(name) != nullptr) return;
  if (!ctx.multi()) {
    if (target) {
      fail(n, fmt::format("{}: unknown datacenter '{}' (the deployment's datacenter: {})", path, name.substr(0, 60),
                          ctx.datacenter));
    }
    fail(n, fmt::format("{}: unknown datacenter '{}' (the deployment's: {})", path, name, ctx.datacenter));
  }
  fail(n, fmt::format("{}: unknown datacenter '{}' (the deployment's datacenters: {})", path, name.substr(0, 60),
                      join(ctx.datacenter_names(), ", ")));
}

Target parse_target(const Context& ctx, const YAML::Node& n, const std::string& path) {
  const std::string s =
      scalar(n, path, "a target: zone:NAME, dc:NAME, node:NAME, role:NAME or clients");
  Target t;
  t.at = mark_of(n);
  if (s == "clients") {
    t.kind = Target::Kind::clients;
    return t;
  }
  const size_t colon = s.find(':');
  const std::string kind = colon == std::string::npos ? "" : s.substr(0, colon);
  t.name = colon == std::string::npos ? "" : s.substr(colon + 1);
  const auto& list = list_names;
  if (kind == "zone") {
    t.kind = Target::Kind::zone;
    t.name = resolve_zone(ctx, n, path, t.name, true);
  } else if (kind == "dc") {
    t.kind = Target::Kind::datacenter;
    check_datacenter(ctx, n, path, t.name, true);
  } else if (kind == "node") {
    t.kind = Target::Kind::node;
    if (ctx.node_names.count(t.name) == 0) {
      fail(n, fmt::format("{}: no node named '{}' in the deployment (names look like kv-{}-s0-a, msg-{}-a)", path,
                          t.name.substr(0, 60), ctx.datacenter, ctx.datacenter));
    }
  } else if (kind == "role") {
    t.kind = Target::Kind::role;
    if (ctx.roles.count(t.name) == 0) {
      fail(n, fmt::format("{}: no role '{}' runs in the deployment (running: {})", path, t.name.substr(0, 60), list(ctx.roles)));
    }
  } else {
    fail(n, fmt::format("{}: expected a target: zone:NAME, dc:NAME, node:NAME, role:NAME or clients; got '{}'", path,
                        s.substr(0, 60)));
  }
  return t;
}

std::vector<Target> parse_targets(const Context& ctx, const YAML::Node& n, const std::string& path) {
  std::vector<Target> out;
  if (n.IsScalar()) {
    out.push_back(parse_target(ctx, n, path));
    return out;
  }
  for_each_item(n, path, 64, "targets", [&](const YAML::Node& item, const std::string& p) {
    out.push_back(parse_target(ctx, item, p));
  });
  if (out.empty()) fail(n, fmt::format("{}: expected at least one target", path));
  return out;
}

// --- sections ------------------------------------------------------------------

// A datacenter's name, as in `datacenter:` and `datacenters[i].name`.
std::string read_datacenter_name(const YAML::Node& v, const std::string& path) {
  std::string dc = read_string(v, path, 40);
  if (dc.empty() || dc.find_first_of(":/ ") != std::string::npos) {
    fail(v, fmt::format("{}: expected a name without ':', '/' or spaces, got '{}'", path, dc));
  }
  return dc;
}

// A datacenter's zones, as in `zones:` and `datacenters[i].zones`.
std::vector<std::string> read_zones(const YAML::Node& v, const std::string& path) {
  std::vector<std::string> zones;
  for_each_item(v, path, 3, "zone names", [&](const YAML::Node& item, const std::string& p) {
    std::string z = read_string(item, p, 40);
    if (z.empty() || z.find_first_of(":/ ") != std::string::npos) {
      fail(item, fmt::format("{}: expected a zone name without ':', '/' or spaces, got '{}'", p, z));
    }
    if (std::find(zones.begin(), zones.end(), z) != zones.end()) fail(item, fmt::format("{}: zone '{}' twice", p, z));
    zones.push_back(std::move(z));
  });
  if (zones.size() != deploy::kZonesPerDatacenter) {
    fail(v, fmt::format("{}: expected exactly {} zones (one KV replica per zone), got {}", path,
                        deploy::kZonesPerDatacenter, zones.size()));
  }
  return zones;
}

DeploymentSection parse_deployment(const YAML::Node& n, const std::string& path) {
  DeploymentSection d;
  d.instances = {{deploy::Role::msg, 1}, {deploy::Role::access, 1}, {deploy::Role::group, 1}, {deploy::Role::fanout, 1}};
  Map m(n, path);
  if (m.has("datacenters") && (m.has("datacenter") || m.has("zones"))) {
    fail(m.key_node("datacenters"),
         fmt::format("{}: give 'datacenter' and 'zones' (one datacenter) or 'datacenters' (several), not both; "
                     "got 'datacenters' and '{}'",
                     m.where(), m.has("datacenter") ? "datacenter" : "zones"));
  }
  if (auto v = m.get("datacenter")) d.datacenter = read_datacenter_name(*v, m.child("datacenter"));
  if (auto v = m.get("zones")) d.zones = read_zones(*v, m.child("zones"));
  d.datacenters = {deploy::DatacenterSpec{d.datacenter, d.zones}};
  if (auto v = m.get("datacenters")) {
    const std::string dp = m.child("datacenters");
    std::vector<deploy::DatacenterSpec> dcs;
    for_each_item(*v, dp, deploy::kDatacentersMax, "datacenters ({name: dc1, zones: [a, b, c]})",
                  [&](const YAML::Node& item, const std::string& p) {
                    Map e(item, p);
                    deploy::DatacenterSpec dc;
                    const YAML::Node name = e.require("name", "the datacenter's name, e.g. dc1");
                    dc.name = read_datacenter_name(name, e.child("name"));
                    for (const deploy::DatacenterSpec& o : dcs) {
                      if (o.name == dc.name) fail(name, fmt::format("{}: datacenter '{}' twice", e.child("name"), dc.name));
                    }
                    dc.zones = read_zones(e.require("zones", "its three zones, e.g. [a, b, c]"), e.child("zones"));
                    e.finish({"name", "zones"});
                    dcs.push_back(std::move(dc));
                  });
    if (dcs.size() < 2) {
      fail(*v, fmt::format("{}: expected 2 to {} datacenters, got {} (for one, give 'datacenter' and 'zones')", dp,
                           deploy::kDatacentersMax, dcs.size()));
    }
    d.datacenter = dcs.front().name;
    d.zones = dcs.front().zones;
    d.datacenters = std::move(dcs);
  }
  const bool multi = d.datacenters.size() > 1;
  if (multi) d.instances[deploy::Role::repl] = 1;
  if (auto v = m.get("shards")) d.shards = static_cast<uint32_t>(read_uint(*v, m.child("shards"), 1, 64));
  if (auto v = m.get("services")) {
    Map s(*v, m.child("services"));
    for (const std::string& key : s.keys()) {
      auto role = deploy::parse_role(key);
      if (!role || (*role != deploy::Role::msg && *role != deploy::Role::access && *role != deploy::Role::group &&
                    *role != deploy::Role::fanout && *role != deploy::Role::repl)) {
        fail(s.key_node(key), fmt::format("{}: unknown service '{}' (expected one of: msg, access, group, fanout, "
                                          "repl — the storage services always run once per zone)",
                                          s.where(), key.substr(0, 60)));
      }
      const uint64_t lo = (*role == deploy::Role::msg || *role == deploy::Role::access) ? 1 : 0;
      const YAML::Node x = *s.get(key);
      d.instances[*role] = static_cast<uint32_t>(read_uint(x, s.child(key), lo, 16));
      if (*role == deploy::Role::repl && !multi && d.instances[*role] > 0) {
        fail(x, fmt::format("{}: replicators ship records between datacenters; this deployment has one (list several "
                            "under 'datacenters')",
                            s.child(key)));
      }
    }
  }
  if (auto v = m.get("wan")) {
    const std::string wp = m.child("wan");
    if (!multi) {
      fail(m.key_node("wan"), fmt::format("{}: a WAN links datacenters; this deployment has one (list several under "
                                          "'datacenters')",
                                          wp));
    }
    Map w(*v, wp);
    if (auto x = w.get("latency")) d.wan_latency = read_duration(*x, w.child("latency"), kWanLatencyMin, kWanLatencyMax);
    if (auto x = w.get("jitter")) d.wan_jitter = read_duration(*x, w.child("jitter"), Duration::zero(), kWanJitterMax);
    w.finish({"latency", "jitter"});
    if (!d.wan_latency && !d.wan_jitter) fail(*v, fmt::format("{}: expected 'latency' and/or 'jitter', such as {{latency: 30ms, jitter: 10ms}}", wp));
  }
  if (auto v = m.get("msg_workers")) d.msg_workers = read_uint(*v, m.child("msg_workers"), 1, 1024);
  if (auto v = m.get("msg_send_cost")) d.msg_send_cost = read_duration(*v, m.child("msg_send_cost"), Duration::zero(), seconds(1));
  if (auto v = m.get("fast_reject")) d.fast_reject = read_bool(*v, m.child("fast_reject"));
  if (auto v = m.get("test_only")) {
    Map t(*v, m.child("test_only"));
    if (auto b = t.get("ack_before_inbox_commit")) d.unsafe_ack_before_inbox_commit = read_bool(*b, t.child("ack_before_inbox_commit"));
    t.finish({"ack_before_inbox_commit"});
  }
  m.finish({"datacenter", "zones", "datacenters", "shards", "services", "wan", "msg_workers", "msg_send_cost",
            "fast_reject", "test_only"});
  if ((d.instances[deploy::Role::group] == 0) != (d.instances[deploy::Role::fanout] == 0)) {
    fail(n, fmt::format("{}.services: group and fanout run together or not at all (group chats need both)", path));
  }
  return d;
}

// "from"/"until" or "from"/"for" of a window within [0, limit].
std::pair<Duration, Duration> parse_window(Map& m, Duration limit, const std::string& what) {
  const Duration from = read_duration(m.require("from", "when it starts, e.g. 1m"), m.child("from"), Duration::zero(), limit);
  auto until = m.get("until");
  auto for_ = m.get("for");
  if (until && for_) fail(*for_, fmt::format("{}: give 'until' or 'for', not both", m.where()));
  if (!until && !for_) fail(m.node(), fmt::format("{}: missing key 'until' or 'for' (when the {} ends)", m.where(), what));
  Duration end = until ? read_duration(*until, m.child("until"), Duration::zero(), limit)
                       : from + read_duration(*for_, m.child("for"), Duration::zero(), limit);
  if (end <= from) {
    fail(until ? *until : *for_, fmt::format("{}: the {} must end after it starts ({})", m.where(), what, to_string(from)));
  }
  if (end > limit) {
    fail(until ? *until : *for_, fmt::format("{}: the {} ends at {}, after the traffic ends ({})", m.where(), what,
                                             to_string(end), to_string(limit)));
  }
  return {from, end};
}

WorkloadSection parse_workload(const YAML::Node& n, const std::string& path) {
  WorkloadSection w;
  Map m(n, path);
  if (auto v = m.get("users")) w.users = read_uint(*v, m.child("users"), 2, kUsersMax);
  if (auto v = m.get("groups")) w.groups = read_uint(*v, m.child("groups"), 0, kGroupsMax);
  if (auto v = m.get("duration")) w.duration = read_duration(*v, m.child("duration"), seconds(10), kDurationMax);
  auto rate = m.get("rate");
  auto total = m.get("total_rate");
  if (rate && total) fail(*total, fmt::format("{}: give 'rate' (per user) or 'total_rate', not both", m.where()));
  if (rate) w.rate_per_min = read_rate(*rate, m.child("rate"), kRatePerUserPerMinMax);
  if (total) {
    const double all = read_rate(*total, m.child("total_rate"), kRatePerUserPerMinMax * static_cast<double>(w.users));
    w.rate_per_min = all / static_cast<double>(w.users);
  }
  if (auto v = m.get("contacts")) {
    Map c(*v, m.child("contacts"));
    if (auto x = c.get("min")) w.contacts_min = read_uint(*x, c.child("min"), 1, 1000);
    if (auto x = c.get("max")) w.contacts_max = read_uint(*x, c.child("max"), 1, 1000);
    if (auto x = c.get("alpha")) w.contacts_alpha = read_number(*x, c.child("alpha"), 0, 10);
    if (auto x = c.get("locality")) w.contacts_locality = read_number(*x, c.child("locality"), 0, 1);
    c.finish({"min", "max", "alpha", "locality"});
    if (w.contacts_max < w.contacts_min) fail(*v, fmt::format("{}: max ({}) is below min ({})", c.where(), w.contacts_max, w.contacts_min));
    if (w.contacts_min >= w.users) {
      fail(*v, fmt::format("{}: min ({}) must be below the number of users ({})", c.where(), w.contacts_min, w.users));
    }
  }
  if (auto v = m.get("group_size")) {
    Map c(*v, m.child("group_size"));
    if (auto x = c.get("min")) w.group_size_min = read_uint(*x, c.child("min"), 2, 500);
    if (auto x = c.get("max")) w.group_size_max = read_uint(*x, c.child("max"), 2, 500);
    if (auto x = c.get("alpha")) w.group_size_alpha = read_number(*x, c.child("alpha"), 0, 10);
    c.finish({"min", "max", "alpha"});
    if (w.group_size_max < w.group_size_min) {
      fail(*v, fmt::format("{}: max ({}) is below min ({})", c.where(), w.group_size_max, w.group_size_min));
    }
  }
  if (w.groups > 0 && w.group_size_min > w.users) {
    fail(n, fmt::format("{}: groups of at least {} members need at least as many users (users: {})", path,
                        w.group_size_min, w.users));
  }
  if (auto v = m.get("sync_every")) w.sync_every = read_duration(*v, m.child("sync_every"), milliseconds(10), minutes(10));
  if (auto v = m.get("heartbeat_every")) {
    w.heartbeat_every = read_duration(*v, m.child("heartbeat_every"), milliseconds(10), minutes(10));
  }
  if (auto v = m.get("call_timeout")) w.call_timeout = read_duration(*v, m.child("call_timeout"), milliseconds(10), minutes(10));
  if (auto v = m.get("churn")) {
    Map c(*v, m.child("churn"));
    w.churn_online = read_duration(c.require("online", "the mean online period, e.g. 5m"), c.child("online"), seconds(1), minutes(24 * 60));
    w.churn_offline = read_duration(c.require("offline", "the mean offline period, e.g. 1m"), c.child("offline"), seconds(1), minutes(24 * 60));
    c.finish({"online", "offline"});
  }
  if (auto v = m.get("rate_windows")) {
    for_each_item(*v, m.child("rate_windows"), 100, "rate windows", [&](const YAML::Node& item, const std::string& p) {
      Map r(item, p);
      RateWindow rw;
      rw.mark = mark_of(item);
      std::tie(rw.from, rw.until) = parse_window(r, w.duration, "window");
      if (auto x = r.get("factor")) rw.factor = read_number(*x, r.child("factor"), 0, 100);
      if (auto x = r.get("groups_factor")) rw.groups_factor = read_number(*x, r.child("groups_factor"), 0, 100);
      r.finish({"from", "until", "for", "factor", "groups_factor"});
      if (w.rate_per_min * std::max(rw.factor, rw.groups_factor) > kRatePerUserPerMinMax) {
        fail(item, fmt::format("{}: the rate in this window ({}/min per user) is above {}/min per user", p,
                               w.rate_per_min * std::max(rw.factor, rw.groups_factor), kRatePerUserPerMinMax));
      }
      for (const RateWindow& o : w.rate_windows) {
        if (rw.from < o.until && o.from < rw.until) fail(item, fmt::format("{}: overlaps another rate window", p));
      }
      w.rate_windows.push_back(rw);
    });
  }
  m.finish({"users", "groups", "rate", "total_rate", "duration", "contacts", "group_size", "sync_every",
            "heartbeat_every", "call_timeout", "churn", "rate_windows"});
  return w;
}

constexpr std::string_view kFaultKeys[] = {"kill_zone", "kill_datacenter", "kill_node", "wipe_node", "partition",
                                           "block", "loss", "delay", "clog", "clock_skew", "rolling_restart"};

bool is_server_target(const Target& t) { return t.kind != Target::Kind::clients; }

void parse_fault(const Context& ctx, const YAML::Node& n, const std::string& path, Duration traffic,
                 std::vector<FaultSpec>& out) {
  Map m(n, path);
  std::vector<std::string> kinds;
  for (std::string_view k : kFaultKeys) {
    if (m.has(std::string(k))) kinds.emplace_back(k);
  }
  if (kinds.size() != 1) {
    fail(n, fmt::format("{}: expected exactly one fault kind key (kill_zone, kill_datacenter, kill_node, wipe_node, "
                        "partition, block, loss, delay, clog, clock_skew, rolling_restart), got {}",
                        path, kinds.empty() ? std::string("none") : join(kinds, ", ")));
  }
  const std::string kind = kinds[0];
  const std::string kp = m.child(kind);
  FaultSpec f;
  f.mark = mark_of(n);
  const YAML::Node at_node = m.require("at", "when the fault starts, e.g. 1m");
  f.at = read_duration(at_node, m.child("at"), Duration::zero(), kDurationMax);
  if (f.at >= traffic) {
    fail(at_node, fmt::format("{}: the fault starts at {}, not before the traffic ends ({})", m.child("at"),
                              to_string(f.at), to_string(traffic)));
  }
  auto until = m.get("until");
  auto for_ = m.get("for");
  if (until && for_) fail(*for_, fmt::format("{}: give 'until' or 'for', not both", path));
  if (until) {
    const Duration u = read_duration(*until, m.child("until"), Duration::zero(), kDurationMax);
    if (u <= f.at) fail(*until, fmt::format("{}: the fault must end after it starts ({})", m.child("until"), to_string(f.at)));
    f.duration = u - f.at;
  } else if (for_) {
    f.duration = read_duration(*for_, m.child("for"), milliseconds(1), kDurationMax);
  }
  if (f.duration && f.at + *f.duration > traffic) {
    fail(until ? *until : *for_, fmt::format("{}: the fault ends at {}, after the traffic ends ({}); faults heal by the "
                                             "end of the traffic",
                                             path, to_string(f.at + *f.duration), to_string(traffic)));
  }
  const YAML::Node v = *m.get(kind);
  if (kind == "kill_zone") {
    f.kind = FaultKind::kill_zone;
    const std::string z = resolve_zone(ctx, v, kp, read_string(v, kp, 90), false);
    f.targets.push_back(Target{Target::Kind::zone, z, mark_of(v)});
  } else if (kind == "kill_datacenter") {
    f.kind = FaultKind::kill_datacenter;
    const std::string d = read_string(v, kp, 40);
    check_datacenter(ctx, v, kp, d, false);
    f.targets.push_back(Target{Target::Kind::datacenter, d, mark_of(v)});
  } else if (kind == "kill_node" || kind == "wipe_node" || kind == "clog") {
    f.kind = kind == "kill_node" ? FaultKind::kill_node : kind == "wipe_node" ? FaultKind::wipe_node : FaultKind::clog;
    f.targets = parse_targets(ctx, v, kp);
    for (const Target& t : f.targets) {
      if (f.kind != FaultKind::clog && !is_server_target(t)) {
        fail(v, fmt::format("{}: {} aims at server nodes; 'clients' is not one (use a partition or churn)", kp, kind));
      }
    }
    if (f.kind == FaultKind::clog && !f.duration) {
      fail(n, fmt::format("{}: a clog needs 'for' or 'until' (its traffic is held until it ends)", path));
    }
  } else if (kind == "partition") {
    f.kind = FaultKind::partition;
    for_each_item(v, kp, 8, "groups of targets", [&](const YAML::Node& item, const std::string& p) {
      f.groups.push_back(parse_targets(ctx, item, p));
    });
    if (f.groups.size() < 2) fail(v, fmt::format("{}: expected at least two groups of targets, such as [[zone:a], [zone:b, zone:c]]", kp));
  } else if (kind == "block" || kind == "loss" || kind == "delay") {
    f.kind = kind == "block" ? FaultKind::block : kind == "loss" ? FaultKind::loss : FaultKind::delay;
    Map b(v, kp);
    f.from = parse_targets(ctx, b.require("from", "the targets on one side"), b.child("from"));
    f.to = parse_targets(ctx, b.require("to", "the targets on the other side"), b.child("to"));
    if (f.kind == FaultKind::loss) {
      f.loss_p = read_number(b.require("p", "the loss probability per try, below 1"), b.child("p"), 0, 0.99);
      b.finish({"from", "to", "p"});
    } else if (f.kind == FaultKind::delay) {
      f.extra = read_duration(b.require("extra", "the added latency, e.g. 50ms"), b.child("extra"), Duration::zero(), seconds(30));
      b.finish({"from", "to", "extra"});
    } else {
      b.finish({"from", "to"});
    }
  } else if (kind == "clock_skew") {
    f.kind = FaultKind::clock_skew;
    Map b(v, kp);
    f.targets = parse_targets(ctx, b.require("targets", "the nodes whose clocks step"), b.child("targets"));
    const YAML::Node off = b.require("offset", "the step, e.g. 2s or -500ms");
    std::string s = scalar(off, b.child("offset"), "a duration such as 2s or -500ms");
    const bool negative = !s.empty() && s[0] == '-';
    auto d = parse_duration(negative ? std::string_view(s).substr(1) : std::string_view(s));
    if (!d || *d > minutes(10)) {
      fail(off, fmt::format("{}: expected a duration of at most 10m with a unit, optionally negative (such as 2s or "
                            "-500ms); got '{}'",
                            b.child("offset"), s.substr(0, 60)));
    }
    f.offset = negative ? Duration::zero() - *d : *d;
    b.finish({"targets", "offset"});
  } else {  // rolling_restart: sugar for one kill_node per node in turn
    Map b(v, kp);
    std::vector<Target> targets = parse_targets(ctx, b.require("targets", "the nodes, e.g. [role:kv, role:msg]"), b.child("targets"));
    const Duration down = read_duration(b.require("down_for", "how long each node stays down, e.g. 5s"), b.child("down_for"),
                                        milliseconds(1), minutes(30));
    const Duration gap = b.get("gap") ? read_duration(*b.get("gap"), b.child("gap"), Duration::zero(), minutes(30)) : seconds(5);
    b.finish({"targets", "down_for", "gap"});
    if (f.duration) fail(n, fmt::format("{}: a rolling restart takes no 'for'/'until' (down_for and gap set its length)", path));
    for (const Target& t : targets) {
      if (t.kind == Target::Kind::clients) {
        fail(v, fmt::format("{}: a rolling restart restarts server nodes; 'clients' is not one", kp));
      }
    }
    // Expand to nodes, in deployment order.
    std::vector<std::string> names;
    for (const deploy::NodeDesc& nd : ctx.deployment->nodes()) {
      if (std::any_of(targets.begin(), targets.end(), [&](const Target& t) { return t.matches(nd); })) {
        names.push_back(nd.name);
      }
    }
    Duration t = f.at;
    for (const std::string& name : names) {
      FaultSpec k;
      k.kind = FaultKind::kill_node;
      k.at = t;
      k.duration = down;
      k.targets.push_back(Target{Target::Kind::node, name, mark_of(v)});
      k.mark = f.mark;
      if (t + down > traffic) {
        fail(n, fmt::format("{}: the rolling restart of {} nodes ({} down + {} gap each) ends after the traffic ends ({})",
                            path, names.size(), to_string(down), to_string(gap), to_string(traffic)));
      }
      out.push_back(std::move(k));
      t = t + down + gap;
    }
    m.finish({"at", "for", "until", "rolling_restart"});
    return;
  }
  m.finish({"at", "for", "until", std::string_view(kind)});
  out.push_back(std::move(f));
}

RandomFaults parse_random(const Context& ctx, const YAML::Node& n, const std::string& path, Duration traffic) {
  RandomFaults r;
  r.mark = mark_of(n);
  Map m(n, path);
  std::tie(r.from, r.until) = parse_window(m, traffic, "random fault phase");
  if (auto v = m.get("every")) r.every = read_duration(*v, m.child("every"), milliseconds(100), minutes(60));
  if (auto v = m.get("for")) {
    fail(*v, fmt::format("{}: 'for' here would be ambiguous; give the random phase's end as 'until' and each fault's "
                         "length as fault_for: {{min: 2s, max: 15s}}",
                         path));
  }
  if (auto v = m.get("fault_for")) {
    Map f(*v, m.child("fault_for"));
    r.for_min = read_duration(f.require("min", "e.g. 2s"), f.child("min"), milliseconds(1), minutes(60));
    r.for_max = read_duration(f.require("max", "e.g. 15s"), f.child("max"), milliseconds(1), minutes(60));
    f.finish({"min", "max"});
    if (r.for_max < r.for_min) fail(*v, fmt::format("{}: max is below min", f.where()));
  }
  if (auto v = m.get("concurrent")) r.concurrent = read_uint(*v, m.child("concurrent"), 1, 3);
  const YAML::Node kinds = m.require("kinds", "the fault kinds to draw from, e.g. [kill_node, partition, loss]");
  for_each_item(kinds, m.child("kinds"), kFaultKinds, "fault kinds", [&](const YAML::Node& item, const std::string& p) {
    const std::string s = scalar(item, p, "a fault kind");
    auto k = parse_fault_kind(s);
    if (!k || *k == FaultKind::kill_datacenter) {
      fail(item, fmt::format("{}: expected one of kill_zone, kill_node, wipe_node, partition, block, loss, delay, clog, "
                             "clock_skew; got '{}'",
                             p, s.substr(0, 60)));
    }
    if (std::find(r.kinds.begin(), r.kinds.end(), *k) != r.kinds.end()) fail(item, fmt::format("{}: '{}' twice", p, s));
    r.kinds.push_back(*k);
  });
  if (r.kinds.empty()) fail(kinds, fmt::format("{}: expected at least one fault kind", m.child("kinds")));
  if (auto v = m.get("targets")) {
    r.targets = parse_targets(ctx, *v, m.child("targets"));
    for (const Target& t : r.targets) {
      if (!is_server_target(t)) fail(*v, fmt::format("{}: random faults aim at server nodes; not 'clients'", m.child("targets")));
    }
  } else {
    for (const std::string& role : ctx.roles) r.targets.push_back(Target{Target::Kind::role, role, r.mark});
  }
  m.finish({"from", "until", "every", "fault_for", "concurrent", "kinds", "targets"});
  return r;
}

Expectations parse_expect(const Context& ctx, const YAML::Node& n, const std::string& path) {
  Expectations e;
  e.mark = mark_of(n);
  Map m(n, path);
  for (auto [key, field] : {std::pair{"no_loss", &e.no_loss}, std::pair{"no_duplicates", &e.no_duplicates},
                            std::pair{"order", &e.order}, std::pair{"convergence", &e.convergence},
                            std::pair{"unique_ids", &e.unique_ids},
                            std::pair{"no_cross_user_access", &e.no_cross_user_access}}) {
    if (auto v = m.get(key)) *field = read_bool(*v, m.child(key));
  }
  if (auto v = m.get("acked_on_zones")) e.acked_on_zones = read_uint(*v, m.child("acked_on_zones"), 0, 3);
  if (auto v = m.get("converge_within")) {
    e.converge_within = read_duration(*v, m.child("converge_within"), seconds(10), minutes(60));
  }
  if (auto v = m.get("replicas_converge")) e.replicas_converge = read_bool(*v, m.child("replicas_converge"));
  auto phases = [](const YAML::Node& v, const std::string& path, auto&& read) {
    Map p(v, path);
    for (Phase ph : {Phase::before, Phase::during, Phase::after}) {
      const std::string k(to_string(ph));
      if (auto x = p.get(k)) read(ph, *x, p.child(k));
    }
    p.finish({"before", "during", "after"});
  };
  auto per_phase = [&](const char* key, auto&& read) {
    if (auto v = m.get(key)) phases(*v, m.child(key), read);
  };
  per_phase("availability", [&](Phase ph, const YAML::Node& x, const std::string& p) {
    e.availability_min[ph] = read_fraction(x, p);
  });
  per_phase("latency_p99", [&](Phase ph, const YAML::Node& x, const std::string& p) {
    e.latency_p99_max[ph] = read_duration(x, p, milliseconds(1), minutes(60));
  });
  per_phase("goodput", [&](Phase ph, const YAML::Node& x, const std::string& p) {
    e.goodput_min[ph] = read_rate(x, p, 1e9) / 60.0;
  });
  per_phase("sync_availability", [&](Phase ph, const YAML::Node& x, const std::string& p) {
    e.sync_availability_min[ph] = read_fraction(x, p);
  });
  if (auto v = m.get("availability_by_datacenter")) {
    Map by(*v, m.child("availability_by_datacenter"));
    for (const std::string& dc : by.keys()) {
      if (ctx.find_datacenter(dc) == nullptr) {
        fail(by.key_node(dc), fmt::format("{}: unknown datacenter '{}' (the deployment's datacenter{}: {})", by.where(),
                                          dc.substr(0, 60), ctx.multi() ? "s" : "", join(ctx.datacenter_names(), ", ")));
      }
      auto& out = e.availability_by_datacenter[dc];
      phases(*by.get(dc), by.child(dc), [&](Phase ph, const YAML::Node& x, const std::string& p) { out[ph] = read_fraction(x, p); });
    }
  }
  m.finish({"no_loss", "no_duplicates", "order", "convergence", "unique_ids", "no_cross_user_access",
            "acked_on_zones", "converge_within", "availability", "latency_p99", "goodput", "replicas_converge",
            "availability_by_datacenter", "sync_availability"});
  return e;
}

// Two faults that take the same node down at overlapping times would end
// each other early: rejected.
void check_overlaps(const std::vector<FaultSpec>& faults, Duration traffic, const std::string& file) {
  for (size_t i = 0; i < faults.size(); ++i) {
    const FaultSpec& a = faults[i];
    if (a.kind != FaultKind::kill_zone && a.kind != FaultKind::kill_node && a.kind != FaultKind::wipe_node &&
        a.kind != FaultKind::kill_datacenter) {
      continue;
    }
    const Duration a_end = a.at + a.duration.value_or(traffic - a.at);
    for (size_t j = 0; j < i; ++j) {
      const FaultSpec& b = faults[j];
      if (b.kind != a.kind) continue;
      const Duration b_end = b.at + b.duration.value_or(traffic - b.at);
      if (!(a.at < b_end && b.at < a_end)) continue;
      for (const Target& t : a.targets) {
        if (std::find(b.targets.begin(), b.targets.end(), t) != b.targets.end()) {
          fail_at(a.mark, fmt::format("faults: '{}' at {} overlaps '{}' at {} on the same target {} (line {})",
                                      a.describe(), to_string(a.at), b.describe(), to_string(b.at), t.text(),
                                      b.mark.line));
        }
      }
    }
  }
  (void)file;
}

Scenario parse_document(const YAML::Node& root, const std::string& file) {
  if (!root.IsDefined() || root.IsNull()) fail_at(Mark{1, 1}, "the file is empty: expected a scenario mapping (name:, workload:, faults:, expect:)");
  Scenario s;
  s.file = file;
  Map m(root, "");
  s.name = read_string(m.require("name", "the scenario's name"), "name", 80);
  if (s.name.empty()) fail(root, "name: expected a non-empty name");
  if (auto v = m.get("description")) s.description = read_string(*v, "description", 4000);
  if (auto v = m.get("seed")) s.seed = read_uint(*v, "seed", 0, std::numeric_limits<uint64_t>::max());
  if (auto v = m.get("deployment")) s.deployment = parse_deployment(*v, "deployment");
  else s.deployment.instances = {{deploy::Role::msg, 1}, {deploy::Role::access, 1}, {deploy::Role::group, 1}, {deploy::Role::fanout, 1}};
  if (auto v = m.get("workload")) s.workload = parse_workload(*v, "workload");
  if (s.workload.groups > 0 && s.deployment.instances[deploy::Role::group] == 0) {
    fail(root, "workload.groups: group chats need the group and fanout services (deployment.services)");
  }

  // Laid out only to check targets against it: node names and roles. The
  // ticket keys are the run's business; a placeholder ring passes the check.
  deploy::DeploymentSpec spec = s.deployment_spec();
  ticket::KeyRingConfig ring;
  ring.keys.push_back({1, std::string(ticket::kTicketKeyBytes, 'k')});
  ring.current_key_id = 1;
  spec.templates.msg.keys = spec.templates.access.keys = spec.templates.group.keys = ring;
  deploy::Deployment deployment(spec);
  Context ctx;
  ctx.file = file;
  ctx.deployment = &deployment;
  ctx.zones.insert(s.deployment.zones.begin(), s.deployment.zones.end());
  ctx.datacenter = s.deployment.datacenter;
  ctx.datacenters = s.deployment.datacenters;
  for (const deploy::NodeDesc& nd : deployment.nodes()) {
    ctx.node_names.insert(nd.name);
    ctx.roles.insert(std::string(deploy::to_string(nd.role)));
  }

  const Duration traffic = s.workload.duration;
  if (auto v = m.get("faults")) {
    if (!v->IsNull()) {
      for_each_item(*v, "faults", kFaultsMax, "faults", [&](const YAML::Node& item, const std::string& p) {
        parse_fault(ctx, item, p, traffic, s.faults);
      });
      if (s.faults.size() > kFaultsMax) fail(*v, fmt::format("faults: more than {} after expanding rolling restarts", kFaultsMax));
    }
  }
  if (auto v = m.get("random_faults")) s.random_faults = parse_random(ctx, *v, "random_faults", traffic);
  if (auto v = m.get("expect")) s.expect = parse_expect(ctx, *v, "expect");
  m.finish({"name", "description", "seed", "deployment", "workload", "faults", "random_faults", "expect"});
  check_overlaps(s.faults, traffic, file);
  std::stable_sort(s.faults.begin(), s.faults.end(), [](const FaultSpec& a, const FaultSpec& b) { return a.at < b.at; });
  return s;
}

}  // namespace

std::string ScenarioError::text() const {
  if (at.line > 0) return fmt::format("{}:{}:{}: {}", file, at.line, at.column, message);
  return fmt::format("{}: {}", file, message);
}

std::string Target::text() const {
  switch (kind) {
    case Kind::zone: return "zone:" + name;
    case Kind::datacenter: return "dc:" + name;
    case Kind::node: return "node:" + name;
    case Kind::role: return "role:" + name;
    case Kind::clients: return "clients";
  }
  return "?";
}

bool Target::matches(const deploy::NodeDesc& node) const {
  switch (kind) {
    case Kind::zone: {
      const size_t slash = name.find('/');
      if (slash == std::string::npos) return node.zone == name;
      return node.datacenter == std::string_view(name).substr(0, slash) &&
             node.zone == std::string_view(name).substr(slash + 1);
    }
    case Kind::datacenter: return node.datacenter == name;
    case Kind::node: return node.name == name;
    case Kind::role: return deploy::to_string(node.role) == name;
    case Kind::clients: return false;
  }
  return false;
}

std::string Target::zone_name() const {
  const size_t slash = name.find('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

std::string Target::zone_datacenter() const {
  const size_t slash = name.find('/');
  return slash == std::string::npos ? std::string() : name.substr(0, slash);
}

std::string_view to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::kill_zone: return "kill_zone";
    case FaultKind::kill_datacenter: return "kill_datacenter";
    case FaultKind::kill_node: return "kill_node";
    case FaultKind::wipe_node: return "wipe_node";
    case FaultKind::partition: return "partition";
    case FaultKind::block: return "block";
    case FaultKind::loss: return "loss";
    case FaultKind::delay: return "delay";
    case FaultKind::clog: return "clog";
    case FaultKind::clock_skew: return "clock_skew";
  }
  return "?";
}

std::optional<FaultKind> parse_fault_kind(std::string_view text) {
  for (size_t i = 0; i < kFaultKinds; ++i) {
    if (to_string(static_cast<FaultKind>(i)) == text) return static_cast<FaultKind>(i);
  }
  return std::nullopt;
}

std::string_view to_string(Phase phase) {
  switch (phase) {
    case Phase::before: return "before";
    case Phase::during: return "during";
    case Phase::after: return "after";
  }
  return "?";
}

namespace {
std::string join_targets(const std::vector<Target>& ts) {
  std::string out = "[";
  for (size_t i = 0; i < ts.size(); ++i) out += (i ? ", " : "") + ts[i].text();
  return out + "]";
}
}  // namespace

std::string FaultSpec::describe() const {
  switch (kind) {
    case FaultKind::kill_zone:
    case FaultKind::kill_datacenter: return fmt::format("{} {}", to_string(kind), targets.at(0).name);
    case FaultKind::kill_node:
    case FaultKind::wipe_node:
    case FaultKind::clog: return fmt::format("{} {}", to_string(kind), join_targets(targets));
    case FaultKind::partition: {
      std::string out = "partition ";
      for (size_t i = 0; i < groups.size(); ++i) out += (i ? " | " : "") + join_targets(groups[i]);
      return out;
    }
    case FaultKind::block: return fmt::format("block {} -> {}", join_targets(from), join_targets(to));
    case FaultKind::loss: return fmt::format("loss {} <-> {} p={}", join_targets(from), join_targets(to), loss_p);
    case FaultKind::delay:
      return fmt::format("delay {} <-> {} +{}", join_targets(from), join_targets(to), wx::to_string(extra));
    case FaultKind::clock_skew:
      return fmt::format("clock_skew {} {}{}", join_targets(targets), offset < Duration::zero() ? "-" : "+",
                         wx::to_string(offset < Duration::zero() ? Duration::zero() - offset : offset));
  }
  return "?";
}

deploy::DeploymentSpec Scenario::deployment_spec() const {
  deploy::DeploymentSpec spec;
  if (deployment.datacenters.size() <= 1) {
    spec = deployment.datacenters.empty() ? deploy::single_datacenter_spec(deployment.datacenter, deployment.zones)
                                          : deploy::single_datacenter_spec(deployment.datacenters.front().name,
                                                                           deployment.datacenters.front().zones);
  } else {  // built the way single_datacenter_spec builds one
    spec.datacenters = deployment.datacenters;
    spec.default_datacenter = deployment.datacenters.front().name;
    spec.instances_per_zone = deploy::DeploymentSpec::full_set_per_zone();
  }
  spec.kv_shards_per_datacenter = deployment.shards;
  for (const auto& [role, n] : deployment.instances) {
    if (n > 0) spec.instances_per_zone[role] = n;
    else spec.instances_per_zone.erase(role);
  }
  return spec;
}

std::string join(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += separator;
    out += items[i];
  }
  return out;
}

std::optional<double> parse_rate_per_min(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const std::string_view num = text.substr(0, slash);
  const std::string_view unit = text.substr(slash + 1);
  double v = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
  if (ec != std::errc() || p != num.data() + num.size() || !std::isfinite(v) || v < 0) return std::nullopt;
  if (unit == "s") return v * 60;
  if (unit == "min" || unit == "m") return v;
  if (unit == "h") return v / 60;
  return std::nullopt;
}

namespace {
// Line and column (1-based) of byte i.
Mark position_of(std::string_view bytes, size_t i) {
  Mark m{1, 1};
  for (size_t j = 0; j < i; ++j) {
    if (bytes[j] == '\n') {
      ++m.line;
      m.column = 1;
    } else {
      ++m.column;
    }
  }
  return m;
}
}  // namespace

std::variant<Scenario, ScenarioError> parse_scenario(std::string_view bytes, const std::string& file) {
  if (bytes.size() > kFileBytesMax) {
    return ScenarioError{file, {}, fmt::format("the file is {} bytes; a scenario is at most {} bytes", bytes.size(), kFileBytesMax)};
  }
  // Bytes YAML does not allow (NUL and other control characters): yaml-cpp
  // would read some of them as text; name the first.
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f) {
      return ScenarioError{file, position_of(bytes, i), fmt::format("byte 0x{:02x} is not allowed in a YAML file (binary data?)", c)};
    }
  }
  // YAML is Unicode text: reject bytes that are not UTF-8, naming the first.
  for (size_t i = 0; i < bytes.size();) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    bool ok = len != 0 && i + len <= bytes.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(bytes[i + k]) & 0xc0) == 0x80;
    if (!ok) {
      return ScenarioError{file, position_of(bytes, i), fmt::format("byte 0x{:02x} is not valid UTF-8 text (binary data?)", c)};
    }
    i += len;
  }
  try {
    YAML::Node root = YAML::Load(std::string(bytes));
    return parse_document(root, file);
  } catch (const Fail& f) {
    return ScenarioError{file, f.at, f.message};
  } catch (const YAML::DeepRecursion& e) {
    return ScenarioError{file, {e.mark.line + 1, e.mark.column + 1}, "the YAML nests too deeply"};
  } catch (const YAML::Exception& e) {
    Mark at = e.mark.is_null() ? Mark{} : Mark{e.mark.line + 1, e.mark.column + 1};
    return ScenarioError{file, at, fmt::format("not valid YAML: {}", e.msg)};
  } catch (const std::invalid_argument& e) {
    return ScenarioError{file, {}, fmt::format("deployment: {}", e.what())};
  } catch (const std::exception& e) {
    return ScenarioError{file, {}, fmt::format("cannot read the scenario: {}", e.what())};
  }
}

std::variant<Scenario, ScenarioError> load_scenario(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ScenarioError{path, {}, "cannot open the file"};
  std::string bytes;
  bytes.resize(kFileBytesMax + 1);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (in.bad()) return ScenarioError{path, {}, "cannot read the file"};
  bytes.resize(static_cast<size_t>(in.gcount()));
  if (bytes.size() > kFileBytesMax) {
    return ScenarioError{path, {}, fmt::format("the file is larger than {} bytes; a scenario is smaller", kFileBytesMax)};
  }
  return parse_scenario(bytes, path);
}

}  // namespace wx::scenario
