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
// KvOutcome::unknown). One KvClient issues its calls one at a time: a newer
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
