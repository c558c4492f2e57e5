// Glue for `wxsim demo` (cli/demo_cmd.cc): the 1:1 messaging workload and the
// group-chat workload in ONE simulation, with one end phase and one reader.
//
//   * DemoReader — a node that, after quiescence, reads every user's inbox
//     (inbox.Range pages, each call carrying THAT user's ticket, so it works
//     whether or not the inbox service checks tickets) and records a
//     server_final per user: 1:1 users through HistoryLog::server_final
//     (1:1 copies, versions {"messages": last seq}), group-only users through
//     GroupRecorder::record_server_final (group-aware copies).
//   * finish_demo() — the end phase of both workloads: stop all traffic,
//     wait until every user is idle, wait until the group fan-out drained,
//     settle, read every inbox, then every 1:1 user's final sync.
// Deterministic (every draw is a node's Runtime rng; the order of users is
// fixed). Bounded: pages per user ≤ kDemoReaderPagesMax, ≤ 100 failed calls
// per user, every wait ends at `limit`.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "nodes/rpc/router.h"
#include "sim/simulation.h"
#include "sim/workload/group_workload.h"
#include "sim/workload/messaging_workload.h"

namespace wx::sim::workload {

inline constexpr int kDemoReaderPagesMax = 10'000;
inline constexpr int kDemoReaderFailuresMax = 100;

struct DemoReaderUser {
  uint64_t uid = 0;
  std::string ticket;
  bool group_only = false;  // recorded through the GroupRecorder
};

class DemoReader final : public Node {
 public:
  DemoReader(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality,
             std::vector<DemoReaderUser> users, HistoryLog* log, GroupRecorder* groups);
  void start() override { endpoint_.start(); }
  std::string_view kind() const override { return "demo-reader"; }
  void read_all() { rt_.spawn(read_loop(), "demo-reader"); }
  bool done() const { return done_; }
  bool failed() const { return failed_; }

 private:
  Task<void> read_loop();
  Runtime& rt_;
  rpc::RpcEndpoint endpoint_;
  rpc::Router router_;
  std::vector<DemoReaderUser> users_;
  HistoryLog* log_;
  GroupRecorder* groups_;
  bool done_ = false, failed_ = false;
};

// Adds the reader (before deployment.start_all()); returns its node id.
NodeId add_demo_reader(Simulation& sim, SimDeployment& deployment, std::vector<DemoReaderUser> users,
                       HistoryLog& log, GroupRecorder& groups, const std::string& datacenter = "dc1",
                       const std::string& zone = "clients");

// The end phase of both workloads (`groups` may be null). False, with `why`,
// if a phase missed `limit`.
bool finish_demo(Simulation& sim, MessagingWorkload& one_to_one, GroupWorkload* groups, GroupRecorder& recorder,
                 NodeId reader, Duration settle, TimePoint limit, std::string* why);

}  // namespace wx::sim::workload
