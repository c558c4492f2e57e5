// KvPool: KvClients per KV group, for records that are not a user's (queues,
// groups, fan-out records), placed by an id over the FIRST datacenter's
// shards — the way seqsvr and account place theirs (docs/deployment.md).
//
// A KvClient issues one call at a time, so a caller LEASES one for its
// sequence of calls (re-issuing an unknown CAS/txn from the same client is
// what fences it) and the client returns to a per-group idle pool (at most
// kKvPoolIdlePerGroupMax) when the lease ends. Clients are created lazily,
// each with its own client id from the incarnation's rng. Node code.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "nodes/rpc/endpoint.h"
#include "nodes/storage/kv/kv_client.h"
#include "nodes/storage/shard/shard_map.h"

namespace wx::queue {

inline constexpr size_t kKvPoolIdlePerGroupMax = 32;

// FNV-1a 64 over bytes (stable across processes and runs).
uint64_t fnv1a64(std::string_view bytes);

class KvPool {
 public:
  class Lease {
   public:
    Lease(KvPool* owner, shard::GroupIndex group, std::unique_ptr<kv::KvClient> client)
        : owner_(owner), group_(group), client_(std::move(client)) {}
    Lease(Lease&& o) noexcept : owner_(o.owner_), group_(o.group_), client_(std::move(o.client_)) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (client_) owner_->give_back(group_, std::move(client_));
    }
    kv::KvClient* operator->() { return client_.get(); }
    kv::KvClient* get() { return client_.get(); }

   private:
    KvPool* owner_;
    shard::GroupIndex group_;
    std::unique_ptr<kv::KvClient> client_;
  };

  // `local_datacenter`: the datacenter whose groups group_at() picks from
  // (the queues of a msg / fan-out node live in its own datacenter); empty:
  // the first datacenter (the datacenter of the map's group 0).
  KvPool(Runtime& rt, rpc::RpcEndpoint& endpoint, std::shared_ptr<const shard::ShardMap> map,
         shard::ShardedKvClientConfig config = {}, std::string local_datacenter = {});

  Lease lease(shard::GroupIndex group);
  // The group of an id: shard fnv1a64(decimal id) % n over the first
  // datacenter's n groups (the datacenter of the map's group 0).
  shard::GroupIndex group_for_id(uint64_t id) const;
  // The i-th (mod n) group of the local datacenter.
  shard::GroupIndex group_at(uint64_t i) const { return local_dc_groups_[i % local_dc_groups_.size()]; }
  const shard::ShardMap& map() const { return *map_; }

 private:
  void give_back(shard::GroupIndex g, std::unique_ptr<kv::KvClient> c);
  Runtime& rt_;
  rpc::RpcEndpoint& endpoint_;
  std::shared_ptr<const shard::ShardMap> map_;
  shard::ShardedKvClientConfig config_;
  std::vector<shard::GroupIndex> first_dc_groups_;  // by shard index
  std::vector<shard::GroupIndex> local_dc_groups_;  // by shard index
  std::vector<std::vector<std::unique_ptr<kv::KvClient>>> idle_;
};

}  // namespace wx::queue
