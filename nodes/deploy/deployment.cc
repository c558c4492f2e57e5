#include "nodes/deploy/deployment.h"

#include <set>
#include <stdexcept>

namespace wx::deploy {

namespace {

struct RoleName {
  Role role;
  std::string_view name;
};
constexpr RoleName kRoleNames[] = {
    {Role::kv, "kv"}, {Role::seqsvr, "seqsvr"}, {Role::account, "account"},
    {Role::contacts, "contacts"}, {Role::inbox, "inbox"}, {Role::msg, "msg"}, {Role::access, "access"},
    {Role::group, "group"}, {Role::fanout, "fanout"}, {Role::login, "login"}, {Role::repl, "repl"},
};

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string_view to_string(Role role) {
  for (const RoleName& r : kRoleNames) {
    if (r.role == role) return r.name;
  }
  return "?";
}

std::optional<Role> parse_role(std::string_view text) {
  for (const RoleName& r : kRoleNames) {
    if (r.name == text) return r.role;
  }
  return std::nullopt;
}

std::string_view service_name(Role role) { return to_string(role); }

std::string service_in(std::string_view service, std::string_view datacenter) {
  std::string out(service);
  out += '@';
  out += datacenter;
  return out;
}

std::map<Role, uint32_t> DeploymentSpec::full_set_per_zone(uint32_t n) {
  std::map<Role, uint32_t> out;
  for (Role r : kStatelessRoles) {
    if (r != Role::msg && r != Role::access && r != Role::group && r != Role::fanout && r != Role::login &&
        r != Role::repl) {
      out[r] = n;
    }
  }
  return out;
}

std::string Deployment::validate(const DeploymentSpec& spec) {
  if (spec.datacenters.empty()) return "datacenters: expected at least one datacenter";
  if (spec.datacenters.size() > kDatacentersMax) {
    return "datacenters: at most " + std::to_string(kDatacentersMax) + " datacenters";
  }
  std::set<std::string> dcs;
  for (size_t i = 0; i < spec.datacenters.size(); ++i) {
    const DatacenterSpec& dc = spec.datacenters[i];
    const std::string where = "datacenters[" + std::to_string(i) + "]";
    if (!valid_name(dc.name)) return where + ".name: expected 1-64 characters of [A-Za-z0-9_.-], got '" + dc.name + "'";
    if (!dcs.insert(dc.name).second) return where + ".name: datacenter '" + dc.name + "' appears twice";
    if (dc.zones.size() != kZonesPerDatacenter) {
      return where + ".zones: expected exactly " + std::to_string(kZonesPerDatacenter) +
             " zones (one KV replica per zone), got " + std::to_string(dc.zones.size());
    }
    std::set<std::string> zones;  // a zone is named within its datacenter
    for (const std::string& z : dc.zones) {
      if (!valid_name(z)) return where + ".zones: expected names of 1-64 characters of [A-Za-z0-9_.-], got '" + z + "'";
      if (!zones.insert(z).second) return where + ".zones: zone '" + z + "' appears twice";
    }
  }
  if (spec.kv_shards_per_datacenter == 0 || spec.kv_shards_per_datacenter > kShardsPerDatacenterMax) {
    return "kv_shards_per_datacenter: expected 1 to " + std::to_string(kShardsPerDatacenterMax) + ", got " +
           std::to_string(spec.kv_shards_per_datacenter);
  }
  for (const auto& [role, n] : spec.instances_per_zone) {
    if (role == Role::kv) return "instances_per_zone: kv replicas are laid out per shard, not per zone";
    if (n > kInstancesPerZoneMax) {
      return "instances_per_zone." + std::string(to_string(role)) + ": expected at most " +
             std::to_string(kInstancesPerZoneMax) + ", got " + std::to_string(n);
    }
  }
  if (auto it = spec.instances_per_zone.find(Role::msg); it != spec.instances_per_zone.end() && it->second > 0) {
    if (std::string err = ticket::KeyRing::validate(spec.templates.msg.keys); !err.empty()) {
      return "templates.msg.keys: " + err;
    }
  }
  if (auto it = spec.instances_per_zone.find(Role::group); it != spec.instances_per_zone.end() && it->second > 0) {
    if (std::string err = ticket::KeyRing::validate(spec.templates.group.keys); !err.empty()) {
      return "templates.group.keys: " + err;
    }
  }
  if (auto it = spec.instances_per_zone.find(Role::access); it != spec.instances_per_zone.end() && it->second > 0) {
    if (std::string err = ticket::KeyRing::validate(spec.templates.access.keys); !err.empty()) {
      return "templates.access.keys: " + err;
    }
  }
  if (auto it = spec.instances_per_zone.find(Role::login); it != spec.instances_per_zone.end() && it->second > 0) {
    if (std::string err = login::LoginService::validate(spec.templates.login); !err.empty()) {
      return "templates.login." + err;
    }
  }
  // Data-access services (contacts, inbox) and fan-out: keys are optional
  // (none: no ticket check, or taken from the msg / access / group template
  // by make_node), but checked when given.
  if (!spec.templates.data.keys.keys.empty()) {
    if (std::string err = ticket::KeyRing::validate(spec.templates.data.keys); !err.empty()) {
      return "templates.data.keys: " + err;
    }
  }
  if (!spec.templates.fanout.keys.keys.empty()) {
    if (std::string err = ticket::KeyRing::validate(spec.templates.fanout.keys); !err.empty()) {
      return "templates.fanout.keys: " + err;
    }
  }
  for (const auto& [uid, dc] : spec.home_datacenter) {
    if (uid == 0) return "home_datacenter: uid 0 is not a user";
    if (!dcs.count(dc)) return "home_datacenter[" + std::to_string(uid) + "]: no datacenter '" + dc + "'";
  }
  if (!spec.default_datacenter.empty() && !dcs.count(spec.default_datacenter)) {
    return "default_datacenter: no datacenter '" + spec.default_datacenter + "'";
  }
  size_t total = spec.datacenters.size() * kZonesPerDatacenter * spec.kv_shards_per_datacenter +
                 (spec.datacenters.size() > 1 ? 2 * spec.datacenters.size() + 1 : 0);
  for (const auto& [role, n] : spec.instances_per_zone) total += spec.datacenters.size() * kZonesPerDatacenter * n;
  if (total > kNodesMax) return "the deployment has " + std::to_string(total) + " nodes; at most " +
                                std::to_string(kNodesMax);
  return "";
}

Deployment::Deployment(DeploymentSpec spec) : spec_(std::move(spec)) {
  if (std::string err = validate(spec_); !err.empty()) throw std::invalid_argument("deployment: " + err);
  auto next_id = [this] { return NodeId{static_cast<uint32_t>(nodes_.size() + 1)}; };

  shard::ShardMapConfig mc;
  mc.shards_per_datacenter = spec_.kv_shards_per_datacenter;
  mc.home_datacenter = spec_.home_datacenter;
  mc.default_datacenter = spec_.default_datacenter;
  for (const DatacenterSpec& dc : spec_.datacenters) {
    for (uint32_t s = 0; s < spec_.kv_shards_per_datacenter; ++s) {
      shard::ShardGroup g;
      g.datacenter = dc.name;
      g.shard = s;
      for (uint32_t z = 0; z < kZonesPerDatacenter; ++z) {
        NodeDesc d;
        d.id = next_id();
        d.name = "kv-" + dc.name + "-s" + std::to_string(s) + "-" + dc.zones[z];
        d.role = Role::kv;
        d.datacenter = dc.name;
        d.zone = dc.zones[z];
        d.shard = s;
        d.index = z;
        d.group = mc.groups.size();
        g.replicas.push_back(d.id);
        nodes_.push_back(std::move(d));
      }
      mc.groups.push_back(std::move(g));
    }
  }
  if (std::string err = shard::ShardMap::validate(mc); !err.empty()) {
    throw std::invalid_argument("deployment: shard map: " + err);
  }
  shard_map_ = std::make_shared<const shard::ShardMap>(std::move(mc));

  // The cross-datacenter group of account records: a majority (3 of 5 with
  // two datacenters) in the first datacenter, two replicas in each other.
  if (spec_.datacenters.size() > 1) {
    global_group_.datacenter = "*";
    for (size_t i = 0; i < spec_.datacenters.size(); ++i) {
      const DatacenterSpec& dc = spec_.datacenters[i];
      const uint32_t zones = i == 0 ? kZonesPerDatacenter : 2;
      for (uint32_t z = 0; z < zones; ++z) {
        NodeDesc d;
        d.id = next_id();
        d.name = "kv-global-" + dc.name + "-" + dc.zones[z];
        d.role = Role::kv;
        d.datacenter = dc.name;
        d.zone = dc.zones[z];
        d.index = static_cast<uint32_t>(global_group_.replicas.size());
        d.global = true;
        global_group_.replicas.push_back(d.id);
        nodes_.push_back(std::move(d));
      }
    }
  }

  for (Role role : kStatelessRoles) {
    auto it = spec_.instances_per_zone.find(role);
    const uint32_t n = it == spec_.instances_per_zone.end() ? 0 : it->second;
    for (const DatacenterSpec& dc : spec_.datacenters) {
      for (const std::string& zone : dc.zones) {
        for (uint32_t i = 0; i < n; ++i) {
          NodeDesc d;
          d.id = next_id();
          d.name = std::string(to_string(role)) + "-" + dc.name + "-" + zone + (n > 1 ? "-" + std::to_string(i) : "");
          d.role = role;
          d.datacenter = dc.name;
          d.zone = zone;
          d.index = i;
          directory_.add(std::string(service_name(role)), rpc::Instance{d.id, dc.name, zone});
          directory_.add(service_in(service_name(role), dc.name), rpc::Instance{d.id, dc.name, zone});
          nodes_.push_back(std::move(d));
        }
      }
    }
  }
}

const NodeDesc* Deployment::find(NodeId id) const {
  if (id.value == 0 || id.value > nodes_.size()) return nullptr;
  return &nodes_[id.value - 1];
}

const NodeDesc& Deployment::node(NodeId id) const {
  const NodeDesc* d = find(id);
  if (d == nullptr) throw std::out_of_range("deployment: no node " + to_string(id));
  return *d;
}

const shard::ShardGroup& Deployment::seqsvr_group(std::string_view datacenter) const {
  for (size_t g = 0; g < shard_map_->group_count(); ++g) {
    const shard::ShardGroup& group = shard_map_->group(g);
    if (group.datacenter == datacenter && group.shard == 0) return group;
  }
  throw std::out_of_range("deployment: no datacenter '" + std::string(datacenter) + "'");
}

const std::vector<NodeId>& Deployment::group_members(const NodeDesc& kv_node) const {
  return kv_node.global ? global_group_.replicas : shard_map_->group(kv_node.group).replicas;
}

std::vector<NodeId> Deployment::nodes_of(Role role, std::string_view datacenter) const {
  std::vector<NodeId> out;
  for (const NodeDesc& d : nodes_) {
    if (d.role == role && (datacenter.empty() || d.datacenter == datacenter)) out.push_back(d.id);
  }
  return out;
}

DeploymentSpec single_datacenter_spec(std::string dc, std::vector<std::string> zones) {
  DeploymentSpec spec;
  spec.datacenters.push_back(DatacenterSpec{dc, std::move(zones)});
  spec.default_datacenter = std::move(dc);
  spec.instances_per_zone = DeploymentSpec::full_set_per_zone();
  return spec;
}

}  // namespace wx::deploy
