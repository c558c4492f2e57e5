// A recorded history of the messaging product: what clients asked and were
// told, what servers acknowledged, and what everyone held at the end.
//
// This is the input of the messaging checker (checkers/messaging.h). It is
// plain data and world-agnostic on purpose: the simulator's workload records
// it, and so do the clients and servers of a real cluster (as JSON lines,
// checkers/history_json.h), so one checker judges both. Nothing here refers to
// the simulator, to a Runtime or to any node type; no field is a pointer.
//
// A history is a list of events in any order (the checker orders what it
// needs by time). Each event has a time in nanoseconds and the id of the
// process that recorded it. All times of one history must come from one
// clock (the simulator's true time; in production one clock per host and
// hosts in sync, or one recording process).
//
// Three families of events:
//   * client operations, Jepsen-style: an `Invoke` when the client sends a
//     request, and later at most one `Completion` with the same (process,
//     op_id): ok (the answer arrived), fail (a definite refusal), or info
//     (the client never learned the result). An invoke without a completion
//     is the same as info: the outcome is unknown.
//   * server facts: `SendAck` (the server stored a message for these
//     recipients at these seqs), `GroupMembers` (the members a group send was
//     fanned out to, fixed when it was sent).
//   * final-state snapshots, taken after heal and quiescence: `ServerFinal`
//     (a user's inbox and current sync versions, read from the server) and
//     `ClientFinal` (what one client holds after syncing to the end).
//
// Field-by-field documentation, the JSON form and what each service must
// record: docs/messaging-history.md.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wx::checkers::messaging {

using UserId = uint64_t;
using GroupId = uint64_t;
using Seq = uint64_t;

// The data type of a sync key whose version is the last message seq delivered.
inline constexpr std::string_view kMessagesType = "messages";

// A sync key (client side) or the server's current versions: data type ->
// version. A type that is absent has version 0.
using SyncKey = std::map<std::string, uint64_t>;

// Where a message goes: a peer user (1:1) or a group.
enum class ConversationKind : uint8_t { user, group };

struct Conversation {
  ConversationKind kind = ConversationKind::user;
  uint64_t id = 0;  // the peer's uid, or the group id
  auto operator<=>(const Conversation&) const = default;
};

// One stored copy of a message: in a recipient's inbox on the server, in a
// sync response, or in a client's final state. `recipient` is the inbox's
// owner (the user who synced / whose state this is).
struct MessageCopy {
  UserId recipient = 0;
  Seq seq = 0;             // the recipient's sequence number for this message
  std::string message_id;  // server-assigned, the same for every recipient; non-empty
  UserId sender = 0;
  std::string client_msg_id;          // the sender's client message id; non-empty
  Conversation to;                    // the conversation as sent (peer user or group)
  std::optional<uint64_t> body_hash;  // body_hash() of the body, when recorded
  auto operator<=>(const MessageCopy&) const = default;
};

// --- client operations -------------------------------------------------------

enum class OpKind : uint8_t { send, sync, login, contacts, register_account };

// send: `user` (the sender) sends a message with its own client message id.
// Retries of one message reuse the client message id; the server must store
// it once whatever the number of attempts.
struct SendRequest {
  UserId user = 0;
  Conversation to;
  std::string client_msg_id;          // non-empty; unique per sender and message
  std::optional<uint64_t> body_hash;  // body_hash() of the body sent
  auto operator<=>(const SendRequest&) const = default;
};
struct SendResult {
  std::string message_id;  // the server-assigned message id; non-empty
  auto operator<=>(const SendResult&) const = default;
};

// sync: `user` presents its sync key; the answer carries the new key and the
// messages stored for `user` after the presented key's messages version, in
// increasing seq order (one page; the client syncs again for more).
struct SyncRequest {
  UserId user = 0;
  SyncKey key;
  auto operator<=>(const SyncRequest&) const = default;
};
struct SyncResult {
  SyncKey key;                        // the new key, every data type listed
  std::vector<MessageCopy> messages;  // recipient == the request's user
  auto operator<=>(const SyncResult&) const = default;
};

// login: `user` logs in (on `device`, free text, may be empty).
struct LoginRequest {
  UserId user = 0;
  std::string device;
  auto operator<=>(const LoginRequest&) const = default;
};
struct LoginResult {
  auto operator<=>(const LoginResult&) const = default;
};

// contacts: a change or read of `user`'s contacts. `action` is free text
// ("add", "remove", "list", ...); `contact` the contact concerned, if any.
struct ContactsRequest {
  UserId user = 0;
  std::string action;  // non-empty
  std::optional<UserId> contact;
  auto operator<=>(const ContactsRequest&) const = default;
};
struct ContactsResult {
  std::optional<uint64_t> version;              // the contacts version after the call
  std::optional<bool> changed;                  // whether this call changed anything
  std::optional<std::vector<UserId>> contacts;  // a list's answer
  auto operator<=>(const ContactsResult&) const = default;
};

// register: claim an account id (unique-id checks come later).
struct RegisterRequest {
  std::string account_id;         // non-empty
  std::optional<uint64_t> nonce;  // the registration's nonce, same on every retry
  auto operator<=>(const RegisterRequest&) const = default;
};
struct RegisterResult {
  UserId uid = 0;
  auto operator<=>(const RegisterResult&) const = default;
};

// The alternatives are in OpKind order.
using Request =
    std::variant<SendRequest, SyncRequest, LoginRequest, ContactsRequest, RegisterRequest>;
using Result = std::variant<SendResult, SyncResult, LoginResult, ContactsResult, RegisterResult>;

OpKind op_kind(const Request& request);
OpKind op_kind(const Result& result);

// The client sent a request. `op_id` is unique per recording process.
struct Invoke {
  uint64_t op_id = 0;
  Request request;
  auto operator<=>(const Invoke&) const = default;
};

enum class Outcome : uint8_t {
  ok,    // the answer arrived; `result` holds it
  fail,  // a definite error answer (the checker still treats a failed send as
         // possibly applied: it may be delivered, never twice)
  info,  // the client never learned the result (timeout, reset, crash)
};

// The end of the operation (process, op_id). At most one per invoke; none
// means the outcome is unknown.
struct Completion {
  uint64_t op_id = 0;
  OpKind op = OpKind::send;  // must equal the invoke's kind
  Outcome outcome = Outcome::info;
  std::optional<Result> result;  // set exactly when outcome == ok, of kind `op`
  std::string error;             // fail, info: what the client saw (free text)
  auto operator<=>(const Completion&) const = default;
};

// --- server facts --------------------------------------------------------------

struct RecipientSeq {
  UserId user = 0;
  Seq seq = 0;
  auto operator<=>(const RecipientSeq&) const = default;
};

// The server acknowledges that message `message_id` (the sender's
// `client_msg_id`) is stored durably for each listed recipient at the listed
// seq. A message may have several acks (e.g. one when a group send is queued,
// with no recipients, then one per fan-out batch); they must agree. An ack
// makes the message acknowledged whatever its sender was told.
struct SendAck {
  std::string message_id;
  UserId sender = 0;
  std::string client_msg_id;
  Conversation to;
  std::vector<RecipientSeq> recipients;  // may be empty
  auto operator<=>(const SendAck&) const = default;
};

// The members of group `group` when the message (sender, client_msg_id) was
// sent: the set the fan-out delivers to. One fact per group message (repeats
// must agree). Includes the sender if the sender is a member.
struct GroupMembers {
  GroupId group = 0;
  UserId sender = 0;
  std::string client_msg_id;
  std::string message_id;  // empty when not known to the recorder
  std::vector<UserId> members;
  auto operator<=>(const GroupMembers&) const = default;
};

// --- final states (after heal and quiescence) ------------------------------------

// A user's profile as synced: field name -> value (e.g. "nickname", "region").
using ProfileFields = std::map<std::string, std::string>;

// The server's state for `user` at the end: every message in the inbox, and
// the sync key a client that has synced everything would hold now.
struct ServerFinal {
  UserId user = 0;
  std::vector<MessageCopy> inbox;  // recipient == user; any order
  SyncKey versions;
  // The other synced data types, when recorded: the user's contacts (any
  // order; listed once each) and profile. Absent: not recorded.
  std::optional<std::vector<UserId>> contacts;
  std::optional<ProfileFields> profile;
  auto operator<=>(const ServerFinal&) const = default;
};

// A client's state at the end, after it synced until nothing was new: every
// message it holds for `user` and its sync key. The recording process is the
// client (one per device; a client that loses its local state and starts over
// must record under a new process id).
struct ClientFinal {
  UserId user = 0;
  std::vector<MessageCopy> messages;  // recipient == user; any order
  SyncKey key;
  // What the client synced of the other data types, when recorded (see
  // ServerFinal): its contact set and the profile it holds.
  std::optional<std::vector<UserId>> contacts;
  std::optional<ProfileFields> profile;
  auto operator<=>(const ClientFinal&) const = default;
};

using EventBody = std::variant<Invoke, Completion, SendAck, GroupMembers, ServerFinal, ClientFinal>;

struct Event {
  int64_t t_ns = 0;     // when it happened, ns since the history's clock epoch
  std::string process;  // who recorded it: a client (device) id, or a server's name; non-empty
  EventBody body;
  auto operator<=>(const Event&) const = default;
};

// Events in any order. A report names events by their index in this vector.
using History = std::vector<Event>;

// --- helpers ----------------------------------------------------------------------

// FNV-1a (64-bit) of the body's bytes: the hash recorders put in `body_hash`.
constexpr uint64_t body_hash(std::string_view body) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : body) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Names as they appear in JSON and reports: "send", "sync", "login",
// "contacts", "register"; "ok", "fail", "info"; "user", "group".
std::string_view to_string(OpKind kind);
std::string_view to_string(Outcome outcome);
std::string_view to_string(ConversationKind kind);
std::optional<OpKind> parse_op_kind(std::string_view name);
std::optional<Outcome> parse_outcome(std::string_view name);
std::optional<ConversationKind> parse_conversation_kind(std::string_view name);

// The event's kind as in JSON: "invoke", "ok", "fail", "info" (a completion),
// "ack", "group_members", "server_final", "client_final".
std::string_view event_name(const Event& event);

// "u9" or "group g2" (as reports print them).
std::string describe(const Conversation& to);

// Seconds since the epoch for reports: "12.345s", "0.000001234s".
std::string format_time(int64_t t_ns);

}  // namespace wx::checkers::messaging
