// RunRecorder: watches one simulation and keeps what the run's files
// (run_files.h: trace.json, metrics.csv) show. docs/run-files.md describes
// the files.
//
// It attaches to the simulation's two observers — every frame
// (Network::set_frame_observer) and every start, crash, wipe and fault note
// (Simulation::set_lifecycle_observer) — and only reads: a run with a recorder
// has the same trace hash as one without. It keeps
//   * per node: when it was up (one interval per incarnation), crashes, wipes;
//   * RPCs: each request (call id and method read from the envelope's header,
//     rpc_frame.h) from its send to its response, matched by (caller, callee,
//     call id): the caller's side [sent, response delivered] and the callee's
//     [request delivered, response sent]. A side that sees no response ends
//     at the caller's deadline (send time + the request's time budget), or
//     when its node crashes; resets are not observed, so a call whose callee
//     crashed is drawn until that deadline. At most `rpc_spans_max` calls are
//     kept for trace.json (the first ones by send time); past that they are
//     only counted (rpc_stats().dropped);
//   * fault notes (their descriptions, "outage#3 zone:b") and the runner's
//     marks (add_mark);
//   * counters per time bucket (1 s) and per (datacenter, zone, service):
//     frames and bytes sent / received, frames lost on arrival, RPC requests
//     sent, requests received per method, responses ok / error — and the
//     runner's own (add_counter). Nodes up per second is derived from the
//     lifecycle when the files are written.
//
// Nodes. Deployment nodes are named, placed and given a service (their role)
// by the deployment; every other node of the simulation (simulated users,
// test callers, readers) is a client: its name and place come from its
// NodeSpec, its service is "client". Every deployment node gets a track in
// trace.json; clients get one only for the first `client_tracks_max` of them
// (by node id) — the others are folded into the counters, so 10,000 users do
// not make 10,000 tracks.
//
// One recorder per simulation: the constructor throws std::logic_error if an
// observer is already set; the destructor removes both. Everything it keeps is
// ordered by node id, time or name, never by a pointer or hash order, so the
// same seed gives the same files byte for byte.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nodes/deploy/deployment.h"
#include "sim/simulation.h"

namespace wx::sim::report {

struct RecorderConfig {
  // RPC calls kept for trace.json; later ones are only counted.
  size_t rpc_spans_max = 200'000;
  // Clients (nodes outside the deployment) with a track of their own, by id.
  size_t client_tracks_max = 50;
  // The counters' time bucket: whole seconds, at least one.
  Duration bucket = seconds(1);
  // Distinct RPC method names counted one by one; later ones count as "(other)".
  size_t methods_max = 1'000;
};

class RunRecorder {
 public:
  // Attaches to `sim` (which must outlive the recorder, as must `deployment`).
  // Nodes up at this moment count as up from now. Throws std::invalid_argument
  // for a bad config, std::logic_error if the simulation already has an
  // observer.
  RunRecorder(Simulation& sim, const deploy::Deployment& deployment, RecorderConfig config = {});
  ~RunRecorder();
  RunRecorder(const RunRecorder&) = delete;
  RunRecorder& operator=(const RunRecorder&) = delete;

  // The runner's own counters: `delta` added to counter `name` of
  // (zone, service) in the bucket of `at` (e.g. a client send that failed, in
  // the client's zone). Without a datacenter, it is the one datacenter that
  // has a zone of that name (among the deployment's zones and the places of
  // the simulation's nodes), or empty if none or several do.
  void add_counter(TimePoint at, std::string zone, std::string service, std::string name, int64_t delta);
  void add_counter(TimePoint at, std::string datacenter, std::string zone, std::string service, std::string name,
                   int64_t delta);
  // A phase mark ("zone b loses power"): an instant marker in trace.json.
  void add_mark(TimePoint at, std::string text);

  // --- what was recorded ------------------------------------------------------
  const RecorderConfig& config() const { return config_; }
  const Simulation& sim() const { return sim_; }
  TimePoint attached_at() const { return attached_at_; }
  struct RpcStats {
    uint64_t calls = 0;                // requests sent while attached
    uint64_t recorded = 0;             // kept for trace.json (finished or still open)
    uint64_t dropped = 0;              // past rpc_spans_max: counted only
    uint64_t unmatched_responses = 0;  // responses to a call not kept (or sent before attaching)
  };
  RpcStats rpc_stats() const;
  // Each counter's sum over every bucket and group (nodes_up not included).
  std::map<std::string, int64_t> counter_totals() const;

 private:
  friend struct RunFilesAccess;  // run_files.cc: the writers read everything below

  enum class End : uint8_t { open, response, deadline, crashed, replaced };
  struct UpInterval {
    TimePoint from, to;
    uint32_t incarnation = 0;
  };
  struct Node {
    NodeId id;
    std::string name, datacenter, zone, service;
    bool in_deployment = false;
    bool has_track = false;
    uint32_t group = 0;
    uint32_t process = 0;  // index into processes_
    bool up = false;
    TimePoint up_since;
    uint32_t incarnation = 0;
    std::vector<UpInterval> up_intervals;  // closed ones
  };
  struct Group {
    std::string datacenter, zone, service;
  };
  struct Instant {
    enum class Kind : uint8_t { crash, wipe };
    TimePoint at;
    NodeId node;
    Kind kind = Kind::crash;
    uint32_t incarnation = 0;
  };
  struct Marker {
    TimePoint at;
    bool fault = false;  // a fault note; else the runner's mark
    std::string text;
  };
  struct UpChange {
    TimePoint at;
    NodeId node;
    int delta = 0;
  };
  struct Rpc {
    NodeId caller, callee;
    uint64_t call_id = 0;
    uint32_t method = 0;  // index into methods_
    int32_t status = -1;  // the response's wire status; -1: no response sent (seen)
    TimePoint sent, deadline, delivered;
    bool was_delivered = false;
    End client = End::open, server = End::open;
    TimePoint client_end, server_end;
  };
  using RpcKey = std::tuple<uint32_t, uint32_t, uint64_t>;  // caller, callee, call id

  uint64_t on_frame(const FrameEvent& e);
  void on_lifecycle(const LifecycleEvent& e);
  Node& node(NodeId id);
  void resolve_through(uint32_t id);
  uint32_t group_of(const std::string& datacenter, const std::string& zone, const std::string& service);
  uint32_t counter_of(std::string_view name);
  uint32_t method_of(std::string_view method);
  int64_t bucket_of(TimePoint at) const { return at.ns() / bucket_ns_; }
  void count(TimePoint at, uint32_t group, uint32_t counter, int64_t delta);
  void sweep(TimePoint now);
  void close_client(Rpc& r, End why, TimePoint at);
  void close_server(Rpc& r, End why, TimePoint at);
  // Moves a call whose sides are both closed (or that was never delivered and
  // whose caller's side is closed) to rpcs_done_.
  void maybe_finish(std::map<RpcKey, Rpc>::iterator it);
  std::string datacenter_of_zone(const std::string& zone);

  Simulation& sim_;
  const deploy::Deployment& deployment_;
  RecorderConfig config_;
  int64_t bucket_ns_;
  TimePoint attached_at_;

  std::vector<Node> nodes_;  // index: id - 1; every node of the simulation seen so far
  size_t clients_seen_ = 0;
  std::vector<std::string> processes_;  // "dc1/a", ..., "clients" (pid = index + 1)
  std::map<std::pair<std::string, std::string>, uint32_t> zone_process_;
  uint32_t clients_process_ = 0;
  std::vector<Group> groups_;
  std::map<std::tuple<std::string, std::string, std::string>, uint32_t> group_index_;
  std::vector<std::string> counter_names_;
  std::map<std::string, uint32_t, std::less<>> counter_index_;
  std::vector<std::string> methods_;
  std::vector<uint32_t> method_counter_;  // the "rpc_received:<method>" counter of each method
  std::map<std::string, uint32_t, std::less<>> method_index_;
  // (bucket << 40 | group << 20 | counter) -> value, for buckets before the
  // current one. Only summed into and sorted before anything is written: its
  // order never reaches a file.
  std::unordered_map<uint64_t, int64_t> counters_;
  // The current bucket (the latest one counted into), dense:
  // [group * current_stride_ + counter].
  int64_t current_bucket_ = -1;
  std::vector<int64_t> current_;
  size_t current_groups_ = 0, current_stride_ = 0;
  void count_slow(int64_t bucket, uint32_t group, uint32_t counter, int64_t delta);
  // Every (key, value) counted so far, the current bucket included.
  std::unordered_map<uint64_t, int64_t> all_counters() const;

  std::vector<Instant> instants_;
  std::vector<Marker> markers_;
  std::vector<UpChange> up_changes_;  // time order
  std::map<RpcKey, Rpc> rpcs_open_;
  std::vector<Rpc> rpcs_done_;  // in the order they finished
  int64_t swept_bucket_ = 0;
  RpcStats rpc_stats_;

  // add_counter's zone -> datacenter, rebuilt when the node count changes.
  std::map<std::string, std::string> zone_datacenter_;
  size_t zone_datacenter_nodes_ = static_cast<size_t>(-1);
};

}  // namespace wx::sim::report
