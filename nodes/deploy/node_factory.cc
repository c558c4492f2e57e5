#include "nodes/deploy/node_factory.h"

#include <stdexcept>

#include "nodes/storage/account/account_service.h"
#include "nodes/storage/contacts/contacts_service.h"
#include "nodes/storage/inbox/inbox_service.h"
#include "nodes/storage/kv/kv_replica.h"
#include "nodes/storage/seqsvr/alloc_server.h"

namespace wx::deploy {

std::unique_ptr<Node> make_node(Runtime& rt, const Deployment& d, NodeId id, StartOptions options) {
  const NodeDesc& n = d.node(id);
  const ServiceTemplates& t = d.spec().templates;
  switch (n.role) {
    case Role::kv: {
      kv::KvReplicaConfig c = t.kv;
      c.members = d.shard_map()->group(n.group).replicas;
      c.self_index = n.index;
      c.bootstrap = options.bootstrap;
      return std::make_unique<kv::KvReplica>(rt, std::move(c));
    }
    case Role::seqsvr: {
      seqsvr::AllocSvrConfig c = t.seqsvr;
      c.kv_replicas = d.global_group().replicas;
      c.allocators = d.nodes_of(Role::seqsvr);
      return std::make_unique<seqsvr::AllocSvr>(rt, std::move(c));
    }
    case Role::account: {
      account::AccountServiceConfig c = t.account;
      c.kv_replicas = d.global_group().replicas;
      c.zone = n.zone;
      return std::make_unique<account::AccountService>(rt, std::move(c));
    }
    case Role::contacts: {
      contacts::ContactsServiceConfig c = t.data;
      c.shards = d.shard_map();
      c.zone = n.zone;
      return std::make_unique<contacts::ContactsService>(rt, std::move(c));
    }
    case Role::inbox: {
      inbox::InboxServiceConfig c = t.data;
      c.shards = d.shard_map();
      c.zone = n.zone;
      return std::make_unique<inbox::InboxService>(rt, std::move(c));
    }
  }
  throw std::logic_error("deploy: node " + to_string(id) + " has an unknown role");
}

seqsvr::SeqClientConfig seq_client_config(const Deployment& d) {
  seqsvr::SeqClientConfig c;
  c.allocators = d.nodes_of(Role::seqsvr);
  c.section_size = d.spec().templates.seqsvr.section_size;
  return c;
}

}  // namespace wx::deploy
