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
// and before the commit). Safety of the queue does NOT rest on the lease: the
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
  uint32_t index = 0;      // this consumer's index among `consumers`
  uint32_t consumers = 1;  // consumers of the deployment
  // Per KV call of the lease loop.
  Duration call_budget = milliseconds(300);
};

struct LeaseStats {
  uint64_t claims = 0, takeovers = 0, renewals = 0, lost = 0, kv_writes = 0;
};

class LeaseKeeper {
 public:
  LeaseKeeper(Runtime& rt, QueueStore& store, LeaseConfig config);
  // Spawns the lease loop (call from Node::start).
  void start();
  // Queue q is ours and the lease is valid now (local clock).
  bool holds(uint32_t q) const;
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
