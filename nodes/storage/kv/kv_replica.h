// KvReplica: one replica of a replicated key-value store — a node that wraps
// the Multi-Paxos core (nodes/storage/paxos/) with an RPC endpoint, a tick
// timer and SQLite (docs/storage.md, "Service").
//
// One shard group of `members.size()` replicas (three, one per zone). Each
// replica:
//   * ticks its paxos::Replica every `tick_interval`;
//   * carries Paxos messages as calls of "paxos.Step" (not idempotent, empty
//     response ignored), batched per peer by one sender coroutine per peer,
//     so at most one call per peer is in flight and the per-peer queue is
//     bounded (the oldest messages are dropped: Paxos repairs losses);
//   * drives the Ready loop synchronously after every input: hard state,
//     entries, the applied commands, applied_index and the request-id table
//     go to SQLite in ONE transaction, then messages are sent, then reads are
//     served, then advance();
//   * serves kv.Get / kv.Scan (read-index on the leader) and kv.Put / kv.Cas /
//     kv.Txn / kv.Replicate (proposed on the leader, answered once applied).
//     Non-leaders answer NOT_LEADER with a leader hint. A txn (conditions on
//     versions, then writes) is one log entry, applied all-or-nothing in the
//     SQLite transaction of its Ready;
//   * keeps a change stream: the writes of every applied command of local
//     origin (put, cas, txn that wrote — not REPLICATE) go to the table
//     kv_changes by log index, in the same SQLite transaction, trimmed to
//     `change_retention` indexes; kv.Changes serves it from ANY replica (a
//     follower serves its shorter prefix). docs/storage.md, "Change stream
//     and replication".
//
// Replica ids are positions in `members` plus one. Disk loss: a replica whose
// database holds no group marker starts with Config::recovering unless
// `bootstrap` is set (only for the very first start of a brand-new group).
#pragma once

#include <cstdint>
#include <functional>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodes/rpc/endpoint.h"
#include "nodes/runtime/channel.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/kv/kv.pb.h"
#include "nodes/storage/paxos/replica.h"

namespace wx::kv {

// Immediate: Paxos steps must not queue behind kv.Put handlers, which hold
// their workers until the write they wait for commits — through these steps.
inline const rpc::MethodSpec kStepMethod{"paxos.Step", rpc::Idempotent::no, Duration::zero(),
                                         rpc::Dispatch::immediate};
inline const rpc::MethodSpec kGetMethod{"kv.Get", rpc::Idempotent::yes, Duration::zero()};
inline const rpc::MethodSpec kScanMethod{"kv.Scan", rpc::Idempotent::yes, Duration::zero()};
// Not idempotent at the RPC layer (the Router never retries them); KvClient
// retries them itself with the same request id, which the state machine
// deduplicates.
inline const rpc::MethodSpec kPutMethod{"kv.Put", rpc::Idempotent::no, Duration::zero()};
inline const rpc::MethodSpec kCasMethod{"kv.Cas", rpc::Idempotent::no, Duration::zero()};
inline const rpc::MethodSpec kTxnMethod{"kv.Txn", rpc::Idempotent::no, Duration::zero()};
// Writes from another datacenter's change stream (Command::REPLICATE); the
// request is a WriteRequest, the reply a WriteReply whose `version` is the
// number of writes that took effect (newer than the local copy).
inline const rpc::MethodSpec kReplicateMethod{"kv.Replicate", rpc::Idempotent::no, Duration::zero()};
// The change stream (ChangesRequest → ChangesReply); any replica answers.
inline const rpc::MethodSpec kChangesMethod{"kv.Changes", rpc::Idempotent::yes, Duration::zero()};

// Limits.
inline constexpr size_t kPendingWritesMax = 1024;       // proposals awaiting apply
inline constexpr size_t kPendingReadsMax = 1024;        // reads awaiting a read index / apply
inline constexpr size_t kPeerQueueMessagesMax = 4096;   // queued Paxos messages per peer
inline constexpr size_t kStepBatchMessagesMax = 256;    // Paxos messages per paxos.Step call
inline constexpr uint32_t kScanItemsMax = 1000;         // items per scan reply
inline constexpr size_t kKeyBytesMax = 1024;
// A txn: at most this many conditions and writes, and at most kTxnBytesMax
// bytes of keys and values in all (a txn is one log entry, carried whole in
// Accept messages and stored whole in the log).
inline constexpr size_t kTxnConditionsMax = 16;
inline constexpr size_t kTxnWritesMax = 16;
inline constexpr size_t kTxnBytesMax = 256 * 1024;
// A REPLICATE command: at most this many writes and bytes of keys and values.
inline constexpr size_t kReplicateWritesMax = 256;
inline constexpr size_t kReplicateBytesMax = 256 * 1024;
// A kv.Changes reply: at most this many entries, and it stops adding entries
// once it carries this many bytes of keys and values (at least one entry).
inline constexpr uint32_t kChangesEntriesMax = 1024;
inline constexpr size_t kChangesBytesMax = 1024 * 1024;
// Trimming the change stream: rows are deleted in steps of
// clamp(change_retention / 8, 1, kChangeTrimStepMax) indexes, so a trim costs
// one DELETE per step, not one per apply.
inline constexpr uint64_t kChangeTrimStepMax = 1024;

// Checks a TXN command's shape: 1..kTxnWritesMax writes, at most
// kTxnConditionsMax conditions, every key non-empty and at most
// kKeyBytesMax bytes, no key twice among the writes nor among the
// conditions, keys and values together at most kTxnBytesMax bytes. Empty:
// valid; else what is wrong. Used by KvClient (before sending), the leader
// (before proposing) and the state machine (before applying).
std::string validate_txn(const Command& cmd);
// Checks a REPLICATE command: at most kReplicateWritesMax writes and at
// least one write or a cursor; every key non-empty and at most kKeyBytesMax
// bytes, no key twice (the cursor key included), every version >= 1, keys
// and values together at most kReplicateBytesMax. Empty: valid.
std::string validate_replicate(const Command& cmd);

struct KvReplicaConfig {
  std::vector<NodeId> members;  // the group, in replica-id order; includes self
  size_t self_index = 0;        // position of this node in `members`
  // True only when this replica is started for the first time as a member of
  // a brand-new group. A replica that finds no group marker on its disk and
  // is not bootstrapping concludes its disk was lost and recovers.
  bool bootstrap = false;
  Duration tick_interval = milliseconds(10);
  paxos::Config paxos = default_paxos();
  Duration step_call_timeout = milliseconds(200);
  // Longest a write or read handler waits for apply / read index.
  Duration wait_max = seconds(1);
  // Reads (kv.Get, kv.Scan) on a leader holding its lease are served from
  // its applied state without a read-index round (docs/storage.md, "Reads").
  // false: every read runs a round.
  bool lease_reads = true;
  rpc::ServerConfig server;
  // Change stream: rows of kv_changes are kept for at least the last
  // `change_retention` log indexes (idx > applied - change_retention); older
  // rows are trimmed in steps and the change floor (highest idx no longer
  // kept) rises. 0: no rows at all, every kv.Changes below the applied index
  // answers TRUNCATED.
  uint64_t change_retention = 1'000'000;
  // Test and scenario hook (empty: off, no cost): called after each SQLite
  // commit that persisted log entries, with the keys those entries write —
  // what a history recorder needs to judge "every acknowledged write was on
  // at least two zones" (checkers/replication.h). Never used for behaviour.
  std::function<void(NodeId self, const std::vector<std::string>& keys)> persisted_observer;

  // Elections in ~150–300 ms with 10 ms ticks.
  static paxos::Config default_paxos() {
    paxos::Config c;
    c.election_ticks_min = 15;
    c.election_ticks_max = 30;
    c.heartbeat_ticks = 3;
    c.lease_ticks = 10;
    return c;
  }
};

class KvReplica final : public Node {
 public:
  KvReplica(Runtime& rt, KvReplicaConfig config);
  ~KvReplica() override;
  void start() override;
  std::string_view kind() const override { return "kv-replica"; }

  rpc::RpcEndpoint& endpoint() { return endpoint_; }
  const paxos::Replica& replica() const { return *replica_; }
  uint64_t applied_index() const { return applied_index_; }
  bool recovering() const { return replica_->recovering(); }
  // Reads served under the leader's lease (no read-index round) since start.
  uint64_t lease_reads() const { return lease_reads_; }
  // Every key of the state machine, in key order (for tests and tools).
  std::vector<Item> dump() const;
  // The change stream's floor: the highest log index whose changes are no
  // longer kept (0: none trimmed).
  uint64_t change_floor() const { return change_floor_; }

 private:
  struct Wake {
    Code code = RETRY;
    uint64_t version = 0;
    std::string txn;  // TXN applied OK / TXN_FAILED: serialized TxnOutcome
  };
  struct PendingWrite {
    uint64_t seq = 0;
    uint64_t index = 0;  // log index it was proposed at
    Channel<Wake>* wake = nullptr;
  };
  struct PendingRead {
    uint64_t index = 0;
    bool have_index = false;
    Channel<Wake>* wake = nullptr;
  };

  void open_storage(paxos::HardState& hs, std::vector<paxos::Entry>& log);
  void pump();
  void persist_and_apply(const paxos::Ready& rd);
  void notify_persisted(const std::vector<paxos::Entry>& entries);
  Wake apply_command(const Command& cmd);
  void send(const paxos::Message& m);
  void on_leadership_lost();
  void serve_reads();
  uint32_t leader_hint() const;

  Task<void> tick_loop();
  Task<void> send_loop(size_t peer_index);
  Task<rpc::Result<StepReply>> serve_step(StepRequest req);
  Task<rpc::Result<WriteReply>> serve_write(rpc::CallContext ctx, WriteRequest req, Command::Kind kind);
  Task<rpc::Result<TxnReply>> serve_txn(rpc::CallContext ctx, WriteRequest req);
  // Proposes `cmd` on this replica (if it leads) and waits until it is
  // applied, the deadline passes or the outcome becomes unknown. NOT_LEADER
  // and RETRY answers set *hint.
  Task<Wake> propose_and_wait(rpc::CallContext ctx, Command cmd, uint32_t* hint);
  Wake apply_txn(const Command& cmd);
  Wake apply_replicate(const Command& cmd);
  // After applying a batch: deletes change rows at or below the new floor
  // when it rose by a trim step (in the Ready's transaction).
  void trim_changes();
  Task<rpc::Result<WriteReply>> serve_replicate(rpc::CallContext ctx, WriteRequest req);
  Task<rpc::Result<ChangesReply>> serve_changes(ChangesRequest req);
  Task<rpc::Result<GetReply>> serve_get(rpc::CallContext ctx, GetRequest req);
  Task<rpc::Result<ScanReply>> serve_scan(rpc::CallContext ctx, ScanRequest req);
  // Obtains a linearizable read point and waits until it is applied.
  Task<Wake> read_barrier(rpc::CallContext ctx);
  Task<Wake> wait_for(Channel<Wake>* ch, TimePoint deadline);

  Runtime& rt_;
  KvReplicaConfig config_;
  rpc::RpcEndpoint endpoint_;
  std::unique_ptr<paxos::Replica> replica_;
  bool initialized_ = false;  // the group marker is on disk
  uint64_t applied_index_ = 0;
  bool was_leader_ = false;

  std::vector<std::deque<std::string>> peer_queues_;
  std::vector<std::unique_ptr<Channel<bool>>> peer_signals_;

  std::multimap<uint64_t, PendingWrite*> pending_writes_;  // by client id
  std::map<uint64_t, PendingRead*> pending_reads_;         // by read id
  uint64_t next_read_id_ = 1;
  uint64_t lease_reads_ = 0;  // reads served under the lease, without a round
  TimePoint last_tick_at_;    // when tick_loop last ticked (local clock)
  uint64_t dropped_messages_ = 0;
  uint64_t change_floor_ = 0;  // persisted in kv_changes_floor
  // Writes of the command being applied that go to the change stream
  // (filled by apply_command, drained by persist_and_apply).
  std::vector<VersionedWrite> entry_changes_;
};

}  // namespace wx::kv
