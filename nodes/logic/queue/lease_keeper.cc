// LeaseKeeper: one consumer per queue by a lease record (see lease_keeper.h).
#include "nodes/logic/queue/lease_keeper.h"

namespace wx::queue {

LeaseKeeper::LeaseKeeper(Runtime& rt, QueueStore& store, LeaseConfig config)
    : rt_(rt), store_(store), config_(config), queues_(store.queues()) {
  if (config_.consumers == 0) config_.consumers = 1;
  incarnation_ = rt_.rng().next_u64() | 1;  // never 0
}

void LeaseKeeper::start() { rt_.spawn(loop(), "queue-lease"); }

Duration LeaseKeeper::takeover_wait() const {
  return config_.lease_duration + config_.lease_duration * config_.clock_drift_margin_percent / 100 +
         config_.takeover_margin;
}

bool LeaseKeeper::holds(uint32_t q) const {
  const PerQueue& p = queues_.at(q);
  return p.held && rt_.now() < p.valid_until;
}

void LeaseKeeper::yield(uint32_t q) {
  PerQueue& p = queues_.at(q);
  if (p.held) ++stats_.yields;
  p.held = false;
  p.yield_until = rt_.now() + config_.yield_for;
}

Task<void> LeaseKeeper::loop() {
  for (;;) {
    for (uint32_t q = 0; q < queues_.size(); ++q) co_await step(q);
    co_await rt_.sleep(config_.renew_interval);
  }
}

Task<bool> LeaseKeeper::write(uint32_t q, uint64_t version, const QueueLease& rec) {
  KvPool::Lease kv = store_.pool().lease(store_.group_of(q));
  ++stats_.kv_writes;
  kv::KvResult r = co_await kv->cas(queue_key(q, "lease"), version, rec.SerializeAsString());
  co_return r.code == kv::KvResultCode::ok;
}

Task<void> LeaseKeeper::step(uint32_t q) {
  PerQueue& p = queues_[q];
  if (yielding(q)) co_return;  // left alone: the record stays unchanged for the others
  const TimePoint start = rt_.now();
  kv::KvResult g;
  {
    KvPool::Lease kv = store_.pool().lease(store_.group_of(q));
    g = co_await kv->get(queue_key(q, "lease"));
  }
  if (g.code != kv::KvResultCode::ok) co_return;  // unreachable: the lease runs out by itself
  QueueLease rec;
  if (g.found && !rec.ParseFromString(g.value)) co_return;
  const uint64_t me = rt_.node_id().value;
  const bool mine = g.found && rec.holder() == me && rec.incarnation() == incarnation_;
  if (mine) {
    QueueLease next = rec;
    next.set_renewals(rec.renewals() + 1);
    if (co_await write(q, g.version, next)) {
      ++stats_.renewals;
      if (yielding(q)) co_return;  // yielded while the renewal was in flight
      p.held = true;
      p.epoch = rec.epoch();
      p.valid_until = start + config_.lease_duration;
    } else if (!holds(q)) {
      // Unknown outcome past validity, or lost: drop it; the loop re-reads.
      p.held = false;
    }
    co_return;
  }
  if (p.held) {
    p.held = false;  // someone else holds it now
    ++stats_.lost;
  }
  if (g.version != p.seen_version) {
    p.seen_version = g.version;
    p.seen_since = rt_.now();
  }
  const bool preferred = q % config_.consumers == config_.index;
  const bool dead_self = g.found && rec.holder() == me;  // an earlier incarnation of this node
  Duration wait = takeover_wait();
  if (!preferred) wait += config_.preference_delay;
  const bool claim = (!g.found && preferred) || dead_self || rt_.now() - p.seen_since >= wait;
  if (!claim) co_return;
  QueueLease next;
  next.set_holder(me);
  next.set_incarnation(incarnation_);
  next.set_epoch(rec.epoch() + 1);
  next.set_renewals(0);
  const TimePoint claim_start = rt_.now();
  if (co_await write(q, g.version, next)) {
    if (g.found) ++stats_.takeovers;
    ++stats_.claims;
    if (yielding(q)) co_return;  // yielded while the claim was in flight: the record lapses
    p.held = true;
    p.epoch = next.epoch();
    p.valid_until = claim_start + config_.lease_duration;
  }
}

}  // namespace wx::queue
