// The end phase shared by every workload (messaging, group, `wxsim demo`):
// after the traffic stops, quiescence, then the servers' and the clients'
// final states, recorded into a HistoryLog for the messaging checker.
//
//   * InboxReader — a node that reads every listed user's inbox through
//     inbox.Range (pages of kRangeMessagesMax, each call carrying THAT
//     user's ticket: the inbox checks it) and records a server_final per
//     user with versions {"messages": last stored seq}; group messages are
//     recorded as group copies (to_copy). Opt-in (set_all_types, off by
//     default): also every user's contacts (contacts.ListContacts, a
//     snapshot with its version) and profile (account.GetProfile with its
//     version), recorded as versions {"contacts", "account"} and the
//     server_final's contacts and profile; with a RegisteredUsers table the
//     users read are the registered ones (index order), with their own
//     tickets from login.
//   * EndPhase — the hooks of one or more workloads, combined with +=; and
//     run_end_phase(): stop traffic, wait until idle, wait until drained
//     (group fan-out), `settle` more (in-flight server work ends with its
//     request budget), read every inbox (each reader), then start the final
//     syncs and wait until they are done.
// Deterministic: users are read in the order given; hooks run in the order
// added. Bounded: pages per user ≤ kReaderPagesMax, failed calls per user
// ≤ kReaderFailuresMax, contacts / profile attempts per user ≤
// kReaderFailuresMax, every wait ends at `limit`.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nodes/rpc/router.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"

namespace wx::sim::workload {

class HistoryLog;

inline constexpr int kReaderPagesMax = 10'000;
inline constexpr int kReaderFailuresMax = 100;

// register_users (MessagingWorkloadConfig): what each user (by index) learnt
// at registration and login — for the reader and for resolving contacts.
// Simulation-side shared state (not node code).
struct RegisteredUsers {
  std::vector<uint64_t> uid;        // 0 until registered
  std::vector<std::string> ticket;  // "" until logged in
};

class InboxReader final : public Node {
 public:
  InboxReader(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality, std::string process,
              std::vector<uint64_t> uids, std::function<std::string(uint64_t uid)> ticket_for, HistoryLog* log);
  // Also read every user's contacts and profile with their versions (the
  // "contacts" and "account" sync types); with `registered`, the users are
  // the registered ones and the tickets theirs (the constructor's uids and
  // ticket_for are then unused). Call before read_all().
  void set_all_types(bool all_types, std::shared_ptr<RegisteredUsers> registered);
  void start() override { endpoint_.start(); }
  std::string_view kind() const override { return "inbox-reader"; }
  // Reads every inbox and records server_final events; done() after.
  void read_all() { rt_.spawn(read_loop(), "inbox-reader"); }
  bool done() const { return done_; }
  bool failed() const { return failed_; }

 private:
  Task<void> read_loop();
  Runtime& rt_;
  rpc::RpcEndpoint endpoint_;
  rpc::Router router_;
  std::string process_;
  std::vector<uint64_t> uids_;
  std::function<std::string(uint64_t uid)> ticket_for_;
  HistoryLog* log_;
  bool all_types_ = false;
  std::shared_ptr<RegisteredUsers> registered_;
  bool done_ = false, failed_ = false;
};

// Adds a reader node named `name` (before the deployment starts);
// all_types / registered: InboxReader::set_all_types.
NodeId add_inbox_reader(Simulation& sim, SimDeployment& deployment, const std::string& name,
                        std::vector<uint64_t> uids, std::function<std::string(uint64_t uid)> ticket_for,
                        HistoryLog& log, const std::string& datacenter, const std::string& zone,
                        bool all_types = false, std::shared_ptr<RegisteredUsers> registered = nullptr);

struct EndPhase {
  std::vector<std::function<void()>> stop;         // stop the traffic
  std::vector<std::function<bool()>> idle;         // no client operation in flight
  std::vector<std::function<bool()>> drained;      // asynchronous server work done (group fan-out)
  std::vector<NodeId> readers;                     // InboxReader nodes
  std::vector<std::function<void()>> final_start;  // start the clients' final syncs
  std::vector<std::function<bool()>> final_done;
  EndPhase& operator+=(const EndPhase& other);
};

// False, with `why`, if a phase missed `limit`.
bool run_end_phase(Simulation& sim, const EndPhase& phase, Duration settle, TimePoint limit, std::string* why);

}  // namespace wx::sim::workload
