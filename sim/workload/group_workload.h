// The group-chat workload (simulation only): simulated group members sending
// through msg.GroupSend, the recorder of the group facts, and the final-state
// reader — recording a history for the messaging checker
// (docs/messaging-history.md; docs/messaging.md "Group chat").
//
//   * GroupRecorder — stamps events with KERNEL time into a HistoryLog's
//     history: the msg service's and the fan-out workers' group_members facts
//     and acks (members_observer(), ack_observer() go into the deployment's
//     templates), and tracks fan-out progress (drained(): every acknowledged
//     group message has acks covering all its recipients; the time of the
//     last ack per message, for latency figures).
//   * GroupUser — one node per creating or sending member (process
//     "<process_prefix><uid>", "c<uid>" by default): creates the groups it
//     is the creator of (group.Create until OK), then, once started, sends
//     to a random group of its own at Poisson times; every attempt is an
//     invoke + completion; a send whose outcome is unknown is retried with
//     the same client message id (≤ attempts_max).
//   * GroupWorkload — adds the users and (read_inboxes) an InboxReader
//     (end_phase.h) over every member after the deployment's nodes; its
//     end phase waits for the fan-out to drain before reading. Groups come
//     from the caller (GroupSpec, e.g. make_groups in population.h).
// Bounded: users ≤ kGroupWorkloadUsersMax, pages, attempts. Deterministic:
// every draw is a node's Runtime rng.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "checkers/history.h"
#include "nodes/logic/msg/msg_service.h"
#include "nodes/rpc/router.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "sim/workload/end_phase.h"
#include "sim/workload/messaging_workload.h"
#include "sim/workload/population.h"

namespace wx::sim::workload {

inline constexpr size_t kGroupWorkloadUsersMax = 10'000;

class GroupRecorder {
 public:
  GroupRecorder(Simulation& sim, HistoryLog& log) : sim_(sim), log_(log) {}
  msg::GroupMembersObserver members_observer();
  msg::GroupAckObserver ack_observer();
  // Every group message with a members fact has acks for all its recipients.
  bool drained() const;
  // Kernel time of the ack that completed each message (message id → time).
  const std::map<std::string, TimePoint>& completed_at() const { return completed_at_; }
  void record_invoke(const std::string& process, uint64_t op_id, uint64_t user, uint64_t group,
                     const std::string& cmid, uint64_t body_hash);
  void record_completion(const std::string& process, uint64_t op_id, checkers::messaging::Outcome outcome,
                         const std::string& message_id, const std::string& error);
  checkers::messaging::History& history() { return log_.history(); }
  HistoryLog& log() { return log_; }

 private:
  struct Progress {
    std::set<uint64_t> expected, stored;
  };
  Simulation& sim_;
  HistoryLog& log_;
  std::map<std::string, Progress> progress_;  // by message id
  // Message ids with an expected member not yet stored (drained() is called
  // after every event of the end phase: it must not scan progress_).
  std::set<std::string> pending_;
  void update_pending(const std::string& message_id, const Progress& p);
  std::map<std::string, TimePoint> completed_at_;
};

struct GroupWorkloadConfig {
  std::vector<GroupSpec> groups;
  Duration send_interval_mean = seconds(5);  // per sending user, Poisson (at factor 1 of the shape)
  DailyShape shape;                          // default flat; thinned as the 1:1 workload does
  std::string client_datacenter = "dc1";
  std::string client_zone = "clients";
  Duration call_timeout = seconds(3);
  Duration retry_pause = milliseconds(200);
  int attempts_max = 10;
  std::function<std::string(uint64_t uid)> ticket_for;
  // Process (and node) names are process_prefix + uid. Another prefix than
  // the 1:1 users' "c" lets the same users chat 1:1 and in groups (the group
  // sends then come from a second device of the user).
  std::string process_prefix = "c";
  // Add an InboxReader over every member (off when another workload's
  // reader covers them).
  bool read_inboxes = true;
};

class GroupUser final : public Node {
 public:
  GroupUser(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality, uint64_t uid,
            std::string ticket, std::vector<GroupSpec> to_create, std::vector<uint64_t> send_groups,
            const GroupWorkloadConfig* config, GroupRecorder* recorder);
  void start() override;
  std::string_view kind() const override { return "group-user"; }
  bool created() const { return created_; }
  void start_traffic();
  void stop_traffic() { stopped_ = true; }
  bool idle() const { return !sending_; }
  // One send (tests): attempts with one client message id; the final status.
  Task<msg::MsgCode> send_once(uint64_t group, std::string body, std::string* message_id);
  uint64_t sends_ok() const { return sends_ok_; }

 private:
  Task<void> create_loop();
  Task<void> send_loop();
  Runtime& rt_;
  rpc::RpcEndpoint endpoint_;
  rpc::Router router_;
  uint64_t uid_;
  std::string ticket_;
  std::string process_;
  std::vector<GroupSpec> to_create_;
  std::vector<uint64_t> send_groups_;
  const GroupWorkloadConfig* config_;
  GroupRecorder* recorder_;
  bool created_ = false, stopped_ = false, sending_ = false, traffic_ = false;
  uint64_t next_cmid_ = 1, next_op_ = 1, sends_ok_ = 0;
};

class GroupWorkload {
 public:
  GroupWorkload(Simulation& sim, SimDeployment& deployment, GroupWorkloadConfig config, GroupRecorder& recorder);
  // Every member of any group, sorted.
  const std::vector<uint64_t>& uids() const { return uids_; }
  // The node of a creating or sending member; nullptr for the others (and
  // while the node is down).
  GroupUser* user(uint64_t uid);
  bool all_created();
  void start_traffic();
  void stop_traffic();
  bool all_idle();
  // This workload's end-phase hooks: stop, idle, fan-out drained, the reader.
  EndPhase end_phase();
  // run_end_phase(end_phase()): stop, wait idle, wait until the fan-out
  // drained, `settle`, read every inbox. False (with `why`) if a phase
  // missed `limit`.
  bool finish(Duration settle, TimePoint limit, std::string* why);

 private:
  Simulation& sim_;
  GroupWorkloadConfig config_;
  GroupRecorder& recorder_;
  std::vector<uint64_t> uids_;
  std::map<uint64_t, NodeId> users_;
  std::optional<NodeId> reader_;
};

}  // namespace wx::sim::workload
