#include "sim/report/run_recorder.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <stdexcept>

#include "nodes/rpc/method.h"
#include "sim/report/rpc_frame.h"

namespace wx::sim::report {
namespace {

// A frame's tag (FrameObserver): kind in bits 62-63, the request's method in
// bits 48-61, the call id's low 48 bits below.
constexpr uint64_t kTagRequest = uint64_t{1} << 62;
constexpr uint64_t kTagResponse = uint64_t{2} << 62;
constexpr uint64_t kTagKindMask = uint64_t{3} << 62;
constexpr int kTagMethodShift = 48;
constexpr uint64_t kTagMethodMask = (uint64_t{1} << 14) - 1;
constexpr uint64_t kCallIdMask = (uint64_t{1} << 48) - 1;
constexpr size_t kMethodsMaxLimit = kTagMethodMask;  // one index is "(other)"

// The built-in counters, in this order (counter index = position).
enum BuiltIn : uint32_t {
  kFramesSent,
  kBytesSent,
  kFramesReceived,
  kBytesReceived,
  kFramesLostOnArrival,
  kRpcRequestsSent,
  kRpcResponsesOk,
  kRpcResponsesError,
  kBuiltInCount
};
constexpr std::string_view kBuiltInNames[kBuiltInCount] = {
    "frames_sent",           "bytes_sent",        "frames_received",  "bytes_received",
    "frames_lost_on_arrival", "rpc_requests_sent", "rpc_responses_ok", "rpc_responses_error"};

constexpr uint64_t kGroupBits = 20, kCounterBits = 20;

}  // namespace

RunRecorder::RunRecorder(Simulation& sim, const deploy::Deployment& deployment, RecorderConfig config)
    : sim_(sim), deployment_(deployment), config_(config), bucket_ns_(config.bucket.ns()) {
  if (config_.bucket < seconds(1) || config_.bucket.ns() % seconds(1).ns() != 0) {
    throw std::invalid_argument("run recorder: bucket must be a whole number of seconds, at least 1");
  }
  if (config_.methods_max < 1 || config_.methods_max >= kMethodsMaxLimit) {
    throw std::invalid_argument("run recorder: methods_max must be between 1 and 16382");
  }
  if (sim_.network().frame_observed() || sim_.lifecycle_observed()) {
    throw std::logic_error("run recorder: the simulation already has an observer");
  }
  for (std::string_view n : kBuiltInNames) (void)counter_of(n);
  methods_.push_back("(other)");
  method_counter_.push_back(counter_of("rpc_received:(other)"));
  for (const deploy::DatacenterSpec& dc : deployment_.spec().datacenters) {
    for (const std::string& z : dc.zones) {
      zone_process_.emplace(std::pair{dc.name, z}, static_cast<uint32_t>(processes_.size()));
      processes_.push_back(dc.name + "/" + z);
    }
  }
  clients_process_ = static_cast<uint32_t>(processes_.size());
  processes_.push_back("clients");

  attached_at_ = sim_.now();
  swept_bucket_ = bucket_of(attached_at_);
  if (sim_.node_count() > 0) resolve_through(static_cast<uint32_t>(sim_.node_count()));
  for (Node& n : nodes_) {
    if (!sim_.is_up(n.id)) continue;
    n.up = true;
    n.up_since = attached_at_;
    n.incarnation = sim_.incarnation(n.id);
    up_changes_.push_back({attached_at_, n.id, +1});
  }
  sim_.network().set_frame_observer([this](const FrameEvent& e) { return on_frame(e); });
  sim_.set_lifecycle_observer([this](const LifecycleEvent& e) { on_lifecycle(e); });
}

RunRecorder::~RunRecorder() {
  sim_.network().set_frame_observer(nullptr);
  sim_.set_lifecycle_observer(nullptr);
}

// --- nodes, groups, counters ---------------------------------------------------

void RunRecorder::resolve_through(uint32_t id) {
  const uint32_t last = std::max<uint32_t>(id, static_cast<uint32_t>(sim_.node_count()));
  for (uint32_t v = static_cast<uint32_t>(nodes_.size()) + 1; v <= last && sim_.knows(NodeId{v}); ++v) {
    Node n;
    n.id = NodeId{v};
    if (const deploy::NodeDesc* d = deployment_.find(n.id)) {
      n.name = d->name;
      n.datacenter = d->datacenter;
      n.zone = d->zone;
      n.service = std::string(deploy::to_string(d->role));
      n.in_deployment = true;
      n.has_track = true;
      auto p = zone_process_.find({n.datacenter, n.zone});
      n.process = p != zone_process_.end() ? p->second : clients_process_;
    } else {
      const NodeSpec& spec = sim_.spec(n.id);
      n.name = spec.name.empty() ? to_string(n.id) : spec.name;
      n.datacenter = spec.placement.datacenter;
      n.zone = spec.placement.zone;
      n.service = "client";
      n.has_track = ++clients_seen_ <= config_.client_tracks_max;
      n.process = clients_process_;
    }
    n.group = group_of(n.datacenter, n.zone, n.service);
    nodes_.push_back(std::move(n));
  }
}

RunRecorder::Node& RunRecorder::node(NodeId id) {
  if (id.value > nodes_.size()) resolve_through(id.value);
  if (id.value == 0 || id.value > nodes_.size()) throw std::out_of_range("run recorder: unknown node " + to_string(id));
  return nodes_[id.value - 1];
}

uint32_t RunRecorder::group_of(const std::string& datacenter, const std::string& zone, const std::string& service) {
  auto [it, inserted] =
      group_index_.try_emplace(std::tuple{datacenter, zone, service}, static_cast<uint32_t>(groups_.size()));
  if (inserted) {
    if (groups_.size() >= (size_t{1} << kGroupBits)) throw std::length_error("run recorder: too many groups");
    groups_.push_back(Group{datacenter, zone, service});
  }
  return it->second;
}

uint32_t RunRecorder::counter_of(std::string_view name) {
  auto it = counter_index_.find(name);
  if (it != counter_index_.end()) return it->second;
  if (counter_names_.size() >= (size_t{1} << kCounterBits)) throw std::length_error("run recorder: too many counters");
  const auto index = static_cast<uint32_t>(counter_names_.size());
  counter_names_.emplace_back(name);
  counter_index_.emplace(std::string(name), index);
  return index;
}

uint32_t RunRecorder::method_of(std::string_view method) {
  auto it = method_index_.find(method);
  if (it != method_index_.end()) return it->second;
  if (methods_.size() > config_.methods_max) return 0;  // "(other)"
  const auto index = static_cast<uint32_t>(methods_.size());
  methods_.emplace_back(method);
  method_counter_.push_back(counter_of("rpc_received:" + std::string(method)));
  method_index_.emplace(std::string(method), index);
  return index;
}

namespace {
uint64_t counter_key(int64_t bucket, uint64_t group, uint64_t counter) {
  return (static_cast<uint64_t>(bucket) << (kGroupBits + kCounterBits)) | (group << kCounterBits) | counter;
}
}  // namespace

void RunRecorder::count(TimePoint at, uint32_t group, uint32_t counter, int64_t delta) {
  const int64_t bucket = bucket_of(at);
  if (bucket == current_bucket_ && group < current_groups_ && counter < current_stride_) {
    current_[group * current_stride_ + counter] += delta;
    return;
  }
  count_slow(bucket, group, counter, delta);
}

void RunRecorder::count_slow(int64_t bucket, uint32_t group, uint32_t counter, int64_t delta) {
  if (bucket < current_bucket_) {  // an earlier bucket (the runner's counters may come late)
    counters_[counter_key(bucket, group, counter)] += delta;
    return;
  }
  if (bucket > current_bucket_) {  // the current bucket is done: into the map
    for (size_t i = 0; i < current_.size(); ++i) {
      if (current_[i] != 0) counters_[counter_key(current_bucket_, i / current_stride_, i % current_stride_)] += current_[i];
    }
    std::fill(current_.begin(), current_.end(), 0);
    current_bucket_ = bucket;
  }
  if (group >= current_groups_ || counter >= current_stride_) {  // more groups or counters: lay out again
    const size_t groups = std::max<size_t>(groups_.size(), group + 1);
    const size_t stride = std::max<size_t>(counter_names_.size(), counter + 1) + 32;
    std::vector<int64_t> grown(groups * stride, 0);
    for (size_t g = 0; g < current_groups_; ++g) {
      for (size_t c = 0; c < current_stride_; ++c) grown[g * stride + c] = current_[g * current_stride_ + c];
    }
    current_ = std::move(grown);
    current_groups_ = groups;
    current_stride_ = stride;
  }
  current_[group * current_stride_ + counter] += delta;
}

std::unordered_map<uint64_t, int64_t> RunRecorder::all_counters() const {
  std::unordered_map<uint64_t, int64_t> all = counters_;
  for (size_t i = 0; i < current_.size(); ++i) {
    if (current_[i] != 0) all[counter_key(current_bucket_, i / current_stride_, i % current_stride_)] += current_[i];
  }
  return all;
}

std::string RunRecorder::datacenter_of_zone(const std::string& zone) {
  if (zone_datacenter_nodes_ != sim_.node_count()) {
    zone_datacenter_nodes_ = sim_.node_count();
    std::map<std::string, std::set<std::string>> seen;
    for (const deploy::DatacenterSpec& dc : deployment_.spec().datacenters) {
      for (const std::string& z : dc.zones) seen[z].insert(dc.name);
    }
    for (uint32_t v = 1; v <= sim_.node_count(); ++v) {
      const Placement& p = sim_.placement(NodeId{v});
      seen[p.zone].insert(p.datacenter);
    }
    zone_datacenter_.clear();
    for (const auto& [z, dcs] : seen) zone_datacenter_[z] = dcs.size() == 1 ? *dcs.begin() : std::string();
  }
  auto it = zone_datacenter_.find(zone);
  return it == zone_datacenter_.end() ? std::string() : it->second;
}

void RunRecorder::add_counter(TimePoint at, std::string zone, std::string service, std::string name, int64_t delta) {
  std::string dc = datacenter_of_zone(zone);
  add_counter(at, std::move(dc), std::move(zone), std::move(service), std::move(name), delta);
}

void RunRecorder::add_counter(TimePoint at, std::string datacenter, std::string zone, std::string service,
                              std::string name, int64_t delta) {
  if (at < TimePoint::zero()) throw std::invalid_argument("run recorder: counter before time 0");
  if (name.empty() || name == "nodes_up") throw std::invalid_argument("run recorder: bad counter name '" + name + "'");
  count(at, group_of(datacenter, zone, service), counter_of(name), delta);
}

void RunRecorder::add_mark(TimePoint at, std::string text) {
  markers_.push_back(Marker{at, false, std::move(text)});
}

RunRecorder::RpcStats RunRecorder::rpc_stats() const {
  RpcStats s = rpc_stats_;
  s.recorded = rpcs_done_.size() + rpcs_open_.size();
  return s;
}

std::map<std::string, int64_t> RunRecorder::counter_totals() const {
  std::vector<int64_t> sums(counter_names_.size(), 0);
  for (const auto& [key, value] : all_counters()) sums[key & ((uint64_t{1} << kCounterBits) - 1)] += value;
  std::map<std::string, int64_t> out;
  for (size_t i = 0; i < sums.size(); ++i) out[counter_names_[i]] = sums[i];
  return out;
}

// --- RPC calls -------------------------------------------------------------------

void RunRecorder::close_client(Rpc& r, End why, TimePoint at) {
  if (r.client != End::open) return;
  r.client = why;
  r.client_end = std::min(std::max(at, r.sent), r.deadline);
}

void RunRecorder::close_server(Rpc& r, End why, TimePoint at) {
  if (r.server != End::open || !r.was_delivered) return;
  r.server = why;
  r.server_end = std::min(std::max(at, r.delivered), r.deadline);
}

void RunRecorder::maybe_finish(std::map<RpcKey, Rpc>::iterator it) {
  Rpc& r = it->second;
  if (r.client == End::open) return;
  if (r.was_delivered && r.server == End::open) return;
  rpcs_done_.push_back(std::move(r));
  rpcs_open_.erase(it);
}

void RunRecorder::sweep(TimePoint now) {
  for (auto it = rpcs_open_.begin(); it != rpcs_open_.end();) {
    auto next = std::next(it);
    Rpc& r = it->second;
    if (r.deadline < now) {
      close_client(r, End::deadline, r.deadline);
      close_server(r, End::deadline, r.deadline);
      maybe_finish(it);
    }
    it = next;
  }
}

uint64_t RunRecorder::on_frame(const FrameEvent& e) {
  if (const int64_t b = bucket_of(e.at); b > swept_bucket_) {
    swept_bucket_ = b;
    sweep(e.at);
  }
  const auto bytes = static_cast<int64_t>(e.bytes);
  switch (e.kind) {
    case FrameEvent::Kind::sent: {
      const uint32_t group = node(e.from).group;
      count(e.at, group, kFramesSent, 1);
      count(e.at, group, kBytesSent, bytes);
      const RpcFrameInfo info = classify_rpc_frame(e.frame);
      const uint64_t call = info.call_id & kCallIdMask;
      if (info.kind == RpcFrameInfo::Kind::request) {
        count(e.at, group, kRpcRequestsSent, 1);
        ++rpc_stats_.calls;
        const uint32_t method = method_of(info.method);
        if (rpcs_done_.size() + rpcs_open_.size() < config_.rpc_spans_max) {
          const RpcKey key{e.from.value, e.to.value, call};
          if (auto old = rpcs_open_.find(key); old != rpcs_open_.end()) {
            // The caller restarted and reuses the call id: the old call ends here.
            close_client(old->second, End::replaced, e.at);
            close_server(old->second, End::replaced, e.at);
            maybe_finish(old);
          }
          Rpc r;
          r.caller = e.from;
          r.callee = e.to;
          r.call_id = info.call_id;
          r.method = method;
          r.sent = e.at;
          const Duration budget = std::min(nanoseconds(std::max<int64_t>(info.timeout_ns, 0)), rpc::kCallTimeoutMax);
          r.deadline = e.at + budget;
          rpcs_open_.emplace(key, std::move(r));
        } else {
          ++rpc_stats_.dropped;
        }
        return kTagRequest | (static_cast<uint64_t>(method) << kTagMethodShift) | call;
      }
      if (info.kind == RpcFrameInfo::Kind::response) {
        count(e.at, group, info.status == 0 ? kRpcResponsesOk : kRpcResponsesError, 1);
        auto it = rpcs_open_.find(RpcKey{e.to.value, e.from.value, call});
        if (it == rpcs_open_.end()) {
          ++rpc_stats_.unmatched_responses;
        } else if (it->second.was_delivered && it->second.server == End::open) {
          it->second.status = info.status;
          close_server(it->second, e.at > it->second.deadline ? End::deadline : End::response, e.at);
          maybe_finish(it);
        }
        return kTagResponse | call;
      }
      return 0;
    }
    case FrameEvent::Kind::delivered: {
      const uint32_t group = node(e.to).group;
      count(e.at, group, kFramesReceived, 1);
      count(e.at, group, kBytesReceived, bytes);
      const uint64_t kind = e.tag & kTagKindMask;
      const uint64_t call = e.tag & kCallIdMask;
      if (kind == kTagRequest) {
        const auto method = static_cast<uint32_t>((e.tag >> kTagMethodShift) & kTagMethodMask);
        count(e.at, group, method_counter_[method], 1);
        auto it = rpcs_open_.find(RpcKey{e.from.value, e.to.value, call});
        if (it != rpcs_open_.end() && !it->second.was_delivered) {
          Rpc& r = it->second;
          if (r.client == End::open && e.at <= r.deadline) {
            r.was_delivered = true;
            r.delivered = e.at;
          }
          // Arriving after the caller gave up: the callee's side is not drawn.
          if (e.at > r.deadline) close_client(r, End::deadline, r.deadline);
          maybe_finish(it);
        }
      } else if (kind == kTagResponse) {
        auto it = rpcs_open_.find(RpcKey{e.to.value, e.from.value, call});
        if (it != rpcs_open_.end()) {
          close_client(it->second, e.at > it->second.deadline ? End::deadline : End::response, e.at);
          maybe_finish(it);
        }
      }
      return 0;
    }
    case FrameEvent::Kind::lost:
      count(e.at, node(e.to).group, kFramesLostOnArrival, 1);
      return 0;
  }
  return 0;
}

// --- lifecycle -------------------------------------------------------------------

void RunRecorder::on_lifecycle(const LifecycleEvent& e) {
  if (const int64_t b = bucket_of(e.at); b > swept_bucket_) {
    swept_bucket_ = b;
    sweep(e.at);
  }
  switch (e.kind) {
    case LifecycleEvent::Kind::start: {
      Node& n = node(e.node);
      if (n.up) return;  // cannot happen: start of a node that is up throws
      n.up = true;
      n.up_since = e.at;
      n.incarnation = e.incarnation;
      up_changes_.push_back({e.at, e.node, +1});
      return;
    }
    case LifecycleEvent::Kind::crash: {
      Node& n = node(e.node);
      if (n.up) {
        n.up = false;
        n.up_intervals.push_back(UpInterval{n.up_since, e.at, n.incarnation});
        up_changes_.push_back({e.at, e.node, -1});
      }
      if (n.has_track) instants_.push_back(Instant{e.at, e.node, Instant::Kind::crash, e.incarnation});
      for (auto it = rpcs_open_.begin(); it != rpcs_open_.end();) {
        auto next = std::next(it);
        Rpc& r = it->second;
        if (r.caller == e.node || r.callee == e.node) {
          if (r.caller == e.node) close_client(r, End::crashed, e.at);
          if (r.callee == e.node) close_server(r, End::crashed, e.at);
          maybe_finish(it);
        }
        it = next;
      }
      return;
    }
    case LifecycleEvent::Kind::wipe:
      if (node(e.node).has_track) instants_.push_back(Instant{e.at, e.node, Instant::Kind::wipe, e.incarnation});
      return;
    case LifecycleEvent::Kind::fault:
      markers_.push_back(Marker{e.at, true, std::string(e.what)});
      return;
  }
}

}  // namespace wx::sim::report
