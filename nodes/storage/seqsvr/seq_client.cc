#include "nodes/storage/seqsvr/seq_client.h"

#include <algorithm>
#include <utility>

namespace wx::seqsvr {

SeqClient::SeqClient(Runtime& rt, rpc::RpcEndpoint& endpoint, SeqClientConfig config)
    : rt_(rt), endpoint_(endpoint), config_(std::move(config)) {}

void SeqClient::merge(const AllocReply& reply) {
  for (const MapEntry& e : reply.map()) {
    MapEntry& cur = map_[e.section()];
    if (e.epoch() > cur.epoch()) cur = e;
  }
  map_version_ = 0;
  for (const auto& [_, e] : map_) map_version_ += e.epoch();
}

Task<SeqResult> SeqClient::alloc(uint64_t uid) {
  SeqResult out;
  const uint64_t s = uid / config_.section_size;
  const TimePoint deadline = rt_.now() + config_.call_timeout;
  const size_t n = config_.allocators.size();
  if (n == 0) co_return out;
  size_t rotate = 0;     // added to the preferred index when no holder is known
  bool use_hint = true;  // false after the hinted holder failed to answer
  while (rt_.now() < deadline) {
    NodeId target = config_.allocators[(s + rotate) % n];
    auto it = map_.find(s);
    if (use_hint && it != map_.end() && it->second.holder() != 0) target = NodeId{it->second.holder()};
    AllocRequest req;
    req.set_uid(uid);
    req.set_map_version(map_version_);
    rpc::CallOptions opts;
    opts.timeout = std::min(config_.attempt_timeout, deadline - rt_.now());
    ++out.attempts;
    rpc::Result<AllocReply> r = co_await endpoint_.call<AllocReply>(target, kAllocMethod, req, opts);
    if (r.ok()) {
      const AllocReply& rep = r.value();
      merge(rep);
      if (rep.code() == OK) {
        out.ok = true;
        out.seq = rep.seq();
        co_return out;
      }
      if (rep.code() == NOT_OWNER) {
        ++redirects_;
        auto m = map_.find(s);
        if (m != map_.end() && m->second.holder() != 0 && m->second.holder() != target.value) {
          use_hint = true;
          continue;  // go to the new holder at once
        }
        use_hint = false;
        ++rotate;
      }
      // NOT_READY, or NOT_OWNER without a better hint: back off.
    } else if (!r.status().retryable()) {
      co_return out;  // e.g. invalid_argument: a uid outside every section
    } else {
      use_hint = false;
      ++rotate;
    }
    if (rt_.now() + config_.retry_backoff >= deadline) break;
    co_await rt_.sleep(config_.retry_backoff);
    if (r.ok() && r.value().code() == NOT_READY) continue;
  }
  co_return out;
}

}  // namespace wx::seqsvr
