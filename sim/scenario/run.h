// A scenario run: a Scenario (scenario.h) turned into a simulation, run, and
// judged.
//
// The world is the messaging outage run (sim/workload/outage_run.h) built
// from the scenario's deployment and workload, with no built-in outage: the
// scenario's fault timeline — plus, when the scenario has random fault phases,
// faults drawn from the seed — is scheduled on the simulation's faults. When
// the traffic stops, everything still broken is healed (rules removed, zones
// restored, crashed nodes started, clocks set back) and the liveness phase
// begins: the deployment must converge — every user back online, the group
// fan-out drained, every inbox read, every user's final sync done — within
// `expect.converge_within`, or the run fails. Then the expectations are
// judged, each from the recorded history only: the messaging checker's
// verdicts (checkers/messaging.h) and the availability / latency / goodput
// objectives per phase (checkers/availability.h).
//
// Phases: `before` (traffic start to the first disturbance), `during` (the
// first disturbance's start to the last one's end), `after` (from then to the
// traffic's end). Disturbances: faults (until healed) and rate windows.
//
// Swarm (FoundationDB-style swarm testing): with `swarm`, the seed also
// draws WHICH of the random phase's fault kinds are enabled (a non-empty
// subset), which of its targets, and a factor in [0.5, 2] on the fault rate,
// so that every seed exercises a different mix. A scenario without random
// fault phases gets a default one over the middle of the traffic.
//
// Deterministic: the same scenario, seed and swarm flag give the same trace
// hash and the same report (report_json() holds no wall-clock figure).
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "checkers/availability.h"
#include "checkers/replication.h"
#include "sim/report/run_recorder.h"
#include "sim/scenario/scenario.h"
#include "sim/workload/outage_run.h"

namespace wx::scenario {

struct RunOptions {
  std::optional<uint64_t> seed;  // none: the scenario's
  bool swarm = false;
  LogLevel log_level = LogLevel::warn;
  size_t trace_records_max = 0;
  // Record the run's files (trace.json, metrics.csv; sim/report/): frames,
  // node lifecycle and faults watched from the start; RPC calls drawn up to
  // trace_spans_max, the rest only counted.
  bool record_files = false;
  size_t trace_spans_max = 100'000;
};

struct ExpectationResult {
  std::string name;
  bool passed = false;
  std::string evidence;  // why it passed or, when it failed, what shows it (messages, users, events, seed)
};

// One fault as it happened in the run.
struct AppliedFault {
  TimePoint at;
  std::optional<TimePoint> healed_at;  // none: healed when the traffic stopped
  std::string what;
  bool random = false;
};

struct PhaseReport {
  Phase phase = Phase::before;
  checkers::messaging::WindowStats stats;
  // The same, per access zone: the 1:1 users grouped by the access zone they
  // prefer (zone name), and the group senders, which call msg directly
  // ("direct").
  std::vector<std::pair<std::string, checkers::messaging::WindowStats>> by_zone;
};

class ScenarioRun {
 public:
  // Builds the world (nothing runs yet).
  ScenarioRun(Scenario scenario, RunOptions options);
  ~ScenarioRun();
  ScenarioRun(const ScenarioRun&) = delete;
  ScenarioRun& operator=(const ScenarioRun&) = delete;

  // Runs traffic, faults, the liveness phase and the expectations. Returns
  // passed(). A node failure (a task threw) fails the run with `failure()`.
  bool run();

  bool passed() const;
  const Scenario& scenario() const { return scenario_; }
  uint64_t seed() const { return seed_; }
  bool swarm() const { return options_.swarm; }
  uint64_t trace_hash();
  uint64_t events();
  // Simulated time from the start to the end of the liveness phase.
  Duration simulated();
  const std::optional<std::string>& failure() const { return failure_; }
  const std::vector<ExpectationResult>& expectations() const { return expectations_; }
  const std::vector<AppliedFault>& faults() const { return applied_; }
  const std::vector<PhaseReport>& phases() const { return phases_; }
  // The swarm's draw: enabled kinds and the rate factor (empty without --swarm).
  const std::vector<FaultKind>& swarm_kinds() const { return swarm_kinds_; }
  double swarm_rate_factor() const { return swarm_factor_; }
  sim::workload::OutageRun& outage() { return *run_; }
  sim::Simulation& sim() { return run_->sim(); }
  // Inbox records as the KV replicas persisted them (for acked_on_zones).
  const std::vector<checkers::messaging::StoredCopy>& stored_copies() const { return copies_; }

  // The human summary (phases, faults, expectations, checker violations).
  std::string summary();
  // With RunOptions::record_files: trace.json (Chrome trace-event JSON for
  // Perfetto: a track per node, an arrow per RPC, fault markers) and
  // metrics.csv (per-second counters per zone and service, the clients'
  // sends among them). Deterministic. Throws std::logic_error without it.
  void write_trace_json(std::ostream& out);
  void write_metrics_csv(std::ostream& out);
  // report.json: seed, trace hash, every expectation's verdict and evidence,
  // phases, faults, the checker's statistics. Deterministic.
  std::string report_json();

 private:
  struct Planned {
    FaultSpec spec;
    bool random = false;
  };
  void plan_random_faults();
  void schedule(const Planned& p);
  void apply(const Planned& p, size_t index);
  void heal(size_t index);
  void heal_everything();
  sim::Selectors selectors(const std::vector<Target>& targets) const;
  // A zone target's datacenter (the first datacenter for a bare name).
  std::string zone_dc(const Target& t) const;
  std::vector<std::string> zones_of(const std::string& datacenter) const;
  std::vector<NodeId> nodes_of(const std::vector<Target>& targets) const;
  void judge();

  Scenario scenario_;
  RunOptions options_;
  uint64_t seed_ = 0;
  std::unique_ptr<sim::workload::OutageRun> run_;
  std::vector<Planned> plan_;
  std::vector<AppliedFault> applied_;
  // Per applied fault: how to undo it.
  struct Undo {
    std::vector<sim::FaultId> rules;
    std::vector<std::pair<std::string, std::string>> zones;  // killed (zone, datacenter) to restore
    std::vector<NodeId> nodes;       // crashed nodes to start
    std::vector<NodeId> skewed;      // clocks to set back to 0
    bool done = false;
  };
  std::vector<Undo> undo_;
  std::vector<FaultKind> swarm_kinds_;
  double swarm_factor_ = 1;
  bool ran_ = false;
  std::optional<std::string> failure_;
  std::vector<ExpectationResult> expectations_;
  std::vector<PhaseReport> phases_;
  std::vector<checkers::messaging::StoredCopy> copies_;
  std::unique_ptr<sim::report::RunRecorder> recorder_;
};

// Compares two runs' traces (records kept: SimConfig::trace_records_max).
// Empty if they agree (same records, same hash, same count); else where they
// first diverge: the event index and both events (time, sequence, kind, node,
// detail), or, if every kept record agrees, that they diverge after them.
std::string first_divergence(const sim::Trace& a, const sim::Trace& b);

// The human summary's and the sweep's reproduction line:
// "wxsim run FILE --seed N [--swarm]".
std::string reproduction_line(const std::string& program, const std::string& file, uint64_t seed, bool swarm);

}  // namespace wx::scenario
