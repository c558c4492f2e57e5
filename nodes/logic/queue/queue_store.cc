// QueueStore: enqueue, read a batch, commit (see queue_store.h).
#include "nodes/logic/queue/queue_store.h"

#include <cstdio>
#include <utility>

namespace wx::queue {

std::string_view to_string(EnqueueCode code) {
  switch (code) {
    case EnqueueCode::ok: return "ok";
    case EnqueueCode::duplicate: return "duplicate";
    case EnqueueCode::full: return "full";
    case EnqueueCode::invalid: return "invalid";
    case EnqueueCode::unknown: return "unknown";
  }
  return "?";
}

std::string queue_key(uint32_t q, std::string_view what) {
  std::string k = "queue/" + std::to_string(q) + "/";
  k += what;
  return k;
}

std::string item_key(uint32_t q, uint64_t offset) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(offset));
  return queue_key(q, "item/") + buf;
}

uint32_t queue_for(uint64_t id, uint32_t queues) {
  return static_cast<uint32_t>(fnv1a64(std::to_string(id)) % (queues == 0 ? 1 : queues));
}

QueueStore::QueueStore(Runtime& rt, KvPool& pool, QueueConfig config) : rt_(rt), pool_(pool), config_(config) {
  if (config_.queues == 0 || config_.queues > kQueuesMax) config_.queues = 1;
  if (config_.remote_queues > kQueuesMax - config_.queues) config_.remote_queues = kQueuesMax - config_.queues;
  if (config_.length_max == 0 || config_.length_max > kQueueLengthMax) config_.length_max = kQueueLengthMax;
}

uint32_t QueueStore::remote_queue_for(uint64_t to) const {
  if (config_.remote_queues == 0) return queue_for(to, config_.queues);
  return config_.queues + queue_for(to, config_.remote_queues);
}

shard::GroupIndex QueueStore::group_of(uint32_t q) const { return pool_.group_at(q); }

Task<void> QueueStore::pause() {
  const int64_t ns = config_.retry_pause.ns();
  co_await rt_.sleep(nanoseconds(ns / 2 + static_cast<int64_t>(rt_.rng().uniform(static_cast<uint64_t>(ns) + 1))));
}

Task<EnqueueResult> QueueStore::enqueue(uint32_t q, std::string dedup_id, std::string payload, TimePoint deadline) {
  ++stats_.enqueues;
  if (q >= queues() || payload.size() > kQueueItemBytesMax || dedup_id.empty() ||
      dedup_id.size() > kDedupIdBytesMax) {
    co_return EnqueueResult{EnqueueCode::invalid, 0};
  }
  KvPool::Lease kv = pool_.lease(group_of(q));
  const std::string tail_key = queue_key(q, "tail");
  const std::string dedup_key = queue_key(q, "dedup/" + dedup_id);
  while (rt_.now() < deadline) {
    kv::KvResult t = co_await kv->get(tail_key);
    if (t.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    QueueTail tail;
    if (t.found && !tail.ParseFromString(t.value)) co_return EnqueueResult{EnqueueCode::invalid, 0};
    kv::KvResult c = co_await kv->get(queue_key(q, "commit"));
    if (c.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    QueueCommit commit;
    if (c.found && !commit.ParseFromString(c.value)) co_return EnqueueResult{EnqueueCode::invalid, 0};
    const uint64_t n = tail.next_offset();
    // The commit only grows, so a stale read only makes this more cautious.
    if (n - commit.committed() >= config_.length_max) {
      // Already enqueued earlier? Then it is not a refusal.
      kv::KvResult d = co_await kv->get(dedup_key);
      QueueDedup dd;
      if (d.code == kv::KvResultCode::ok && d.found && dd.ParseFromString(d.value)) {
        ++stats_.duplicates;
        co_return EnqueueResult{EnqueueCode::duplicate, dd.offset()};
      }
      if (d.code != kv::KvResultCode::ok) {
        co_await pause();
        continue;
      }
      ++stats_.full;
      co_return EnqueueResult{EnqueueCode::full, 0};
    }
    QueueTail next_tail;
    next_tail.set_next_offset(n + 1);
    QueueItem item;
    item.set_offset(n);
    item.set_dedup_id(dedup_id);
    item.set_payload(payload);
    QueueDedup dd;
    dd.set_offset(n);
    std::vector<kv::KvTxnCondition> conds{{tail_key, t.version}, {dedup_key, 0}};
    std::vector<kv::KvTxnWrite> writes{{tail_key, next_tail.SerializeAsString()},
                                       {item_key(q, n), item.SerializeAsString()},
                                       {dedup_key, dd.SerializeAsString()}};
    ++stats_.kv_writes;
    kv::KvTxnResult r = co_await kv->txn(conds, writes);
    // Unknown: the same txn again from the same client (applied at most once).
    while (r.code == kv::KvTxnCode::unknown && rt_.now() < deadline) {
      co_await pause();
      ++stats_.kv_writes;
      r = co_await kv->txn(conds, writes);
    }
    if (r.code == kv::KvTxnCode::ok) {
      ++stats_.enqueued;
      co_return EnqueueResult{EnqueueCode::ok, n};
    }
    if (r.code == kv::KvTxnCode::invalid) co_return EnqueueResult{EnqueueCode::invalid, 0};
    if (r.code == kv::KvTxnCode::unknown) break;
    bool dedup_failed = false;
    for (uint32_t i : r.failed_conditions) dedup_failed |= i == 1;
    if (!dedup_failed) {
      ++stats_.tail_races;
      continue;  // someone else appended: read the tail again
    }
    // Already enqueued (maybe by our own earlier, unknown attempt).
    while (rt_.now() < deadline) {
      kv::KvResult d = co_await kv->get(dedup_key);
      QueueDedup got;
      if (d.code == kv::KvResultCode::ok && d.found && got.ParseFromString(d.value)) {
        ++stats_.duplicates;
        co_return EnqueueResult{EnqueueCode::duplicate, got.offset()};
      }
      co_await pause();
    }
    break;
  }
  co_return EnqueueResult{EnqueueCode::unknown, 0};
}

Task<std::optional<Batch>> QueueStore::read_batch(uint32_t q, uint32_t max, TimePoint deadline) {
  if (q >= queues()) co_return std::nullopt;
  if (max == 0 || max > kQueueBatchMax) max = kQueueBatchMax;
  KvPool::Lease kv = pool_.lease(group_of(q));
  while (rt_.now() < deadline) {
    kv::KvResult c = co_await kv->get(queue_key(q, "commit"));
    if (c.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    Batch b;
    QueueCommit commit;
    if (c.found && !commit.ParseFromString(c.value)) co_return std::nullopt;
    b.committed = commit.committed();
    b.commit_version = c.version;
    kv::KvResult t = co_await kv->get(queue_key(q, "tail"));
    if (t.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    QueueTail tail;
    if (t.found && !tail.ParseFromString(t.value)) co_return std::nullopt;
    b.tail = tail.next_offset();
    if (b.tail <= b.committed) co_return b;
    const uint64_t want = std::min<uint64_t>(max, b.tail - b.committed);
    kv::KvScanResult s =
        co_await kv->scan("", item_key(q, b.committed), item_key(q, b.committed + want), static_cast<uint32_t>(want));
    if (s.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    uint64_t expect = b.committed;
    for (const kv::Item& it : s.items) {
      QueueItem item;
      // Items below the tail were written with it, atomically: a gap or a
      // bad record is a broken invariant; stop at it.
      if (!item.ParseFromString(it.value()) || item.offset() != expect) break;
      b.items.push_back(std::move(item));
      ++expect;
    }
    co_return b;
  }
  co_return std::nullopt;
}

Task<bool> QueueStore::commit(uint32_t q, uint64_t commit_version, uint64_t offset, TimePoint deadline, bool* raced) {
  if (raced != nullptr) *raced = false;
  KvPool::Lease kv = pool_.lease(group_of(q));
  QueueCommit next;
  next.set_committed(offset);
  const std::string key = queue_key(q, "commit");
  const std::string bytes = next.SerializeAsString();
  ++stats_.kv_writes;
  kv::KvResult r = co_await kv->cas(key, commit_version, bytes);
  while (r.code == kv::KvResultCode::unknown && rt_.now() < deadline) {
    co_await pause();
    ++stats_.kv_writes;
    r = co_await kv->cas(key, commit_version, bytes);
  }
  if (r.code == kv::KvResultCode::ok) {
    ++stats_.commits;
    co_return true;
  }
  if (r.code == kv::KvResultCode::cas_failed) {
    // Our own earlier (unknown) attempt may have applied: then the record
    // holds our offset at version + 1.
    kv::KvResult g = co_await kv->get(key);
    QueueCommit now;
    if (g.code == kv::KvResultCode::ok && g.found && now.ParseFromString(g.value) &&
        g.version == commit_version + 1 && now.committed() == offset) {
      ++stats_.commits;
      co_return true;
    }
    ++stats_.commit_races;
    if (raced != nullptr) *raced = true;
  }
  co_return false;
}

}  // namespace wx::queue
