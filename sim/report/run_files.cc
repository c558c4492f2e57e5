#include "sim/report/run_files.h"

#include <algorithm>
#include <iterator>
#include <unordered_map>
#include <cstdint>
#include <limits>
#include <map>
#include <stdexcept>
#include <string_view>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "sim/report/rpc_frame.h"

namespace wx::sim::report {

// The writers' view of a recorder's internals (a friend of RunRecorder).
struct RunFilesAccess {
  using Rec = RunRecorder;
  using End = Rec::End;
  static void trace(std::ostream& out, const Rec& rec, const TraceJsonOptions& options);
  static void metrics(std::ostream& out, const Rec& rec);
};

namespace {

// ordered_json: fields in insertion order, so the same event is always the
// same bytes.
using Json = nlohmann::ordered_json;

// Timestamps: whole microseconds of simulated time, floored. Integers parse
// exactly in every trace viewer (a fractional microsecond does not: some
// multiply a double by 1000 and truncate), and flooring keeps the order and
// the nesting of slices exactly as recorded.
int64_t us(TimePoint t) { return t.ns() / 1000; }

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A JSON string literal: quoted and escaped by nlohmann (invalid UTF-8 replaced).
std::string json_quoted(std::string_view s) { return dump(Json(std::string(s))); }

// tid of a node's lane: node id * 100 + lane, so it reads back at a glance and
// never equals a pid (pids are 1..99).
constexpr uint32_t kLaneStride = 100;
uint32_t tid_of(NodeId id, size_t lane) { return id.value * kLaneStride + static_cast<uint32_t>(lane); }

class EventStream {
 public:
  explicit EventStream(std::ostream& out) : out_(out) {}
  void add(const Json& e) { add_raw(dump(e)); }
  // An event already written as JSON (the slices: formatted directly, as
  // building a Json object per slice costs more than the run it shows).
  void add_raw(std::string_view e) {
    out_ << (first_ ? "\n" : ",\n") << e;
    first_ = false;
  }

 private:
  std::ostream& out_;
  bool first_ = true;
};

std::string client_outcome(RunFilesAccess::End why, int32_t status) {
  using End = RunFilesAccess::End;
  switch (why) {
    case End::response: return std::string(rpc_status_name(status));
    case End::deadline: return "no response by the deadline";
    case End::crashed: return "caller crashed";
    case End::replaced: return "call id reused after a restart";
    case End::open: return "open at the end of the run";
  }
  return "?";
}

std::string server_outcome(RunFilesAccess::End why, int32_t status) {
  using End = RunFilesAccess::End;
  switch (why) {
    case End::response: return std::string(rpc_status_name(status));
    case End::deadline: return "no response by the caller's deadline";
    case End::crashed: return "callee crashed";
    case End::replaced: return "call id reused after a restart";
    case End::open: return "open at the end of the run";
  }
  return "?";
}

// One slice or instant on a node's tracks, in microseconds.
struct Item {
  enum Kind : uint8_t { up, instant, client, server };
  int64_t s = 0, e = 0;
  Kind kind = up;
  size_t index = 0;  // into the node's up intervals, the instants, or the calls
  int lane = -1;     // -1: not placed
};

// Places a node's items on lanes so that slices on one lane nest (Perfetto
// and the legacy viewer drop slices that overlap without nesting) and no two
// items on one lane start at the same microsecond (a flow event binds to the
// innermost slice open at its timestamp, which must be its own). Lifecycle
// items always go on lane 0, the node's own track.
size_t place(std::vector<Item>& items, size_t lanes_max) {
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    const bool fa = a.kind == Item::up || a.kind == Item::instant;
    const bool fb = b.kind == Item::up || b.kind == Item::instant;
    return std::tie(a.s, b.e, fb, a.kind, a.index) < std::tie(b.s, a.e, fa, b.kind, b.index);
  });
  struct Lane {
    std::vector<int64_t> ends;  // open slices, innermost last
    int64_t last_start = std::numeric_limits<int64_t>::min();
  };
  std::vector<Lane> lanes(lanes_max);
  size_t unplaced = 0;
  for (Item& it : items) {
    const bool fixed = it.kind == Item::up || it.kind == Item::instant;
    for (size_t l = 0; l < (fixed ? 1 : lanes_max); ++l) {
      Lane& lane = lanes[l];
      while (!lane.ends.empty() && lane.ends.back() <= it.s) lane.ends.pop_back();
      const bool fits = lane.last_start != it.s && (lane.ends.empty() || lane.ends.back() >= it.e);
      if (!fits && !fixed) continue;
      it.lane = static_cast<int>(l);
      lane.last_start = it.s;
      if (it.kind != Item::instant) lane.ends.push_back(it.e);
      break;
    }
    if (it.lane < 0) ++unplaced;
  }
  return unplaced;
}

// A call as drawn: ends of sides still open at the end of the run are now.
struct CallView {
  const RunRecorder* rec = nullptr;
  NodeId caller, callee;
  uint64_t call_id = 0;
  uint32_t method = 0;
  int32_t status = -1;
  TimePoint sent, delivered, client_end, server_end;
  bool was_delivered = false;
  RunFilesAccess::End client = RunFilesAccess::End::open, server = RunFilesAccess::End::open;
  int client_item = -1, server_item = -1;  // index into the node's items
};

std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

void RunFilesAccess::trace(std::ostream& out, const Rec& rec, const TraceJsonOptions& options) {
  if (options.lanes_max < 1 || options.lanes_max >= kLaneStride) {
    throw std::invalid_argument("trace.json: lanes_max must be between 1 and 99");
  }
  const TimePoint now = rec.sim_.now();
  const size_t node_count = rec.nodes_.size();

  // --- the calls, then every node's items ------------------------------------
  std::vector<CallView> calls;
  calls.reserve(rec.rpcs_done_.size() + rec.rpcs_open_.size());
  auto add_call = [&](const Rec::Rpc& r, bool open) {
    CallView c;
    c.caller = r.caller;
    c.callee = r.callee;
    c.call_id = r.call_id;
    c.method = r.method;
    c.status = r.status;
    c.sent = r.sent;
    c.delivered = r.delivered;
    c.was_delivered = r.was_delivered;
    c.client = r.client;
    c.server = r.server;
    // A call still open: its caller's deadline may have passed since the
    // recorder last looked (it sweeps once per bucket); else it ends now.
    const TimePoint open_end = std::min(std::max(now, r.sent), r.deadline);
    const End open_why = r.deadline < now ? End::deadline : End::open;
    if (open && r.client == End::open) {
      c.client = open_why;
      c.client_end = open_end;
    } else {
      c.client_end = r.client_end;
    }
    if (open && r.was_delivered && r.server == End::open) {
      c.server = open_why;
      c.server_end = std::max(open_end, r.delivered);
    } else {
      c.server_end = r.server_end;
    }
    calls.push_back(c);
  };
  for (const Rec::Rpc& r : rec.rpcs_done_) add_call(r, false);
  for (const auto& [key, r] : rec.rpcs_open_) add_call(r, true);

  std::vector<std::vector<Item>> items(node_count);
  std::vector<std::vector<Rec::UpInterval>> ups(node_count);
  for (size_t i = 0; i < node_count; ++i) {
    const Rec::Node& n = rec.nodes_[i];
    if (!n.has_track) continue;
    ups[i] = n.up_intervals;
    if (n.up) ups[i].push_back(Rec::UpInterval{n.up_since, now, n.incarnation});
    for (size_t k = 0; k < ups[i].size(); ++k) {
      items[i].push_back(Item{us(ups[i][k].from), us(ups[i][k].to), Item::up, k});
    }
  }
  for (size_t k = 0; k < rec.instants_.size(); ++k) {
    const size_t i = rec.instants_[k].node.value - 1;
    items[i].push_back(Item{us(rec.instants_[k].at), us(rec.instants_[k].at), Item::instant, k});
  }
  auto tracked = [&](NodeId id) { return id.value >= 1 && id.value <= node_count && rec.nodes_[id.value - 1].has_track; };
  for (size_t k = 0; k < calls.size(); ++k) {
    const CallView& c = calls[k];
    if (tracked(c.caller)) items[c.caller.value - 1].push_back(Item{us(c.sent), us(c.client_end), Item::client, k});
    if (c.was_delivered && tracked(c.callee)) {
      items[c.callee.value - 1].push_back(Item{us(c.delivered), us(c.server_end), Item::server, k});
    }
  }
  size_t unplaced = 0;
  std::vector<size_t> lanes_used(node_count, 0);
  for (size_t i = 0; i < node_count; ++i) {
    if (!rec.nodes_[i].has_track) continue;
    unplaced += place(items[i], options.lanes_max);
    lanes_used[i] = 1;
    for (size_t j = 0; j < items[i].size(); ++j) {
      const Item& it = items[i][j];
      if (it.lane < 0) continue;
      lanes_used[i] = std::max(lanes_used[i], static_cast<size_t>(it.lane) + 1);
      if (it.kind == Item::client) calls[it.index].client_item = static_cast<int>(j);
      if (it.kind == Item::server) calls[it.index].server_item = static_cast<int>(j);
    }
  }

  // --- header and metadata ---------------------------------------------------
  out << "{\"traceEvents\":[";
  EventStream events(out);
  std::vector<bool> process_used(rec.processes_.size(), false);
  for (const Rec::Node& n : rec.nodes_) process_used[n.process] = true;
  for (size_t p = 0; p < rec.processes_.size(); ++p) {
    if (!process_used[p]) continue;
    const auto pid = static_cast<uint32_t>(p + 1);
    events.add(Json{{"name", "process_name"}, {"ph", "M"}, {"pid", pid}, {"tid", pid}, {"args", {{"name", rec.processes_[p]}}}});
    events.add(Json{{"name", "process_sort_index"}, {"ph", "M"}, {"pid", pid}, {"tid", pid}, {"args", {{"sort_index", pid}}}});
  }
  size_t tracks = 0, client_nodes = 0, client_tracks = 0;
  for (size_t i = 0; i < node_count; ++i) {
    const Rec::Node& n = rec.nodes_[i];
    if (!n.in_deployment) ++client_nodes;
    if (!n.has_track) continue;
    ++tracks;
    if (!n.in_deployment) ++client_tracks;
    for (size_t l = 0; l < lanes_used[i]; ++l) {
      const std::string name = l == 0 ? n.name : fmt::format("{} +{}", n.name, l);
      const uint32_t pid = n.process + 1, tid = tid_of(n.id, l);
      events.add(Json{{"name", "thread_name"}, {"ph", "M"}, {"pid", pid}, {"tid", tid}, {"args", {{"name", name}}}});
      events.add(Json{{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", pid}, {"tid", tid}, {"args", {{"sort_index", tid}}}});
    }
  }

  // --- fault notes and the runner's marks: global instants ---------------------
  std::vector<const Rec::Marker*> markers;
  for (const Rec::Marker& m : rec.markers_) markers.push_back(&m);
  std::stable_sort(markers.begin(), markers.end(), [](const Rec::Marker* a, const Rec::Marker* b) { return a->at < b->at; });
  for (const Rec::Marker* m : markers) {
    events.add(Json{{"name", m->text}, {"cat", m->fault ? "fault" : "mark"}, {"ph", "i"}, {"s", "g"}, {"ts", us(m->at)}, {"pid", 0}, {"tid", 0}});
  }

  // --- nodes up per process: a counter track ----------------------------------
  {
    std::vector<std::vector<std::pair<int64_t, int64_t>>> series(rec.processes_.size());
    std::vector<int64_t> up(rec.processes_.size(), 0);
    for (size_t p = 0; p < series.size(); ++p) {
      if (process_used[p]) series[p].push_back({us(rec.attached_at_), 0});
    }
    for (const Rec::UpChange& c : rec.up_changes_) {
      const uint32_t p = rec.nodes_[c.node.value - 1].process;
      up[p] += c.delta;
      auto& s = series[p];
      if (!s.empty() && s.back().first == us(c.at)) {
        s.back().second = up[p];
      } else {
        s.push_back({us(c.at), up[p]});
      }
    }
    for (size_t p = 0; p < series.size(); ++p) {
      const auto pid = static_cast<uint32_t>(p + 1);
      for (const auto& [ts, value] : series[p]) {
        events.add(Json{{"name", "nodes"}, {"cat", "node"}, {"ph", "C"}, {"ts", ts}, {"pid", pid}, {"tid", pid}, {"args", {{"up", value}}}});
      }
    }
  }

  // --- every node's slices, each flow event right after its slice ------------
  std::vector<std::string> node_q(node_count);
  for (size_t i = 0; i < node_count; ++i) node_q[i] = json_quoted(rec.nodes_[i].name);
  std::vector<std::string> method_q, call_q;
  for (const std::string& m : rec.methods_) {
    method_q.push_back(json_quoted(m));
    call_q.push_back(json_quoted("call " + m));
  }
  std::map<std::tuple<bool, End, int32_t>, std::string> outcome_q;
  auto outcome = [&](bool client, End why, int32_t status) -> const std::string& {
    auto [it, inserted] = outcome_q.try_emplace(std::tuple{client, why, status});
    if (inserted) it->second = json_quoted(client ? client_outcome(why, status) : server_outcome(why, status));
    return it->second;
  };
  fmt::memory_buffer buf;
  auto emit = [&]<class... A>(fmt::format_string<A...> format, A&&... args) {
    buf.clear();
    fmt::format_to(std::back_inserter(buf), format, std::forward<A>(args)...);
    events.add_raw(std::string_view(buf.data(), buf.size()));
  };
  for (size_t i = 0; i < node_count; ++i) {
    const Rec::Node& n = rec.nodes_[i];
    if (!n.has_track) continue;
    const uint32_t pid = n.process + 1;
    for (const Item& it : items[i]) {
      if (it.lane < 0) continue;
      const uint32_t tid = tid_of(n.id, static_cast<size_t>(it.lane));
      switch (it.kind) {
        case Item::up:
          emit(R"({{"name":"up","cat":"node","ph":"X","ts":{},"dur":{},"pid":{},"tid":{},"args":{{"incarnation":{}}}}})",
               it.s, it.e - it.s, pid, tid, ups[i][it.index].incarnation);
          break;
        case Item::instant: {
          const Rec::Instant& x = rec.instants_[it.index];
          emit(R"({{"name":"{}","cat":"node","ph":"i","s":"t","ts":{},"pid":{},"tid":{},"args":{{"incarnation":{}}}}})",
               x.kind == Rec::Instant::Kind::crash ? "crash" : "wipe", it.s, pid, tid, x.incarnation);
          break;
        }
        case Item::client: {
          const CallView& c = calls[it.index];
          emit(R"({{"name":{},"cat":"rpc","ph":"X","ts":{},"dur":{},"pid":{},"tid":{},"args":{{"to":{},"call_id":{},"outcome":{}}}}})",
               call_q[c.method], it.s, it.e - it.s, pid, tid, node_q[c.callee.value - 1], c.call_id,
               outcome(true, c.client, c.status));
          if (c.server_item >= 0) {
            emit(R"({{"name":"rpc","cat":"rpc","ph":"s","id":{},"ts":{},"pid":{},"tid":{}}})", it.index + 1, it.s, pid, tid);
          }
          break;
        }
        case Item::server: {
          const CallView& c = calls[it.index];
          emit(R"({{"name":{},"cat":"rpc","ph":"X","ts":{},"dur":{},"pid":{},"tid":{},"args":{{"from":{},"call_id":{},"outcome":{}}}}})",
               method_q[c.method], it.s, it.e - it.s, pid, tid, node_q[c.caller.value - 1], c.call_id,
               outcome(false, c.server, c.status));
          if (c.client_item >= 0) {
            emit(R"({{"name":"rpc","cat":"rpc","ph":"f","bp":"e","id":{},"ts":{},"pid":{},"tid":{}}})", it.index + 1, it.s, pid,
                 tid);
          }
          break;
        }
      }
    }
  }

  // --- otherData -------------------------------------------------------------
  const RunRecorder::RpcStats rpc = rec.rpc_stats();
  Json other{{"seed", rec.sim_.seed()},
             {"trace_hash", fmt::format("{:016x}", rec.sim_.trace_hash())},
             {"time_unit", "ts and dur: whole microseconds of simulated time"},
             {"attached_at_us", us(rec.attached_at_)},
             {"sim_time_end_us", us(now)},
             {"nodes", node_count},
             {"node_tracks", tracks},
             {"client_nodes", client_nodes},
             {"client_tracks", client_tracks},
             {"clients_folded", client_nodes - client_tracks},
             {"rpc_calls", rpc.calls},
             {"rpc_calls_recorded", rpc.recorded},
             {"rpc_calls_not_recorded", rpc.dropped},
             {"rpc_spans_max", rec.config_.rpc_spans_max},
             {"rpc_recording_truncated", rpc.dropped > 0},
             {"rpc_unmatched_responses", rpc.unmatched_responses},
             {"rpc_slices_unplaced", unplaced},
             {"lanes_max", options.lanes_max}};
  for (const auto& [k, v] : options.other_data) other[k] = v;
  out << "\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":" << dump(other) << "}\n";
}

void RunFilesAccess::metrics(std::ostream& out, const Rec& rec) {
  struct Row {
    int64_t second;
    const Rec::Group* group;
    const std::string* counter;
    int64_t value;
  };
  const int64_t bucket_s = rec.bucket_ns_ / seconds(1).ns();
  constexpr uint64_t kCounterMask = (uint64_t{1} << 20) - 1;
  const std::unordered_map<uint64_t, int64_t> counters = rec.all_counters();
  std::vector<Row> rows;
  rows.reserve(counters.size());
  int64_t last = rec.bucket_of(rec.sim_.now());
  for (const auto& [key, value] : counters) {
    if (value == 0) continue;
    const auto bucket = static_cast<int64_t>(key >> 40);
    last = std::max(last, bucket);
    rows.push_back(Row{bucket * bucket_s, &rec.groups_[(key >> 20) & kCounterMask], &rec.counter_names_[key & kCounterMask], value});
  }
  // nodes_up: a gauge, the nodes of the group up at the end of each bucket.
  static const std::string kNodesUp = "nodes_up";
  std::vector<bool> has_nodes(rec.groups_.size(), false);
  for (const Rec::Node& n : rec.nodes_) has_nodes[n.group] = true;
  std::vector<int64_t> up(rec.groups_.size(), 0);
  size_t next = 0;
  for (int64_t b = rec.bucket_of(rec.attached_at_); b <= last; ++b) {
    const int64_t end_ns = (b + 1) * rec.bucket_ns_;
    for (; next < rec.up_changes_.size() && rec.up_changes_[next].at.ns() < end_ns; ++next) {
      up[rec.nodes_[rec.up_changes_[next].node.value - 1].group] += rec.up_changes_[next].delta;
    }
    for (size_t g = 0; g < rec.groups_.size(); ++g) {
      if (has_nodes[g]) rows.push_back(Row{b * bucket_s, &rec.groups_[g], &kNodesUp, up[g]});
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.second, a.group->datacenter, a.group->zone, a.group->service, *a.counter) <
           std::tie(b.second, b.group->datacenter, b.group->zone, b.group->service, *b.counter);
  });
  // fmt, not the stream's operator<<, for numbers: no locale reaches a file.
  out << "second,datacenter,zone,service,counter,value\n";
  for (const Row& r : rows) {
    out << fmt::format("{},{},{},{},{},{}\n", r.second, csv_field(r.group->datacenter), csv_field(r.group->zone),
                       csv_field(r.group->service), csv_field(*r.counter), r.value);
  }
}

void write_trace_json(std::ostream& out, const RunRecorder& recorder, const TraceJsonOptions& options) {
  RunFilesAccess::trace(out, recorder, options);
}

void write_metrics_csv(std::ostream& out, const RunRecorder& recorder) { RunFilesAccess::metrics(out, recorder); }

}  // namespace wx::sim::report
