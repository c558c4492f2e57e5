// The messaging outage run: one three-zone datacenter with every service in
// every zone, simulated users chatting 1:1 over access long connections and in
// group chats, one zone losing power and coming back, then quiescence and the
// messaging checker's verdict. `wxsim demo` (cli/demo_cmd.cc) prints its
// report; tests/logic/outage_run_test.cc runs it at scale over many seeds.
// (YAML scenarios, a later issue, will describe the same run in a file.)
//
// The world: deploy::single_datacenter_spec() plus msg, access, group and
// fanout, one instance per zone, one ticket key ring shared by every service
// that checks tickets. The users live in a client zone outside the
// datacenter's zones, so the outage hits servers only (docs/messaging.md
// "Workload"):
//   * `users` simulated users (uids 1000, 1001, ...) chat 1:1 with their
//     contacts — a symmetric contact graph (`contacts`: by default degrees
//     2–16 from a truncated power law, half the edges local) — over a long
//     connection to an access node (heartbeats, payload-less notifies →
//     notify-driven syncs, a periodic sync every `sync_interval`), sending at
//     Poisson times, `rate_per_min` per user; with `churn` each user
//     alternates exponential online and offline periods;
//   * `groups` group chats (`group_size`, by default 3–30 members from a
//     truncated power law) drawn from the same users, mostly the creator's
//     contacts; the first 3 members of each group send to it through
//     msg.GroupSend at the same rate from a second device (process "g<uid>");
//     the fan-out workers deliver and the members' clients receive group
//     messages by their syncs.
// Timeline: `zone` loses power at `outage_start` for `outage_for`; traffic
// stops at `duration`; then the end phase (end_phase.h): every user back
// online, fan-out drained, every inbox read by a server reader, every user's
// final sync; then the messaging checker (every recipient, 1:1 or group, has
// a client final state).
//
// Deterministic: everything follows from `seed` (same config, same trace
// hash). Bounded: every phase ends at its simulated-time limit.
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

#include "checkers/messaging.h"
#include "checkers/replica_convergence.h"
#include "nodes/runtime/runtime.h"
#include "nodes/runtime/time.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "sim/workload/group_workload.h"
#include "sim/workload/messaging_workload.h"
#include "sim/workload/population.h"

namespace wx::sim::workload {

inline constexpr uint64_t kOutageUidBase = 1000;
inline constexpr size_t kOutageUsersMax = 10'000;
inline constexpr size_t kOutageGroupsMax = 1'000;
inline constexpr size_t kOutageGroupSendersMax = 3;
inline constexpr double kOutageRateMax = 600;  // sends per user per minute

struct OutageRunConfig {
  uint64_t seed = 42;
  size_t users = 200;   // 2 .. kOutageUsersMax
  size_t groups = 10;   // 0 .. kOutageGroupsMax
  Duration duration = minutes(3);      // traffic
  Duration outage_start = minutes(1);  // < duration
  Duration outage_for = minutes(1);    // >= 1 s, ends by duration
  std::string zone = "b";              // a, b or c; empty: no built-in outage (the caller schedules faults)
  double rate_per_min = 6;             // sends per user per minute, (0, kOutageRateMax]
  ContactGraphConfig contacts{SizeDistribution{2, 16, 1.0}, 0.5, 8};
  SizeDistribution group_size{3, 30, 1.0};
  ChurnConfig churn;                    // default off
  Duration sync_interval = seconds(3);  // the clients' periodic sync
  // The long connection's heartbeat (client::AccessLinkConfig): a silent
  // access node is left after heartbeat_misses_max missed beats.
  Duration heartbeat_interval = seconds(1);
  Duration client_call_timeout = seconds(1);
  Duration settle = seconds(5);          // after the fan-out drained
  Duration end_limit = seconds(900);     // simulated time allowed for the end phase
  LogLevel log_level = LogLevel::warn;
  size_t trace_records_max = 0;          // the kernel's trace kept for writing out
  // Several datacenters (docs/multi-dc.md): after the end phase the run waits
  // (at most this long) until every replicator has shipped what its source
  // held when the end phase finished, then `replica_settle` more, then dumps
  // every KV replica and judges replica convergence.
  Duration replication_limit = minutes(5);
  // The topology's link latencies (the WAN link between datacenters among
  // them).
  LatencyConfig latency;
  Duration replica_settle = seconds(5);
  // Test-only fault: the msg service acknowledges a send before its inbox
  // commit (MsgServiceConfig::unsafe_ack_before_inbox_commit).
  bool unsafe_ack_before_inbox_commit = false;
  // The deployment to start from; none: deploy::single_datacenter_spec()
  // with msg, access, group and fanout once per zone. Its datacenter's zones
  // must include `zone` (when set); its templates' ticket keys and observers
  // are filled in here, everything else (instances, servers, costs) is kept.
  std::optional<deploy::DeploymentSpec> spec;
  // Rate shapes over simulated time (thinning): the 1:1 users' and the group
  // senders'. Default flat.
  DailyShape shape;
  DailyShape group_shape;
};

// What is wrong with a config (empty: nothing), naming the field.
std::string validate(const OutageRunConfig& config);

class OutageRun {
 public:
  // Builds the world (throws std::invalid_argument if validate() finds a
  // problem). Nothing runs until run().
  explicit OutageRun(OutageRunConfig config);
  ~OutageRun();
  OutageRun(const OutageRun&) = delete;
  OutageRun& operator=(const OutageRun&) = delete;

  // Runs traffic, the outage and the end phase, then the checker. False
  // (with `why`) if the simulation failed or a phase missed its limit
  // (end_phase_timed_out() then says which); the verdict is then not
  // computed. Faults of the caller's own are scheduled with sim().at(...)
  // before run(); `before_end_phase` (if set) runs when the traffic stops,
  // before the end phase (e.g. to heal everything).
  bool run(std::string* why, const std::function<void()>& before_end_phase = {});
  // The end phase missed its limit (liveness), as opposed to a node failure.
  bool end_phase_timed_out() const { return end_timed_out_; }
  // Adds a mark to the timeline (kept in time order by run()).
  void add_mark(TimePoint at, std::string what) { timeline_.push_back({at, std::move(what)}); }
  SimDeployment& sim_deployment() { return *deployment_; }
  // When the traffic started and stopped, and when the end phase finished.
  TimePoint traffic_start() const { return start_at_; }
  TimePoint traffic_end() const { return end_at_; }
  TimePoint end_phase_done() const { return done_at_; }

  struct Mark {
    TimePoint at;
    std::string what;
  };
  const OutageRunConfig& config() const { return config_; }
  Simulation& sim() { return *sim_; }
  const deploy::Deployment& deployment() const { return *deployment_desc_; }
  const checkers::messaging::History& history() const { return log_->history(); }
  // Valid after a run() that returned true.
  const checkers::messaging::MessagingVerdict& verdict() const { return *verdict_; }
  // Fault and phase marks in time order.
  const std::vector<Mark>& timeline() const { return timeline_; }
  TimePoint outage_started() const { return down_at_; }
  TimePoint outage_ended() const { return up_at_; }
  // Server nodes in the zone that lost power.
  size_t zone_nodes() const { return zone_nodes_; }
  // Users that are members of a group (0 without groups).
  size_t group_members() const;
  // Contacts per user, on average (the graph is symmetric).
  double mean_contacts() const;
  ChurnStats churn_totals() { return one_to_one_->churn_totals(); }
  // Group message id → when the last member's inbox held it.
  const std::map<std::string, TimePoint>& group_completed_at() const { return recorder_->completed_at(); }
  client::MessagingClient::Stats client_totals() { return one_to_one_->totals(); }
  // Several datacenters: users homed in more than one datacenter.
  bool multi_datacenter() const;
  // Every KV replica of the shard groups: the user records it holds (the
  // facts the replica-convergence checker reads), in node id order.
  std::vector<checkers::ReplicaDump> dump_replicas();
  // Every user of the run: home datacenter and shard.
  std::map<uint64_t, checkers::UserPlacement> user_placements() const;
  // Several datacenters, after a run() that returned true: the verdict and
  // when the replicas had caught up (nullopt: not within replication_limit,
  // the verdict then judges the replicas as they were at the limit).
  const std::optional<checkers::ReplicaConvergenceVerdict>& replica_verdict() const { return replica_verdict_; }
  std::optional<TimePoint> replication_caught_up_at() const { return caught_up_at_; }
  // The process names of the devices of users homed in `datacenter`.
  std::set<std::string> processes_homed_in(const std::string& datacenter) const;
  // The 1:1 users' processes → the access zone each prefers.
  const std::map<std::string, std::string>& preferred_zones() const { return one_to_one_->preferred_zones(); }

 private:
  OutageRunConfig config_;
  std::unique_ptr<Simulation> sim_;
  std::unique_ptr<HistoryLog> log_;
  std::unique_ptr<GroupRecorder> recorder_;
  std::shared_ptr<const deploy::Deployment> deployment_desc_;
  std::unique_ptr<SimDeployment> deployment_;
  std::unique_ptr<MessagingWorkload> one_to_one_;
  std::unique_ptr<GroupWorkload> groups_;
  void schedule_zone_outage();
  size_t zone_nodes_ = 0;
  TimePoint down_at_, up_at_, end_at_, start_at_, done_at_;
  bool end_timed_out_ = false;
  std::vector<Mark> timeline_;
  std::optional<checkers::messaging::MessagingVerdict> verdict_;
  std::optional<checkers::ReplicaConvergenceVerdict> replica_verdict_;
  std::optional<TimePoint> caught_up_at_;
  // Waits for the replicators (see replication_limit); true when caught up.
  bool wait_for_replication();
};

}  // namespace wx::sim::workload
