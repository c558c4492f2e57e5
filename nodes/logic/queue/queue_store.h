// QueueStore: a durable, Paxos-replicated FIFO queue kept in the KV store
// (PhxQueue-like; docs/messaging.md "Group chat").
//
// A deployment has `queues` queues, numbered 0..queues-1. Queue q lives in
// one KV group (three replicas in three zones): shard q % shards of the FIRST
// datacenter, like seqsvr's records — so a queue survives one zone down.
// Keys of queue q (records in queue.proto):
//   queue/<q>/tail            QueueTail   next offset (items ever enqueued)
//   queue/<q>/item/<offset>   QueueItem   offset zero-padded to 20 digits
//   queue/<q>/dedup/<id>      QueueDedup  offset the producer id got
//   queue/<q>/commit          QueueCommit the consumer's committed offset
//   queue/<q>/lease           QueueLease  (lease_keeper.h)
//
//   * enqueue(q, id, payload): reads tail (n, version vt) and commit (c);
//     n - c ≥ length_max → full (nothing written); else ONE KV txn:
//     conditions tail@vt and dedup/<id> absent, writes tail = n + 1,
//     item n, dedup/<id> = n. A lost race on the tail retries; the dedup
//     condition failing means the id is already in the queue (duplicate,
//     with its offset) — so retrying an enqueue whose outcome was unknown
//     never enqueues twice. An unknown txn is re-issued from the same
//     KvClient (same request id: applied at most once; a newer write fences it).
//   * read_batch(q, max): the committed offset c (and the commit record's
//     version) and the items c, c+1, … (≤ max) in offset order.
//   * commit(q, version, offset): CAS of the commit record from the version
//     read: progress only moves forward from what the consumer read, so a
//     stale consumer cannot move it back; a lost CAS means someone else
//     committed (the items will be, or were, consumed by them).
// Delivery is at-least-once: a consumer that crashes after consuming items
// but before the commit leaves them to be delivered again (consumers are
// idempotent). Items are never deleted (the KV store has no delete yet).
//
// Bounded: item payload ≤ kQueueItemBytesMax, queue length (enqueued and not
// committed) ≤ length_max (≤ kQueueLengthMax), batch ≤ kQueueBatchMax,
// queues ≤ kQueuesMax. Node code: the KV through a KvPool on the node's
// endpoint, time and randomness through the Runtime.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/logic/queue/kv_pool.h"
#include "nodes/logic/queue/queue.pb.h"
#include "nodes/runtime/runtime.h"
#include "nodes/runtime/task.h"

namespace wx::queue {

inline constexpr uint32_t kQueuesMax = 1024;
inline constexpr size_t kQueueItemBytesMax = 64 * 1024;
inline constexpr uint64_t kQueueLengthMax = 100'000;
inline constexpr uint32_t kQueueBatchMax = 256;
inline constexpr size_t kDedupIdBytesMax = 256;

struct QueueConfig {
  // Queues 0..queues-1 carry group messages; with several datacenters,
  // queues..queues+remote_queues-1 carry 1:1 messages to users homed in
  // another datacenter (docs/multi-dc.md "Cross-datacenter messages"), so a
  // partition that holds those up never holds up a group queue behind them.
  // 0: remote messages share the group queues.
  uint32_t queues = 8;
  uint32_t remote_queues = 0;
  uint64_t length_max = 10'000;  // ≤ kQueueLengthMax
  Duration retry_pause = milliseconds(20);
};

enum class EnqueueCode : uint8_t {
  ok,         // enqueued now at `offset`
  duplicate,  // the id was already enqueued, at `offset`
  full,       // length_max items wait: nothing written (definite)
  invalid,    // payload or id too large, queue out of range (definite)
  unknown,    // no definite answer by the deadline: retry with the same id
};
std::string_view to_string(EnqueueCode code);

struct EnqueueResult {
  EnqueueCode code = EnqueueCode::unknown;
  uint64_t offset = 0;
};

struct Batch {
  uint64_t committed = 0;       // the first item's offset
  uint64_t commit_version = 0;  // KV version of the commit record (0: none yet)
  uint64_t tail = 0;            // next offset when read (items below it exist)
  std::vector<QueueItem> items; // offsets committed, committed + 1, …
};

struct QueueStats {
  uint64_t enqueues = 0, enqueued = 0, duplicates = 0, full = 0, tail_races = 0;
  uint64_t kv_writes = 0;  // txn + cas calls issued (each one KV command when applied)
  uint64_t commits = 0, commit_races = 0;
};

std::string queue_key(uint32_t q, std::string_view what);
std::string item_key(uint32_t q, uint64_t offset);
// FNV-1a 64 of the decimal id % queues: the queue of a group id.
uint32_t queue_for(uint64_t id, uint32_t queues);

class QueueStore {
 public:
  // `pool` must outlive the store.
  QueueStore(Runtime& rt, KvPool& pool, QueueConfig config);

  // Every queue (group and remote ones).
  uint32_t queues() const { return config_.queues + config_.remote_queues; }
  uint32_t group_queues() const { return config_.queues; }
  // The queue of a 1:1 message to `to`, homed in another datacenter.
  uint32_t remote_queue_for(uint64_t to) const;
  // The KV group holding queue q's records.
  shard::GroupIndex group_of(uint32_t q) const;

  Task<EnqueueResult> enqueue(uint32_t q, std::string dedup_id, std::string payload, TimePoint deadline);
  // nullopt: no definite read by the deadline.
  Task<std::optional<Batch>> read_batch(uint32_t q, uint32_t max, TimePoint deadline);
  // true: committed; false: lost the CAS (someone else committed) or no
  // definite answer by the deadline (`*raced` tells which when given).
  Task<bool> commit(uint32_t q, uint64_t commit_version, uint64_t offset, TimePoint deadline,
                    bool* raced = nullptr);

  const QueueStats& stats() const { return stats_; }
  KvPool& pool() { return pool_; }

 private:
  Task<void> pause();
  Runtime& rt_;
  KvPool& pool_;
  QueueConfig config_;
  QueueStats stats_;
};

}  // namespace wx::queue
