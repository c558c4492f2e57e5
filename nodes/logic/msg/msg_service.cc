// MsgService: msg.Send and msg.Sync (see msg_service.h and docs/messaging.md).
#include "nodes/logic/msg/msg_service.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "nodes/access/notify.h"  // the access-layer notify hook (emit_ack)
#include "nodes/logic/group/group_service.h"
#include "nodes/storage/account/account_service.h"
#include "nodes/storage/contacts/contacts_service.h"
#include "nodes/storage/inbox/inbox.pb.h"

namespace wx::msg {

namespace {

// inbox.Append on behalf of `sender`, carrying the sender's ticket: the inbox
// checks that the ticket is the sender's and that `bytes` (a StoredMessage)
// names that sender (docs/tickets.md, "Every hop").
Task<std::optional<inbox::InboxCode>> append_as(rpc::Router& router, Duration call_timeout, uint64_t uid,
                                                uint64_t seq, std::string bytes, uint64_t sender,
                                                std::string ticket, TimePoint deadline) {
  inbox::AppendRequest req;
  req.set_uid(uid);
  req.set_seq(seq);
  req.set_message(std::move(bytes));
  req.set_sender_uid(sender);
  rpc::CallOptions o;
  o.timeout = call_timeout;
  o.deadline = deadline;
  o.ticket = std::move(ticket);
  rpc::Result<inbox::AppendReply> r =
      co_await router.call<inbox::AppendReply>(std::string(kInboxServiceName), inbox::kAppendMethod, req, o);
  if (!r.ok()) co_return std::nullopt;
  co_return r->code();
}

// The test-only background append of `unsafe_ack_before_inbox_commit`, with
// the sender's ticket (dropped with probability drop_p).
Task<void> unsafe_append_as(Runtime& rt, rpc::Router& router, Duration call_timeout, double drop_p,
                            uint64_t* dropped, uint64_t uid, uint64_t seq, std::string bytes, uint64_t sender,
                            std::string ticket) {
  if (rt.rng().bernoulli(drop_p)) {
    ++*dropped;
    co_return;
  }
  (void)co_await append_as(router, call_timeout, uid, seq, std::move(bytes), sender, std::move(ticket),
                           rt.now() + call_timeout);
}

}  // namespace

std::string sent_key(uint64_t sender, std::string_view client_msg_id) {
  std::string k(kSentKeyPrefix);
  k += std::to_string(sender);
  k += '/';
  k += client_msg_id;
  return k;
}

std::string delivery_key(uint64_t recipient, std::string_view message_id) {
  std::string k(kDeliveryKeyPrefix);
  k += std::to_string(recipient);
  k += '/';
  k += message_id;
  return k;
}

std::string message_id_for(uint64_t sender, std::string_view client_msg_id) {
  std::string m = "m" + std::to_string(sender) + "-";
  m += client_msg_id;
  return m;
}

std::optional<MessageRecord> decode_stored(uint64_t recipient, uint64_t seq, std::string_view bytes) {
  StoredMessage m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return std::nullopt;
  MessageRecord c;
  c.recipient = recipient;
  c.seq = seq;
  c.message_id = m.message_id();
  c.sender = m.sender();
  c.client_msg_id = m.client_msg_id();
  c.to_uid = m.to_uid();
  c.body_hash = body_hash(m.body());
  c.group_id = m.group_id();
  return c;
}

MsgService::MsgService(Runtime& rt, MsgServiceConfig config)
    : rt_(rt),
      config_(std::move(config)),
      keys_(config_.keys),
      endpoint_(rt, config_.server),
      router_(rt, endpoint_, config_.directory, config_.locality, config_.router),
      kv_(rt, endpoint_, config_.shards, config_.kv),
      seq_(rt, endpoint_, config_.seq),
      pool_(rt, endpoint_, config_.shards, config_.kv, config_.locality.datacenter),
      queue_(rt, pool_, config_.queue) {}

MsgService::~MsgService() = default;

void MsgService::start() {
  rpc::MethodSpec send = kSendMethod;
  if (config_.send_cost) send.cost = *config_.send_cost;
  endpoint_.register_method<SendRequest, SendReply>(
      send, [this](rpc::CallContext ctx, SendRequest req) -> Task<rpc::Result<SendReply>> {
        return serve_send(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<SyncRequest, SyncReply>(
      kSyncMethod, [this](rpc::CallContext ctx, SyncRequest req) -> Task<rpc::Result<SyncReply>> {
        return serve_sync(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<GroupSendRequest, GroupSendReply>(
      kGroupSendMethod, [this](rpc::CallContext ctx, GroupSendRequest req) -> Task<rpc::Result<GroupSendReply>> {
        return serve_group_send(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<ContactChangeRequest, ContactChangeReply>(
      kContactChangeMethod,
      [this](rpc::CallContext ctx, ContactChangeRequest req) -> Task<rpc::Result<ContactChangeReply>> {
        return serve_contact_change(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<SetProfileRequest, SetProfileReply>(
      kSetProfileMethod, [this](rpc::CallContext ctx, SetProfileRequest req) -> Task<rpc::Result<SetProfileReply>> {
        return serve_set_profile(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<DeliverRequest, DeliverReply>(
      kDeliverMethod, [this](rpc::CallContext ctx, DeliverRequest req) -> Task<rpc::Result<DeliverReply>> {
        return serve_deliver(std::move(ctx), std::move(req));
      });
  endpoint_.start();
}

TimePoint MsgService::deadline_for(const rpc::CallContext& ctx) const {
  TimePoint d = rt_.now() + config_.request_budget;
  if (ctx.deadline - config_.reply_margin < d) d = ctx.deadline - config_.reply_margin;
  return d;
}

Task<void> MsgService::pause() {
  const int64_t pause_ns = config_.retry_pause.ns();
  co_await rt_.sleep(nanoseconds(pause_ns / 2 + static_cast<int64_t>(rt_.rng().uniform(
                                                    static_cast<uint64_t>(pause_ns) + 1))));
}

template <typename Reply, typename Request, typename Unknown>
Task<std::optional<Reply>> MsgService::call_definite(std::string_view service, const rpc::MethodSpec& method,
                                                     const Request& req, const std::string& ticket,
                                                     TimePoint deadline, Unknown unknown) {
  while (rt_.now() < deadline) {
    rpc::CallOptions o;
    o.timeout = config_.inbox_call_timeout;
    o.deadline = deadline;
    o.ticket = ticket;
    rpc::Result<Reply> r = co_await router_.call<Reply>(std::string(service), method, req, o);
    if (!r.ok() || unknown(r.value())) {
      co_await pause();
      continue;
    }
    co_return std::move(r.value());
  }
  co_return std::nullopt;
}

std::optional<uint64_t> MsgService::authenticate(const rpc::CallContext& ctx, std::string* why) {
  ticket::TicketCheck c = keys_.verify(ctx.ticket, rt_.now());
  if (!c.ok()) {
    ++stats_.unauthenticated;
    *why = "ticket refused: " + std::string(ticket::to_string(c.status));
    return std::nullopt;
  }
  return c.user_id;
}

Task<std::optional<MsgService::SentState>> MsgService::claim(kv::KvClient* kv, const std::string& key,
                                                             const SentRecord& fresh, TimePoint deadline) {
  const std::string bytes = fresh.SerializeAsString();
  while (rt_.now() < deadline) {
    kv::KvResult g = co_await kv->get(key);
    if (g.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    if (g.found) {
      SentState s;
      if (!s.record.ParseFromString(g.value)) co_return std::nullopt;
      s.version = g.version;
      co_return s;
    }
    kv::KvResult c = co_await kv->cas(key, 0, bytes);
    // An unknown CAS is re-issued from the same client: its newer request
    // id fences the unknown one; cas_failed then means someone (maybe we)
    // claimed it, and the next get reads the record.
    while (c.code == kv::KvResultCode::unknown && rt_.now() < deadline) {
      co_await pause();
      c = co_await kv->cas(key, 0, bytes);
    }
    if (c.code == kv::KvResultCode::ok) co_return SentState{fresh, c.version};
    if (c.code == kv::KvResultCode::cas_failed) {
      ++stats_.cas_races;
      continue;
    }
  }
  co_return std::nullopt;
}

Task<std::optional<MsgService::SentState>> MsgService::record_seq(kv::KvClient* kv, const std::string& key,
                                                                  SentState state, uint64_t seq,
                                                                  TimePoint deadline) {
  SentRecord next = state.record;
  next.set_seq(seq);
  const std::string bytes = next.SerializeAsString();
  kv::KvResult c = co_await kv->cas(key, state.version, bytes);
  while (c.code == kv::KvResultCode::unknown && rt_.now() < deadline) {
    co_await pause();
    c = co_await kv->cas(key, state.version, bytes);
  }
  if (c.code == kv::KvResultCode::ok) co_return SentState{next, c.version};
  if (c.code == kv::KvResultCode::unknown) co_return std::nullopt;
  // Lost a race (or our own unknown CAS applied): read what is stored now.
  ++stats_.cas_races;
  while (rt_.now() < deadline) {
    kv::KvResult g = co_await kv->get(key);
    if (g.code != kv::KvResultCode::ok || !g.found) {
      co_await pause();
      continue;
    }
    SentState s;
    if (!s.record.ParseFromString(g.value)) co_return std::nullopt;
    s.version = g.version;
    co_return s;
  }
  co_return std::nullopt;
}

void MsgService::emit_ack(uint64_t sender, const SentRecord& record, std::string_view cmid) {
  // ---- access-layer notify hook (nodes/access/notify.h; docs/messaging.md,
  // "Access layer"): the message is stored for the recipient at this seq, so
  // every access node of the recipient's home datacenter is told "new data,
  // version <seq>" (fire-and-forget; a no-op without access instances). ----
  access::notify_user(rt_, endpoint_, config_.directory, config_.shards->home_of(record.to_uid()).value_or(""),
                      record.to_uid(), record.seq());
  // ---- end of the notify hook ----
  if (!config_.ack_observer) return;
  AckRecord ack;
  ack.message_id = record.message_id();
  ack.sender = sender;
  ack.client_msg_id = std::string(cmid);
  ack.to_uid = record.to_uid();
  ack.recipient = record.to_uid();
  ack.seq = record.seq();
  config_.ack_observer(rt_.node_id(), ack);
}

Task<rpc::Result<SendReply>> MsgService::serve_send(rpc::CallContext ctx, SendRequest req) {
  SendReply reply;
  ++stats_.sends;
  std::string why;
  const std::optional<uint64_t> sender = authenticate(ctx, &why);
  if (!sender) {
    reply.set_code(MSG_UNAUTHENTICATED);
    reply.set_error(why);
    co_return reply;
  }
  if (!homed_here(*sender)) co_return co_await forward_home<SendReply>(kSendMethod, *sender, ctx, req);
  const uint64_t to = req.to_uid();
  if (to == 0 || req.client_msg_id().empty() || req.client_msg_id().size() > kClientMsgIdBytesMax ||
      req.body().size() > kBodyBytesMax || !config_.shards->group_of(to)) {
    ++stats_.sends_refused;
    reply.set_code(MSG_INVALID);
    reply.set_error("invalid send: peer, client message id or body");
    co_return reply;
  }
  std::optional<shard::ShardedKvClient::Lease> lease = kv_.lease_for_user(*sender);
  if (!lease) {
    ++stats_.sends_refused;
    reply.set_code(MSG_INVALID);
    reply.set_error("the sender has no home");
    co_return reply;
  }
  kv::KvClient* kv = lease->get();
  const TimePoint deadline = deadline_for(ctx);
  const std::string key = sent_key(*sender, req.client_msg_id());
  const uint64_t hash = body_hash(req.body());

  SentRecord fresh;
  fresh.set_message_id(message_id_for(*sender, req.client_msg_id()));
  fresh.set_to_uid(to);
  fresh.set_body_hash(hash);
  std::optional<SentState> state = co_await claim(kv, key, fresh, deadline);
  if (state && (state->record.to_uid() != to || state->record.body_hash() != hash)) {
    ++stats_.sends_refused;
    reply.set_code(MSG_CMID_REUSED);
    reply.set_error("client message id already used for another message");
    co_return reply;
  }
  StoredMessage stored;
  if (state) {
    stored.set_message_id(state->record.message_id());
    stored.set_sender(*sender);
    stored.set_client_msg_id(req.client_msg_id());
    stored.set_to_uid(to);
    stored.set_body(req.body());
  }
  const std::string bytes = stored.SerializeAsString();

  if (state && !homed_here(to)) {
    co_return co_await send_remote(std::move(ctx), std::move(req), *sender, kv, key, *state, deadline);
  }
  const std::string cmid = req.client_msg_id();
  const uint64_t from = *sender;
  Stored st = co_await store(kv, key, std::move(state), to, bytes, *sender, ctx.ticket, deadline,
                             [this, from, &cmid](const SentRecord& r) { emit_ack(from, r, cmid); });
  if (st.code == MSG_OK) {
    ++stats_.sends_ok;
    reply.set_code(MSG_OK);
    reply.set_message_id(message_id_for(*sender, req.client_msg_id()));
    reply.set_seq(st.seq);
    co_return reply;
  }
  if (st.code == MSG_UNKNOWN) ++stats_.sends_unknown;
  reply.set_code(st.code);
  reply.set_error(st.error);
  co_return reply;
}

Task<MsgService::Stored> MsgService::store(kv::KvClient* kv, const std::string& key, std::optional<SentState> state,
                                           uint64_t to, std::string bytes, uint64_t sender, std::string ticket,
                                           TimePoint deadline, const std::function<void(const SentRecord&)>& acked) {
  Stored out;
  for (int round = 0; state && round < kSendRoundsMax && rt_.now() < deadline; ++round) {
    if (state->record.seq() == 0) {
      seqsvr::SeqResult s = co_await seq_.alloc(to);
      if (!s.ok) break;
      ++stats_.seq_allocs;
      state = co_await record_seq(kv, key, *state, s.seq, deadline);
      if (!state) break;
      continue;  // the record now holds a seq (ours or a racing attempt's)
    }
    const uint64_t seq = state->record.seq();
    if (config_.unsafe_ack_before_inbox_commit) {
      // THE BUG (test only): acknowledged before the inbox holds it.
      acked(state->record);
      rt_.spawn(unsafe_append_as(rt_, router_, config_.inbox_call_timeout, config_.unsafe_drop_append_p,
                                 &stats_.unsafe_dropped, to, seq, bytes, sender, ticket),
                "msg-unsafe-append");
      out.code = MSG_OK;
      out.seq = seq;
      co_return out;
    }
    std::optional<inbox::InboxCode> code =
        co_await append_as(router_, config_.inbox_call_timeout, to, seq, bytes, sender, ticket, deadline);
    if (code && *code == inbox::INBOX_OK) {
      acked(state->record);
      out.code = MSG_OK;
      out.seq = seq;
      co_return out;
    }
    if (code && *code == inbox::INBOX_STALE_SEQ) {
      // The inbox grew past this seq and will never store it: a fresh seq,
      // recorded over the stale one (a racing attempt may have done so).
      ++stats_.stale_seqs;
      seqsvr::SeqResult s = co_await seq_.alloc(to);
      if (!s.ok) break;
      ++stats_.seq_allocs;
      state = co_await record_seq(kv, key, *state, s.seq, deadline);
      continue;
    }
    if (code && *code == inbox::INBOX_UNAUTHENTICATED) {
      // The inbox refused the ticket this service accepted (it expired in
      // between, or the two hold different keys). Definite: nothing stored.
      out.code = MSG_UNAUTHENTICATED;
      out.error = "the inbox refused the ticket";
      co_return out;
    }
    if (code && (*code == inbox::INBOX_CONFLICT || *code == inbox::INBOX_INVALID ||
                 *code == inbox::INBOX_FORBIDDEN)) {
      // A seq from seqsvr holding another message, or a refused message:
      // an invariant broke. Nothing of ours is stored at this seq.
      rt_.error("msg: inbox refused {} seq {} of {}: code {}", to, seq, state->record.message_id(),
                static_cast<int>(*code));
      out.code = MSG_INTERNAL;
      out.error = "inbox refused the message";
      co_return out;
    }
    co_await pause();  // unknown: the same seq again (idempotent)
  }
  out.code = MSG_UNKNOWN;
  out.error = "no definite answer within the request budget";
  co_return out;
}

bool MsgService::homed_here(uint64_t uid) const {
  if (!config_.shards->multi_datacenter()) return true;
  // A uid without a home is refused by the request's own checks, here.
  const std::optional<std::string> home = config_.shards->home_of(uid);
  return !home || *home == config_.locality.datacenter;
}

template <typename Reply, typename Request>
Task<rpc::Result<Reply>> MsgService::forward_home(const rpc::MethodSpec& method, uint64_t uid,
                                                  const rpc::CallContext& ctx, const Request& req) {
  ++stats_.forwarded;
  std::string service(kServiceName);
  service += '@';
  service += config_.shards->home_of(uid).value_or("");
  rpc::CallOptions o = rpc::CallOptions::downstream(ctx);
  o.deadline = ctx.deadline - config_.reply_margin;
  co_return co_await router_.call<Reply>(std::move(service), method, req, o);
}

// A 1:1 message to a user homed in another datacenter: durably queued here
// (the remote queues), acknowledged, and delivered by a fan-out worker through
// msg.Deliver in the recipient's home datacenter — during a partition it
// waits in the queue (docs/multi-dc.md "Cross-datacenter messages").
Task<rpc::Result<SendReply>> MsgService::send_remote(rpc::CallContext ctx, SendRequest req, uint64_t sender,
                                                     kv::KvClient* kv, std::string key, SentState state,
                                                     TimePoint deadline) {
  SendReply reply;
  const uint64_t to = req.to_uid();
  if (!state.record.queued()) {
    GroupQueueItem item;
    item.set_message_id(state.record.message_id());
    item.set_sender(sender);
    item.set_client_msg_id(req.client_msg_id());
    item.set_body(req.body());
    item.set_sender_ticket(ctx.ticket);
    item.add_members(std::min(sender, to));
    item.add_members(std::max(sender, to));
    const Refusal refused = co_await enqueue_and_mark(kv, key, state, queue_.remote_queue_for(to), item,
                                                      "the cross-datacenter queue", deadline);
    if (refused.code != MSG_OK) {
      ++(refused.code == MSG_UNKNOWN ? stats_.sends_unknown : stats_.sends_refused);
      reply.set_code(refused.code);
      reply.set_error(refused.error);
      co_return reply;
    }
    ++stats_.remote_sends_queued;
  }
  if (config_.ack_observer) {
    AckRecord ack;
    ack.queued = true;
    ack.message_id = state.record.message_id();
    ack.sender = sender;
    ack.client_msg_id = req.client_msg_id();
    ack.to_uid = to;
    config_.ack_observer(rt_.node_id(), ack);
  }
  ++stats_.sends_ok;
  reply.set_code(MSG_OK);
  reply.set_message_id(state.record.message_id());
  co_return reply;
}

Task<MsgService::Refusal> MsgService::enqueue_and_mark(kv::KvClient* kv, const std::string& key,
                                                       const SentState& state, uint32_t q, const GroupQueueItem& item,
                                                       std::string_view queue_name, TimePoint deadline) {
  Refusal out;
  queue::EnqueueResult e =
      co_await queue_.enqueue(q, state.record.message_id(), item.SerializeAsString(), deadline);
  if (e.code == queue::EnqueueCode::full) {
    out.code = MSG_QUEUE_FULL;
    out.error = std::string(queue_name) + " is full; retry later with the same client message id";
    co_return out;
  }
  if (e.code == queue::EnqueueCode::invalid) {
    out.code = MSG_INVALID;
    out.error = "the queue refused the item";
    co_return out;
  }
  if (e.code == queue::EnqueueCode::unknown) {
    out.code = MSG_UNKNOWN;
    out.error = "enqueue outcome unknown; retry with the same client message id";
    co_return out;
  }
  // Remember it (best effort: a retry without it finds the dedup record).
  SentRecord next = state.record;
  next.set_queued(true);
  ++stats_.kv_writes;
  (void)co_await kv->cas(key, state.version, next.SerializeAsString());
  co_return out;
}

Task<rpc::Result<DeliverReply>> MsgService::serve_deliver(rpc::CallContext ctx, DeliverRequest req) {
  DeliverReply reply;
  ++stats_.delivers;
  std::string why;
  const std::optional<uint64_t> sender = authenticate(ctx, &why);
  if (!sender) {
    reply.set_code(MSG_UNAUTHENTICATED);
    reply.set_error(why);
    co_return reply;
  }
  const GroupQueueItem& item = req.item();
  const uint64_t to = req.recipient();
  const bool member = std::find(item.members().begin(), item.members().end(), to) != item.members().end();
  if (*sender != item.sender() || to == 0 || to == item.sender() || !member || item.message_id().empty() ||
      item.client_msg_id().empty() || item.body().size() > kBodyBytesMax || !homed_here(to)) {
    reply.set_code(*sender != item.sender() ? MSG_UNAUTHENTICATED : MSG_INVALID);
    reply.set_error("invalid delivery: sender, recipient or message");
    co_return reply;
  }
  std::optional<shard::ShardedKvClient::Lease> lease = kv_.lease_for_user(to);
  if (!lease) {
    reply.set_code(MSG_INVALID);
    reply.set_error("the recipient has no home");
    co_return reply;
  }
  const TimePoint deadline = deadline_for(ctx);
  const std::string key = delivery_key(to, item.message_id());
  SentRecord fresh;
  fresh.set_message_id(item.message_id());
  fresh.set_to_uid(item.group_id() == 0 ? to : 0);
  fresh.set_group_id(item.group_id());
  fresh.set_body_hash(body_hash(item.body()));
  std::optional<SentState> state = co_await claim(lease->get(), key, fresh, deadline);
  if (state && state->record.message_id() != item.message_id()) state.reset();
  StoredMessage stored;
  stored.set_message_id(item.message_id());
  stored.set_sender(item.sender());
  stored.set_client_msg_id(item.client_msg_id());
  if (item.group_id() == 0) stored.set_to_uid(to);
  stored.set_group_id(item.group_id());
  stored.set_body(item.body());
  Stored st = co_await store(lease->get(), key, std::move(state), to, stored.SerializeAsString(), item.sender(),
                             ctx.ticket, deadline, [this, &item, to](const SentRecord& r) {
                               access::notify_user(rt_, endpoint_, config_.directory, config_.locality.datacenter, to,
                                                   r.seq());
                               if (item.group_id() == 0 && config_.ack_observer) {
                                 AckRecord ack;
                                 ack.message_id = item.message_id();
                                 ack.sender = item.sender();
                                 ack.client_msg_id = item.client_msg_id();
                                 ack.to_uid = to;
                                 ack.recipient = to;
                                 ack.seq = r.seq();
                                 config_.ack_observer(rt_.node_id(), ack);
                               }
                               if (item.group_id() != 0 && config_.group_ack_observer) {
                                 GroupAckRecord a;
                                 a.message_id = item.message_id();
                                 a.sender = item.sender();
                                 a.client_msg_id = item.client_msg_id();
                                 a.group_id = item.group_id();
                                 a.recipients.emplace_back(to, r.seq());
                                 config_.group_ack_observer(rt_.node_id(), a);
                               }
                             });
  if (st.code == MSG_OK) ++stats_.delivers_ok;
  reply.set_code(st.code);
  reply.set_seq(st.seq);
  reply.set_error(st.error);
  co_return reply;
}

Task<rpc::Result<SyncReply>> MsgService::serve_sync(rpc::CallContext ctx, SyncRequest req) {
  SyncReply reply;
  ++stats_.syncs;
  std::string why;
  const std::optional<uint64_t> user = authenticate(ctx, &why);
  if (!user) {
    reply.set_code(MSG_UNAUTHENTICATED);
    reply.set_error(why);
    co_return reply;
  }
  if (!homed_here(*user)) co_return co_await forward_home<SyncReply>(kSyncMethod, *user, ctx, req);
  if (req.key_size() > kSyncKeyTypesMax) {
    reply.set_code(MSG_INVALID);
    reply.set_error("sync key has too many data types");
    co_return reply;
  }
  std::map<std::string, uint64_t> key;  // the presented key, by type
  for (const SyncKeyEntry& e : req.key()) {
    uint64_t& v = key[e.type()];
    if (e.version() > v) v = e.version();
  }
  const uint64_t after = key[std::string(kMessagesType)];
  const uint32_t limit = req.limit() == 0 || req.limit() > kSyncPageMax ? kSyncPageMax : req.limit();
  const TimePoint deadline = deadline_for(ctx);
  inbox::RangeRequest r;
  r.set_uid(*user);
  r.set_after_seq(after);
  r.set_limit(limit);
  const std::optional<inbox::RangeReply> rr = co_await call_definite<inbox::RangeReply>(
      kInboxServiceName, inbox::kRangeMethod, r, ctx.ticket, deadline,
      [](const inbox::RangeReply& x) { return x.code() == inbox::INBOX_UNKNOWN; });
  if (!rr) {
    ++stats_.syncs_unknown;
    reply.set_code(MSG_UNKNOWN);
    reply.set_error("no answer from the inbox within the request budget");
    co_return reply;
  }
  if (rr->code() == inbox::INBOX_UNAUTHENTICATED) {
    reply.set_code(MSG_UNAUTHENTICATED);
    reply.set_error("the inbox refused the ticket");
    co_return reply;
  }
  if (rr->code() != inbox::INBOX_OK) {
    reply.set_code(MSG_INVALID);
    reply.set_error("inbox refused the range");
    co_return reply;
  }
  uint64_t last = after;
  for (const inbox::InboxMessage& m : rr->messages()) {
    StoredMessage s;
    if (m.seq() <= last || !s.ParseFromString(m.message())) {
      rt_.error("msg: inbox of {} returned seq {} out of order or unparsable", *user, m.seq());
      reply.set_code(MSG_INTERNAL);
      reply.clear_messages();
      co_return reply;
    }
    SyncMessage* out = reply.add_messages();
    out->set_seq(m.seq());
    out->set_message_id(s.message_id());
    out->set_sender(s.sender());
    out->set_client_msg_id(s.client_msg_id());
    out->set_to_uid(s.to_uid());
    out->set_body(s.body());
    out->set_group_id(s.group_id());
    last = m.seq();
  }
  key[std::string(kMessagesType)] = last;
  reply.set_more(static_cast<uint32_t>(rr->messages_size()) >= limit);
  // The other data types, each only when presented.
  if (auto c = key.find(std::string(kContactsType)); c != key.end()) {
    if (!co_await sync_contacts(ctx, *user, c->second, deadline, &reply, &c->second)) {
      reply.clear_messages();  // nothing partial: the key does not move
      reply.clear_contacts();
      reply.set_more(false);
      co_return reply;
    }
  }
  if (auto a = key.find(std::string(kAccountType)); a != key.end()) {
    if (!co_await sync_account(ctx, *user, a->second, deadline, &reply, &a->second)) {
      reply.clear_messages();
      reply.clear_contacts();
      reply.clear_profile();
      reply.set_more(false);
      co_return reply;
    }
  }
  // Every data type presented is listed; types this service does not serve
  // keep the presented version (never older than the client's).
  for (const auto& [type, version] : key) {
    SyncKeyEntry* e = reply.add_key();
    e->set_type(type);
    e->set_version(version);
  }
  reply.set_code(MSG_OK);
  ++stats_.syncs_ok;
  co_return reply;
}

Task<rpc::Result<GroupSendReply>> MsgService::serve_group_send(rpc::CallContext ctx, GroupSendRequest req) {
  GroupSendReply reply;
  ++stats_.group_sends;
  std::string why;
  const std::optional<uint64_t> sender = authenticate(ctx, &why);
  if (!sender) {
    reply.set_code(MSG_UNAUTHENTICATED);
    reply.set_error(why);
    co_return reply;
  }
  if (!homed_here(*sender)) co_return co_await forward_home<GroupSendReply>(kGroupSendMethod, *sender, ctx, req);
  const uint64_t gid = req.group_id();
  if (gid == 0 || req.client_msg_id().empty() || req.client_msg_id().size() > kClientMsgIdBytesMax ||
      req.body().size() > kBodyBytesMax) {
    ++stats_.group_sends_refused;
    reply.set_code(MSG_INVALID);
    reply.set_error("invalid group send: group, client message id or body");
    co_return reply;
  }
  std::optional<shard::ShardedKvClient::Lease> lease = kv_.lease_for_user(*sender);
  if (!lease) {
    ++stats_.group_sends_refused;
    reply.set_code(MSG_INVALID);
    reply.set_error("the sender has no home");
    co_return reply;
  }
  kv::KvClient* kv = lease->get();
  const TimePoint deadline = deadline_for(ctx);
  const std::string key = sent_key(*sender, req.client_msg_id());
  const uint64_t hash = body_hash(req.body());
  const std::string message_id = message_id_for(*sender, req.client_msg_id());

  // 1. The sent record: an earlier attempt's (members fixed then), or a new
  //    one with the members read now.
  std::optional<SentState> state;
  while (!state && rt_.now() < deadline) {
    kv::KvResult g = co_await kv->get(key);
    if (g.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    if (g.found) {
      SentState s;
      if (!s.record.ParseFromString(g.value)) break;
      s.version = g.version;
      state = std::move(s);
      break;
    }
    group::GroupRead gr = co_await group::read_group(rt_, pool_, gid, deadline);
    if (!gr.ok) break;
    if (!gr.found) {
      ++stats_.group_sends_refused;
      reply.set_code(MSG_INVALID);
      reply.set_error("no such group");
      co_return reply;
    }
    const auto& ms = gr.record.members();
    if (!std::binary_search(ms.begin(), ms.end(), *sender)) {
      ++stats_.group_sends_refused;
      reply.set_code(MSG_FORBIDDEN);
      reply.set_error("the sender is not a member of the group");
      co_return reply;
    }
    SentRecord fresh;
    fresh.set_message_id(message_id);
    fresh.set_group_id(gid);
    fresh.set_body_hash(hash);
    for (uint64_t m : ms) fresh.add_members(m);
    ++stats_.kv_writes;
    state = co_await claim(kv, key, fresh, deadline);  // a racing attempt's record wins
    if (!state) break;
  }
  if (!state) {
    ++stats_.group_sends_unknown;
    reply.set_code(MSG_UNKNOWN);
    reply.set_error("no definite answer within the request budget");
    co_return reply;
  }
  if (state->record.group_id() != gid || state->record.to_uid() != 0 || state->record.body_hash() != hash) {
    ++stats_.group_sends_refused;
    reply.set_code(MSG_CMID_REUSED);
    reply.set_error("client message id already used for another message");
    co_return reply;
  }

  // 2. The queue item (idempotent on the message id).
  if (!state->record.queued()) {
    GroupQueueItem item;
    item.set_message_id(state->record.message_id());
    item.set_sender(*sender);
    item.set_client_msg_id(req.client_msg_id());
    item.set_group_id(gid);
    item.set_body(req.body());
    item.set_sender_ticket(ctx.ticket);  // the fan-out appends act for the sender with it
    for (uint64_t m : state->record.members()) item.add_members(m);
    const Refusal refused = co_await enqueue_and_mark(kv, key, *state, queue::queue_for(gid, queue_.group_queues()),
                                                      item, "the group's queue", deadline);
    if (refused.code != MSG_OK) {
      ++(refused.code == MSG_UNKNOWN ? stats_.group_sends_unknown : stats_.group_sends_refused);
      reply.set_code(refused.code);
      reply.set_error(refused.error);
      co_return reply;
    }
  }

  // 3. Durably enqueued: the acknowledgement.
  if (config_.group_members_observer) {
    GroupMembersRecord f;
    f.group_id = gid;
    f.sender = *sender;
    f.client_msg_id = req.client_msg_id();
    f.message_id = state->record.message_id();
    f.members.assign(state->record.members().begin(), state->record.members().end());
    config_.group_members_observer(rt_.node_id(), f);
  }
  if (config_.group_ack_observer) {
    GroupAckRecord a;
    a.message_id = state->record.message_id();
    a.sender = *sender;
    a.client_msg_id = req.client_msg_id();
    a.group_id = gid;
    config_.group_ack_observer(rt_.node_id(), a);
  }
  ++stats_.group_sends_ok;
  reply.set_code(MSG_OK);
  reply.set_message_id(state->record.message_id());
  co_return reply;
}

Task<bool> MsgService::sync_contacts(const rpc::CallContext& ctx, uint64_t user, uint64_t after,
                                     TimePoint deadline, SyncReply* reply, uint64_t* new_version) {
  contacts::ChangesRequest req;
  req.set_uid(user);
  req.set_after_version(after);
  req.set_limit(kSyncPageMax);
  const std::optional<contacts::ChangesReply> r = co_await call_definite<contacts::ChangesReply>(
      kContactsServiceName, contacts::kChangesMethod, req, ctx.ticket, deadline,
      [](const contacts::ChangesReply& x) { return x.code() == contacts::CONTACTS_UNKNOWN; });
  if (!r) {
    ++stats_.syncs_unknown;
    reply->set_code(MSG_UNKNOWN);
    reply->set_error("no answer from the contacts service within the request budget");
    co_return false;
  }
  if (r->code() == contacts::CONTACTS_UNAUTHENTICATED) {
    reply->set_code(MSG_UNAUTHENTICATED);
    reply->set_error("the contacts service refused the ticket");
    co_return false;
  }
  if (r->code() != contacts::CONTACTS_OK) {
    reply->set_code(MSG_INVALID);
    reply->set_error("the contacts service refused the sync");
    co_return false;
  }
  for (const contacts::ContactItem& item : r->changes()) {
    ContactChange* c = reply->add_contacts();
    c->set_contact_uid(item.contact_uid());
    c->set_change_version(item.change_version());
    c->set_removed(item.removed());
  }
  *new_version = std::max(after, r->version());
  if (r->more()) reply->set_more(true);
  co_return true;
}

Task<bool> MsgService::sync_account(const rpc::CallContext& ctx, uint64_t user, uint64_t after, TimePoint deadline,
                                    SyncReply* reply, uint64_t* new_version) {
  account::GetProfileRequest req;
  req.set_uid(user);
  const std::optional<account::ProfileReply> r = co_await call_definite<account::ProfileReply>(
      kAccountServiceName, account::kGetProfileMethod, req, ctx.ticket, deadline,
      [](const account::ProfileReply& x) { return x.code() == account::PROFILE_UNKNOWN; });
  if (!r) {
    ++stats_.syncs_unknown;
    reply->set_code(MSG_UNKNOWN);
    reply->set_error("no answer from the account service within the request budget");
    co_return false;
  }
  if (r->code() == account::PROFILE_UNAUTHENTICATED) {
    reply->set_code(MSG_UNAUTHENTICATED);
    reply->set_error("the account service refused the ticket");
    co_return false;
  }
  if (r->code() == account::PROFILE_NOT_FOUND) co_return true;  // no account: version 0, nothing to sync
  if (r->code() != account::PROFILE_OK) {
    reply->set_code(MSG_INVALID);
    reply->set_error("the account service refused the sync");
    co_return false;
  }
  if (r->version() > after) {
    *reply->mutable_profile() = r->profile();
    *new_version = r->version();
  }
  co_return true;
}

Task<rpc::Result<ContactChangeReply>> MsgService::serve_contact_change(rpc::CallContext ctx,
                                                                      ContactChangeRequest req) {
  ContactChangeReply reply;
  std::string why;
  const std::optional<uint64_t> user = authenticate(ctx, &why);
  if (!user) {
    reply.set_code(MSG_UNAUTHENTICATED);
    reply.set_error(why);
    co_return reply;
  }
  if (!homed_here(*user)) co_return co_await forward_home<ContactChangeReply>(kContactChangeMethod, *user, ctx, req);
  if (req.contact_uid() == 0 || req.contact_uid() == *user || !config_.shards->group_of(req.contact_uid())) {
    reply.set_code(MSG_INVALID);
    reply.set_error("invalid contact: zero, oneself, or a uid with no home");
    co_return reply;
  }
  contacts::ChangeContactRequest cr;
  cr.set_uid(*user);
  cr.set_contact_uid(req.contact_uid());
  const TimePoint deadline = deadline_for(ctx);
  // Retried while unknown: a set operation, the same change again is harmless.
  const std::optional<contacts::ChangeContactReply> r = co_await call_definite<contacts::ChangeContactReply>(
      kContactsServiceName, req.remove() ? contacts::kRemoveContactMethod : contacts::kAddContactMethod, cr,
      ctx.ticket, deadline,
      [](const contacts::ChangeContactReply& x) { return x.code() == contacts::CONTACTS_UNKNOWN; });
  if (!r) {
    reply.set_code(MSG_UNKNOWN);
    reply.set_error("no definite answer within the request budget");
    co_return reply;
  }
  if (r->code() == contacts::CONTACTS_OK) {
    ++stats_.contact_changes;
    reply.set_code(MSG_OK);
    reply.set_version(r->version());
    reply.set_changed(r->changed());
    co_return reply;
  }
  reply.set_code(r->code() == contacts::CONTACTS_UNAUTHENTICATED ? MSG_UNAUTHENTICATED : MSG_INVALID);
  reply.set_error("the contacts service refused the change");
  co_return reply;
}

Task<rpc::Result<SetProfileReply>> MsgService::serve_set_profile(rpc::CallContext ctx, SetProfileRequest req) {
  SetProfileReply reply;
  std::string why;
  const std::optional<uint64_t> user = authenticate(ctx, &why);
  if (!user) {
    reply.set_code(MSG_UNAUTHENTICATED);
    reply.set_error(why);
    co_return reply;
  }
  if (!homed_here(*user)) co_return co_await forward_home<SetProfileReply>(kSetProfileMethod, *user, ctx, req);
  account::SetProfileRequest ar;
  ar.set_uid(*user);
  *ar.mutable_profile() = req.profile();
  const TimePoint deadline = deadline_for(ctx);
  const std::optional<account::ProfileReply> r = co_await call_definite<account::ProfileReply>(
      kAccountServiceName, account::kSetProfileMethod, ar, ctx.ticket, deadline,
      [](const account::ProfileReply& x) { return x.code() == account::PROFILE_UNKNOWN; });
  if (!r) {
    reply.set_code(MSG_UNKNOWN);
    reply.set_error("no definite answer within the request budget");
    co_return reply;
  }
  if (r->code() == account::PROFILE_OK) {
    ++stats_.profile_sets;
    reply.set_code(MSG_OK);
    reply.set_version(r->version());
    reply.set_changed(r->changed());
    co_return reply;
  }
  reply.set_code(r->code() == account::PROFILE_UNAUTHENTICATED ? MSG_UNAUTHENTICATED : MSG_INVALID);
  reply.set_error(r->code() == account::PROFILE_NOT_FOUND ? "no account for this user"
                                                          : "the account service refused the profile");
  co_return reply;
}

}  // namespace wx::msg
