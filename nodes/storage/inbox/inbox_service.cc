#include "nodes/storage/inbox/inbox_service.h"

#include <charconv>
#include <limits>
#include <utility>

#include "nodes/logic/msg/msg.pb.h"  // msg.StoredMessage: Append checks the message's sender

namespace wx::inbox {

std::string inbox_prefix(uint64_t uid) {
  std::string k(kInboxKeyPrefix);
  k += std::to_string(uid);
  k += '/';
  return k;
}

std::string inbox_key(uint64_t uid, uint64_t seq) {
  std::string digits = std::to_string(seq);
  std::string k = inbox_prefix(uid);
  k.append(static_cast<size_t>(kSeqDigits) - digits.size(), '0');
  k += digits;
  return k;
}

std::optional<std::pair<uint64_t, uint64_t>> parse_inbox_key(std::string_view key) {
  if (key.substr(0, kInboxKeyPrefix.size()) != kInboxKeyPrefix) return std::nullopt;
  const std::string_view rest = key.substr(kInboxKeyPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  uint64_t uid = 0;
  auto [p, ec] = std::from_chars(rest.data(), rest.data() + slash, uid);
  if (ec != std::errc() || p != rest.data() + slash) return std::nullopt;
  std::optional<uint64_t> seq = seq_of_key(key);
  if (!seq || rest.size() - slash - 1 != static_cast<size_t>(kSeqDigits)) return std::nullopt;
  return std::make_pair(uid, *seq);
}

std::string head_key(uint64_t uid) {
  std::string k(kInboxHeadKeyPrefix);
  k += std::to_string(uid);
  return k;
}

std::optional<uint64_t> seq_of_key(std::string_view key) {
  size_t slash = key.rfind('/');
  if (slash == std::string_view::npos ||
      key.size() - slash - 1 != static_cast<size_t>(kSeqDigits)) {
    return std::nullopt;
  }
  std::string_view digits = key.substr(slash + 1);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || p != digits.data() + digits.size()) return std::nullopt;
  return v;
}

InboxService::InboxService(Runtime& rt, InboxServiceConfig config)
    : rt_(rt),
      config_(std::move(config)),
      keys_(config_.keys.keys.empty() ? std::nullopt : std::make_optional<ticket::KeyRing>(config_.keys)),
      endpoint_(rt, config_.server),
      kv_(rt, endpoint_, config_.shards, config_.kv) {}

InboxService::~InboxService() = default;

void InboxService::start() {
  endpoint_.register_method<AppendRequest, AppendReply>(
      kAppendMethod,
      [this](rpc::CallContext ctx, AppendRequest req) -> Task<rpc::Result<AppendReply>> {
        return serve_append(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<RangeRequest, RangeReply>(
      kRangeMethod,
      [this](rpc::CallContext ctx, RangeRequest req) -> Task<rpc::Result<RangeReply>> {
        return serve_range(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<HeadRequest, HeadReply>(
      kHeadMethod, [this](rpc::CallContext ctx, HeadRequest req) -> Task<rpc::Result<HeadReply>> {
        return serve_head(std::move(ctx), std::move(req));
      });
  endpoint_.start();
}

TimePoint InboxService::deadline_for(const rpc::CallContext& ctx) const {
  TimePoint d = rt_.now() + config_.request_budget;
  if (ctx.deadline - config_.reply_margin < d) d = ctx.deadline - config_.reply_margin;
  return d;
}

bool InboxService::ticket_ok(const rpc::CallContext& ctx, uint64_t uid, std::string_view method) {
  if (!keys_) return true;
  const ticket::TicketCheck c = keys_->verify_for_user(ctx.ticket, rt_.now(), uid);
  if (c.ok()) return true;
  ++stats_.unauthenticated;
  rt_.debug("inbox: {} for uid {} refused: ticket {} (ticket uid {})", method, uid, ticket::to_string(c.status),
            c.user_id);
  return false;
}

Task<void> InboxService::pause() {
  int64_t pause_ns = config_.retry_pause.ns();
  co_await rt_.sleep(nanoseconds(
      pause_ns / 2 +
      static_cast<int64_t>(rt_.rng().next_u64() % static_cast<uint64_t>(pause_ns + 1))));
}

Task<rpc::Result<AppendReply>> InboxService::serve_append(rpc::CallContext ctx, AppendRequest req) {
  AppendReply reply;
  if (!ticket_ok(ctx, req.sender_uid(), "append")) {
    reply.set_code(INBOX_UNAUTHENTICATED);
    co_return reply;
  }
  if (keys_) {
    // The writer acts for sender_uid only: the stored message must say so.
    msg::StoredMessage m;
    if (req.message().size() > kMessageBytesMax || !m.ParseFromString(req.message()) ||
        m.sender() != req.sender_uid()) {
      ++stats_.forbidden;
      rt_.debug("inbox: append to {} by {} refused: the message names another sender", req.uid(),
                req.sender_uid());
      reply.set_code(INBOX_FORBIDDEN);
      co_return reply;
    }
  }
  std::optional<shard::ShardedKvClient::Lease> lease;
  if (req.uid() != 0 && req.seq() != 0 && req.message().size() <= kMessageBytesMax) {
    lease = kv_.lease_for_user(req.uid());
  }
  if (!lease) {
    ++stats_.invalid;
    reply.set_code(INBOX_INVALID);
    co_return reply;
  }
  kv::KvClient* kv = lease->get();
  const TimePoint deadline = deadline_for(ctx);
  if (config_.unordered_append_for_tests) co_return co_await append_unordered(kv, std::move(req), deadline);

  const std::string key = inbox_key(req.uid(), req.seq());
  const std::string hkey = head_key(req.uid());
  InboxHead next;
  next.set_last_seq(req.seq());
  const std::string next_head = next.SerializeAsString();
  bool saw_unknown = false;
  int races = 0;
  while (races < kAppendRoundsMax && rt_.now() < deadline) {
    // 1. The head: the last stored seq, and its KV version for the txn.
    kv::KvResult h = co_await kv->get(hkey);
    if (h.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    InboxHead head;
    if (h.found && !head.ParseFromString(h.value)) {
      rt_.error("inbox: head of uid {} does not parse", req.uid());
      break;
    }
    if (req.seq() <= head.last_seq()) {
      // Nothing can be stored at or below the head any more: the entry decides.
      std::optional<AppendReply> r = co_await settle_existing(kv, req, head.last_seq(), deadline);
      if (!r) break;
      co_return std::move(*r);
    }
    // 2. One txn: the head still at the version read and no entry yet →
    //    the entry and the new head, together.
    std::vector<kv::KvTxnCondition> conds = {{hkey, h.version}, {key, 0}};
    std::vector<kv::KvTxnWrite> writes = {{key, req.message()}, {hkey, next_head}};
    kv::KvTxnResult t = co_await kv->txn(conds, writes);
    while (t.code == kv::KvTxnCode::unknown && rt_.now() < deadline) {
      // Re-issue the same txn from the same client: its newer request id
      // fences the unknown one, and a definite answer settles the question
      // (if the unknown one applied, this one fails on the head version and
      // the next round finds the entry).
      saw_unknown = true;
      co_await pause();
      t = co_await kv->txn(conds, writes);
    }
    if (t.code == kv::KvTxnCode::ok) {
      ++stats_.appended;
      reply.set_code(INBOX_OK);
      co_return reply;
    }
    if (t.code == kv::KvTxnCode::unknown) {
      saw_unknown = true;
      break;
    }
    if (t.code == kv::KvTxnCode::invalid) {
      rt_.error("inbox: append txn refused as invalid: {}", t.error);
      ++stats_.invalid;
      reply.set_code(INBOX_INVALID);
      co_return reply;
    }
    // conditions_failed.
    if (t.condition_versions.size() == 2 && t.condition_versions[1] != 0) {
      // The entry exists (another append of this seq, or our own earlier
      // attempt that was unknown): same bytes or not.
      std::optional<AppendReply> r = co_await settle_existing(kv, req, head.last_seq(), deadline);
      if (!r) break;
      co_return std::move(*r);
    }
    ++stats_.append_races;  // the head moved: read it again
    ++races;
  }
  if (saw_unknown) ++stats_.append_unknown;
  ++stats_.unknown;
  reply.set_code(INBOX_UNKNOWN);
  co_return reply;
}

Task<std::optional<AppendReply>> InboxService::settle_existing(kv::KvClient* kv, AppendRequest req,
                                                               uint64_t last_seq, TimePoint deadline) {
  const std::string key = inbox_key(req.uid(), req.seq());
  while (rt_.now() < deadline) {
    kv::KvResult g = co_await kv->get(key);
    if (g.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    AppendReply reply;
    if (!g.found) {
      // Absent at or below the head: it can never be stored (every entry is
      // written with a head below it, and the head only grows).
      ++stats_.stale_seq;
      reply.set_code(INBOX_STALE_SEQ);
      reply.set_last_seq(last_seq);
    } else if (g.value == req.message()) {
      ++stats_.duplicates;
      reply.set_code(INBOX_OK);
      reply.set_duplicate(true);
    } else {
      ++stats_.conflicts;
      reply.set_code(INBOX_CONFLICT);
    }
    co_return reply;
  }
  co_return std::nullopt;
}

// The old Append, for tests only (InboxServiceConfig::unordered_append_for_tests).
Task<rpc::Result<AppendReply>> InboxService::append_unordered(kv::KvClient* kv, AppendRequest req,
                                                               TimePoint deadline) {
  AppendReply reply;
  const std::string key = inbox_key(req.uid(), req.seq());
  kv::KvResult c = co_await kv->cas(key, 0, req.message());
  bool counted_unknown = false;
  while (c.code != kv::KvResultCode::ok) {
    if (c.code == kv::KvResultCode::cas_failed) {
      // The key exists and never changes: compare.
      kv::KvResult g = co_await kv->get(key);
      if (g.code != kv::KvResultCode::ok || !g.found) {
        // !found cannot follow a cas_failed from version 0 (no deletes); treat
        // it like an unreadable key.
        if (rt_.now() >= deadline) break;
        co_await pause();
        continue;  // c stays cas_failed: read again
      }
      if (g.value == req.message()) {
        ++stats_.duplicates;
        reply.set_code(INBOX_OK);
        reply.set_duplicate(true);
      } else {
        ++stats_.conflicts;
        reply.set_code(INBOX_CONFLICT);
      }
      co_return reply;
    }
    // unknown: re-issue the same CAS from the same client; its newer request
    // id fences the unknown one, so a definite answer settles the key.
    if (!counted_unknown) ++stats_.append_unknown;
    counted_unknown = true;
    if (rt_.now() >= deadline) break;
    co_await pause();
    c = co_await kv->cas(key, 0, req.message());
  }
  if (c.code == kv::KvResultCode::ok) {
    ++stats_.appended;
    reply.set_code(INBOX_OK);
    co_return reply;
  }
  ++stats_.unknown;
  reply.set_code(INBOX_UNKNOWN);
  co_return reply;
}

Task<rpc::Result<RangeReply>> InboxService::serve_range(rpc::CallContext ctx, RangeRequest req) {
  RangeReply reply;
  if (!ticket_ok(ctx, req.uid(), "range")) {
    reply.set_code(INBOX_UNAUTHENTICATED);
    co_return reply;
  }
  std::optional<shard::ShardedKvClient::Lease> lease;
  if (req.uid() != 0) lease = kv_.lease_for_user(req.uid());
  if (!lease) {
    ++stats_.invalid;
    reply.set_code(INBOX_INVALID);
    co_return reply;
  }
  ++stats_.ranges;
  reply.set_code(INBOX_OK);
  if (req.after_seq() == std::numeric_limits<uint64_t>::max())
    co_return reply;  // nothing can follow
  const uint32_t limit =
      req.limit() == 0 || req.limit() > kRangeMessagesMax ? kRangeMessagesMax : req.limit();
  std::string to = inbox_prefix(req.uid());
  to.back() = static_cast<char>(to.back() + 1);  // '/' + 1: just past every key of the uid
  kv::KvClient* kv = lease->get();
  const TimePoint deadline = deadline_for(ctx);
  while (rt_.now() < deadline) {
    kv::KvScanResult s =
        co_await kv->scan("", inbox_key(req.uid(), req.after_seq() + 1), to, limit);
    if (s.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    for (const kv::Item& item : s.items) {
      std::optional<uint64_t> seq = seq_of_key(item.key());
      if (!seq) {
        rt_.error("inbox: malformed key {}", item.key());
        continue;
      }
      InboxMessage* m = reply.add_messages();
      m->set_seq(*seq);
      m->set_message(item.value());
    }
    co_return reply;
  }
  ++stats_.unknown;
  reply.set_code(INBOX_UNKNOWN);
  co_return reply;
}


Task<rpc::Result<HeadReply>> InboxService::serve_head(rpc::CallContext ctx, HeadRequest req) {
  HeadReply reply;
  if (!ticket_ok(ctx, req.uid(), "head")) {
    reply.set_code(INBOX_UNAUTHENTICATED);
    co_return reply;
  }
  std::optional<shard::ShardedKvClient::Lease> lease;
  if (req.uid() != 0) lease = kv_.lease_for_user(req.uid());
  if (!lease) {
    ++stats_.invalid;
    reply.set_code(INBOX_INVALID);
    co_return reply;
  }
  ++stats_.heads;
  kv::KvClient* kv = lease->get();
  const TimePoint deadline = deadline_for(ctx);
  while (rt_.now() < deadline) {
    kv::KvResult h = co_await kv->get(head_key(req.uid()));
    if (h.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    InboxHead head;
    if (h.found && !head.ParseFromString(h.value)) {
      rt_.error("inbox: head of uid {} does not parse", req.uid());
      break;
    }
    reply.set_code(INBOX_OK);
    reply.set_last_seq(head.last_seq());
    co_return reply;
  }
  ++stats_.unknown;
  reply.set_code(INBOX_UNKNOWN);
  co_return reply;
}

}  // namespace wx::inbox
