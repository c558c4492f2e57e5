// MsgService: the stateless logic service of 1:1 messaging (docs/messaging.md),
// deployed in every zone. Methods:
//
//   msg.Send (to_uid, client_msg_id, body), for the TICKET's user only:
//     1. the "sent" record msgsent/<sender>/<cmid> in the sender's home shard
//        is claimed by a CAS from version 0 (message id "m<sender>-<cmid>");
//        a retry finds it and reuses it (same conversation and body hash, or
//        MSG_CMID_REUSED);
//     2. if the record has no seq yet: one from seqsvr for the recipient,
//        recorded by CAS (a racing attempt that recorded first wins, ours is a
//        gap);
//     3. inbox.Append(recipient, seq, StoredMessage bytes) — identical bytes
//        on every attempt, so a repeat is a duplicate. On INBOX_STALE_SEQ (the
//        inbox has grown past this seq and will never store it): a fresh seq,
//        recorded by CAS over the stale one, and again;
//     4. OK with the message id and the seq, and an ack to the recorder hook.
//     Every step is bounded (kSendRoundsMax, the request budget); when the
//     budget runs out the reply is MSG_UNKNOWN, never a false OK. Idempotent
//     on (sender, client_msg_id), so the method is Idempotent::yes.
//
//   msg.Sync (key, limit), for the ticket's user: inbox.Range(user,
//     key["messages"], limit) → the messages in increasing seq order, the new
//     key (messages = last seq returned, else the presented one: never older)
//     and `more` (a full page).
//
//   Sync of the other data types (docs/messaging.md "Sync of account and
//   contacts"), served only when the client PRESENTS the type in its key:
//     "contacts" = v: contacts.Changes(user, after v) → the changes (adds and
//       removals) with change_version > v, increasing; the new key the
//       version they reach (`more` when a page is full);
//     "account" = v: account.GetProfile(user) → the profile when the
//       current account version is above v; the new key that version.
//
//   msg.ContactChange (contact_uid, remove), for the ticket's user:
//     contacts.AddContact / RemoveContact with the caller's ticket → the new
//     contacts version, changed. Idempotent (a set operation).
//   msg.SetProfile (profile), for the ticket's user: account.SetProfile →
//     the new account version, changed.
//
//   msg.GroupSend (group_id, client_msg_id, body), for the ticket's user
//     (docs/messaging.md "Group chat"): the sent record (as for Send) is
//     claimed with the group's member list read NOW (the sender must be a
//     member, else MSG_FORBIDDEN) — fixed at send time, reused by retries;
//     then ONE item (GroupQueueItem: message, members) is enqueued in the
//     group's queue (queue::queue_for(group, queues)), idempotent on the
//     message id; OK once the item is durably enqueued: the fan-out workers
//     (fanout_worker.h) WILL store it in every member's inbox but the
//     sender's. MSG_QUEUE_FULL when the queue refuses it. Idempotent::yes.
//
// Tickets: every request's CallContext::ticket is checked with the service's
// KeyRing (KeyRing::verify at the local clock); a refusal is MSG_UNAUTHENTICATED
// and touches nothing.
//
// Guarantees (with the ordered inbox): a send acknowledged OK is stored in the
// recipient's inbox exactly once at the returned seq; any number of retries of
// one (sender, cmid) store it at most once. Test-only fault:
// `unsafe_ack_before_inbox_commit` breaks exactly this (see the config).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <vector>
#include "nodes/logic/msg/msg.pb.h"
#include "nodes/logic/queue/kv_pool.h"
#include "nodes/logic/queue/queue_store.h"
#include "nodes/logic/ticket/ticket.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/rpc/router.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/inbox/inbox_service.h"
#include "nodes/storage/seqsvr/seq_client.h"
#include "nodes/storage/shard/shard_map.h"

namespace wx::msg {

inline const rpc::MethodSpec kSendMethod{"msg.Send", rpc::Idempotent::yes, microseconds(100)};
inline const rpc::MethodSpec kSyncMethod{"msg.Sync", rpc::Idempotent::yes, microseconds(100)};
inline const rpc::MethodSpec kGroupSendMethod{"msg.GroupSend", rpc::Idempotent::yes, microseconds(100)};
// Set operations: re-adding a present contact / setting the current profile
// changes nothing, so both may be retried and failed over.
inline const rpc::MethodSpec kContactChangeMethod{"msg.ContactChange", rpc::Idempotent::yes, microseconds(100)};
inline const rpc::MethodSpec kSetProfileMethod{"msg.SetProfile", rpc::Idempotent::yes, microseconds(100)};
// Server to server (a fan-out worker of another datacenter); idempotent on
// (recipient, message id).
inline const rpc::MethodSpec kDeliverMethod{"msg.Deliver", rpc::Idempotent::yes, microseconds(100)};

inline constexpr std::string_view kServiceName = "msg";
inline constexpr std::string_view kInboxServiceName = "inbox";
inline constexpr std::string_view kSentKeyPrefix = "msgsent/";
inline constexpr std::string_view kDeliveryKeyPrefix = "msgdlv/";
inline constexpr std::string_view kMessagesType = "messages";
inline constexpr std::string_view kContactsType = "contacts";
inline constexpr std::string_view kAccountType = "account";
inline constexpr std::string_view kContactsServiceName = "contacts";
inline constexpr std::string_view kAccountServiceName = "account";
inline constexpr size_t kClientMsgIdBytesMax = 128;
inline constexpr size_t kBodyBytesMax = 16 * 1024;
// Send: rounds of (seq, append) before giving up as MSG_UNKNOWN: each round
// lost means the recipient's inbox grew past our seq (STALE) or a CAS race.
inline constexpr int kSendRoundsMax = 16;
// Sync: messages per page (inbox.Range's own maximum is 100).
inline constexpr uint32_t kSyncPageMax = 100;
// Data types in one sync key (more: MSG_INVALID).
inline constexpr int kSyncKeyTypesMax = 32;

// FNV-1a (64-bit) of a message body: the hash the history records (the same
// function as checkers::messaging::body_hash; node code does not include
// checkers/).
constexpr uint64_t body_hash(std::string_view body) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : body) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// One message as one recipient holds it (an inbox entry, a sync result, a
// client's copy): plain data for recorders.
struct MessageRecord {
  uint64_t recipient = 0;
  uint64_t seq = 0;
  std::string message_id;
  uint64_t sender = 0;
  std::string client_msg_id;
  uint64_t to_uid = 0;  // the conversation (1:1: the peer; 0 for a group message)
  uint64_t body_hash = 0;
  uint64_t group_id = 0;  // a group message: the group
};

// What the ack hook reports: `message_id` is stored for `recipient` at `seq`.
struct AckRecord {
  // True: the message is durably queued for a recipient homed in another
  // datacenter; no recipient or seq yet (msg.Deliver there acknowledges the
  // store later).
  bool queued = false;
  std::string message_id;
  uint64_t sender = 0;
  std::string client_msg_id;
  uint64_t to_uid = 0;
  uint64_t recipient = 0;
  uint64_t seq = 0;
};

// Group messages, for recorders: the members a group message goes to (fixed
// at send time; includes the sender), and what was stored for whom.
struct GroupMembersRecord {
  uint64_t group_id = 0;
  uint64_t sender = 0;
  std::string client_msg_id;
  std::string message_id;
  std::vector<uint64_t> members;
};
struct GroupAckRecord {
  std::string message_id;
  uint64_t sender = 0;
  std::string client_msg_id;
  uint64_t group_id = 0;
  std::vector<std::pair<uint64_t, uint64_t>> recipients;  // (member, seq); empty: enqueued
};
using GroupMembersObserver = std::function<void(NodeId, const GroupMembersRecord&)>;
using GroupAckObserver = std::function<void(NodeId, const GroupAckRecord&)>;

struct MsgServiceConfig {
  std::shared_ptr<const shard::ShardMap> shards;  // filled by make_node
  rpc::ServiceDirectory directory;                // filled by make_node (inbox instances)
  rpc::Locality locality;                         // filled by make_node
  seqsvr::SeqClientConfig seq;                    // filled by make_node
  ticket::KeyRingConfig keys;                     // the ticket keys (from the template)
  rpc::ServerConfig server;
  // The service cost of one msg.Send (the CPU time a worker spends on it);
  // none: kSendMethod's. Overload experiments raise it to set a capacity.
  std::optional<Duration> send_cost;
  rpc::RouterConfig router;
  shard::ShardedKvClientConfig kv;
  // Longest a request works before answering (further capped by the
  // caller's deadline minus reply_margin).
  Duration request_budget = milliseconds(2500);
  Duration reply_margin = milliseconds(50);
  Duration inbox_call_timeout = milliseconds(1200);
  Duration retry_pause = milliseconds(20);

  // Recorder hook (tests, the history recorder of a real cluster): called
  // when a message is known stored in the recipient's inbox (the append
  // answered OK), with the service node's name filled in by the caller. Not
  // called for anything less than a definite store.
  std::function<void(NodeId server, const AckRecord&)> ack_observer;
  // Group sends: called once the item is durably enqueued — the members
  // fixed at send time, and an ack with no recipients.
  GroupMembersObserver group_members_observer;
  GroupAckObserver group_ack_observer;
  // The group queues (the same on every msg and fanout node).
  queue::QueueConfig queue;

  // TEST ONLY — a deliberately broken service, to show that the messaging
  // checker catches it: once the seq is recorded, reply OK (and call the
  // ack hook) BEFORE the inbox append; the append then runs in the
  // background, once, and is dropped with probability unsafe_drop_append_p
  // (a crash between ack and commit).
  bool unsafe_ack_before_inbox_commit = false;
  double unsafe_drop_append_p = 0.2;
};

struct MsgServiceStats {
  uint64_t sends = 0, sends_ok = 0, sends_unknown = 0, sends_refused = 0, duplicates = 0;
  uint64_t stale_seqs = 0, seq_allocs = 0, cas_races = 0;
  uint64_t syncs = 0, syncs_ok = 0, syncs_unknown = 0;
  uint64_t unauthenticated = 0, unsafe_dropped = 0;
  uint64_t group_sends = 0, group_sends_ok = 0, group_sends_refused = 0, group_sends_unknown = 0;
  uint64_t kv_writes = 0;  // group sends: sent-record CASes issued (the queue counts its own)
  uint64_t contact_changes = 0, profile_sets = 0;
  // Multi-datacenter (docs/multi-dc.md): requests of users homed elsewhere
  // forwarded to their home datacenter; 1:1 sends queued for a recipient homed
  // elsewhere; msg.Deliver calls served and stored OK.
  uint64_t forwarded = 0, remote_sends_queued = 0, delivers = 0, delivers_ok = 0;
};

// "msgsent/<sender>/<cmid>"
std::string sent_key(uint64_t sender, std::string_view client_msg_id);
// "msgdlv/<recipient>/<message id>": a message delivered from another
// datacenter (msg.Deliver), in the recipient's home shard.
std::string delivery_key(uint64_t recipient, std::string_view message_id);
// "m<sender>-<cmid>": deterministic, so every attempt names the message alike.
std::string message_id_for(uint64_t sender, std::string_view client_msg_id);
// A stored inbox entry as the checker's message copy; nullopt if the bytes do
// not parse.
std::optional<MessageRecord> decode_stored(uint64_t recipient, uint64_t seq,
                                                              std::string_view bytes);

class MsgService final : public Node {
 public:
  MsgService(Runtime& rt, MsgServiceConfig config);
  ~MsgService() override;
  void start() override;
  std::string_view kind() const override { return "msg"; }

  rpc::RpcEndpoint& endpoint() { return endpoint_; }
  const MsgServiceStats& stats() const { return stats_; }
  // The verifying ring (an operator retires a rotated-out key with it; tests).
  ticket::KeyRing& keys() { return keys_; }
  const queue::QueueStats& queue_stats() const { return queue_.stats(); }

 private:
  struct SentState {
    SentRecord record;
    uint64_t version = 0;
  };
  TimePoint deadline_for(const rpc::CallContext& ctx) const;
  Task<void> pause();
  // Calls `method` of `service` carrying the client's `ticket` (the storage
  // hop checks it too) until it returns an answer that `unknown` does not
  // call unknown, pausing between attempts; nullopt once `deadline` passed.
  template <typename Reply, typename Request, typename Unknown>
  Task<std::optional<Reply>> call_definite(std::string_view service, const rpc::MethodSpec& method,
                                           const Request& req, const std::string& ticket, TimePoint deadline,
                                           Unknown unknown);
  std::optional<uint64_t> authenticate(const rpc::CallContext& ctx, std::string* why);
  // With users in several datacenters: `uid` is homed in this node's.
  bool homed_here(uint64_t uid) const;
  // Sends the request, unchanged and with the caller's ticket, to a msg node
  // of `uid`'s home datacenter ("msg@<dc>") and returns its answer.
  template <typename Reply, typename Request>
  Task<rpc::Result<Reply>> forward_home(const rpc::MethodSpec& method, uint64_t uid, const rpc::CallContext& ctx,
                                        const Request& req);
  struct Stored {
    MsgCode code = MSG_UNKNOWN;
    uint64_t seq = 0;
    std::string error;
  };
  // Steps 2–3 of a send (a seq, recorded in the record at `key`, then the
  // inbox append, a fresh seq on STALE), for `recipient`, bounded by
  // kSendRoundsMax and the deadline.
  Task<Stored> store(kv::KvClient* kv, const std::string& key, std::optional<SentState> state, uint64_t recipient,
                     std::string bytes, uint64_t sender, std::string ticket, TimePoint deadline,
                     const std::function<void(const SentRecord&)>& acked);
  Task<rpc::Result<SendReply>> send_remote(rpc::CallContext ctx, SendRequest req, uint64_t sender,
                                           kv::KvClient* kv, std::string key, SentState state, TimePoint deadline);
  Task<rpc::Result<DeliverReply>> serve_deliver(rpc::CallContext ctx, DeliverRequest req);
  // Enqueues `item` in queue q (idempotent on the message id) and marks the
  // sent record at `key` queued. MSG_OK, or why not (QUEUE_FULL and INVALID
  // definite, UNKNOWN retryable) with the text for the reply.
  struct Refusal {
    MsgCode code = MSG_OK;
    std::string error;
  };
  Task<Refusal> enqueue_and_mark(kv::KvClient* kv, const std::string& key, const SentState& state, uint32_t q,
                                 const GroupQueueItem& item, std::string_view queue_name, TimePoint deadline);
  Task<rpc::Result<SendReply>> serve_send(rpc::CallContext ctx, SendRequest req);
  Task<rpc::Result<SyncReply>> serve_sync(rpc::CallContext ctx, SyncRequest req);
  Task<rpc::Result<GroupSendReply>> serve_group_send(rpc::CallContext ctx, GroupSendRequest req);
  Task<rpc::Result<ContactChangeReply>> serve_contact_change(rpc::CallContext ctx, ContactChangeRequest req);
  Task<rpc::Result<SetProfileReply>> serve_set_profile(rpc::CallContext ctx, SetProfileRequest req);
  // Sync of "contacts" / "account" into `reply` (key updated); false with
  // reply's code set when the type could not be served.
  Task<bool> sync_contacts(const rpc::CallContext& ctx, uint64_t user, uint64_t after, TimePoint deadline,
                           SyncReply* reply, uint64_t* new_version);
  Task<bool> sync_account(const rpc::CallContext& ctx, uint64_t user, uint64_t after, TimePoint deadline,
                          SyncReply* reply, uint64_t* new_version);
  // Reads the sent record, claiming it if absent. nullopt: no definite
  // answer by the deadline.
  Task<std::optional<SentState>> claim(kv::KvClient* kv, const std::string& key, const SentRecord& fresh,
                                       TimePoint deadline);
  // Records `seq` over the record at `state.version`; on a lost race returns
  // the record now stored. nullopt: no definite answer by the deadline.
  Task<std::optional<SentState>> record_seq(kv::KvClient* kv, const std::string& key, SentState state,
                                            uint64_t seq, TimePoint deadline);
  // One inbox.Append through the router; the inbox code, or nullopt when the
  // call itself failed.
  void emit_ack(uint64_t sender, const SentRecord& record, std::string_view cmid);

  Runtime& rt_;
  MsgServiceConfig config_;
  ticket::KeyRing keys_;
  rpc::RpcEndpoint endpoint_;
  rpc::Router router_;
  shard::ShardedKvClient kv_;
  seqsvr::SeqClient seq_;
  queue::KvPool pool_;
  queue::QueueStore queue_;
  MsgServiceStats stats_;
};

}  // namespace wx::msg
