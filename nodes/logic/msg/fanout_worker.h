// FanoutWorker: the consumer of the group queues (role `fanout`, stateless,
// one or more per zone; docs/messaging.md "Group chat").
//
// Per queue it holds (queue::LeaseKeeper: one consumer per queue at a time),
// it loops: read a batch (≤ batch_items) from the committed offset; fan out
// each item in order; commit the offset past the items done (one CAS per
// batch). A crash before the commit redelivers the batch to whoever holds the
// queue next (at-least-once).
//
// Fan-out of one item (GroupQueueItem: the message and the members fixed at
// send time): the recipients are the members except the sender (the rule of
// docs/messaging-history.md), in chunks of chunk_members. Per chunk:
//   1. the fan-out record "fanout/<message id>/<chunk>" (FanoutRecord) in the
//      queue's KV group is read; members without a seq get one from seqsvr and
//      the record is written by CAS BEFORE any append (a racing consumer's
//      record wins: re-read and use its seqs);
//   2. inbox.Append(member, seq, StoredMessage bytes) for every member not yet
//      confirmed, ≤ parallel_appends at once; the bytes are identical on
//      every delivery, so a repeat is an inbox duplicate, never a copy;
//   3. INBOX_STALE_SEQ (the inbox grew past that seq and will never store
//      it): a fresh seq, CAS'd into the record over the stale one, and again;
//      unknown: the same seq again;
//   4. all confirmed: a group ack (member, seq per member of the chunk) to the
//      recorder hook, and the notify hook per member.
// On redelivery the record gives every member the seq it had, so a member
// never holds a message twice.
//
// Several datacenters (docs/multi-dc.md): members homed in this worker's
// datacenter are stored as above; each member homed elsewhere gets the item
// through msg.Deliver on a msg node of its home datacenter ("msg@<dc>"),
// which stores it there once per (member, message id). The remote queues
// (queue::QueueConfig::remote_queues) hold 1:1 messages to users homed
// elsewhere: items with group 0 and the two users as members. During a
// partition such an item waits (the batch is retried) and is delivered after
// the heal.
//
// Tickets (docs/tickets.md, "Every hop"): every append acts for the item's
// sender (AppendRequest::sender_uid) and carries a ticket of the sender: the
// one GroupSend received (GroupQueueItem::sender_ticket) while it verifies and
// outlives the item's budget by clock_skew_max; when it has EXPIRED (or is
// about to), a fresh ticket for the sender issued from this worker's own key
// ring (`keys`), valid for reissue_ttl. A ticket that fails for any other
// reason (forged, unknown key, another user, malformed) is never replaced:
// the item is not delivered (logged as an error, counted in items_refused,
// and skipped). Without keys the carried ticket is sent as it is.
//
// Progress, not just the lease: a worker that holds a queue with items
// waiting but fans out none of them for stall_yield_after yields the queue
// (LeaseKeeper::yield) so that a consumer in another zone takes over — the
// lease proves only that this worker reaches the queue's KV group, not
// seqsvr or the inboxes. Bounded: rounds per chunk
// (kFanoutRoundsMax), an item budget, batch and chunk sizes, parallelism.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodes/logic/msg/msg.pb.h"
#include "nodes/logic/msg/msg_service.h"
#include "nodes/logic/queue/lease_keeper.h"
#include "nodes/logic/queue/queue_store.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/rpc/router.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/inbox/inbox_service.h"
#include "nodes/storage/seqsvr/seq_client.h"

namespace wx::msg {

inline constexpr int kFanoutRoundsMax = 16;
inline constexpr size_t kFanoutChunkMembersMax = 256;
inline constexpr size_t kFanoutParallelMax = 128;

struct FanoutWorkerConfig {
  std::shared_ptr<const shard::ShardMap> shards;  // filled by make_node
  rpc::ServiceDirectory directory;                // filled by make_node
  rpc::Locality locality;                         // filled by make_node
  seqsvr::SeqClientConfig seq;                    // filled by make_node
  queue::QueueConfig queue;                       // must equal the msg service's
  queue::LeaseConfig lease;                       // index / consumers filled by make_node
  rpc::ServerConfig server;
  rpc::RouterConfig router;
  shard::ShardedKvClientConfig kv;
  uint32_t batch_items = 16;            // ≤ queue::kQueueBatchMax
  size_t chunk_members = 64;            // ≤ kFanoutChunkMembersMax
  size_t parallel_appends = 32;         // ≤ kFanoutParallelMax
  Duration poll_interval = milliseconds(20);
  Duration item_budget = seconds(10);   // one item's fan-out; then the batch stops and is retried
  Duration inbox_call_timeout = milliseconds(1200);
  Duration retry_pause = milliseconds(20);
  // A held queue with items waiting and no item fanned out for this long is
  // yielded (queue::LeaseKeeper::yield): this worker can reach the queue's KV
  // group (it keeps renewing) but not what the fan-out needs (seqsvr, the
  // inboxes) — e.g. a connection stalled behind a frame in retransmission
  // backoff — so another consumer takes the queue over. ≥ item_budget.
  Duration stall_yield_after = seconds(30);
  // The ticket keys (the same ring as msg's; make_node fills them in from
  // templates.msg when empty). Empty: carried tickets are sent unchecked and
  // never reissued.
  ticket::KeyRingConfig keys;
  // Lifetime of a ticket reissued for an item whose carried ticket expired.
  Duration reissue_ttl = minutes(5);

  // Recorder hooks: the members fact per item delivered, an ack per chunk
  // stored (after every append of it answered OK).
  GroupMembersObserver group_members_observer;
  GroupAckObserver group_ack_observer;
  // Called after the access-layer notify of each stored member (tests): member, new seq.
  std::function<void(NodeId, uint64_t member, uint64_t seq)> notify;
  // TEST hook: a chunk of `message_id` was stored (before the batch commit).
  std::function<void(NodeId, const std::string& message_id, size_t chunk)> chunk_stored;
};

struct FanoutStats {
  uint64_t batches = 0, items = 0, items_failed = 0, chunks = 0, records_reused = 0;
  uint64_t appends = 0, appends_ok = 0, duplicates = 0, stale_seqs = 0, seq_allocs = 0;
  uint64_t record_races = 0, kv_writes = 0, commits = 0;
  uint64_t tickets_reissued = 0;  // items whose carried ticket expired: a fresh one issued
  uint64_t items_refused = 0;     // items skipped: the carried ticket is not the sender's or not authentic
  uint64_t lease_yields = 0;      // queues given up after stall_yield_after without progress
  // Recipients homed in another datacenter: msg.Deliver calls made, and
  // deliveries confirmed / refused for good there (docs/multi-dc.md).
  uint64_t remote_calls = 0, remote_ok = 0, remote_refused = 0;
};

class FanoutWorker final : public Node {
 public:
  FanoutWorker(Runtime& rt, FanoutWorkerConfig config);
  ~FanoutWorker() override;
  void start() override;
  std::string_view kind() const override { return "fanout"; }

  const FanoutStats& stats() const { return stats_; }
  const queue::QueueStats& queue_stats() const { return queue_.stats(); }
  const queue::LeaseStats& lease_stats() const { return leases_.stats(); }
  bool holds(uint32_t q) const { return leases_.holds(q); }

 private:
  struct Parallel;
  Task<void> queue_loop(uint32_t q);
  Task<bool> fanout_item(uint32_t q, std::string payload, TimePoint deadline);
  // The ticket the item's appends carry (see the header comment); nullopt:
  // none usable now (`*skip`: never — refuse the item).
  std::optional<std::string> ticket_for(const GroupQueueItem& item, TimePoint deadline, bool* skip);
  Task<bool> fanout_chunk(uint32_t q, const GroupQueueItem& item, size_t chunk, std::vector<uint64_t> members,
                          std::string bytes, std::string ticket, TimePoint deadline);
  Task<std::optional<inbox::InboxCode>> append(uint64_t uid, uint64_t seq, std::string bytes, uint64_t sender,
                                               std::string ticket, TimePoint deadline);
  Task<void> alloc_into(uint64_t uid, uint64_t* out);
  // A recipient homed in another datacenter: msg.Deliver there until it
  // answers definitely or the deadline passes; true when settled.
  Task<bool> deliver_remote(const GroupQueueItem& item, uint64_t member, std::string ticket, TimePoint deadline);
  bool homed_here(uint64_t uid) const;
  Task<void> append_into(uint64_t uid, uint64_t seq, std::string bytes, uint64_t sender, std::string ticket,
                         TimePoint deadline, std::optional<inbox::InboxCode>* out);
  // Runs fn(0..n-1), at most `width` at once; returns when all are done.
  Task<void> run_parallel(size_t n, size_t width, std::function<Task<void>(size_t)> fn);
  static Task<void> parallel_worker(std::shared_ptr<Parallel> p);
  Task<void> pause();

  Runtime& rt_;
  FanoutWorkerConfig config_;
  std::optional<ticket::KeyRing> keys_;  // none: carried tickets go as they are
  rpc::RpcEndpoint endpoint_;
  rpc::Router router_;
  seqsvr::SeqClient seq_;
  queue::KvPool pool_;
  queue::QueueStore queue_;
  queue::LeaseKeeper leases_;
  FanoutStats stats_;
};

}  // namespace wx::msg
