// Replicator: asynchronous multi-datacenter replication of the per-user
// records (docs/storage.md, "Change stream and replication").
//
// A user's records are written only in the home datacenter's KV group of the
// user's shard. Every other datacenter keeps an eventually-consistent copy:
// for each (source datacenter, shard) — a STREAM — a replicator in the local
// datacenter pulls the source group's change stream (kv.Changes, served by
// any source replica), keeps only the user records (shard::user_of_key) of
// users homed in the source datacenter, and applies them to the local group
// of the same shard as ONE REPLICATE command per page (kv.Replicate), which
// carries the page's writes with their source versions and raises the
// stream's cursor (repl/cursor/<source_dc>/<shard>, in the local group).
// REPLICATE stores a write only if its version is above the local one, so
// replays, duplicates and two replicators at once are harmless; and it is
// not recorded in the local change stream, so copies never travel back.
//
// When the source no longer holds what the cursor needs (TRUNCATED: a
// datacenter was away longer than the source's change_retention) the stream
// does a FULL COPY: h0 = the reply's high; scan the whole source group
// (linearizable, so every key's state is at least its state at h0), apply
// its user records of source-datacenter users in REPLICATE batches, set the
// cursor to h0 and resume the stream from there.
//
// Ownership: every zone of a datacenter runs a replicator with every stream
// of that datacenter in its config; a stream is worked only by the holder of
// its lease (repl/lease/<source_dc>/<shard> in the local group), the scheme
// of queue::LeaseKeeper: the preferred instance (stream % consumers ==
// index) claims a free lease at once, others and takeovers only after the
// record stayed unchanged for lease × (1 + drift) + margin (+ a preference
// delay for non-preferred instances). Safety does not rest on the lease.
//
// Lag: for each applied page, lag = local now − at_ns of the oldest entry
// applied (the source replica's clock at apply), reported to lag_observer and
// in stats(); `behind` per stream = now − at_ns of the oldest entry not yet
// applied, as of the last poll (0 when caught up). Node code: only Runtime.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/rpc/endpoint.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/kv/kv_client.h"
#include "nodes/storage/shard/shard_map.h"

namespace wx::repl {

// One stream: the change stream of shard `shard` of `source_dc`, applied to
// the same shard's group in this datacenter.
struct StreamSpec {
  std::string source_dc;
  uint32_t shard = 0;
  std::vector<NodeId> source_replicas;  // the source group (replica-id order)
  std::vector<NodeId> local_replicas;   // the local group of the same shard
};

struct ReplLeaseConfig {
  Duration lease_duration = seconds(2);
  Duration renew_interval = milliseconds(400);
  int64_t clock_drift_margin_percent = 10;
  Duration takeover_margin = milliseconds(200);
  Duration preference_delay = seconds(1);
};

// One applied page (or full-copy batch) of a stream.
struct LagSample {
  std::string source_dc;
  uint32_t shard = 0;
  Duration lag;          // now − at_ns of the oldest entry applied (full copy: 0)
  uint64_t entries = 0;  // stream entries covered by the page
  uint64_t writes = 0;   // writes shipped (after filtering)
  bool full_copy = false;
};

struct ReplicatorConfig {
  std::string datacenter;            // this node's datacenter
  std::vector<StreamSpec> streams;   // every (other datacenter, shard)
  // Ships only records of users whose home (ShardMap::home_of) is source_dc.
  std::shared_ptr<const shard::ShardMap> shards;
  uint32_t index = 0;      // this instance among the datacenter's replicators
  uint32_t consumers = 1;  // replicators of this datacenter
  uint32_t page_entries = 256;          // kv.Changes max_entries; full copy scan page
  Duration poll_interval = milliseconds(50);  // pause when caught up
  Duration call_timeout = milliseconds(500);  // per kv.Changes call
  Duration retry_pause = milliseconds(100);   // after a failed call
  // A page whose writes were all filtered out only moves the cursor in
  // memory; the cursor is written (a cursor-only REPLICATE) at most this
  // often. Without it two datacenters' cursor writes would feed each other's
  // streams (every write is a log index) forever.
  Duration cursor_persist_interval = seconds(1);
  ReplLeaseConfig lease;
  kv::KvClientConfig kv;  // timeouts of the KvClients (replicas filled in per stream)
  // Test and scenario hook (empty: off): called for every applied page.
  std::function<void(NodeId self, const LagSample&)> lag_observer;
};

struct StreamStatus {
  std::string source_dc;
  uint32_t shard = 0;
  bool held = false;     // this instance holds the stream's lease now
  uint64_t cursor = 0;   // in memory (may be ahead of the persisted one)
  Duration behind;       // as of the last poll; 0 when caught up
  Duration last_lag;
};

struct ReplicatorStats {
  uint64_t changes_calls = 0, changes_failures = 0, truncated = 0;
  uint64_t pages_applied = 0;    // pages whose REPLICATE (or in-memory advance) succeeded
  uint64_t entries_applied = 0;  // stream entries covered by applied pages
  uint64_t writes_applied = 0;   // writes shipped in REPLICATE commands (stream and full copy)
  uint64_t writes_filtered = 0;  // stream writes that are not user records of source_dc users
  uint64_t writes_too_large = 0; // single writes over kReplicateBytesMax: skipped (logged)
  uint64_t replicate_failures = 0;
  uint64_t cursor_writes = 0;    // cursor-only REPLICATEs
  uint64_t full_copies = 0;      // completed
  uint64_t full_copy_writes = 0;
  uint64_t lease_claims = 0, lease_takeovers = 0, lease_renewals = 0, lease_lost = 0;
  Duration lag_max;
  std::vector<StreamStatus> streams;
};

// Keys in the local group.
std::string cursor_key(std::string_view source_dc, uint32_t shard);
std::string lease_key(std::string_view source_dc, uint32_t shard);

class Replicator final : public Node {
 public:
  Replicator(Runtime& rt, ReplicatorConfig config);
  ~Replicator() override;
  void start() override;
  std::string_view kind() const override { return "replicator"; }

  const ReplicatorStats& stats() const { return stats_; }
  bool holds(size_t stream) const;
  rpc::RpcEndpoint& endpoint() { return endpoint_; }

 private:
  struct Stream;
  enum class PullOutcome : uint8_t { more, caught_up, failed };
  Task<void> lease_loop(size_t s);
  Task<void> lease_step(size_t s);
  Task<void> stream_loop(size_t s);
  // One kv.Changes round and the REPLICATE of its page.
  Task<PullOutcome> pull(size_t s);
  // The full copy of stream s at h0; false if it could not finish (retried).
  Task<bool> full_copy(size_t s, uint64_t h0);
  // Applies `writes` in REPLICATE batches, the cursor (if any) with the last;
  // false on a failure (outcome unknown or invalid).
  Task<bool> apply(size_t s, std::vector<kv::VersionedWrite> writes, bool with_cursor, uint64_t cursor);
  bool keep(const Stream& st, const std::string& key) const;
  void observe(size_t s, Duration lag, uint64_t entries, uint64_t writes, bool full_copy);

  Runtime& rt_;
  ReplicatorConfig config_;
  rpc::RpcEndpoint endpoint_;
  uint64_t incarnation_ = 0;
  std::vector<std::unique_ptr<Stream>> streams_;
  ReplicatorStats stats_;
};

}  // namespace wx::repl
