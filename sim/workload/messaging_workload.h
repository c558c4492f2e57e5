// The messaging workload: simulated users of the 1:1 messaging slice, and the
// recorder that turns what they and the servers did into a history for the
// messaging checker (checkers/messaging.h, docs/messaging-history.md).
//
//   * HistoryLog — a client::HistoryRecorder that stamps every event with the
//     SIMULATOR's true time (kernel time, not a node's skewed clock), so all
//     events of a history share one clock. Also records the msg service's
//     acks (MsgServiceConfig::ack_observer → ack_observer()).
//   * SimUser — one node per user (one device, process "c<uid>"): a
//     MessagingClient over a Router on the deployment's directory — through
//     the access layer (a long connection: AccessLink, pushes → notify-driven
//     syncs) when the deployment has access nodes, else straight to the msg
//     service (MessagingWorkloadConfig::path overrides); sends to a random
//     contact at Poisson times (Runtime::rng().exponential), thinned by the
//     daily shape when one is set; syncs every sync_interval; with churn on,
//     alternates exponential online and offline periods (offline: no sends,
//     no syncs, no connection); stop_traffic() ends the loops and brings the
//     user back online; final_sync() syncs until nothing is new and records
//     the client's final state. With register_users (opt-in), each user
//     first registers account "wxuser<i>" through the login service and logs
//     in (while online), and only then starts its traffic; it may also change
//     contacts and its profile at Poisson times (skipped while offline; the
//     loops end on stop_traffic() like the others).
//   * MessagingWorkload — builds the contact graph (population.h) from the
//     simulation's derived stream "msg-workload-contacts", adds the users (in
//     a client zone outside every datacenter zone the deployment uses, so
//     outages hit servers only) and an InboxReader (end_phase.h; with
//     sync_all_types it reads contacts and profiles too), and drives the end
//     phase (end_phase(), finish()).
//
// Deterministic: the contact graph comes from the simulation's derived
// stream; every other draw is a node's Runtime rng. Bounded: users ≤
// kWorkloadUsersMax, contacts ≤ kContactsPerUserMax, every loop ends on
// stop_traffic() or its page/attempt limits.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "checkers/history.h"
#include "nodes/client/messaging_client.h"
#include "nodes/rpc/router.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "sim/workload/end_phase.h"
#include "sim/workload/population.h"

namespace wx::sim::workload {

inline constexpr size_t kWorkloadUsersMax = 10'000;
// Final phase: rounds of syncing before a user gives up reaching a quiet state.
inline constexpr int kFinalSyncRoundsMax = 50;

// The checker's copy of a message record (a group copy when group_id ≠ 0).
checkers::messaging::MessageCopy to_copy(const msg::MessageRecord& m);

class HistoryLog final : public client::HistoryRecorder {
 public:
  explicit HistoryLog(Simulation& sim) : sim_(sim) {}
  // Every event is stamped with the kernel's time; the client's t_ns is
  // ignored.
  void invoke_send(const std::string& process, int64_t t_ns, uint64_t op_id, const client::SendOp& op) override;
  void invoke_sync(const std::string& process, int64_t t_ns, uint64_t op_id, const client::SyncOp& op) override;
  void complete(const std::string& process, int64_t t_ns, uint64_t op_id, client::OpKind kind,
                const client::OpResult& result) override;
  void final_state(const std::string& process, int64_t t_ns, uint64_t user,
                   const std::vector<msg::MessageRecord>& messages, const client::SyncKey& key) override;
  void invoke_login(const std::string& process, int64_t t_ns, uint64_t op_id, const client::LoginOp& op) override;
  void invoke_contacts(const std::string& process, int64_t t_ns, uint64_t op_id,
                       const client::ContactsOp& op) override;
  void invoke_register(const std::string& process, int64_t t_ns, uint64_t op_id,
                       const client::RegisterOp& op) override;
  void final_state_full(const std::string& process, int64_t t_ns, uint64_t user,
                        const client::FinalState& state) override;
  // contacts / profile: the other synced types (InboxReader with all types).
  void server_final(const std::string& process, uint64_t user, const std::vector<msg::MessageRecord>& inbox,
                    const client::SyncKey& versions,
                    std::optional<std::vector<uint64_t>> contacts = std::nullopt,
                    std::optional<client::ProfileFields> profile = std::nullopt);
  // The msg service's ack hook (process "msg-<node id>").
  std::function<void(NodeId, const msg::AckRecord&)> ack_observer();
  const checkers::messaging::History& history() const { return history_; }
  checkers::messaging::History& history() { return history_; }
  // 1:1 messages acknowledged as queued for a recipient homed in another
  // datacenter and not yet acknowledged as stored there.
  size_t remote_pending() const { return remote_pending_.size(); }

 private:
  Simulation& sim_;
  checkers::messaging::History history_;
  std::set<std::string> remote_pending_, remote_delivered_;
};

// How simulated users reach the msg service. automatic: long_connection if
// the deployment lists access instances, else direct (so a deployment
// without access nodes — tests/logic/msg_sim_test.cc — runs as before).
enum class UserPath : uint8_t { automatic, direct, long_connection, short_connection };

// Online/offline churn: each user alternates exponential online and offline
// periods with these means (starting online); off unless both are > 0.
struct ChurnConfig {
  Duration online_mean = Duration::zero();
  Duration offline_mean = Duration::zero();
  bool enabled() const { return online_mean > Duration::zero() && offline_mean > Duration::zero(); }
};

struct MessagingWorkloadConfig {
  size_t users = 100;
  uint64_t uid_base = 1000;  // users are uid_base, uid_base + 1, ...
  ContactGraphConfig contacts;               // default: 4 contacts each
  Duration send_interval_mean = seconds(5);  // per user, Poisson (at factor 1 of the daily shape)
  DailyShape daily_shape;                    // default flat
  ChurnConfig churn;                         // default off
  Duration sync_interval = seconds(3);
  std::string client_datacenter = "dc1";
  std::string client_zone = "clients";  // not a zone of the deployment
  client::MessagingClientConfig client;  // uid, ticket, process and path are filled in per user
  UserPath path = UserPath::automatic;
  // The long connection's timers; uid, ticket, datacenter (client_datacenter)
  // and preferred zone (the deployment's zones of that datacenter, round
  // robin over the users) are filled in per user.
  client::AccessLinkConfig access;
  // Ticket for a uid (the test issues it from the KeyRing the services use).
  std::function<std::string(uint64_t uid)> ticket_for;
  // Accounts and the other synced types (docs/messaging.md "Sync of account
  // and contacts"); all off by default, so existing runs keep their meaning.
  // register_users: each user registers account "wxuser<i>" through the login
  // service at start and logs in (the ticket comes from login, not
  // ticket_for; uids are the ones the account store allocates, so uid_base
  // is unused and contacts — the contact graph's user indexes — are resolved
  // once the peer has registered). Needs login (and, off the direct path,
  // access) instances.
  bool register_users = false;
  // register_users: each user starts registering at a uniform time in
  // [register_after, register_after + register_spread) (the uid counter is
  // one hot key: users arrive over time rather than all at once); an offline
  // user waits until it is back online.
  Duration register_after = seconds(2);
  Duration register_spread = seconds(10);
  // Clients sync "contacts" and "account" too; the reader records both.
  bool sync_all_types = false;
  // Mean time between contact changes per user (Poisson; add a random other
  // user, or remove one it holds). Zero: none. Needs register_users.
  Duration contact_change_interval_mean = Duration::zero();
  // Mean time between profile changes per user (Poisson; a new nickname).
  // Zero: none. Needs register_users.
  Duration profile_change_interval_mean = Duration::zero();
};

// What a SimUser does besides its client's configuration. `shape` and
// `churn` point into the workload's configuration (they outlive the node).
// With `registered` (register_users), the user registers and logs in as
// account "wxuser<index>" first, and `contacts` are user indexes resolved
// through the table.
struct SimUserPlan {
  std::vector<uint64_t> contacts;  // uids, or user indexes with `registered`
  Duration send_mean = seconds(5);
  Duration sync_interval = seconds(3);
  const DailyShape* shape = nullptr;  // null or flat: a homogeneous Poisson process
  const ChurnConfig* churn = nullptr;
  std::shared_ptr<RegisteredUsers> registered;  // null: the user has its uid and ticket already
  size_t index = 0;                             // this user's index in `registered`
  Duration register_after = Duration::zero();
  Duration register_spread = Duration::zero();
  Duration contact_change_mean = Duration::zero();  // zero: no contact changes
  Duration profile_change_mean = Duration::zero();  // zero: no profile changes
};

// Churn, as it happened to one user (or summed over users).
struct ChurnStats {
  uint64_t offline_periods = 0;     // times the user went offline
  uint64_t returns = 0;             // times it came back while traffic ran
  uint64_t sends_after_return = 0;  // sends started after a return
  Duration offline_time = Duration::zero();
};

class SimUser final : public Node {
 public:
  // `link` is used only when config.path is long_connection.
  SimUser(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality,
          client::MessagingClientConfig config, client::AccessLinkConfig link, SimUserPlan plan,
          client::HistoryRecorder* recorder);
  void start() override;
  std::string_view kind() const override { return "sim-user"; }

  // Ends the send, sync, churn, registration and contact / profile change
  // loops; an offline user comes back online.
  void stop_traffic();
  // Offline (no sends, no syncs, no connection) until set_offline(false);
  // then the client reconnects and syncs.
  void set_offline(bool offline);
  bool offline() const { return offline_; }
  // The long connection (nullptr on the other paths).
  client::AccessLink* link() { return link_.get(); }
  // No send, registration, login or contact / profile change in flight and
  // no sync running.
  bool idle() const { return !sending_ && !changing_ && !setting_up_ && !client_.syncing(); }
  // Registered and logged in (always, without registration).
  bool registered() const { return ready_; }
  // Starts the final sync; final_done() once the final state is recorded.
  void final_sync();
  bool final_done() const { return final_done_; }
  client::MessagingClient& client() { return client_; }
  const std::vector<uint64_t>& contacts() const { return plan_.contacts; }
  const ChurnStats& churn_stats() const { return churn_stats_; }

 private:
  Task<void> send_loop();
  Task<void> sync_loop();
  Task<void> churn_loop();
  Task<void> final_loop();
  Task<void> setup_loop();
  Task<void> contacts_loop();
  Task<void> profile_loop();
  void start_traffic();
  // A contact of the plan as a uid (0: the peer has not registered yet).
  uint64_t resolve(uint64_t contact) const;

  Runtime& rt_;
  rpc::RpcEndpoint endpoint_;
  rpc::Router router_;
  std::unique_ptr<client::AccessLink> link_;
  client::MessagingClient client_;
  SimUserPlan plan_;
  ChurnStats churn_stats_;
  TimePoint offline_since_;
  bool returned_ = false;  // came back online at least once
  bool stopped_ = false;
  bool offline_ = false;
  bool sending_ = false;
  bool final_done_ = false;
  uint64_t body_counter_ = 0;
  uint64_t profile_changes_ = 0;
  bool ready_ = true;  // registered and logged in (always, without registration)
  bool changing_ = false;
  bool setting_up_ = false;
};

class MessagingWorkload {
 public:
  // Adds the users and the reader to `sim` (after the deployment's nodes);
  // start them with deployment.start_all().
  MessagingWorkload(Simulation& sim, SimDeployment& deployment, MessagingWorkloadConfig config, HistoryLog& log);

  // The users' uids (register_users: those registered so far, 0 before, by
  // index).
  const std::vector<uint64_t>& uids() const { return registered_ ? registered_->uid : uids_; }
  // Each user's process name → the access zone it prefers (round robin over
  // the datacenter's zones; empty without a datacenter).
  const std::map<std::string, std::string>& preferred_zones() const { return preferred_zones_; }
  const std::vector<NodeId>& user_nodes() const { return users_; }
  NodeId reader_node() const { return reader_; }
  // The path the users were given (automatic resolved).
  UserPath path() const { return config_.path; }
  SimUser* user(size_t i) { return sim_.node_as<SimUser>(users_[i]); }

  void stop_traffic();
  // Every user idle (no send or sync in flight).
  bool all_idle();
  // Contacts by user index (uids()[i] is node i), symmetric.
  const ContactGraph& contact_graph() const { return graph_; }
  // This workload's end-phase hooks (end_phase.h): stop, idle, the reader,
  // every user's final sync.
  EndPhase end_phase();
  // run_end_phase(end_phase()): stop traffic, wait until idle (≤ limit),
  // `settle` more, read the servers' final states, then every user's final
  // sync. False (with `why`) if a phase did not finish by `limit`.
  bool finish(Duration settle, TimePoint limit, std::string* why);

  // Sums over the users' clients.
  client::MessagingClient::Stats totals();
  ChurnStats churn_totals();

 private:
  Simulation& sim_;
  SimDeployment& deployment_;
  MessagingWorkloadConfig config_;
  HistoryLog& log_;
  std::vector<uint64_t> uids_;
  std::map<std::string, std::string> preferred_zones_;
  ContactGraph graph_;
  std::vector<NodeId> users_;
  NodeId reader_;
  std::shared_ptr<RegisteredUsers> registered_;  // register_users mode
};

}  // namespace wx::sim::workload
