// LeaseKeeper: exactly one consumer per queue at a time, by a lease record
// in the store (queue/<q>/lease, QueueLease) — the scheme of seqsvr's
// section leases (docs/seqsvr.md "Leases"), reused for queues.
//
// Every renew_interval the keeper reads each queue's lease record and:
//   * ours (holder = this node, our incarnation): renews it (CAS,
//     renewals + 1); on success the queue is ours until start + N (N =
//     lease_duration, `start` = local time the renewal was sent); a lost CAS
//     drops it at once;
//   * absent, or naming an earlier incarnation of this node: claimed at once
//     by the preferred consumer (q % consumers == index), by the others only
//     after the takeover wait (below) plus preference_delay;
//   * someone else's: taken over (CAS, epoch + 1) only after the record has
//     been seen UNCHANGED (same KV version) for the takeover wait
//     W = N × (1 + drift%) + takeover_margin of our clock, so the old
//     holder's lease (N of its clock from a renewal that started before we
//     first saw that version) has ended — assuming clock rates differ by less
//     than the drift margin (docs/seqsvr.md "Clock drift").
// A consumer acts on a queue only while holds(q) (checked before each item
// and before the commit).
//
// Yielding: holding a lease only says the holder can reach the KV group, not
// that it can do the queue's work (a gray failure: its connections to
// seqsvr or to the inboxes may be stalled while the KV answers). A consumer
// that makes no progress calls yield(q): it stops acting on q at once and
// neither renews nor claims q for `yield_for`, so the record stays unchanged
// and another consumer takes over after its takeover wait. If nobody did by
// the end of the yield (no other consumer is alive), the record still names
// this incarnation and the keeper simply renews it again. Safety of the queue does NOT rest on the lease: the
// commit is a CAS from the version read and fan-out is idempotent, so two
// consumers at once only cost duplicate work; the lease gives one consumer
// per queue (order, no wasted work). Node code.
#pragma once

#include <cstdint>
#include <vector>

#include "nodes/logic/queue/queue_store.h"

namespace wx::queue {

struct LeaseConfig {
  Duration lease_duration = seconds(2);
  Duration renew_interval = milliseconds(400);
  int64_t clock_drift_margin_percent = 10;
  Duration takeover_margin = milliseconds(200);
  Duration preference_delay = seconds(1);
  // How long yield(q) leaves q alone; must exceed the others' takeover wait
  // plus preference_delay plus a renew_interval (default 2.4 + 1 + 0.4 s).
  Duration yield_for = seconds(8);
  uint32_t index = 0;      // this consumer's index among `consumers`
  uint32_t consumers = 1;  // consumers of the deployment
  // Per KV call of the lease loop.
  Duration call_budget = milliseconds(300);
};

struct LeaseStats {
  uint64_t claims = 0, takeovers = 0, renewals = 0, lost = 0, kv_writes = 0;
  uint64_t yields = 0;  // yield() calls on a held queue
};

class LeaseKeeper {
 public:
  LeaseKeeper(Runtime& rt, QueueStore& store, LeaseConfig config);
  // Spawns the lease loop (call from Node::start).
  void start();
  // Queue q is ours and the lease is valid now (local clock).
  bool holds(uint32_t q) const;
  // Gives q up (see "Yielding" above): holds(q) is false from now on, and q
  // is neither renewed nor claimed for config.yield_for.
  void yield(uint32_t q);
  bool yielding(uint32_t q) const { return rt_.now() < queues_.at(q).yield_until; }
  uint64_t epoch(uint32_t q) const { return queues_.at(q).epoch; }
  Duration takeover_wait() const;
  const LeaseStats& stats() const { return stats_; }

 private:
  struct PerQueue {
    bool held = false;
    TimePoint valid_until;
    uint64_t epoch = 0;
    uint64_t seen_version = ~0ULL;  // version observed (~0: none yet)
    TimePoint seen_since;
    TimePoint yield_until;  // no renewal, no claim before (yield())
  };
  Task<void> loop();
  Task<void> step(uint32_t q);
  Task<bool> write(uint32_t q, uint64_t version, const QueueLease& rec);

  Runtime& rt_;
  QueueStore& store_;
  LeaseConfig config_;
  uint64_t incarnation_ = 0;
  std::vector<PerQueue> queues_;
  LeaseStats stats_;
};

}  // namespace wx::queue
