// Sharding of the per-user data (docs/storage.md, "Sharding and data-access
// services"): ShardMap says which KV group owns a user's records, and
// ShardedKvClient routes each call to that group's KvClient.
//
// Every datacenter holds `shards_per_datacenter` KV groups (three replicas,
// one per zone, inside that datacenter). A user's records live in the user's
// HOME datacenter (from the directory in ShardMapConfig), in shard
// fnv1a64(decimal uid) % shards_per_datacenter. All keys of one user share one
// group, so per-user prefix scans and per-user version keys stay inside one
// consensus group. Writes go only to the home datacenter; the replicator
// (nodes/storage/repl/) copies a user's records to the other datacenters
// asynchronously, recognising them by user_of_key().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/logic/ticket/ticket.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/storage/kv/kv_client.h"

namespace wx::shard {

// One KV group: the replicas of shard `shard` of datacenter `datacenter`.
struct ShardGroup {
  std::string datacenter;
  uint32_t shard = 0;
  std::vector<NodeId> replicas;  // in replica-id order (KvReplicaConfig::members)
};

struct ShardMapConfig {
  uint32_t shards_per_datacenter = 1;
  // Exactly one group per (datacenter, shard index < shards_per_datacenter).
  std::vector<ShardGroup> groups;
  // The directory: uid → home datacenter.
  std::map<uint64_t, std::string> home_datacenter;
  // Home of a uid not in the directory; empty: such a uid has no home and is
  // refused.
  std::string default_datacenter;
};

// The uid whose per-user record `key` is, or nullopt if the key is not a
// per-user record. Recognised (uid in canonical decimal: digits, no leading
// zero unless "0", fits in 64 bits):
//   inbox/<uid>/...     inboxhead/<uid>       (inbox_service.h)
//   c/<uid>/...         cv/<uid>              (contacts_service.h)
//   msgsent/<uid>/...   msgdlv/<uid>/...      (msg_service.h: sent and delivery records)
// Everything else (queue/, fanout/, acct*, seqsvr's keys, repl/ cursors and
// leases) is not a user record.
std::optional<uint64_t> user_of_key(std::string_view key);

// Index into ShardMap::groups().
using GroupIndex = size_t;

class ShardMap {
 public:
  // Checks the config; an empty string means valid, else what is wrong.
  static std::string validate(const ShardMapConfig& config);
  // Throws std::invalid_argument if validate() finds a problem.
  explicit ShardMap(ShardMapConfig config);

  // The shard index of a uid within its home datacenter (stable hash).
  uint32_t shard_of(uint64_t uid) const;
  // Home datacenter of a uid; nullopt if it has none.
  std::optional<std::string> home_of(uint64_t uid) const;
  // The group owning the uid's records; nullopt if the uid has no home.
  std::optional<GroupIndex> group_of(uint64_t uid) const;
  const ShardGroup& group(GroupIndex g) const { return config_.groups[g]; }
  size_t group_count() const { return config_.groups.size(); }
  // Groups in more than one datacenter (users may be homed in several).
  bool multi_datacenter() const { return multi_datacenter_; }

 private:
  ShardMapConfig config_;
  std::map<std::pair<std::string, uint32_t>, GroupIndex> by_dc_shard_;
  bool multi_datacenter_ = false;
};

struct ShardedKvClientConfig {
  // Per KV call (each KvClient retries within it).
  Duration call_timeout = milliseconds(800);
  Duration attempt_timeout = milliseconds(250);
  Duration retry_backoff = milliseconds(20);
};

// Idle KvClients kept per group for reuse (each in-flight user of a group
// holds its own client).
inline constexpr size_t kIdleKvClientsPerGroupMax = 16;

// Routes calls to the owning group's KvClient. A KvClient issues one call at
// a time, so callers LEASE a client of the user's group for the duration of
// their work (several calls in sequence, e.g. a CAS re-issued from the same
// client to fence an unknown one); clients are created lazily per group, each
// with its own client id, and pooled when the lease ends. Node code: one
// ShardedKvClient per node, on the node's endpoint.
class ShardedKvClient {
 public:
  class Lease {
   public:
    Lease(ShardedKvClient* owner, GroupIndex group, std::unique_ptr<kv::KvClient> client);
    Lease(Lease&& o) noexcept;
    Lease& operator=(Lease&& o) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    kv::KvClient* get() { return client_.get(); }
    kv::KvClient* operator->() { return client_.get(); }
    GroupIndex group() const { return group_; }

   private:
    ShardedKvClient* owner_;
    GroupIndex group_;
    std::unique_ptr<kv::KvClient> client_;
  };

  ShardedKvClient(Runtime& rt, rpc::RpcEndpoint& endpoint, std::shared_ptr<const ShardMap> map,
                  ShardedKvClientConfig config = {});

  // A client of the uid's group; nullopt if the uid has no home.
  std::optional<Lease> lease_for_user(uint64_t uid);
  const ShardMap& map() const { return *map_; }
  // KvClients created so far, all groups.
  uint64_t clients_created() const { return clients_created_; }

 private:
  void give_back(GroupIndex g, std::unique_ptr<kv::KvClient> c);

  Runtime& rt_;
  rpc::RpcEndpoint& endpoint_;
  std::shared_ptr<const ShardMap> map_;
  ShardedKvClientConfig config_;
  std::vector<std::vector<std::unique_ptr<kv::KvClient>>> idle_;  // per group
  uint64_t clients_created_ = 0;
};

// What every data-access service over the sharded store (contacts, inbox,
// later ones) is configured with.
struct DataServiceConfig {
  std::shared_ptr<const ShardMap> shards;
  std::string zone;  // for logs
  rpc::ServerConfig server;
  // Longest a request works before answering (further capped by the caller's
  // deadline minus reply_margin).
  Duration request_budget = seconds(3);
  Duration reply_margin = milliseconds(50);
  ShardedKvClientConfig kv;
  // Pause (jittered) between rounds of a step that got no definite answer or
  // lost a race.
  Duration retry_pause = milliseconds(20);
  // The ticket keys (docs/tickets.md, "Every hop"). Empty (no keys): the
  // service checks no tickets (storage-only tests and deployments). With
  // keys, every request must carry a ticket (rpc CallContext::ticket) of the
  // user it acts for; make_node fills them in from the msg / access / group
  // templates when the deployment has them.
  ticket::KeyRingConfig keys;
};

}  // namespace wx::shard
