// The deployment description: what runs where, as plain data.
//
// One `DeploymentSpec` says which datacenters and zones exist, how many KV
// shards each datacenter has (each a Paxos group with one replica per zone),
// which stateless services run how many instances in every zone, where users
// live, and the configuration templates of each service. `Deployment` checks
// it and lays it out: a node id, a name, a role and a place for every node, in
// a fixed order, plus the shard map and the service directory derived from
// it. Nothing here knows about the simulator, sockets or Asio: the simulator's
// builder (sim/deployment_builder.h), the tests, the CLI, the YAML scenarios,
// the Python bindings and the real cluster all start from this one
// description, and `make_node` (node_factory.h) builds any node of it.
//
// Layout (ids are dense from 1, in this order, so the same spec always gives
// the same ids):
//   1. KV replicas: for each datacenter in order, each shard s, each zone z:
//      "kv-<dc>-s<s>-<zone>", replica index = zone position;
//   2. stateless services (seqsvr, account, contacts, inbox, msg, access, group,
//      fanout, login), for each
//      role in kStatelessRoles order, each
//      datacenter, each zone, each instance i: "<role>-<dc>-<zone>[-<i>]".
//
//   1b. with two or more datacenters, the GLOBAL group (account IDs): three
//      replicas in the first datacenter's zones and two in each other
//      datacenter's first two zones, "kv-global-<dc>-<zone>" (docs/multi-dc.md);
//   2. stateless services …
//
// Stores (docs/multi-dc.md): user records (contacts, inbox, sent and delivery
// records) live in the user's home datacenter's shard (shard::ShardMap) and
// are shipped to the other datacenters by the replicators (role repl).
// seqsvr keeps its records in shard 0 of ITS OWN datacenter (it allocates only
// for users homed there); the group queues live in the datacenter of the
// producing msg node. Account records (unique IDs) live in global_group(): with
// one datacenter that is its shard 0 group; with more, the cross-datacenter
// group above, so registration stays linearizable across datacenters.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/access/access_service.h"
#include "nodes/logic/group/group_service.h"
#include "nodes/logic/login/login_service.h"
#include "nodes/logic/msg/fanout_worker.h"
#include "nodes/logic/msg/msg_service.h"
#include "nodes/rpc/router.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/account/account_service.h"
#include "nodes/storage/kv/kv_replica.h"
#include "nodes/storage/repl/replicator.h"
#include "nodes/storage/seqsvr/alloc_server.h"
#include "nodes/storage/shard/shard_map.h"

namespace wx::deploy {

enum class Role : uint8_t { kv, seqsvr, account, contacts, inbox, msg, access, group, fanout, login, repl };
// Roles with instances in every zone (everything but kv), in layout order.
// `access` comes last, so a spec that does not list it keeps every id it had.
inline constexpr Role kStatelessRoles[] = {Role::seqsvr, Role::account, Role::contacts, Role::inbox, Role::msg,
                                           Role::access, Role::group, Role::fanout, Role::login, Role::repl};
// (group, fanout, login and then repl come after access for the same reason:
// specs without them keep their ids.)

std::string_view to_string(Role role);
std::optional<Role> parse_role(std::string_view text);
// The RPC service name of a role's instances in the directory ("seqsvr", …).
std::string_view service_name(Role role);
// The directory also lists every instance under "<service>@<datacenter>":
// a call to that name reaches only instances of that datacenter (forwarding
// to a user's home datacenter).
std::string service_in(std::string_view service, std::string_view datacenter);

// Limits on what one description may ask for.
inline constexpr size_t kDatacentersMax = 16;
inline constexpr size_t kZonesPerDatacenter = 3;  // one KV replica per zone
inline constexpr uint32_t kShardsPerDatacenterMax = 256;
inline constexpr uint32_t kInstancesPerZoneMax = 64;
inline constexpr size_t kNodesMax = 100'000;

struct DatacenterSpec {
  std::string name;
  std::vector<std::string> zones;  // exactly kZonesPerDatacenter, distinct
};

// Templates: every field a node's own config needs from the deployment
// (members, self index, the group it stores in, its zone, the shard map) is
// filled in by make_node; the rest (timeouts, costs, test-only mutations) is
// taken from here as it is.
struct ServiceTemplates {
  kv::KvReplicaConfig kv;
  seqsvr::AllocSvrConfig seqsvr;
  account::AccountServiceConfig account;
  // contacts and inbox. `data.keys` empty: make_node gives them the ticket
  // keys of the deployment's logic layer (templates.msg.keys if msg runs,
  // else access's, else group's), so they check tickets whenever the
  // deployment issues any; a storage-only deployment checks none.
  shard::DataServiceConfig data;
  // msg: the ticket keys, budgets and test hooks; make_node fills in the
  // shard map, the directory, the locality and the seqsvr client config.
  msg::MsgServiceConfig msg;
  // access: the ticket keys (the same ring as msg), session timeouts and
  // test hooks; make_node fills in the directory and the locality.
  access::AccessServiceConfig access;
  // group: the ticket keys; make_node fills in the shard map.
  group::GroupServiceConfig group;
  // fanout (the group queues' consumers): make_node fills in the shard map,
  // the directory, the locality, the seqsvr client config and the lease's
  // consumer index / count, and (when `fanout.keys` is empty) the ticket keys
  // the same way as for `data`. Its `queue` must equal templates.msg.queue.
  msg::FanoutWorkerConfig fanout;
  // login: the ring that SIGNS tickets (normally the same keys as msg's and
  // access's), the ticket lifetime and the PBKDF2 iteration count; make_node
  // fills in the directory (account instances) and the locality.
  login::LoginServiceConfig login;
  // repl (the replicators, docs/multi-dc.md): make_node fills in the
  // datacenter, the streams (every other datacenter's shards), the shard map
  // and the instance's index / count among its datacenter's replicators.
  repl::ReplicatorConfig repl;
};

struct DeploymentSpec {
  std::vector<DatacenterSpec> datacenters;
  uint32_t kv_shards_per_datacenter = 1;
  // Instances per zone of each stateless role; a role not listed runs none.
  std::map<Role, uint32_t> instances_per_zone;
  // Where users live: uid → home datacenter; others live in
  // default_datacenter (empty: they have no home and are refused).
  std::map<uint64_t, std::string> home_datacenter;
  std::string default_datacenter;
  ServiceTemplates templates;

  // Every stateless STORAGE role (seqsvr, account, contacts, inbox) with n
  // instances per zone. Logic and access roles (msg, access, group, fanout,
  // login) are added explicitly: they need
  // their templates (ticket keys) filled in.
  static std::map<Role, uint32_t> full_set_per_zone(uint32_t n = 1);
};

struct NodeDesc {
  NodeId id;
  std::string name;
  Role role = Role::kv;
  std::string datacenter;
  std::string zone;
  uint32_t shard = 0;     // kv: the shard within its datacenter
  uint32_t index = 0;     // kv: replica index (zone position); others: instance in zone
  size_t group = 0;       // kv: index into shard_map().groups() (not for the global group)
  bool global = false;    // kv: a replica of the cross-datacenter global group
};

class Deployment {
 public:
  // Checks a spec: an empty string means valid, else what is wrong, naming
  // the field ("datacenters[1].zones: expected 3 distinct zone names").
  static std::string validate(const DeploymentSpec& spec);
  // Throws std::invalid_argument with validate()'s text if the spec is bad.
  explicit Deployment(DeploymentSpec spec);

  const DeploymentSpec& spec() const { return spec_; }
  // Every node, ordered by id (id = position + 1).
  const std::vector<NodeDesc>& nodes() const { return nodes_; }
  // nullptr if `id` is not a node of this deployment.
  const NodeDesc* find(NodeId id) const;
  const NodeDesc& node(NodeId id) const;  // throws std::out_of_range
  // Nodes of a role, in id order; with a datacenter, only those there.
  std::vector<NodeId> nodes_of(Role role, std::string_view datacenter = {}) const;

  const std::shared_ptr<const shard::ShardMap>& shard_map() const { return shard_map_; }
  // The KV group that stores account records (unique IDs): shard 0 of the
  // only datacenter, or the cross-datacenter group (datacenter "*").
  const shard::ShardGroup& global_group() const {
    return global_group_.replicas.empty() ? shard_map_->group(0) : global_group_;
  }
  // The KV group that stores seqsvr's records for the users of `datacenter`:
  // its shard 0 group. Throws std::out_of_range for an unknown datacenter.
  const shard::ShardGroup& seqsvr_group(std::string_view datacenter) const;
  // The replicas of the group a kv node belongs to.
  const std::vector<NodeId>& group_members(const NodeDesc& kv_node) const;
  // Every stateless instance under its service name, with its locality.
  const rpc::ServiceDirectory& directory() const { return directory_; }

 private:
  DeploymentSpec spec_;
  std::vector<NodeDesc> nodes_;
  std::shared_ptr<const shard::ShardMap> shard_map_;
  shard::ShardGroup global_group_;  // empty with one datacenter
  rpc::ServiceDirectory directory_;
};

// A single datacenter "dc1" with zones "a", "b", "c", one shard, every
// stateless service once per zone: the usual starting point for tests.
DeploymentSpec single_datacenter_spec(std::string dc = "dc1", std::vector<std::string> zones = {"a", "b", "c"});

}  // namespace wx::deploy
