// KvPool: pooled KvClients per KV group (see kv_pool.h).
#include "nodes/logic/queue/kv_pool.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace wx::queue {

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

KvPool::KvPool(Runtime& rt, rpc::RpcEndpoint& endpoint, std::shared_ptr<const shard::ShardMap> map,
               shard::ShardedKvClientConfig config, std::string local_datacenter)
    : rt_(rt), endpoint_(endpoint), map_(std::move(map)), config_(config) {
  if (!map_ || map_->group_count() == 0) throw std::invalid_argument("KvPool: no shard map");
  auto groups_of = [this](const std::string& dc) {
    std::vector<std::pair<uint32_t, shard::GroupIndex>> by_shard;
    for (shard::GroupIndex g = 0; g < map_->group_count(); ++g) {
      if (map_->group(g).datacenter == dc) by_shard.emplace_back(map_->group(g).shard, g);
    }
    std::sort(by_shard.begin(), by_shard.end());
    std::vector<shard::GroupIndex> out;
    for (const auto& [s, g] : by_shard) out.push_back(g);
    return out;
  };
  first_dc_groups_ = groups_of(map_->group(0).datacenter);
  local_dc_groups_ = local_datacenter.empty() ? first_dc_groups_ : groups_of(local_datacenter);
  if (local_dc_groups_.empty()) throw std::invalid_argument("KvPool: no groups in datacenter '" + local_datacenter + "'");
  idle_.resize(map_->group_count());
}

shard::GroupIndex KvPool::group_for_id(uint64_t id) const {
  return first_dc_groups_[fnv1a64(std::to_string(id)) % first_dc_groups_.size()];
}

KvPool::Lease KvPool::lease(shard::GroupIndex group) {
  std::vector<std::unique_ptr<kv::KvClient>>& idle = idle_.at(group);
  if (!idle.empty()) {
    std::unique_ptr<kv::KvClient> c = std::move(idle.back());
    idle.pop_back();
    return Lease(this, group, std::move(c));
  }
  kv::KvClientConfig kc;
  kc.replicas = map_->group(group).replicas;
  kc.call_timeout = config_.call_timeout;
  kc.attempt_timeout = config_.attempt_timeout;
  kc.retry_backoff = config_.retry_backoff;
  return Lease(this, group, std::make_unique<kv::KvClient>(rt_, endpoint_, kc));
}

void KvPool::give_back(shard::GroupIndex g, std::unique_ptr<kv::KvClient> c) {
  if (idle_[g].size() < kKvPoolIdlePerGroupMax) idle_[g].push_back(std::move(c));
}

}  // namespace wx::queue
