#include "nodes/deploy/node_factory.h"

#include <stdexcept>

#include "nodes/access/access_service.h"
#include "nodes/logic/group/group_service.h"
#include "nodes/logic/login/login_service.h"
#include "nodes/logic/msg/fanout_worker.h"
#include "nodes/logic/msg/msg_service.h"
#include "nodes/storage/account/account_service.h"
#include "nodes/storage/contacts/contacts_service.h"
#include "nodes/storage/inbox/inbox_service.h"
#include "nodes/storage/kv/kv_replica.h"
#include "nodes/storage/repl/replicator.h"
#include "nodes/storage/seqsvr/alloc_server.h"

namespace wx::deploy {

namespace {

bool runs(const Deployment& d, Role role) {
  auto it = d.spec().instances_per_zone.find(role);
  return it != d.spec().instances_per_zone.end() && it->second > 0;
}

// The ticket keys of the deployment's logic layer, for the services behind it
// (contacts, inbox, fan-out) whose template gives none: msg's if msg runs,
// else access's, else group's; none (no check) in a storage-only deployment.
ticket::KeyRingConfig backend_keys(const Deployment& d, const ticket::KeyRingConfig& own) {
  if (!own.keys.empty()) return own;
  const ServiceTemplates& t = d.spec().templates;
  if (runs(d, Role::msg) && !t.msg.keys.keys.empty()) return t.msg.keys;
  if (runs(d, Role::access) && !t.access.keys.keys.empty()) return t.access.keys;
  if (runs(d, Role::group) && !t.group.keys.keys.empty()) return t.group.keys;
  return {};
}

}  // namespace

std::unique_ptr<Node> make_node(Runtime& rt, const Deployment& d, NodeId id, StartOptions options) {
  const NodeDesc& n = d.node(id);
  const ServiceTemplates& t = d.spec().templates;
  switch (n.role) {
    case Role::kv: {
      kv::KvReplicaConfig c = t.kv;
      c.members = d.group_members(n);
      c.self_index = n.index;
      c.bootstrap = options.bootstrap;
      return std::make_unique<kv::KvReplica>(rt, std::move(c));
    }
    case Role::seqsvr: {
      seqsvr::AllocSvrConfig c = t.seqsvr;
      c.kv_replicas = d.seqsvr_group(n.datacenter).replicas;
      c.allocators = d.nodes_of(Role::seqsvr, n.datacenter);
      return std::make_unique<seqsvr::AllocSvr>(rt, std::move(c));
    }
    case Role::account: {
      account::AccountServiceConfig c = t.account;
      c.keys = backend_keys(d, t.account.keys);  // GetProfile / SetProfile only
      c.kv_replicas = d.global_group().replicas;
      c.zone = n.zone;
      return std::make_unique<account::AccountService>(rt, std::move(c));
    }
    case Role::contacts: {
      contacts::ContactsServiceConfig c = t.data;
      c.keys = backend_keys(d, t.data.keys);
      c.shards = d.shard_map();
      c.zone = n.zone;
      return std::make_unique<contacts::ContactsService>(rt, std::move(c));
    }
    case Role::inbox: {
      inbox::InboxServiceConfig c = t.data;
      c.keys = backend_keys(d, t.data.keys);
      c.shards = d.shard_map();
      c.zone = n.zone;
      return std::make_unique<inbox::InboxService>(rt, std::move(c));
    }
    case Role::msg: {
      msg::MsgServiceConfig c = t.msg;
      c.shards = d.shard_map();
      c.directory = d.directory();
      c.locality = rpc::Locality{n.datacenter, n.zone};
      c.seq = seq_client_config(d, n.datacenter);
      return std::make_unique<msg::MsgService>(rt, std::move(c));
    }
    case Role::access: {
      access::AccessServiceConfig c = t.access;
      c.directory = d.directory();
      c.shards = d.shard_map();
      c.locality = rpc::Locality{n.datacenter, n.zone};
      return std::make_unique<access::AccessService>(rt, std::move(c));
    }
    case Role::group: {
      group::GroupServiceConfig c = t.group;
      c.shards = d.shard_map();
      return std::make_unique<group::GroupService>(rt, std::move(c));
    }
    case Role::fanout: {
      msg::FanoutWorkerConfig c = t.fanout;
      c.keys = backend_keys(d, t.fanout.keys);
      c.shards = d.shard_map();
      c.directory = d.directory();
      c.locality = rpc::Locality{n.datacenter, n.zone};
      c.seq = seq_client_config(d, n.datacenter);
      // The consumers of THIS datacenter's queues (each datacenter has its own).
      const std::vector<NodeId> workers = d.nodes_of(Role::fanout, n.datacenter);
      c.lease.consumers = static_cast<uint32_t>(workers.size());
      for (size_t i = 0; i < workers.size(); ++i) {
        if (workers[i] == id) c.lease.index = static_cast<uint32_t>(i);
      }
      return std::make_unique<msg::FanoutWorker>(rt, std::move(c));
    }
    case Role::repl: {
      repl::ReplicatorConfig c = t.repl;
      c.datacenter = n.datacenter;
      c.shards = d.shard_map();
      const shard::ShardMap& map = *d.shard_map();
      auto group_of = [&map](const std::string& dc, uint32_t s) -> const std::vector<NodeId>& {
        for (size_t g = 0; g < map.group_count(); ++g) {
          if (map.group(g).datacenter == dc && map.group(g).shard == s) return map.group(g).replicas;
        }
        throw std::logic_error("deploy: no group " + dc + "/" + std::to_string(s));
      };
      c.streams.clear();
      for (const DatacenterSpec& dc : d.spec().datacenters) {
        if (dc.name == n.datacenter) continue;
        for (uint32_t s = 0; s < d.spec().kv_shards_per_datacenter; ++s) {
          c.streams.push_back(repl::StreamSpec{dc.name, s, group_of(dc.name, s), group_of(n.datacenter, s)});
        }
      }
      const std::vector<NodeId> peers = d.nodes_of(Role::repl, n.datacenter);
      c.consumers = static_cast<uint32_t>(peers.size());
      for (size_t i = 0; i < peers.size(); ++i) {
        if (peers[i] == id) c.index = static_cast<uint32_t>(i);
      }
      return std::make_unique<repl::Replicator>(rt, std::move(c));
    }
    case Role::login: {
      login::LoginServiceConfig c = t.login;
      c.directory = d.directory();
      c.locality = rpc::Locality{n.datacenter, n.zone};
      return std::make_unique<login::LoginService>(rt, std::move(c));
    }
  }
  throw std::logic_error("deploy: node " + to_string(id) + " has an unknown role");
}

seqsvr::SeqClientConfig seq_client_config(const Deployment& d, std::string_view datacenter) {
  seqsvr::SeqClientConfig c;
  c.allocators = d.nodes_of(Role::seqsvr, datacenter);
  c.section_size = d.spec().templates.seqsvr.section_size;
  return c;
}

}  // namespace wx::deploy
