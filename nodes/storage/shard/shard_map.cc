#include "nodes/storage/shard/shard_map.h"

#include <cstdint>
#include <set>
#include <stdexcept>
#include <utility>

#include "nodes/runtime/random.h"

namespace wx::shard {

namespace {

// A canonical decimal uid: non-empty digits, no leading zero (except "0"),
// no overflow.
std::optional<uint64_t> parse_uid(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  if (text.size() > 1 && text[0] == '0') return std::nullopt;
  uint64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(ch - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

}  // namespace

std::optional<uint64_t> user_of_key(std::string_view key) {
  // Prefixes followed by "<uid>/<anything>".
  static constexpr std::string_view kNested[] = {"inbox/", "c/", "msgsent/", "msgdlv/"};
  // Prefixes followed by exactly "<uid>".
  static constexpr std::string_view kWhole[] = {"inboxhead/", "cv/"};
  for (std::string_view p : kNested) {
    if (key.substr(0, p.size()) != p) continue;
    const std::string_view rest = key.substr(p.size());
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    return parse_uid(rest.substr(0, slash));
  }
  for (std::string_view p : kWhole) {
    if (key.substr(0, p.size()) != p) continue;
    return parse_uid(key.substr(p.size()));
  }
  return std::nullopt;
}

std::string ShardMap::validate(const ShardMapConfig& config) {
  if (config.shards_per_datacenter == 0) return "shards_per_datacenter is 0";
  std::set<std::pair<std::string, uint32_t>> seen;
  std::set<std::string> dcs;
  for (const ShardGroup& g : config.groups) {
    if (g.shard >= config.shards_per_datacenter)
      return "shard index out of range in " + g.datacenter;
    if (g.replicas.empty()) return "group without replicas in " + g.datacenter;
    if (!seen.insert({g.datacenter, g.shard}).second) return "duplicate group in " + g.datacenter;
    dcs.insert(g.datacenter);
  }
  if (seen.size() != dcs.size() * config.shards_per_datacenter)
    return "a datacenter is missing shards";
  for (const auto& [uid, dc] : config.home_datacenter) {
    if (dcs.count(dc) == 0)
      return "uid " + std::to_string(uid) + " homed in unknown datacenter " + dc;
  }
  if (!config.default_datacenter.empty() && dcs.count(config.default_datacenter) == 0) {
    return "unknown default datacenter " + config.default_datacenter;
  }
  return "";
}

ShardMap::ShardMap(ShardMapConfig config) : config_(std::move(config)) {
  if (std::string err = validate(config_); !err.empty())
    throw std::invalid_argument("ShardMap: " + err);
  for (GroupIndex i = 0; i < config_.groups.size(); ++i) {
    by_dc_shard_[{config_.groups[i].datacenter, config_.groups[i].shard}] = i;
    if (config_.groups[i].datacenter != config_.groups[0].datacenter) multi_datacenter_ = true;
  }
}

uint32_t ShardMap::shard_of(uint64_t uid) const {
  return static_cast<uint32_t>(fnv1a64(std::to_string(uid)) % config_.shards_per_datacenter);
}

std::optional<std::string> ShardMap::home_of(uint64_t uid) const {
  auto it = config_.home_datacenter.find(uid);
  if (it != config_.home_datacenter.end()) return it->second;
  if (!config_.default_datacenter.empty()) return config_.default_datacenter;
  return std::nullopt;
}

std::optional<GroupIndex> ShardMap::group_of(uint64_t uid) const {
  std::optional<std::string> dc = home_of(uid);
  if (!dc) return std::nullopt;
  auto it = by_dc_shard_.find({*dc, shard_of(uid)});
  if (it == by_dc_shard_.end()) return std::nullopt;  // unreachable for a valid map
  return it->second;
}

ShardedKvClient::Lease::Lease(ShardedKvClient* owner, GroupIndex group,
                              std::unique_ptr<kv::KvClient> client)
    : owner_(owner), group_(group), client_(std::move(client)) {}

ShardedKvClient::Lease::Lease(Lease&& o) noexcept
    : owner_(o.owner_), group_(o.group_), client_(std::move(o.client_)) {}

ShardedKvClient::Lease& ShardedKvClient::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    if (client_) owner_->give_back(group_, std::move(client_));
    owner_ = o.owner_;
    group_ = o.group_;
    client_ = std::move(o.client_);
  }
  return *this;
}

ShardedKvClient::Lease::~Lease() {
  if (client_) owner_->give_back(group_, std::move(client_));
}

ShardedKvClient::ShardedKvClient(Runtime& rt, rpc::RpcEndpoint& endpoint,
                                 std::shared_ptr<const ShardMap> map, ShardedKvClientConfig config)
    : rt_(rt),
      endpoint_(endpoint),
      map_(std::move(map)),
      config_(config),
      idle_(map_->group_count()) {}

std::optional<ShardedKvClient::Lease> ShardedKvClient::lease_for_user(uint64_t uid) {
  std::optional<GroupIndex> g = map_->group_of(uid);
  if (!g) return std::nullopt;
  std::vector<std::unique_ptr<kv::KvClient>>& pool = idle_[*g];
  if (!pool.empty()) {
    std::unique_ptr<kv::KvClient> c = std::move(pool.back());
    pool.pop_back();
    return Lease(this, *g, std::move(c));
  }
  kv::KvClientConfig cc;
  cc.replicas = map_->group(*g).replicas;
  cc.call_timeout = config_.call_timeout;
  cc.attempt_timeout = config_.attempt_timeout;
  cc.retry_backoff = config_.retry_backoff;
  ++clients_created_;
  return Lease(this, *g, std::make_unique<kv::KvClient>(rt_, endpoint_, cc));
}

void ShardedKvClient::give_back(GroupIndex g, std::unique_ptr<kv::KvClient> c) {
  if (idle_[g].size() < kIdleKvClientsPerGroupMax) idle_[g].push_back(std::move(c));
}

}  // namespace wx::shard
