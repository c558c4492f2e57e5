// The run's files (sim/report/, docs/run-files.md): trace.json and
// metrics.csv from a RunRecorder attached to a real messaging run.
//
//   RunFiles.RpcHeaderReadsWhatProtobufWrote   the envelope classifier reads
//       call id, method, budget and status of frames serialized by protobuf,
//       and calls anything else `none`.
//   RunFiles.OutageRunTraceJson   a small messaging outage run (every service
//       in three zones, 20 users, zone b dark from 5 s to 12 s): trace.json
//       parses as trace-event JSON, names every deployment node in a
//       thread_name event, has flow arrows from a caller's track to a
//       callee's, slices that nest on every track, crash instants and the
//       zone kill as a global marker; clients past the track limit are folded.
//   RunFiles.OutageRunMetricsCsv   metrics.csv of the same run: the header,
//       six fields per row, sorted rows, per-counter sums equal to the
//       recorder's totals and to the network's own counters, nodes_up per
//       second dropping to 0 in zone b during the outage, the runner's
//       counters in the client zone's datacenter.
//   RunFiles.WipeRestartAndClockNotesShowOnTheirTracks   a wipe and a later
//       start, a restart, and a clock change: crash and wipe instants and one
//       `up` slice per incarnation on the node's track; the clock note as a
//       global marker.
//   RunFiles.SameSeedSameBytesAndSameTraceHash   two recorded runs of one
//       seed write byte-identical files; a run without a recorder has the
//       same trace hash.
//   RunFiles.SpanCapIsReported   past rpc_spans_max calls are counted, not
//       drawn, and otherData says the recording was truncated.
//   RunFiles.OneRecorderPerSimulation   a second recorder is refused; the
//       first one's destructor detaches it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "checkers/history.h"
#include "nodes/rpc/rpc.pb.h"
#include "sim/report/rpc_frame.h"
#include "sim/report/run_files.h"
#include "sim/report/run_recorder.h"
#include "sim/workload/outage_run.h"

namespace wx::sim::report {
namespace {

using Json = nlohmann::json;
namespace cm = checkers::messaging;

// --- the envelope's header -------------------------------------------------------

TEST(RunFiles, RpcHeaderReadsWhatProtobufWrote) {
  rpc::wire::Frame req;
  req.mutable_request()->set_call_id(123456789);
  req.mutable_request()->set_method("kv.Put");
  req.mutable_request()->set_timeout_ns(1'500'000'000);
  req.mutable_request()->set_ticket(std::string(40, 't'));
  req.mutable_request()->set_trace_id(77);
  req.mutable_request()->set_payload(std::string(5000, 'p'));
  // RpcFrameInfo::method is a view into the frame: keep the bytes alive while
  // it is read (ASan caught the test reading a freed temporary).
  std::string bytes = req.SerializeAsString();
  RpcFrameInfo r = classify_rpc_frame(bytes);
  EXPECT_EQ(r.kind, RpcFrameInfo::Kind::request);
  EXPECT_EQ(r.call_id, 123456789u);
  EXPECT_EQ(r.method, "kv.Put");
  EXPECT_EQ(r.timeout_ns, 1'500'000'000);

  req.mutable_request()->set_timeout_ns(-5);  // an expired budget: ten-byte varint
  bytes = req.SerializeAsString();
  r = classify_rpc_frame(bytes);
  EXPECT_EQ(r.kind, RpcFrameInfo::Kind::request);
  EXPECT_EQ(r.timeout_ns, -5);

  rpc::wire::Frame resp;
  resp.mutable_response()->set_call_id(42);
  resp.mutable_response()->set_status(rpc::wire::OVERLOADED);
  resp.mutable_response()->set_message("queue full");
  resp.mutable_response()->set_queue_ns(1000);
  bytes = resp.SerializeAsString();
  r = classify_rpc_frame(bytes);
  EXPECT_EQ(r.kind, RpcFrameInfo::Kind::response);
  EXPECT_EQ(r.call_id, 42u);
  EXPECT_EQ(r.status, rpc::wire::OVERLOADED);
  EXPECT_EQ(rpc_status_name(r.status), "OVERLOADED");

  resp.mutable_response()->set_status(rpc::wire::OK);  // proto3: absent on the wire
  bytes = resp.SerializeAsString();
  r = classify_rpc_frame(bytes);
  EXPECT_EQ(r.kind, RpcFrameInfo::Kind::response);
  EXPECT_EQ(r.status, 0);

  const std::string good = req.SerializeAsString();
  EXPECT_EQ(classify_rpc_frame("").kind, RpcFrameInfo::Kind::none);
  EXPECT_EQ(classify_rpc_frame("ping 17").kind, RpcFrameInfo::Kind::none);
  EXPECT_EQ(classify_rpc_frame(good.substr(0, good.size() - 1)).kind, RpcFrameInfo::Kind::none) << "truncated";
  EXPECT_EQ(classify_rpc_frame(good + "x").kind, RpcFrameInfo::Kind::none) << "trailing bytes";
  rpc::wire::Frame empty;
  empty.mutable_request()->set_method("kv.Get");  // no call id
  EXPECT_EQ(classify_rpc_frame(empty.SerializeAsString()).kind, RpcFrameInfo::Kind::none);
}

// --- a recorded messaging outage run ------------------------------------------------

workload::OutageRunConfig small_outage(uint64_t seed) {
  workload::OutageRunConfig c;
  c.seed = seed;
  c.users = 20;
  c.groups = 2;
  c.duration = seconds(20);
  c.outage_start = seconds(5);
  c.outage_for = seconds(7);
  c.zone = "b";
  c.rate_per_min = 20;
  c.log_level = LogLevel::off;
  return c;
}

struct Recorded {
  std::string trace, csv;
  uint64_t hash = 0;
  uint64_t seed = 0;
  std::map<std::string, int64_t> totals;
  RunRecorder::RpcStats rpc;
  Network::Stats net_before, net_after;
  std::vector<std::string> deployment_names;
  size_t client_nodes = 0;
  int64_t outage_from_s = 0, outage_to_s = 0;  // whole seconds inside the outage
  int64_t client_sends_ok = 0, client_sends_not_ok = 0;
};

Recorded record(uint64_t seed, RecorderConfig config = {}, bool with_recorder = true) {
  workload::OutageRun run(small_outage(seed));
  Recorded out;
  out.seed = seed;
  std::optional<RunRecorder> rec;
  out.net_before = run.sim().network().stats();
  if (with_recorder) rec.emplace(run.sim(), run.deployment(), config);
  std::string why;
  EXPECT_TRUE(run.run(&why)) << why;
  out.hash = run.sim().trace_hash();
  out.net_after = run.sim().network().stats();
  for (const deploy::NodeDesc& n : run.deployment().nodes()) out.deployment_names.push_back(n.name);
  out.client_nodes = run.sim().node_count() - run.deployment().nodes().size();
  out.outage_from_s = (run.outage_started().ns() + 999'999'999) / 1'000'000'000;
  out.outage_to_s = run.outage_ended().ns() / 1'000'000'000 - 1;
  if (!with_recorder) return out;
  // What a runner adds: its phase marks, and client outcomes in the client zone.
  for (const workload::OutageRun::Mark& m : run.timeline()) rec->add_mark(m.at, m.what);
  for (const cm::Event& e : run.history()) {
    const auto* c = std::get_if<cm::Completion>(&e.body);
    if (c == nullptr || c->op != cm::OpKind::send) continue;
    const bool ok = c->outcome == cm::Outcome::ok;
    (ok ? out.client_sends_ok : out.client_sends_not_ok) += 1;
    rec->add_counter(TimePoint::zero() + nanoseconds(e.t_ns), "clients", "client",
                     ok ? "client_sends_ok" : "client_sends_not_ok", 1);
  }
  std::ostringstream t, m;
  write_trace_json(t, *rec, TraceJsonOptions{64, {{"scenario", "report_test small outage"}}});
  write_metrics_csv(m, *rec);
  out.trace = t.str();
  out.csv = m.str();
  // WX_REPORT_DIR=/tmp/x: also keep the files, to open the trace in Perfetto.
  if (const char* dir = std::getenv("WX_REPORT_DIR"); dir != nullptr && *dir != '\0') {
    std::ofstream(fmt::format("{}/trace-seed{}.json", dir, seed)) << out.trace;
    std::ofstream(fmt::format("{}/metrics-seed{}.csv", dir, seed)) << out.csv;
  }
  out.totals = rec->counter_totals();
  out.rpc = rec->rpc_stats();
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

TEST(RunFiles, OutageRunTraceJson) {
  RecorderConfig config;
  config.client_tracks_max = 5;
  const Recorded r = record(3, config);
  ASSERT_FALSE(r.trace.empty());
  const Json j = Json::parse(r.trace);  // throws (fails the test) if it is not JSON
  ASSERT_TRUE(j.is_object());
  ASSERT_TRUE(j.contains("traceEvents"));
  ASSERT_TRUE(j["traceEvents"].is_array());
  EXPECT_EQ(j["displayTimeUnit"], "ms");
  const Json& other = j["otherData"];
  EXPECT_EQ(other["seed"], 3u);
  EXPECT_EQ(other["trace_hash"], fmt::format("{:016x}", r.hash));
  EXPECT_EQ(other["scenario"], "report_test small outage");
  EXPECT_EQ(other["rpc_recording_truncated"], false);
  EXPECT_EQ(other["rpc_calls"], r.rpc.calls);
  EXPECT_GT(r.rpc.calls, 1000u) << "a messaging run makes many calls";

  std::set<std::string> thread_names;
  std::map<std::pair<int64_t, int64_t>, std::string> thread_of;  // (pid, tid) -> name
  std::map<int64_t, std::string> process_of;
  struct Slice {
    int64_t ts, dur;
  };
  std::map<int64_t, std::vector<Slice>> slices;  // by tid
  std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> flow_starts, flow_ends;  // id -> (tid, ts)
  size_t global_instants = 0, crashes = 0;
  bool zone_kill_marker = false;
  for (const Json& e : j["traceEvents"]) {
    ASSERT_TRUE(e.contains("ph")) << e.dump();
    const std::string ph = e["ph"];
    ASSERT_TRUE(e.contains("pid") && e["pid"].is_number_integer()) << e.dump();
    ASSERT_TRUE(e.contains("tid") && e["tid"].is_number_integer()) << e.dump();
    if (ph != "M") {
      ASSERT_TRUE(e.contains("ts") && e["ts"].is_number_integer()) << e.dump();
      EXPECT_GE(e["ts"].get<int64_t>(), 0);
    }
    if (ph == "M" && e["name"] == "thread_name") {
      thread_names.insert(e["args"]["name"].get<std::string>());
      thread_of[{e["pid"], e["tid"]}] = e["args"]["name"];
    } else if (ph == "M" && e["name"] == "process_name") {
      process_of[e["pid"]] = e["args"]["name"];
    } else if (ph == "X") {
      ASSERT_GE(e["dur"].get<int64_t>(), 0) << e.dump();
      slices[e["tid"]].push_back({e["ts"], e["dur"]});
    } else if (ph == "s") {
      flow_starts[e["id"]].push_back({e["tid"], e["ts"]});
      EXPECT_EQ(e["cat"], "rpc");
    } else if (ph == "f") {
      EXPECT_EQ(e["bp"], "e");
      EXPECT_EQ(e["cat"], "rpc");
      flow_ends[e["id"]].push_back({e["tid"], e["ts"]});
    } else if (ph == "i" && e["s"] == "g") {
      ++global_instants;
      const std::string name = e["name"];
      if (name.find("outage") != std::string::npos && name.find("zone:b") != std::string::npos &&
          name.rfind("heal", 0) != 0) {
        zone_kill_marker = true;
      }
    } else if (ph == "i" && e["name"] == "crash") {
      ++crashes;
    }
  }
  // Every deployment node is named by a thread_name event.
  for (const std::string& name : r.deployment_names) EXPECT_TRUE(thread_names.count(name)) << name;
  // Zones and clients are processes.
  std::set<std::string> processes;
  for (const auto& [pid, name] : process_of) processes.insert(name);
  EXPECT_EQ(processes, (std::set<std::string>{"dc1/a", "dc1/b", "dc1/c", "clients"}));
  // Every thread belongs to a named process.
  for (const auto& [key, name] : thread_of) EXPECT_TRUE(process_of.count(key.first)) << name;
  // Clients past the limit are folded: 5 client tracks (own tracks, not lanes).
  size_t client_tracks = 0;
  for (const auto& [key, name] : thread_of) {
    if (process_of.at(key.first) == "clients" && key.second % 100 == 0) ++client_tracks;
  }
  EXPECT_EQ(client_tracks, 5u);
  EXPECT_EQ(other["client_tracks"], 5u);
  EXPECT_EQ(other["client_nodes"], r.client_nodes);
  EXPECT_EQ(other["clients_folded"], r.client_nodes - 5);
  EXPECT_GT(r.client_nodes, 20u);

  // Flow arrows: every end has its start, on another track; each starts at
  // the beginning of a slice on its own track (the slice it binds to).
  ASSERT_FALSE(flow_starts.empty());
  size_t cross_track = 0;
  for (const auto& [id, ends] : flow_ends) {
    ASSERT_EQ(ends.size(), 1u) << "flow " << id;
    ASSERT_EQ(flow_starts.count(id), 1u) << "flow " << id << " has no start";
    const auto& starts = flow_starts.at(id);
    ASSERT_EQ(starts.size(), 1u);
    if (starts[0].first != ends[0].first) ++cross_track;
    EXPECT_LE(starts[0].second, ends[0].second) << "flow " << id << " goes back in time";
    for (const std::pair<int64_t, int64_t>& at : {starts[0], ends[0]}) {
      const int64_t tid = at.first, ts = at.second;
      const auto& on_track = slices[tid];
      EXPECT_TRUE(std::any_of(on_track.begin(), on_track.end(), [&](const Slice& s) { return s.ts == ts; }))
          << "flow " << id << " at " << ts << " on tid " << tid << " binds to no slice";
    }
  }
  EXPECT_EQ(cross_track, flow_ends.size()) << "every arrow goes from the caller's track to the callee's";
  EXPECT_EQ(flow_starts.size(), flow_ends.size());
  EXPECT_GT(flow_ends.size(), 1000u);
  EXPECT_EQ(other["rpc_slices_unplaced"], 0u);

  // On every track, slices nest (none overlaps another without containing
  // it or being contained) and no two start at the same microsecond.
  for (auto& [tid, list] : slices) {
    std::sort(list.begin(), list.end(),
              [](const Slice& a, const Slice& b) { return std::tie(a.ts, b.dur) < std::tie(b.ts, a.dur); });
    std::vector<int64_t> open_ends;
    for (size_t i = 0; i < list.size(); ++i) {
      if (i > 0) {
        ASSERT_NE(list[i].ts, list[i - 1].ts) << "two slices start at " << list[i].ts << " on tid " << tid;
      }
      while (!open_ends.empty() && open_ends.back() <= list[i].ts) open_ends.pop_back();
      const int64_t end = list[i].ts + list[i].dur;
      ASSERT_TRUE(open_ends.empty() || end <= open_ends.back())
          << "slice [" << list[i].ts << ", " << end << "] overlaps its parent on tid " << tid;
      open_ends.push_back(end);
    }
  }

  // The zone kill: a global marker, and one crash instant per server node of zone b.
  EXPECT_TRUE(zone_kill_marker);
  EXPECT_GE(global_instants, 4u) << "outage, heal, and the runner's phase marks";
  size_t zone_b_nodes = 0;
  for (const std::string& name : r.deployment_names) zone_b_nodes += name.find("-b") != std::string::npos ? 1 : 0;
  EXPECT_EQ(crashes, zone_b_nodes);
}

TEST(RunFiles, OutageRunMetricsCsv) {
  const Recorded r = record(4);
  const std::vector<std::string> lines = split(r.csv, '\n');
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0], "second,datacenter,zone,service,counter,value");
  EXPECT_EQ(lines.back(), "") << "ends with a newline";
  using Key = std::tuple<int64_t, std::string, std::string, std::string, std::string>;
  std::vector<Key> keys;
  std::map<std::string, int64_t> sums;
  std::map<std::tuple<std::string, std::string, std::string>, std::map<int64_t, int64_t>> up;  // group -> second -> up
  std::set<std::string> services;
  std::map<std::string, std::set<std::string>> datacenter_of_counter;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    const std::vector<std::string> f = split(lines[i], ',');
    ASSERT_EQ(f.size(), 6u) << lines[i];
    size_t pos = 0;
    const int64_t second = std::stoll(f[0], &pos);
    ASSERT_EQ(pos, f[0].size()) << lines[i];
    const int64_t value = std::stoll(f[5], &pos);
    ASSERT_EQ(pos, f[5].size()) << lines[i];
    keys.emplace_back(second, f[1], f[2], f[3], f[4]);
    services.insert(f[3]);
    datacenter_of_counter[f[4]].insert(f[1]);
    if (f[4] == "nodes_up") {
      up[{f[1], f[2], f[3]}][second] = value;
    } else {
      EXPECT_NE(value, 0) << "counters are written when non-zero: " << lines[i];
      sums[f[4]] += value;
    }
  }
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end()) << "one row per key";
  // Sums per counter equal the recorder's totals...
  for (const auto& [name, total] : r.totals) {
    if (total != 0) {
      EXPECT_EQ(sums[name], total) << name;
    }
  }
  EXPECT_EQ(sums.size(), static_cast<size_t>(std::count_if(r.totals.begin(), r.totals.end(),
                                                            [](const auto& t) { return t.second != 0; })));
  // ... and the network's own counters over the recorded stretch.
  EXPECT_EQ(sums["frames_sent"], static_cast<int64_t>(r.net_after.frames_sent - r.net_before.frames_sent));
  EXPECT_EQ(sums["frames_received"], static_cast<int64_t>(r.net_after.frames_delivered - r.net_before.frames_delivered));
  EXPECT_EQ(sums["bytes_received"], static_cast<int64_t>(r.net_after.bytes_delivered - r.net_before.bytes_delivered));
  EXPECT_GT(sums["rpc_received:kv.Put"] + sums["rpc_received:kv.Get"], 0) << "requests counted per method";
  // The runner's counters: in the client zone, whose datacenter was looked up.
  EXPECT_EQ(sums["client_sends_ok"], r.client_sends_ok);
  EXPECT_GT(r.client_sends_ok, 0);
  EXPECT_EQ(datacenter_of_counter["client_sends_ok"], std::set<std::string>{"dc1"});
  // Zone and service columns: every role of the deployment, and the clients.
  for (const char* s : {"kv", "seqsvr", "account", "contacts", "inbox", "msg", "access", "group", "fanout", "client"}) {
    EXPECT_TRUE(services.count(s)) << s;
  }
  // nodes_up, every second: zone b's KV replica is down through the outage,
  // up before and after; zone a's never goes down.
  const auto& kv_b = up[{"dc1", "b", "kv"}];
  const auto& kv_a = up[{"dc1", "a", "kv"}];
  ASSERT_FALSE(kv_b.empty());
  const int64_t last = kv_b.rbegin()->first;
  for (int64_t s = 0; s <= last; ++s) {
    ASSERT_TRUE(kv_b.count(s) && kv_a.count(s)) << "second " << s;
    EXPECT_EQ(kv_a.at(s), 1) << "second " << s;
    if (s >= r.outage_from_s && s <= r.outage_to_s) {
      EXPECT_EQ(kv_b.at(s), 0) << "second " << s;
    }
    if (s < r.outage_from_s - 1 || s > r.outage_to_s + 1) {
      EXPECT_EQ(kv_b.at(s), 1) << "second " << s;
    }
  }
  EXPECT_GT(last, r.outage_to_s);
}

TEST(RunFiles, WipeRestartAndClockNotesShowOnTheirTracks) {
  workload::OutageRun run(small_outage(8));
  Simulation& sim = run.sim();
  const NodeId msg_a = run.deployment().nodes_of(deploy::Role::msg, "dc1").front();
  const NodeId access_c = run.deployment().nodes_of(deploy::Role::access, "dc1").back();
  RunRecorder rec(sim, run.deployment());
  sim.at(TimePoint::zero() + seconds(3), [&] { sim.wipe(msg_a); });
  sim.at(TimePoint::zero() + seconds(4), [&] { sim.start(msg_a); });
  sim.at(TimePoint::zero() + milliseconds(3500), [&] { sim.restart(access_c); });
  sim.at(TimePoint::zero() + seconds(2), [&] { sim.faults().set_clock_rate(access_c, 50); });
  std::string why;
  ASSERT_TRUE(run.run(&why)) << why;
  std::ostringstream t;
  write_trace_json(t, rec);
  const Json j = Json::parse(t.str());
  const int64_t msg_tid = msg_a.value * 100, access_tid = access_c.value * 100;
  std::vector<std::tuple<std::string, int64_t, int64_t>> msg_events, access_events;  // name, ts, incarnation
  bool clock_marker = false;
  for (const Json& e : j["traceEvents"]) {
    if (e["ph"] == "i" && e["s"] == "g" && e["name"] == fmt::format("clock {} rate +50ppm", to_string(access_c))) {
      clock_marker = true;
    }
    if ((e["ph"] != "X" && e["ph"] != "i") || e["cat"] != "node") continue;
    auto& list = e["tid"] == msg_tid ? msg_events : access_events;
    if (e["tid"] != msg_tid && e["tid"] != access_tid) continue;
    list.emplace_back(e["name"].get<std::string>(), e["ts"].get<int64_t>(), e["args"]["incarnation"].get<int64_t>());
  }
  EXPECT_TRUE(clock_marker);
  // Time order; at one time, the order of the file (crash before wipe).
  std::stable_sort(msg_events.begin(), msg_events.end(),
                   [](const auto& a, const auto& b) { return std::get<1>(a) < std::get<1>(b); });
  using E = std::tuple<std::string, int64_t, int64_t>;
  EXPECT_EQ(msg_events, (std::vector<E>{{"up", 0, 1}, {"crash", 3'000'000, 1}, {"wipe", 3'000'000, 1}, {"up", 4'000'000, 2}}));
  std::stable_sort(access_events.begin(), access_events.end(),
                   [](const auto& a, const auto& b) { return std::get<1>(a) < std::get<1>(b); });
  ASSERT_EQ(access_events.size(), 3u);
  EXPECT_EQ(access_events[0], (E{"up", 0, 1}));
  EXPECT_EQ(std::get<1>(access_events[1]), 3'500'000);
  EXPECT_EQ(std::get<1>(access_events[2]), 3'500'000);
  std::set<std::string> at_restart{std::get<0>(access_events[1]), std::get<0>(access_events[2])};
  EXPECT_EQ(at_restart, (std::set<std::string>{"crash", "up"}));
}

TEST(RunFiles, SameSeedSameBytesAndSameTraceHash) {
  const Recorded a = record(5);
  const Recorded b = record(5);
  const Recorded plain = record(5, {}, /*with_recorder=*/false);
  EXPECT_EQ(a.hash, plain.hash) << "the recorder must not change the run";
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_TRUE(a.trace == b.trace) << "trace.json differs between two runs of seed 5";
  EXPECT_TRUE(a.csv == b.csv) << "metrics.csv differs between two runs of seed 5";
  const Recorded other = record(6);
  EXPECT_NE(other.hash, a.hash);
  EXPECT_NE(other.csv, a.csv);
}

TEST(RunFiles, SpanCapIsReported) {
  RecorderConfig config;
  config.rpc_spans_max = 300;
  const Recorded r = record(7, config);
  const Json j = Json::parse(r.trace);
  const Json& other = j["otherData"];
  EXPECT_EQ(other["rpc_recording_truncated"], true);
  EXPECT_EQ(other["rpc_calls_recorded"], 300u);
  EXPECT_EQ(r.rpc.recorded, 300u);
  EXPECT_EQ(r.rpc.recorded + r.rpc.dropped, r.rpc.calls);
  EXPECT_GT(r.rpc.dropped, 0u);
  size_t client_slices = 0;
  for (const Json& e : j["traceEvents"]) {
    if (e["ph"] == "X" && e["name"].get<std::string>().rfind("call ", 0) == 0) ++client_slices;
  }
  EXPECT_GT(client_slices, 0u);
  EXPECT_LE(client_slices, 300u);
  // Counting goes on past the cap.
  EXPECT_EQ(r.totals.at("rpc_requests_sent"), static_cast<int64_t>(r.rpc.calls));
}

TEST(RunFiles, OneRecorderPerSimulation) {
  workload::OutageRun run(small_outage(1));
  RecorderConfig bad;
  bad.bucket = milliseconds(500);
  EXPECT_THROW(RunRecorder(run.sim(), run.deployment(), bad), std::invalid_argument);
  {
    RunRecorder first(run.sim(), run.deployment());
    EXPECT_TRUE(run.sim().network().frame_observed());
    EXPECT_TRUE(run.sim().lifecycle_observed());
    EXPECT_THROW(RunRecorder(run.sim(), run.deployment()), std::logic_error);
  }
  EXPECT_FALSE(run.sim().network().frame_observed());
  EXPECT_FALSE(run.sim().lifecycle_observed());
  RunRecorder again(run.sim(), run.deployment());  // attaches again once the first is gone
  EXPECT_TRUE(run.sim().network().frame_observed());
}

}  // namespace
}  // namespace wx::sim::report
