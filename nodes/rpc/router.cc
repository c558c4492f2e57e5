#include "nodes/rpc/router.h"

#include <algorithm>
#include <set>

namespace wx::rpc {

const std::vector<Instance>& ServiceDirectory::instances(std::string_view service) const {
  static const std::vector<Instance> kNone;
  auto it = services_.find(service);
  return it == services_.end() ? kNone : it->second;
}

Router::Router(Runtime& rt, RpcEndpoint& endpoint, const ServiceDirectory& directory, Locality self,
               RouterConfig config)
    : rt_(rt), endpoint_(endpoint), directory_(directory), self_(std::move(self)), config_(config) {}

int Router::tier(const Instance& i) const {
  if (i.datacenter != self_.datacenter) return 2;
  return i.zone == self_.zone ? 0 : 1;
}

std::vector<NodeId> Router::candidates(std::string_view service) {
  const std::vector<Instance>& all = directory_.instances(service);
  if (all.empty()) return {};
  const uint64_t rr = round_robin_[std::string(service)]++;
  const TimePoint now = rt_.now();
  struct Ranked {
    int suspect, tier;
    size_t rotated;
    NodeId node;
  };
  std::vector<Ranked> ranked;
  for (size_t i = 0; i < all.size(); ++i) {
    auto s = suspect_until_.find(all[i].node);
    const bool suspect = s != suspect_until_.end() && s->second > now;
    ranked.push_back({suspect ? 1 : 0, tier(all[i]), (i + all.size() - rr % all.size()) % all.size(), all[i].node});
  }
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    if (a.suspect != b.suspect) return a.suspect < b.suspect;
    if (a.tier != b.tier) return a.tier < b.tier;
    return a.rotated < b.rotated;
  });
  std::vector<NodeId> out;
  for (const Ranked& r : ranked) out.push_back(r.node);
  return out;
}

Task<Result<std::string>> Router::call_raw(std::string service, const MethodSpec& spec, std::string payload,
                                           CallOptions options) {
  ++stats_.calls;
  const std::vector<NodeId> order = candidates(service);
  if (order.empty()) co_return Status{StatusCode::not_found, "no instances of service " + service};
  const TimePoint deadline = options.deadline_from(rt_.now());
  const bool idempotent = spec.idempotent == Idempotent::yes;
  const int attempts_max = idempotent ? std::max(1, config_.attempts_max) : 1;
  std::set<NodeId> tried;
  Result<std::string> last = Status{StatusCode::timeout, "deadline already passed"};
  for (int attempt = 0; attempt < attempts_max; ++attempt) {
    const TimePoint now = rt_.now();
    if (now >= deadline) break;
    // First untried candidate in the current preference order.
    std::vector<NodeId> current = attempt == 0 ? order : candidates(service);
    NodeId target = current.front();
    for (NodeId n : current) {
      if (!tried.count(n)) {
        target = n;
        break;
      }
    }
    tried.insert(target);
    if (attempt > 0) {
      ++stats_.retries;
      if (target != order.front()) ++stats_.failovers;
    }
    ++stats_.attempts;
    CallOptions o = options;
    o.timeout = Duration::max();
    // Split what is left over the attempts left, so a silent instance does
    // not eat the whole budget of an idempotent call.
    const int attempts_left = attempts_max - attempt;
    o.deadline = now + (deadline - now) / attempts_left;
    last = co_await endpoint_.call_raw(target, spec, payload, std::move(o));
    if (last.ok()) {
      suspect_until_.erase(target);
      co_return last;
    }
    if (last.code() == StatusCode::timeout || last.code() == StatusCode::unavailable) {
      suspect_until_[target] = rt_.now() + config_.suspect_for;
    }
    if (!idempotent || !last.status().retryable() || attempt + 1 == attempts_max) break;
    // Exponential backoff with jitter, never past the deadline.
    Duration backoff = config_.backoff_initial * (int64_t{1} << std::min(attempt, 20));
    if (backoff > config_.backoff_max) backoff = config_.backoff_max;
    backoff = nanoseconds(backoff.ns() / 2 + static_cast<int64_t>(rt_.rng().uniform(static_cast<uint64_t>(backoff.ns() / 2 + 1))));
    if (rt_.now() + backoff >= deadline) break;
    co_await rt_.sleep(backoff);
  }
  co_return last;
}

}  // namespace wx::rpc
