// KvClient: the client library of the replicated key-value store
// (kv_replica.h, docs/storage.md "Service").
//
// Knows the replicas of one group, tracks who leads (from NOT_LEADER hints),
// and retries every call until its deadline: on a redirect it goes to the
// hinted leader, on RETRY / timeout / unavailable / overloaded it tries the
// next replica after a short backoff. Writes carry a request id (client id,
// sequence number) that stays the same across all attempts of one call; the
// state machine applies a request id at most once, so the retries are safe.
//
// Outcomes: ok (with the version read or created), cas_failed (with the
// current version), unknown (the deadline passed without a definite answer:
// the write may have been applied once, or never — record it as
// KvOutcome::unknown). txn() answers ok, conditions_failed, invalid or
// unknown (KvTxnResult). One KvClient issues its calls one at a time: a newer
// request id of a client makes the state machine refuse its older ones
// (STALE), so concurrent callers need separate clients (client ids).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nodes/rpc/endpoint.h"
#include "nodes/storage/kv/kv.pb.h"
#include "nodes/storage/kv/kv_replica.h"

namespace wx::kv {

struct KvClientConfig {
  std::vector<NodeId> replicas;  // in replica-id order (the group's `members`)
  // 0 (recommended): drawn from this incarnation's rng. A client id must
  // never be used by two clients nor by two incarnations of one client: the
  // state machine keeps the last (seq, result) per client id.
  uint64_t client_id = 0;
  Duration call_timeout = seconds(1);
  Duration attempt_timeout = milliseconds(300);
  Duration retry_backoff = milliseconds(20);
};

enum class KvResultCode : uint8_t { ok, cas_failed, unknown };

struct KvResult {
  KvResultCode code = KvResultCode::unknown;
  bool found = false;     // get
  std::string value;      // get, found
  uint64_t version = 0;   // get: version read (0 absent); put/cas ok: created; cas_failed: current
  int attempts = 0;
};

// A txn: every condition holds (the key's version equals expected_version,
// 0: absent) → every write is applied, atomically, in one log entry (each
// written key's version grows by one, as a put); else nothing is written.
// Limits in kv_replica.h (kTxnConditionsMax, kTxnWritesMax, kTxnBytesMax).
struct KvTxnCondition {
  std::string key;
  uint64_t expected_version = 0;
};
struct KvTxnWrite {
  std::string key;
  std::string value;
};

enum class KvTxnCode : uint8_t {
  ok,                 // applied once: every write made
  conditions_failed,  // applied as a failure: nothing written
  invalid,            // malformed or over a limit: never applied (not even sent, if the client saw it)
  unknown,            // no definite answer by the deadline: applied once, later, or never
};

struct KvTxnResult {
  KvTxnCode code = KvTxnCode::unknown;
  // ok: the new version of each write, in request order.
  std::vector<uint64_t> write_versions;
  // ok, conditions_failed: each condition key's version when the txn was
  // applied, in request order (0: absent).
  std::vector<uint64_t> condition_versions;
  // conditions_failed: indexes of the conditions that did not hold, increasing.
  std::vector<uint32_t> failed_conditions;
  std::string error;  // invalid: what is wrong
  int attempts = 0;
};

enum class KvReplicateCode : uint8_t {
  ok,       // applied once
  invalid,  // malformed or over a limit (validate_replicate): never applied
  unknown,  // no definite answer by the deadline: applied once, later, or never (it is idempotent)
};

struct KvReplicateResult {
  KvReplicateCode code = KvReplicateCode::unknown;
  uint64_t applied_writes = 0;  // ok: writes newer than the local copy, stored
  std::string error;            // invalid, when the client saw it
  int attempts = 0;
};

struct KvScanResult {
  KvResultCode code = KvResultCode::unknown;  // ok or unknown
  std::vector<Item> items;
};

class KvClient {
 public:
  KvClient(Runtime& rt, rpc::RpcEndpoint& endpoint, KvClientConfig config);

  Task<KvResult> get(std::string key);
  Task<KvResult> put(std::string key, std::string value);
  Task<KvResult> cas(std::string key, uint64_t expected_version, std::string value);
  // One request id for all attempts, like cas: an unknown txn is fenced by
  // this client's next write (a newer request id makes it STALE if it was
  // not applied yet), or re-issued (applied at most once).
  Task<KvTxnResult> txn(std::vector<KvTxnCondition> conditions, std::vector<KvTxnWrite> writes);
  // A REPLICATE command (docs/storage.md, "Change stream and replication"):
  // each write is stored with its source version if that is above the local
  // version; `cursor_key` (empty: none) is raised to max(current,
  // cursor_index). One request id for all attempts.
  Task<KvReplicateResult> replicate(std::vector<VersionedWrite> writes, std::string cursor_key,
                                    uint64_t cursor_index);
  // Keys with `prefix`, or in [from, to) when prefix is empty; at most `limit`.
  Task<KvScanResult> scan(std::string prefix, std::string from, std::string to, uint32_t limit);

  uint64_t client_id() const { return config_.client_id; }

 private:
  // Sends `payload` to the leader (as far as known) until a reply that is
  // neither a redirect nor RETRY, or the deadline; nullopt at the deadline.
  template <class Resp>
  Task<std::optional<Resp>> call_leader(rpc::MethodSpec spec, std::string payload, int* attempts);
  Task<KvResult> write(rpc::MethodSpec spec, Command cmd);

  Runtime& rt_;
  rpc::RpcEndpoint& endpoint_;
  KvClientConfig config_;
  size_t leader_ = 0;  // index into replicas
  uint64_t next_seq_ = 1;
};

}  // namespace wx::kv
