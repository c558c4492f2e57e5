// InboxService: the data-access service of the per-user message inbox, over
// the sharded KV store (nodes/storage/shard/). docs/storage.md, "Sharding and
// data-access services", has the protocol.
//
// A stateless RPC node (no disk). A message is stored as its raw bytes under
//   inbox/<uid>/<seq zero-padded to 20 digits>
// in the user's home shard, so key order is seq order, and
//   inboxhead/<uid>   (an InboxHead: the last stored seq; outside every
//                      "inbox/" scan range)
// is written in the same KV txn as every message. The seq comes from seqsvr
// in the send path; the service takes it as input.
//
// Methods:
//   inbox.Append  (uid, seq, bytes): ordered. Reads the head; seq <= last
//                 stored seq → the entry decides: same bytes → OK duplicate,
//                 other bytes → INBOX_CONFLICT, absent → INBOX_STALE_SEQ (the
//                 caller allocates a new seq). Else one KV txn {head version
//                 unchanged, entry absent} → {entry, head = seq}; a lost race
//                 reads again (at most kAppendRoundsMax rounds). An unknown
//                 txn is re-issued from the same KvClient (a newer request id
//                 fences the older one) until definite. So an inbox only ever
//                 grows in seq order: no entry can appear below the head.
//   inbox.Range   (uid, after_seq, limit): messages with seq > after_seq in
//                 increasing seq order, at most limit, by one linearizable
//                 KV scan (read index on the shard leader). A reader that has
//                 seen seq s never later finds a stored seq < s it has not
//                 seen (paging with after_seq = the last seq seen is enough).
//   inbox.Head    (uid): the last stored seq (0: empty), one linearizable read.
//
// Tickets (docs/tickets.md, "Every hop"): with keys in the config, every
// request is checked BEFORE anything is read or written:
//   Range / Head: the ticket (CallContext::ticket) must be valid for `uid`;
//   Append:       the ticket must be valid for `sender_uid` (the writer acts
//                 for the sender, not the recipient), and `message` must
//                 parse as a msg.StoredMessage whose sender is `sender_uid`
//                 (else INBOX_FORBIDDEN).
// A failed ticket check answers INBOX_UNAUTHENTICATED. Without keys nothing
// is checked (storage-only tests and deployments).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "nodes/rpc/endpoint.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/inbox/inbox.pb.h"
#include "nodes/storage/shard/shard_map.h"

namespace wx::inbox {

inline const rpc::MethodSpec kAppendMethod{"inbox.Append", rpc::Idempotent::yes, Duration::zero()};
inline const rpc::MethodSpec kRangeMethod{"inbox.Range", rpc::Idempotent::yes, Duration::zero()};
inline const rpc::MethodSpec kHeadMethod{"inbox.Head", rpc::Idempotent::yes, Duration::zero()};

inline constexpr std::string_view kInboxKeyPrefix = "inbox/";
inline constexpr std::string_view kInboxHeadKeyPrefix = "inboxhead/";
inline constexpr int kSeqDigits = 20;  // digits of UINT64_MAX
inline constexpr uint32_t kRangeMessagesMax = 100;
inline constexpr size_t kMessageBytesMax = 64 * 1024;
// Append: rounds of (read head, txn) lost to concurrent appends before
// answering INBOX_UNKNOWN. Each lost round means another append of a lower
// seq committed (a higher one makes this seq stale at once).
inline constexpr int kAppendRoundsMax = 32;

// "inbox/<uid>/"
std::string inbox_prefix(uint64_t uid);
// "inbox/<uid>/<seq, 20 digits>"
std::string inbox_key(uint64_t uid, uint64_t seq);
// The seq of an inbox key; nullopt if malformed.
std::optional<uint64_t> seq_of_key(std::string_view key);
// "inboxhead/<uid>"
std::string head_key(uint64_t uid);
// (uid, seq) of an inbox key ("inbox/<uid>/<seq>"); nullopt for any other key.
std::optional<std::pair<uint64_t, uint64_t>> parse_inbox_key(std::string_view key);

struct InboxServiceConfig : shard::DataServiceConfig {
  InboxServiceConfig() = default;
  // Implicit: every data-access service is configured from the same struct.
  InboxServiceConfig(shard::DataServiceConfig data) : shard::DataServiceConfig(std::move(data)) {}

  // TEST ONLY: the old unordered Append (a CAS of the entry from version 0,
  // no head): a seq below one already stored is still accepted, so a reader
  // paging by after_seq can miss it. Exists to show that
  // tests/storage/inbox_order_sim_test.cc catches exactly that.
  bool unordered_append_for_tests = false;
};

struct InboxServiceStats {
  uint64_t appended = 0, duplicates = 0, conflicts = 0, unknown = 0, invalid = 0;
  uint64_t stale_seq = 0;       // appends refused: seq not above the head
  uint64_t append_races = 0;    // txn rounds lost to a concurrent append (read again)
  uint64_t append_unknown = 0;  // appends that saw an unknown KV write outcome (then fenced)
  uint64_t ranges = 0, heads = 0;
  uint64_t unauthenticated = 0;  // refused: the ticket check failed
  uint64_t forbidden = 0;        // Append refused: the message names another sender
};

class InboxService final : public Node {
 public:
  InboxService(Runtime& rt, InboxServiceConfig config);
  ~InboxService() override;
  void start() override;
  std::string_view kind() const override { return "inbox"; }

  rpc::RpcEndpoint& endpoint() { return endpoint_; }
  const InboxServiceStats& stats() const { return stats_; }

 private:
  TimePoint deadline_for(const rpc::CallContext& ctx) const;
  // True when the service checks no tickets or `ctx` carries a valid ticket
  // of `uid`; else counts and logs the refusal (never the ticket's bytes).
  bool ticket_ok(const rpc::CallContext& ctx, uint64_t uid, std::string_view method);
  Task<void> pause();
  Task<rpc::Result<AppendReply>> serve_append(rpc::CallContext ctx, AppendRequest req);
  Task<rpc::Result<RangeReply>> serve_range(rpc::CallContext ctx, RangeRequest req);
  Task<rpc::Result<HeadReply>> serve_head(rpc::CallContext ctx, HeadRequest req);
  // Append's decision once seq <= the last stored seq, or the entry exists:
  // duplicate, conflict or stale (nullopt: no answer by the deadline).
  Task<std::optional<AppendReply>> settle_existing(kv::KvClient* kv, AppendRequest req, uint64_t last_seq,
                                                   TimePoint deadline);
  Task<rpc::Result<AppendReply>> append_unordered(kv::KvClient* kv, AppendRequest req, TimePoint deadline);

  Runtime& rt_;
  InboxServiceConfig config_;
  std::optional<ticket::KeyRing> keys_;  // none: tickets are not checked
  rpc::RpcEndpoint endpoint_;
  shard::ShardedKvClient kv_;
  InboxServiceStats stats_;
};

}  // namespace wx::inbox
