// MessagingClient: the client library of the messaging product (one device of
// one user). Simulated users use it today; the `wxsim client` CLI later.
//
// It holds the user's ticket, its sync key and every message it received, and
// talks to the msg logic service (nodes/logic/msg/) along one of three paths
// (MessagingClientConfig::path):
//   * direct: an rpc::Router straight to the msg service (tests of logic);
//   * long_connection: over an AccessLink session (access.Call) — the access
//     layer checks the ticket and forwards; pushes arrive as on_notify();
//   * short_connection: access.Request through the Router (service
//     "access"), one request, one response, no session.
// Whatever the path, the msg service's answer is handled alike:
//   * send(to, body): a fresh client message id ("<process>-<n>"), then
//     attempts with THAT id until an answer is definite — OK, or a definite
//     refusal — or it gives up (send_attempts_max attempts / send_give_up).
//     The server stores a message once per (sender, client message id), so
//     retrying is safe; an attempt whose outcome is unknown is retried.
//   * sync(): pulls pages with the sync key until the server says no `more`
//     (at most sync_pages_max pages); one sync at a time (a second caller
//     gets `busy` and nothing is sent).
//   * on_notify(version): the push of the access layer ("new data, version
//     X"). If X is above the last seq held it wakes notified_sync_loop(),
//     which syncs until nothing is due — notifies arriving meanwhile are
//     coalesced into that one loop, and a duplicated notify (X already held
//     after the sync) costs no extra sync at all; a lost one is covered by
//     the owner's periodic sync and by request_sync() on reconnect.
//
// Login and the other data types (docs/messaging.md "Login", "Sync of
// account and contacts"):
//   * register_account(id, password, profile): login.Register with a nonce
//     drawn once (Runtime::rng()) and kept across retries → the uid;
//   * login(id, password): login.Login → the ticket (set_ticket) and uid.
//     Both go straight to the login service on the direct path and as
//     access.Request (short connection, no ticket) otherwise.
//     A client may instead be handed a ticket in its config (tests).
//   * change_contact(uid, remove) / set_profile(profile): msg.ContactChange /
//     msg.SetProfile for the ticket's user;
//   * with sync_all_types, the key holds "contacts" and "account" too, and
//     sync() keeps the contact set (adds and removals applied in version
//     order) and the latest profile; record_final() records them.
//
// Every operation is recorded through a HistoryRecorder as the messaging
// checker expects (docs/messaging-history.md, "what services must record"):
// an invoke before each request leaves, then ok (with the result), fail (a
// definite refusal) or info (unknown), each retry its own op id; and at the
// end record_final() writes the client's final state. Event times are this
// node's Runtime::now(); a recorder with a truer clock (the simulator's
// kernel time) replaces them. Node code: no simulator, no wall clock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <map>
#include <optional>
#include <set>
#include "nodes/client/access_link.h"
#include "nodes/logic/login/login_service.h"
#include "nodes/logic/msg/msg_service.h"
#include "nodes/rpc/router.h"
#include "nodes/runtime/channel.h"
#include "nodes/runtime/runtime.h"

namespace wx::client {

// A sync key: data type -> version ("messages": the last seq held).
using SyncKey = std::map<std::string, uint64_t>;
inline constexpr std::string_view kMessagesType = "messages";

// The recorded shape of operations (docs/messaging-history.md): plain data,
// so that node code needs nothing from checkers/; the recorder converts.
enum class OpKind : uint8_t { send, sync, login, contacts, register_account };
inline constexpr std::string_view kContactsType = "contacts";
inline constexpr std::string_view kAccountType = "account";

// A profile as recorded: field name → value ("nickname", "region").
using ProfileFields = std::map<std::string, std::string>;
ProfileFields profile_fields(const account::Profile& p);
enum class Outcome : uint8_t { ok, fail, info };

struct SendOp {
  uint64_t user = 0;
  uint64_t to = 0;  // the peer (1:1)
  std::string client_msg_id;
  uint64_t body_hash = 0;
};
struct SyncOp {
  uint64_t user = 0;
  SyncKey key;  // the key presented
};
struct LoginOp {
  uint64_t user = 0;
  std::string device;
};
struct ContactsOp {
  uint64_t user = 0;
  std::string action;  // "add", "remove", "set_profile"
  uint64_t contact = 0;  // 0: none
};
struct RegisterOp {
  std::string account_id;
  uint64_t nonce = 0;
};
// What a client holds at the end (client_final).
struct FinalState {
  std::vector<msg::MessageRecord> messages;
  SyncKey key;
  bool has_contacts = false;  // contacts/profile are synced (sync_all_types)
  std::vector<uint64_t> contacts;  // ascending
  std::optional<ProfileFields> profile;
};
struct OpResult {
  Outcome outcome = Outcome::info;
  std::string error;                       // fail, info
  std::string message_id;                  // send ok
  SyncKey key;                             // sync ok: the new key
  std::vector<msg::MessageRecord> messages;  // sync ok: increasing seq
  uint64_t uid = 0;                        // register ok
  bool has_version = false;                // contacts ok (a contact change, not a profile set):
  uint64_t version = 0;                    //   the contacts version after the call
  bool changed = false;                    //   and whether it changed anything
};

// Where a client's history goes. `t_ns` is the client's Runtime::now(); a
// recorder with a truer clock (the simulator's kernel time) may replace it.
// Calls must not suspend or throw.
class HistoryRecorder {
 public:
  virtual ~HistoryRecorder() = default;
  virtual void invoke_send(const std::string& process, int64_t t_ns, uint64_t op_id, const SendOp& op) = 0;
  virtual void invoke_sync(const std::string& process, int64_t t_ns, uint64_t op_id, const SyncOp& op) = 0;
  virtual void complete(const std::string& process, int64_t t_ns, uint64_t op_id, OpKind kind,
                        const OpResult& result) = 0;
  virtual void final_state(const std::string& process, int64_t t_ns, uint64_t user,
                           const std::vector<msg::MessageRecord>& messages, const SyncKey& key) = 0;
  // Login, contacts and registration operations, and the final state with
  // contacts and profile. Defaults: not recorded / the messages-only form.
  virtual void invoke_login(const std::string&, int64_t, uint64_t, const LoginOp&) {}
  virtual void invoke_contacts(const std::string&, int64_t, uint64_t, const ContactsOp&) {}
  virtual void invoke_register(const std::string&, int64_t, uint64_t, const RegisterOp&) {}
  virtual void final_state_full(const std::string& process, int64_t t_ns, uint64_t user, const FinalState& state) {
    final_state(process, t_ns, user, state.messages, state.key);
  }
};

// How requests reach the msg service (see the header comment).
enum class ClientPath : uint8_t { direct, long_connection, short_connection };

// Rounds of notify-driven syncing per wake-up (bounded).
inline constexpr int kNotifySyncRoundsMax = 16;

struct MessagingClientConfig {
  uint64_t uid = 0;
  std::string ticket;
  std::string process;  // the recording process id, e.g. "c9" (one per device)
  Duration call_timeout = seconds(3);  // one attempt (the router may fail over inside it)
  Duration retry_pause = milliseconds(200);
  int send_attempts_max = 10;
  Duration send_give_up = seconds(60);
  uint32_t sync_page = 50;      // messages per page asked for
  int sync_pages_max = 10'000;  // pages per sync() before it stops (bounded)
  ClientPath path = ClientPath::direct;  // long_connection needs an AccessLink
  // notified_sync_loop(): pause while another sync() runs.
  Duration notify_busy_pause = milliseconds(20);
  // Sync "contacts" and "account" too (keep the contact set and profile, and
  // record them in the final state). Off: messages only, as before.
  bool sync_all_types = false;
  // register_account() / login() / change_contact() / set_profile(): attempts
  // until a definite answer.
  int account_attempts_max = 10;
};

enum class SendStatus : uint8_t { ok, failed, unknown };

struct SendOutcome {
  SendStatus status = SendStatus::unknown;
  std::string client_msg_id;
  std::string message_id;  // ok
  uint64_t seq = 0;        // ok: the recipient's seq
  int attempts = 0;
  std::string error;  // failed / unknown: the last error seen
};

enum class SyncStatus : uint8_t { ok, failed, unknown, busy };

// register_account / login / change_contact / set_profile.
enum class AccountStatus : uint8_t { ok, denied, taken, failed, unknown };
struct AccountOutcome {
  AccountStatus status = AccountStatus::unknown;
  uint64_t uid = 0;       // register, login: the user
  uint64_t version = 0;   // change_contact / set_profile: the version after
  bool changed = false;
  int attempts = 0;
  std::string error;
};

class MessagingClient {
 public:
  // `router` and `recorder` (may be null) must outlive the client.
  // `router`, `recorder` (may be null) and `link` (needed for
  // long_connection, else may be null) must outlive the client.
  MessagingClient(Runtime& rt, rpc::Router& router, MessagingClientConfig config, HistoryRecorder* recorder,
                  AccessLink* link = nullptr);

  Task<SendOutcome> send(uint64_t to, std::string body);
  // send() with a given client message id (tests: a deliberate duplicate).
  Task<SendOutcome> send_with_id(uint64_t to, std::string client_msg_id, std::string body);
  // One page. `more` tells whether the server has more.
  Task<SyncStatus> sync_page(bool* more);
  // Pages until nothing more (or a page fails / sync_pages_max).
  Task<SyncStatus> sync();

  // Register an account (a nonce kept across retries); ok: outcome.uid.
  Task<AccountOutcome> register_account(std::string account_id, std::string password, account::Profile profile);
  // Log in: ok sets this client's ticket and uid (and the link's).
  Task<AccountOutcome> login(std::string account_id, std::string password);
  // Add (remove = false) or remove a contact of this user.
  Task<AccountOutcome> change_contact(uint64_t contact, bool remove);
  Task<AccountOutcome> set_profile(account::Profile profile);

  void on_notify(uint64_t version);
  bool sync_due() const { return notified_version_ > last_seq() || sync_requested_; }
  // A sync is due whatever the versions say (after a reconnect: pushes may
  // have been missed while the client had no session).
  void request_sync();
  // Syncs whenever on_notify()/request_sync() make a sync due. Spawn once
  // (the owner's node), only on clients that receive notifies.
  Task<void> notified_sync_loop();

  // Records a client_final with everything held and the key. Call after a
  // last sync that returned nothing new, with no operation in flight.
  void record_final();

  void set_ticket(std::string ticket) { config_.ticket = std::move(ticket); }
  const std::string& ticket() const { return config_.ticket; }
  // The synced contacts (ascending) and profile (sync_all_types).
  const std::set<uint64_t>& contacts() const { return contacts_; }
  const std::optional<ProfileFields>& profile() const { return profile_; }
  uint64_t uid() const { return config_.uid; }
  const std::string& process() const { return config_.process; }
  const SyncKey& key() const { return key_; }
  uint64_t last_seq() const;
  const std::vector<msg::MessageRecord>& received() const { return received_; }
  bool syncing() const { return syncing_; }

  struct Stats {
    uint64_t sends = 0, sends_ok = 0, sends_failed = 0, sends_unknown = 0, send_attempts = 0;
    uint64_t syncs = 0, sync_pages_ok = 0, sync_pages_failed = 0, messages_received = 0;
    uint64_t notifies = 0, notifies_stale = 0, notify_syncs = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  void complete(uint64_t op, OpKind kind, const OpResult& r);
  // One request along the configured path; the msg service's answer.
  Task<rpc::Result<msg::SendReply>> call_send(const msg::SendRequest& req, rpc::CallOptions o);
  Task<rpc::Result<msg::SyncReply>> call_sync(const msg::SyncRequest& req, rpc::CallOptions o);
  Task<rpc::Result<access::ForwardReply>> call_access(access::ForwardRequest req, rpc::CallOptions o);
  // access.Request (short connection) whatever the path: register / login.
  Task<rpc::Result<access::ForwardReply>> call_access_short(access::ForwardRequest req, rpc::CallOptions o);
  // One attempt at a login-service method: straight to the login service on
  // the direct path, else through access.Request (`wrap` puts the request in
  // the forward, `unwrap` takes the reply out, nullptr if absent). nullopt,
  // with `error`, when the outcome is unknown.
  // A msg-service method on the client's path: straight to msg (direct) or
  // through access.Call; an access refusal of the ticket or request comes
  // back as the msg code it stands for, any other access failure as
  // unavailable (unknown outcome).
  template <typename Reply, typename Request, typename Wrap, typename Unwrap>
  Task<rpc::Result<Reply>> call_msg_method(const rpc::MethodSpec& method, const Request& req, Wrap wrap,
                                           Unwrap unwrap, rpc::CallOptions o);
  template <typename Reply, typename Request, typename Wrap, typename Unwrap>
  Task<std::optional<Reply>> call_login_service(const rpc::MethodSpec& method, const Request& req, Wrap wrap,
                                                Unwrap unwrap, std::string* error);
  Task<rpc::Result<msg::ContactChangeReply>> call_contact_change(const msg::ContactChangeRequest& req,
                                                                 rpc::CallOptions o);
  Task<rpc::Result<msg::SetProfileReply>> call_set_profile(const msg::SetProfileRequest& req, rpc::CallOptions o);
  uint64_t next_op() { return next_op_id_++; }

  Runtime& rt_;
  rpc::Router& router_;
  MessagingClientConfig config_;
  HistoryRecorder* recorder_;
  AccessLink* link_;
  Channel<bool> wake_;  // capacity 1: notifies coalesce
  bool sync_requested_ = false;
  SyncKey key_;
  std::vector<msg::MessageRecord> received_;
  std::set<uint64_t> contacts_;
  std::optional<ProfileFields> profile_;
  uint64_t next_op_id_ = 1;
  uint64_t next_cmid_ = 1;
  uint64_t notified_version_ = 0;
  bool syncing_ = false;
  Stats stats_;
};

}  // namespace wx::client
