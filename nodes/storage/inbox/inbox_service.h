// InboxService: the data-access service of the per-user message inbox, over
// the sharded KV store (nodes/storage/shard/). docs/storage.md, "Sharding and
// data-access services", has the protocol.
//
// A stateless RPC node (no disk). A message is stored as its raw bytes under
//   inbox/<uid>/<seq zero-padded to 20 digits>
// in the user's home shard, so key order is seq order. The seq comes from
// seqsvr in the send path; the service takes it as input.
//
// Methods:
//   inbox.Append  (uid, seq, bytes): a CAS from version 0 — the first write of
//                 (uid, seq) wins and is never changed; a repeat with the same
//                 bytes is OK (duplicate), with other bytes INBOX_CONFLICT.
//                 An unknown CAS is re-issued from the same KvClient (a newer
//                 request id fences the older one) until definite.
//   inbox.Range   (uid, after_seq, limit): messages with seq > after_seq in
//                 increasing seq order, at most limit, by one linearizable
//                 KV scan (read index on the shard leader).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "nodes/rpc/endpoint.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/inbox/inbox.pb.h"
#include "nodes/storage/shard/shard_map.h"

namespace wx::inbox {

inline const rpc::MethodSpec kAppendMethod{"inbox.Append", rpc::Idempotent::yes, Duration::zero()};
inline const rpc::MethodSpec kRangeMethod{"inbox.Range", rpc::Idempotent::yes, Duration::zero()};

inline constexpr std::string_view kInboxKeyPrefix = "inbox/";
inline constexpr int kSeqDigits = 20;  // digits of UINT64_MAX
inline constexpr uint32_t kRangeMessagesMax = 100;
inline constexpr size_t kMessageBytesMax = 64 * 1024;

// "inbox/<uid>/"
std::string inbox_prefix(uint64_t uid);
// "inbox/<uid>/<seq, 20 digits>"
std::string inbox_key(uint64_t uid, uint64_t seq);
// The seq of an inbox key; nullopt if malformed.
std::optional<uint64_t> seq_of_key(std::string_view key);

using InboxServiceConfig = shard::DataServiceConfig;

struct InboxServiceStats {
  uint64_t appended = 0, duplicates = 0, conflicts = 0, unknown = 0, invalid = 0;
  uint64_t append_unknown = 0;  // CAS outcomes that were unknown (then fenced)
  uint64_t ranges = 0;
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
  Task<void> pause();
  Task<rpc::Result<AppendReply>> serve_append(rpc::CallContext ctx, AppendRequest req);
  Task<rpc::Result<RangeReply>> serve_range(rpc::CallContext ctx, RangeRequest req);

  Runtime& rt_;
  InboxServiceConfig config_;
  rpc::RpcEndpoint endpoint_;
  shard::ShardedKvClient kv_;
  InboxServiceStats stats_;
};

}  // namespace wx::inbox
