// A scenario: one outage experiment as plain data, read from a YAML file.
//
// A scenario file says which deployment runs (on top of the one deployment
// description, nodes/deploy/deployment.h), what the simulated users do, which
// faults happen when (a fixed timeline and/or random fault phases), and what
// must hold at the end (expectations). docs/scenarios.md documents every key
// with an example; scenarios/*.yaml are the canonical ones.
//
// The reader validates the whole file before anything runs. Every problem is
// a ScenarioError naming the file, the line and column (1-based) and what was
// expected: bad YAML, a document that is not a mapping, unknown keys, wrong
// types, bad units ("250ms", "2m", "500/s"), negative or huge numbers,
// targets that do not exist in the deployment (a zone, a node name, a role),
// faults after the end of the traffic, overlapping uses of one node. No input
// crashes the reader: the bytes are size-checked, yaml-cpp's own nesting
// guard bounds recursion, and every conversion is checked.
//
// Nothing here knows about the simulator: a Scenario is data, turned into a
// run by sim/scenario/run.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nodes/deploy/deployment.h"
#include "nodes/runtime/time.h"

namespace wx::scenario {

// Limits: a scenario beyond them is a mistake, not an experiment.
inline constexpr size_t kFileBytesMax = 1 << 20;
inline constexpr size_t kFaultsMax = 1000;
inline constexpr size_t kUsersMax = 10'000;
inline constexpr size_t kGroupsMax = 1'000;
inline constexpr double kRatePerUserPerMinMax = 600;
inline constexpr Duration kDurationMax = minutes(60);  // of the traffic

// Where in the file a value was written (1-based; 0: not from a file).
struct Mark {
  int line = 0;
  int column = 0;
};

struct ScenarioError {
  std::string file;
  Mark at;
  std::string message;  // "faults[2].kill_zone: expected one of the zones a, b, c; got 'd'"
  // "file:line:column: message" (or "file: message" without a position).
  std::string text() const;
};

// What a fault aims at.
struct Target {
  enum class Kind : uint8_t {
    zone,        // every node (servers) in that zone: "zone:b"
    datacenter,  // every server node of a datacenter: "dc:dc1"
    node,        // one server node by its deployment name: "node:kv-dc1-s0-a"
    role,        // every instance of a role: "role:kv", "role:msg"
    clients,     // every simulated user's device: "clients"
  };
  Kind kind = Kind::zone;
  // zone / datacenter / node / role name; empty for clients. A zone is
  // "b" with one datacenter and always qualified "dc2/b" (DATACENTER/ZONE)
  // with several: the reader resolves a bare unambiguous "zone:b" to it.
  std::string name;
  Mark at;
  // The text form above.
  std::string text() const;
  // Whether a server node of the deployment is aimed at (never for clients).
  // A qualified zone matches node.datacenter and node.zone, a bare one node.zone.
  bool matches(const deploy::NodeDesc& node) const;
  // Zone targets: the zone's name without its datacenter ("b" for "dc2/b")
  // and the datacenter it names ("dc2"; empty for a bare "b").
  std::string zone_name() const;
  std::string zone_datacenter() const;
  bool operator==(const Target& o) const { return kind == o.kind && name == o.name; }
};

enum class FaultKind : uint8_t {
  kill_zone,        // the zone loses power (nodes crash, zone dark) until restored
  kill_datacenter,  // the whole datacenter loses power
  kill_node,        // the targets crash and restart from their disks when the fault ends
  wipe_node,        // the targets crash, lose their disks, and start empty when it ends
  partition,        // groups of targets cannot reach each other (both ways)
  block,            // traffic from `from` to `to` is dropped (one way)
  loss,             // frames between `from` and `to` lost with probability p (retransmitted)
  delay,            // frames between `from` and `to` take `extra` longer
  clog,             // traffic to and from the targets is held until the fault ends
  clock_skew,       // the targets' clocks step by `offset` (back when the fault ends)
};
inline constexpr size_t kFaultKinds = 10;
std::string_view to_string(FaultKind kind);
std::optional<FaultKind> parse_fault_kind(std::string_view text);

struct FaultSpec {
  FaultKind kind = FaultKind::kill_zone;
  Duration at;                       // since the start of the traffic
  std::optional<Duration> duration;  // from `for` or `until`; none: until the traffic ends
  std::vector<Target> targets;       // kill_*, wipe_node, clog, clock_skew
  std::vector<std::vector<Target>> groups;  // partition
  std::vector<Target> from, to;             // block, loss, delay
  double loss_p = 0;                        // loss
  Duration extra;                           // delay
  Duration offset;                          // clock_skew
  Mark mark;
  // "kill_zone b", "partition [zone:a] | [zone:b, zone:c]" ...
  std::string describe() const;
};

// Random fault phases (FoundationDB-style "swarm" when run with --swarm):
// between `from` and `until`, one fault at a time (at most `concurrent`),
// each lasting `for_min`..`for_max`, the gaps exponential with mean `every`.
// Kinds and targets are drawn from the lists with the seed; with --swarm the
// run first draws, from the seed, a non-empty subset of the kinds, a subset of
// the targets and a rate factor in [0.5, 2] (each seed tests a different mix).
struct RandomFaults {
  Duration from, until;
  Duration every = seconds(20);
  Duration for_min = seconds(2), for_max = seconds(15);
  size_t concurrent = 1;
  std::vector<FaultKind> kinds;  // never kill_datacenter
  std::vector<Target> targets;   // what kill/wipe/clog/skew/loss/delay may aim at
  Mark mark;
};

// One-way latency of a WAN link between two datacenter cores (`wan:`).
inline constexpr Duration kWanLatencyMin = milliseconds(1);
inline constexpr Duration kWanLatencyMax = seconds(1);
inline constexpr Duration kWanJitterMax = seconds(1);

// The deployment: one datacenter of three zones (`datacenter:`, `zones:`) or
// several (`datacenters:`), the KV shard count (per datacenter), instances
// per zone of the logic, access and replicator services, the WAN link
// latency, and the knobs experiments turn.
struct DeploymentSection {
  // The first (default) datacenter: the only one, or datacenters[0].
  std::string datacenter = "dc1";
  std::vector<std::string> zones{"a", "b", "c"};
  // Every datacenter in order: one entry ({datacenter, zones}) for the
  // single-datacenter form, 2..kDatacentersMax for `datacenters:`. Zone
  // names are unique within a datacenter and may repeat across them.
  std::vector<deploy::DatacenterSpec> datacenters{{"dc1", {"a", "b", "c"}}};
  uint32_t shards = 1;  // per datacenter
  // msg, access, group, fanout: default 1 each; repl (the replicators):
  // default 1 with two or more datacenters, none (and not allowed) with one.
  std::map<deploy::Role, uint32_t> instances;
  // `wan: {latency, jitter}`: the one-way WAN link latency between two
  // datacenter cores, base + uniform[0, jitter] (sim::LatencyConfig::wan_link);
  // none: the simulator's default (25ms + 10ms). Only with several datacenters.
  std::optional<Duration> wan_latency, wan_jitter;
  // msg service: RPC workers per instance, cost of one send (the CPU time a
  // worker spends), FastReject on or off.
  size_t msg_workers = 8;
  Duration msg_send_cost;
  bool fast_reject = true;
  // Test-only: the msg service acknowledges a send before its inbox commit.
  bool unsafe_ack_before_inbox_commit = false;
};

// A window with a different send rate (a storm, an overload).
struct RateWindow {
  Duration from, until;
  double factor = 1;     // multiplies the per-user rate of the 1:1 users
  double groups_factor = 1;  // and of the group senders
  Mark mark;
};

struct WorkloadSection {
  size_t users = 100;
  size_t groups = 10;
  double rate_per_min = 1;  // sends per user per minute (`rate`, or `total_rate` / users)
  Duration duration = minutes(3);
  size_t contacts_min = 2, contacts_max = 16;
  double contacts_alpha = 1.0, contacts_locality = 0.5;
  size_t group_size_min = 3, group_size_max = 30;
  double group_size_alpha = 1.0;
  Duration sync_every = seconds(30);
  Duration heartbeat_every = seconds(1);
  Duration call_timeout = seconds(1);
  Duration churn_online, churn_offline;  // both 0: no churn
  std::vector<RateWindow> rate_windows;
};

enum class Phase : uint8_t { before, during, after };
inline constexpr size_t kPhases = 3;
std::string_view to_string(Phase phase);

struct Expectations {
  // Safety checks of the messaging checker (checkers/messaging.h), each on by default.
  bool no_loss = true;               // lost
  bool no_duplicates = true;         // duplicated
  bool order = true;                 // order
  bool convergence = true;           // convergence (every type)
  bool unique_ids = true;            // a message id names one message; one id per client message
  bool no_cross_user_access = true;  // origin: nothing reaches a user it was not sent to
  // Every acknowledged inbox record was durably on at least this many zones
  // when acknowledged (checkers/replication.h); 0: not judged.
  size_t acked_on_zones = 2;
  // Liveness: after the traffic stops and every fault has healed, the
  // deployment converges (everything delivered and synced) within this.
  Duration converge_within = minutes(5);
  // Per phase (before the first fault / while faults are active / after the
  // last heals): the fraction of sends that succeeded at least this, and the
  // 99th percentile send latency (first attempt to OK) at most this.
  std::map<Phase, double> availability_min;
  std::map<Phase, Duration> latency_p99_max;
  // Per phase: successful sends per simulated second at least this.
  std::map<Phase, double> goodput_min;
  // Multiple datacenters. `replicas_converge` (default true; ignored with one
  // datacenter): after the heal, every datacenter's copy of every user's
  // records equals the one in the user's home datacenter.
  bool replicas_converge = true;
  // `availability_by_datacenter: {dc1: {during: 0.99}, ...}`: per datacenter
  // (named in the deployment) and phase, the fraction of the sends of the
  // users homed there that succeeded, at least this.
  std::map<std::string, std::map<Phase, double>> availability_by_datacenter;
  // `sync_availability: {during: 0.99}`: per phase, the fraction of syncs
  // that succeeded, at least this.
  std::map<Phase, double> sync_availability_min;
  Mark mark;
};

struct Scenario {
  std::string file;  // as given to the reader
  std::string name;
  std::string description;
  uint64_t seed = 1;  // the default seed (--seed overrides)
  DeploymentSection deployment;
  WorkloadSection workload;
  std::vector<FaultSpec> faults;
  std::optional<RandomFaults> random_faults;
  Expectations expect;

  // The deployment description the run starts from (world-agnostic): every
  // datacenter of deployment.datacenters (each with its zones, `shards` KV
  // shards and the storage services plus the listed services in every zone),
  // default_datacenter the first, home_datacenter empty (the run assigns
  // users to datacenters in turn).
  deploy::DeploymentSpec deployment_spec() const;
};

// Reads and validates a scenario. `file` names it in errors.
std::variant<Scenario, ScenarioError> parse_scenario(std::string_view bytes, const std::string& file);
// Reads the file (at most kFileBytesMax bytes) and parses it.
std::variant<Scenario, ScenarioError> load_scenario(const std::string& path);

// "a, b, c"
std::string join(const std::vector<std::string>& items, std::string_view separator);

// Parses a rate "500/s", "3/min", "1/m", "10/h" into events per minute.
std::optional<double> parse_rate_per_min(std::string_view text);

}  // namespace wx::scenario
