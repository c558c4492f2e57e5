// A scenario run (see run.h).
#include "sim/scenario/run.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "checkers/messaging.h"
#include "nodes/runtime/random.h"
#include "nodes/storage/inbox/inbox_service.h"
#include "sim/report/run_files.h"

namespace wx::scenario {

namespace cm = checkers::messaging;
using sim::Selector;
using sim::Selectors;
using sim::workload::DailyShape;

namespace {

constexpr const char* kClientZone = "clients";  // MessagingWorkloadConfig::client_zone

// A step function of rate factors over the traffic as a DailyShape (hours
// since t = 0; the day is 24 h, longer than any scenario's traffic).
DailyShape shape_of(const std::vector<RateWindow>& windows, bool groups) {
  bool any = false;
  for (const RateWindow& w : windows) any = any || (groups ? w.groups_factor : w.factor) != 1.0;
  if (!any) return DailyShape();
  std::vector<RateWindow> sorted = windows;
  std::sort(sorted.begin(), sorted.end(), [](const RateWindow& a, const RateWindow& b) { return a.from < b.from; });
  const double ns_per_hour = 3600e9;
  const double eps = 1e6 / ns_per_hour;  // 1 ms in hours
  std::vector<std::pair<double, double>> points;
  auto segment = [&](Duration from, Duration until, double f) {
    const double a = static_cast<double>(from.ns()) / ns_per_hour;
    const double b = static_cast<double>(until.ns()) / ns_per_hour;
    if (b - a < 2 * eps) return;
    points.emplace_back(a, f);
    points.emplace_back(b - eps, f);
  };
  Duration t = Duration::zero();
  for (const RateWindow& w : sorted) {
    segment(t, w.from, 1.0);
    segment(w.from, w.until, groups ? w.groups_factor : w.factor);
    t = w.until;
  }
  points.emplace_back(static_cast<double>(t.ns()) / ns_per_hour, 1.0);
  bool positive = false;
  for (const auto& p : points) positive = positive || p.second > 0;
  if (!positive) points.emplace_back(23.0, 1.0);
  return DailyShape(points);
}

std::string hex16(uint64_t v) { return fmt::format("{:016x}", v); }

std::string secs(TimePoint t) { return fmt::format("{:.3f}s", static_cast<double>(t.ns()) / 1e9); }

}  // namespace

std::string first_divergence(const sim::Trace& a, const sim::Trace& b) {
  const auto& ra = a.records();
  const auto& rb = b.records();
  const size_t n = std::min(ra.size(), rb.size());
  auto show = [](const sim::TraceRecord& r) {
    return fmt::format("{} #{} {} n{} detail={:016x}", to_string(r.at), r.seq, sim::to_string(r.tag.kind), r.tag.node,
                       r.tag.detail);
  };
  for (size_t i = 0; i < n; ++i) {
    const auto& x = ra[i];
    const auto& y = rb[i];
    if (x.at == y.at && x.seq == y.seq && x.tag.kind == y.tag.kind && x.tag.node == y.tag.node &&
        x.tag.detail == y.tag.detail) {
      continue;
    }
    return fmt::format("the runs diverge at event {}:\n  run 1: {}\n  run 2: {}", i, show(x), show(y));
  }
  if (a.hash() == b.hash() && a.count() == b.count()) return {};
  return fmt::format("the first {} events agree; the runs diverge after them (trace hashes {:016x} / {:016x}, {} / {} "
                     "events)",
                     n, a.hash(), b.hash(), a.count(), b.count());
}

std::string reproduction_line(const std::string& program, const std::string& file, uint64_t seed, bool swarm) {
  return fmt::format("{} run {} --seed {}{}", program, file, seed, swarm ? " --swarm" : "");
}

ScenarioRun::ScenarioRun(Scenario scenario, RunOptions options)
    : scenario_(std::move(scenario)), options_(options) {
  seed_ = options_.seed.value_or(scenario_.seed);
  const WorkloadSection& w = scenario_.workload;
  const DeploymentSection& d = scenario_.deployment;
  sim::workload::OutageRunConfig c;
  c.seed = seed_;
  c.users = w.users;
  c.groups = w.groups;
  c.duration = w.duration;
  c.zone.clear();  // the scenario's faults instead of the built-in outage
  c.rate_per_min = w.rate_per_min;
  c.contacts = sim::workload::ContactGraphConfig{
      sim::workload::SizeDistribution{w.contacts_min, w.contacts_max, w.contacts_alpha}, w.contacts_locality, 8};
  c.group_size = sim::workload::SizeDistribution{w.group_size_min, w.group_size_max, w.group_size_alpha};
  c.churn.online_mean = w.churn_online;
  c.churn.offline_mean = w.churn_offline;
  c.sync_interval = w.sync_every;
  c.heartbeat_interval = w.heartbeat_every;
  c.client_call_timeout = w.call_timeout;
  c.end_limit = scenario_.expect.converge_within;
  c.log_level = options_.log_level;
  c.trace_records_max = options_.trace_records_max;
  c.unsafe_ack_before_inbox_commit = d.unsafe_ack_before_inbox_commit;
  if (d.wan_latency) c.latency.wan_link.base = *d.wan_latency;
  if (d.wan_jitter) c.latency.wan_link.jitter = *d.wan_jitter;
  deploy::DeploymentSpec spec = scenario_.deployment_spec();
  spec.templates.msg.server.workers = d.msg_workers;
  spec.templates.msg.server.fast_reject = d.fast_reject;
  if (d.msg_send_cost > Duration::zero()) spec.templates.msg.send_cost = d.msg_send_cost;
  if (scenario_.expect.acked_on_zones > 0) {
    // Record which zone persisted which inbox record when: the facts the
    // acked_on_zones expectation is judged from.
    spec.templates.kv.persisted_observer = [this](NodeId node, const std::vector<std::string>& keys) {
      sim::Simulation& s = run_->sim();
      for (const std::string& k : keys) {
        auto rec = inbox::parse_inbox_key(k);
        if (!rec) continue;
        copies_.push_back({s.now().ns(), s.placement(node).zone, run_->deployment().node(node).name, rec->first,
                           rec->second});
      }
    };
  }
  c.spec = std::move(spec);
  c.shape = shape_of(w.rate_windows, false);
  c.group_shape = shape_of(w.rate_windows, true);
  if (std::string why = sim::workload::validate(c); !why.empty()) {
    throw std::invalid_argument(fmt::format("{}: {}", scenario_.file, why));
  }
  run_ = std::make_unique<sim::workload::OutageRun>(std::move(c));
  if (run_->traffic_start() != TimePoint()) throw std::logic_error("scenario run: traffic must start at time 0");

  if (options_.record_files) {
    sim::report::RecorderConfig rc;
    rc.rpc_spans_max = options_.trace_spans_max;
    recorder_ = std::make_unique<sim::report::RunRecorder>(sim(), run_->deployment(), rc);
  }
  for (const FaultSpec& f : scenario_.faults) plan_.push_back({f, false});
  plan_random_faults();
  std::stable_sort(plan_.begin(), plan_.end(), [](const Planned& a, const Planned& b) { return a.spec.at < b.spec.at; });
  undo_.resize(plan_.size());
  applied_.resize(plan_.size());
  for (size_t i = 0; i < plan_.size(); ++i) {
    const Planned& p = plan_[i];
    applied_[i].what = p.spec.describe();
    applied_[i].random = p.random;
    applied_[i].at = run_->traffic_start() + p.spec.at;
    sim().at(applied_[i].at, [this, i] { apply(plan_[i], i); });
    if (p.spec.duration) {
      applied_[i].healed_at = applied_[i].at + *p.spec.duration;
      sim().at(*applied_[i].healed_at, [this, i] { heal(i); });
    }
  }
}

ScenarioRun::~ScenarioRun() = default;

void ScenarioRun::plan_random_faults() {
  std::optional<RandomFaults> r = scenario_.random_faults;
  if (!r && options_.swarm) {
    // A default random phase: the middle of the traffic, every kind but
    // whole-datacenter loss, every server role.
    RandomFaults def;
    def.from = scenario_.workload.duration / 6;
    def.until = scenario_.workload.duration - scenario_.workload.duration / 6;
    def.kinds = {FaultKind::kill_zone, FaultKind::kill_node, FaultKind::partition, FaultKind::block,
                 FaultKind::loss,      FaultKind::delay,     FaultKind::clog,      FaultKind::clock_skew};
    std::set<std::string> roles;
    for (const auto& [role, n] : scenario_.deployment_spec().instances_per_zone) {
      if (n > 0) roles.insert(std::string(deploy::to_string(role)));
    }
    roles.insert("kv");
    for (const std::string& role : roles) def.targets.push_back(Target{Target::Kind::role, role, {}});
    r = def;
  }
  if (!r) return;
  Rng rng = Rng::derive(seed_, "scenario.random_faults");
  std::vector<FaultKind> kinds = r->kinds;
  std::vector<Target> targets = r->targets;
  double factor = 1;
  if (options_.swarm) {
    Rng sw = Rng::derive(seed_, "scenario.swarm");
    std::vector<FaultKind> on;
    for (FaultKind k : kinds) {
      if (sw.bernoulli(0.5)) on.push_back(k);
    }
    if (on.empty()) on.push_back(kinds[sw.uniform(kinds.size())]);
    kinds = on;
    std::vector<Target> ton;
    for (const Target& t : targets) {
      if (sw.bernoulli(0.5)) ton.push_back(t);
    }
    if (ton.empty()) ton.push_back(targets[sw.uniform(targets.size())]);
    targets = ton;
    factor = std::exp(sw.uniform_real(std::log(0.5), std::log(2.0)));
    swarm_kinds_ = kinds;
    swarm_factor_ = factor;
  }
  const std::vector<NodeId> nodes = nodes_of(targets);
  // Zone targets: bare names with one datacenter; "dc/zone" with several
  // (the zones of the first datacenter when a fault aims at no node).
  const bool several = scenario_.deployment.datacenters.size() > 1;
  auto qualified = [several](const std::string& dc, const std::string& z) { return several ? dc + "/" + z : z; };
  std::vector<std::string> zones;
  for (const std::string& z : scenario_.deployment.zones) zones.push_back(qualified(scenario_.deployment.datacenter, z));
  auto zone_of = [&](NodeId id) { return qualified(sim().placement(id).datacenter, sim().placement(id).zone); };
  auto other_zones = [&](const std::string& z) {
    const size_t slash = z.find('/');
    const std::string dc = slash == std::string::npos ? scenario_.deployment.datacenter : z.substr(0, slash);
    std::vector<Target> out;
    for (const std::string& o : zones_of(dc)) {
      if (qualified(dc, o) != z) out.push_back(Target{Target::Kind::zone, qualified(dc, o), {}});
    }
    return out;
  };
  const Duration every = nanoseconds(static_cast<int64_t>(static_cast<double>(r->every.ns()) / factor));
  // `concurrent` lanes, each one fault at a time.
  for (size_t lane = 0; lane < r->concurrent; ++lane) {
    Duration t = r->from + rng.exponential(every);
    while (t < r->until) {
      const Duration len = std::min(rng.uniform(r->for_min, r->for_max), r->until - t);
      if (len < milliseconds(1)) break;
      FaultSpec f;
      f.kind = kinds[rng.uniform(kinds.size())];
      f.at = t;
      f.duration = len;
      f.mark = r->mark;
      const NodeId node = nodes.empty() ? NodeId{} : nodes[rng.uniform(nodes.size())];
      const std::string zone = nodes.empty() ? zones[rng.uniform(zones.size())] : zone_of(node);
      const std::string node_name = nodes.empty() ? std::string() : run_->deployment().node(node).name;
      const Target node_t{Target::Kind::node, node_name, {}};
      const Target zone_t{Target::Kind::zone, zone, {}};
      switch (f.kind) {
        case FaultKind::kill_zone: f.targets = {zone_t}; break;
        case FaultKind::kill_datacenter: {
          const std::vector<deploy::DatacenterSpec>& dcs = scenario_.deployment.datacenters;
          f.targets = {Target{Target::Kind::datacenter, dcs[rng.uniform(dcs.size())].name, {}}};
          break;
        }
        case FaultKind::kill_node:
        case FaultKind::wipe_node:
        case FaultKind::clog: f.targets = {nodes.empty() ? zone_t : node_t}; break;
        case FaultKind::clock_skew: {
          f.targets = {nodes.empty() ? zone_t : node_t};
          const Duration mag = rng.uniform(milliseconds(100), seconds(5));
          f.offset = rng.bernoulli(0.5) ? mag : Duration::zero() - mag;
          break;
        }
        case FaultKind::partition: f.groups = {{zone_t}, other_zones(zone)}; break;
        case FaultKind::block:
          f.from = {zone_t};
          f.to = other_zones(zone);
          if (rng.bernoulli(0.5)) std::swap(f.from, f.to);
          break;
        case FaultKind::loss:
          f.from = {nodes.empty() ? zone_t : node_t};
          f.to = other_zones(zone);
          f.loss_p = rng.uniform_real(0.05, 0.5);
          break;
        case FaultKind::delay:
          f.from = {nodes.empty() ? zone_t : node_t};
          f.to = other_zones(zone);
          f.extra = rng.uniform(milliseconds(5), milliseconds(500));
          break;
      }
      plan_.push_back({f, true});
      t = t + len + rng.exponential(every);
    }
  }
}

std::string ScenarioRun::zone_dc(const Target& t) const {
  return t.zone_datacenter().empty() ? scenario_.deployment.datacenter : t.zone_datacenter();
}

std::vector<std::string> ScenarioRun::zones_of(const std::string& datacenter) const {
  for (const deploy::DatacenterSpec& dc : scenario_.deployment.datacenters) {
    if (dc.name == datacenter) return dc.zones;
  }
  return scenario_.deployment.zones;
}

Selectors ScenarioRun::selectors(const std::vector<Target>& targets) const {
  Selectors out;
  for (const Target& t : targets) {
    switch (t.kind) {
      case Target::Kind::zone: out.push_back(Selector::zone(t.zone_name(), zone_dc(t))); break;
      case Target::Kind::datacenter:
        // The server zones only: the simulated users are placed in the
        // datacenter too, in a zone of their own.
        for (const std::string& z : zones_of(t.name)) out.push_back(Selector::zone(z, t.name));
        break;
      case Target::Kind::node:
      case Target::Kind::role:
        for (NodeId id : nodes_of({t})) out.push_back(Selector(id));
        break;
      case Target::Kind::clients: out.push_back(Selector::zone(kClientZone)); break;
    }
  }
  return out;
}

std::vector<NodeId> ScenarioRun::nodes_of(const std::vector<Target>& targets) const {
  std::vector<NodeId> out;
  const deploy::Deployment& dep = run_->deployment();
  for (const deploy::NodeDesc& n : dep.nodes()) {
    if (std::any_of(targets.begin(), targets.end(), [&](const Target& t) { return t.matches(n); })) out.push_back(n.id);
  }
  for (const Target& t : targets) {
    if (t.kind != Target::Kind::clients) continue;
    sim::Simulation& s = run_->sim();
    for (uint32_t v = 1; v <= s.node_count(); ++v) {
      if (s.placement(NodeId{v}).zone == kClientZone) out.push_back(NodeId{v});
    }
    break;
  }
  return out;
}

void ScenarioRun::apply(const Planned& p, size_t i) {
  sim::Simulation& s = sim();
  sim::Faults& faults = s.faults();
  const FaultSpec& f = p.spec;
  Undo& u = undo_[i];
  switch (f.kind) {
    case FaultKind::kill_zone: {
      const Target& t = f.targets.at(0);
      faults.kill_zone(t.zone_name(), zone_dc(t));
      u.zones.emplace_back(t.zone_name(), zone_dc(t));
      break;
    }
    case FaultKind::kill_datacenter: {
      const std::string& dc = f.targets.at(0).name;
      for (const std::string& z : zones_of(dc)) {
        faults.kill_zone(z, dc);
        u.zones.emplace_back(z, dc);
      }
      break;
    }
    case FaultKind::kill_node:
    case FaultKind::wipe_node:
      for (NodeId id : nodes_of(f.targets)) {
        if (!s.is_up(id)) continue;  // already down (another fault): not ours to start
        s.crash(id);
        if (f.kind == FaultKind::wipe_node) s.wipe(id);
        u.nodes.push_back(id);
      }
      break;
    case FaultKind::partition: {
      std::vector<Selectors> groups;
      for (const auto& g : f.groups) groups.push_back(selectors(g));
      u.rules.push_back(faults.partition(std::move(groups)));
      break;
    }
    case FaultKind::block: u.rules.push_back(faults.block(selectors(f.from), selectors(f.to))); break;
    case FaultKind::loss:
    case FaultKind::delay:
      for (const Selector& a : selectors(f.from)) {
        for (const Selector& b : selectors(f.to)) {
          u.rules.push_back(f.kind == FaultKind::loss ? faults.set_loss(a, b, f.loss_p) : faults.add_delay(a, b, f.extra));
        }
      }
      break;
    case FaultKind::clog: {
      const TimePoint until = f.duration ? s.now() + *f.duration : run_->traffic_end();
      for (NodeId id : nodes_of(f.targets)) u.rules.push_back(faults.clog(id, until));
      break;
    }
    case FaultKind::clock_skew:
      for (NodeId id : nodes_of(f.targets)) {
        faults.set_clock_offset(id, f.offset);
        u.skewed.push_back(id);
      }
      break;
  }
  run_->add_mark(s.now(), fmt::format("fault{}: {}", p.random ? " (random)" : "", f.describe()));
}

void ScenarioRun::heal(size_t i) {
  sim::Simulation& s = sim();
  Undo& u = undo_[i];
  if (u.done) return;
  u.done = true;
  for (sim::FaultId id : u.rules) (void)s.faults().heal(id);
  for (const auto& [z, dc] : u.zones) (void)s.faults().restore_zone(z, dc);
  for (NodeId id : u.nodes) {
    // Started unless its zone is dark (the zone's restore starts it then) or
    // something else started it already.
    const std::pair<std::string, std::string> zone{s.placement(id).zone, s.placement(id).datacenter};
    bool zone_dark = false;
    for (const Undo& other : undo_) {
      if (&other == &u || other.done) continue;
      zone_dark = zone_dark || std::find(other.zones.begin(), other.zones.end(), zone) != other.zones.end();
    }
    if (!s.is_up(id) && !zone_dark) s.start(id);
  }
  for (NodeId id : u.skewed) s.faults().set_clock_offset(id, Duration::zero());
  run_->add_mark(s.now(), fmt::format("healed: {}", plan_[i].spec.describe()));
}

void ScenarioRun::heal_everything() {
  sim::Simulation& s = sim();
  for (size_t i = 0; i < undo_.size(); ++i) {
    if (!undo_[i].done && s.now() >= applied_[i].at) heal(i);
  }
  // Anything a fault left down (a node crashed while its zone was dark).
  for (const deploy::NodeDesc& n : run_->deployment().nodes()) {
    if (!s.is_up(n.id)) s.start(n.id);
  }
}

bool ScenarioRun::run() {
  if (ran_) throw std::logic_error("ScenarioRun::run called twice");
  ran_ = true;
  std::string why;
  const bool ok = run_->run(&why, [this] { heal_everything(); });
  if (!ok && !run_->end_phase_timed_out()) {
    failure_ = why;
  }
  // Phases.
  const TimePoint t0 = run_->traffic_start(), t1 = run_->traffic_end();
  // The disturbance: every fault (until it healed, or the traffic's end)
  // and every rate window that changes a rate.
  std::optional<TimePoint> d0;
  TimePoint d1 = t0;
  auto cover = [&](TimePoint a, TimePoint b) {
    if (!d0 || a < *d0) d0 = a;
    d1 = std::max(d1, b);
  };
  for (const AppliedFault& a : applied_) cover(a.at, a.healed_at.value_or(t1));
  for (const RateWindow& w : scenario_.workload.rate_windows) {
    if (w.factor != 1.0 || w.groups_factor != 1.0) cover(t0 + w.from, t0 + w.until);
  }
  const TimePoint f0 = d0 ? std::min(*d0, t1) : t1;
  const TimePoint f1 = d0 ? std::clamp(d1, f0, t1) : t1;
  std::vector<cm::Window> windows{{"before", t0.ns(), f0.ns()}, {"during", f0.ns(), f1.ns()}, {"after", f1.ns(), t1.ns()}};
  auto stats = cm::send_stats(run_->history(), windows);
  phases_.clear();
  for (size_t i = 0; i < kPhases; ++i) phases_.push_back({static_cast<Phase>(i), std::move(stats[i]), {}});
  const std::map<std::string, std::string>& zone_of = run_->preferred_zones();
  std::vector<std::string> groups = scenario_.deployment.zones;
  groups.push_back("direct");
  for (const std::string& g : groups) {
    auto per = cm::send_stats(run_->history(), windows, [&](const std::string& process) {
      auto it = zone_of.find(process);
      return it != zone_of.end() ? it->second == g : g == "direct";
    });
    for (size_t i = 0; i < kPhases; ++i) phases_[i].by_zone.emplace_back(g, std::move(per[i]));
  }
  if (recorder_) {
    // The clients' side in metrics.csv: send outcomes per second, by the
    // access zone the user prefers (group senders: "clients").
    const std::map<std::string, std::string>& zones = run_->preferred_zones();
    for (const cm::Event& e : run_->history()) {
      const auto* c = std::get_if<cm::Completion>(&e.body);
      if (c == nullptr || c->op != cm::OpKind::send) continue;
      auto it = zones.find(e.process);
      const std::string zone = it != zones.end() ? it->second : std::string(kClientZone);
      const char* what = c->outcome == cm::Outcome::ok ? "sends_ok" : c->outcome == cm::Outcome::fail ? "sends_failed"
                                                                                                      : "sends_unknown";
      recorder_->add_counter(TimePoint() + nanoseconds(e.t_ns), zone, "client", what, 1);
    }
    for (const auto& m : run_->timeline()) recorder_->add_mark(m.at, m.what);
  }
  if (ok) judge();
  else {
    expectations_.clear();
    if (run_->end_phase_timed_out()) {
      expectations_.push_back({"converge_within", false,
                               fmt::format("the deployment did not converge within {} after the traffic stopped and "
                                           "every fault healed: {}; seed {}",
                                           to_string(scenario_.expect.converge_within), why, seed_)});
    } else {
      expectations_.push_back({"run", false, fmt::format("the simulation failed: {}; seed {}", why, seed_)});
    }
  }
  return passed();
}

void ScenarioRun::judge() {
  const Expectations& e = scenario_.expect;
  const cm::MessagingVerdict& v = run_->verdict();
  // Each violation belongs to exactly one expectation.
  auto bucket = [](const cm::Violation& x) -> std::string {
    using C = cm::Check;
    if (x.kind == "two_message_ids" || x.kind == "id_conflict" || x.kind == "seq_reused") return "unique_ids";
    if (x.kind == "copy_for_other_user" || x.check == C::origin) return "no_cross_user_access";
    switch (x.check) {
      case C::history: return "history";
      case C::lost: return "no_loss";
      case C::duplicated: return "no_duplicates";
      case C::order: return "order";
      case C::convergence: return "convergence";
      case C::origin: return "no_cross_user_access";
    }
    return "history";
  };
  struct Want {
    const char* name;
    bool on;
    const char* what;
  };
  const Want wants[] = {
      {"history", true, "the recorded history is consistent with itself"},
      {"no_loss", e.no_loss, "every acknowledged message is in each recipient's synced state"},
      {"no_duplicates", e.no_duplicates, "no message is held twice by a recipient"},
      {"order", e.order, "per-recipient order and monotonic sync keys"},
      {"convergence", e.convergence, "every client's final state equals the server's (every data type)"},
      {"unique_ids", e.unique_ids, "a message id names one message; one id per client message; a seq names one message"},
      {"no_cross_user_access", e.no_cross_user_access, "nothing reaches a user it was not sent to; nothing altered"},
  };
  expectations_.clear();
  for (const Want& w : wants) {
    if (!w.on) continue;
    std::vector<const cm::Violation*> mine;
    for (const cm::Violation& x : v.violations) {
      if (bucket(x) == w.name) mine.push_back(&x);
    }
    ExpectationResult r{w.name, mine.empty(), ""};
    if (mine.empty()) {
      r.evidence = fmt::format("{}: {} messages ({} acknowledged), {} deliveries required, {} client final states",
                               w.what, v.stats.messages, v.stats.messages_acknowledged, v.stats.deliveries_required,
                               v.stats.client_finals);
    } else {
      r.evidence = fmt::format("{} violation(s); first: {}", mine.size(), cm::format_violation(*mine[0], v.context));
      for (size_t k = 1; k < std::min<size_t>(mine.size(), 5); ++k) {
        r.evidence += "\n  " + cm::format_violation(*mine[k], v.context);
      }
    }
    expectations_.push_back(std::move(r));
  }
  if (e.acked_on_zones > 0) {
    const cm::ReplicationVerdict r = cm::check_acks_on_zones(run_->history(), copies_, e.acked_on_zones);
    ExpectationResult x{"acked_on_zones", r.ok() && r.acks_checked > 0, ""};
    if (r.acks_checked == 0) {
      x.evidence = fmt::format("no acknowledged deliveries to judge; seed {}", seed_);
    } else if (r.ok()) {
      x.evidence = fmt::format("each of {} acknowledged deliveries was durably on >= {} zones when acknowledged "
                               "({} inbox records persisted by replicas)",
                               r.acks_checked, e.acked_on_zones, copies_.size());
    } else {
      x.evidence = fmt::format("{} of {} acknowledged deliveries were on fewer than {} zones when acknowledged; "
                               "first: {}; seed {}",
                               r.violations, r.acks_checked, e.acked_on_zones, r.examples.front(), seed_);
    }
    expectations_.push_back(std::move(x));
  }
  const Duration converge = run_->end_phase_done() - run_->traffic_end();
  expectations_.push_back({"converge_within", true,
                           fmt::format("converged {} after the traffic stopped and every fault healed (bound {})",
                                       to_string(converge), to_string(e.converge_within))});
  for (const PhaseReport& p : phases_) {
    const std::string ph(to_string(p.phase));
    const auto& st = p.stats;
    if (auto it = e.availability_min.find(p.phase); it != e.availability_min.end()) {
      ExpectationResult r{"availability." + ph, st.attempted > 0 && st.availability() >= it->second, ""};
      r.evidence = st.attempted == 0
                       ? fmt::format("no sends started in phase {} ({} to {}): cannot confirm availability >= {}; seed {}",
                                     ph, secs(TimePoint() + nanoseconds(st.window.from_ns)),
                                     secs(TimePoint() + nanoseconds(st.window.until_ns)), it->second, seed_)
                       : fmt::format("{} of {} sends succeeded ({:.4f}, required >= {}) in phase {} ({} to {}); seed {}",
                                     st.ok, st.attempted, st.availability(), it->second, ph,
                                     secs(TimePoint() + nanoseconds(st.window.from_ns)),
                                     secs(TimePoint() + nanoseconds(st.window.until_ns)), seed_);
      expectations_.push_back(std::move(r));
    }
    if (auto it = e.latency_p99_max.find(p.phase); it != e.latency_p99_max.end()) {
      const Duration p99 = nanoseconds(st.latency_ns(0.99));
      ExpectationResult r{"latency_p99." + ph, st.ok > 0 && p99 <= it->second, ""};
      r.evidence = st.ok == 0 ? fmt::format("no successful sends in phase {}: cannot confirm p99 <= {}; seed {}", ph,
                                            to_string(it->second), seed_)
                              : fmt::format("p99 send latency {} (p50 {}, {} sends) in phase {}, required <= {}; seed {}",
                                            to_string(p99), to_string(nanoseconds(st.latency_ns(0.5))), st.ok, ph,
                                            to_string(it->second), seed_);
      expectations_.push_back(std::move(r));
    }
    if (auto it = e.goodput_min.find(p.phase); it != e.goodput_min.end()) {
      ExpectationResult r{"goodput." + ph, st.goodput_per_s() >= it->second, ""};
      r.evidence = fmt::format("{:.1f} successful sends/s in phase {} ({} ok in {}), required >= {:.1f}/s; seed {}",
                               st.goodput_per_s(), ph, st.ok,
                               to_string(nanoseconds(st.window.until_ns - st.window.from_ns)), it->second, seed_);
      expectations_.push_back(std::move(r));
    }
    auto windowed = [&](const std::string& name, const cm::WindowStats& ws, double min, const char* what) {
      ExpectationResult r{name, ws.attempted > 0 && ws.availability() >= min, ""};
      r.evidence = ws.attempted == 0
                       ? fmt::format("no {} started in phase {}: cannot confirm availability >= {}; seed {}", what, ph,
                                     min, seed_)
                       : fmt::format("{} of {} {} succeeded ({:.4f}, required >= {}) in phase {} ({} to {}); seed {}",
                                     ws.ok, ws.attempted, what, ws.availability(), min, ph,
                                     secs(TimePoint() + nanoseconds(ws.window.from_ns)),
                                     secs(TimePoint() + nanoseconds(ws.window.until_ns)), seed_);
      expectations_.push_back(std::move(r));
    };
    const std::vector<cm::Window> window{st.window};
    if (auto it = e.sync_availability_min.find(p.phase); it != e.sync_availability_min.end()) {
      windowed("sync_availability." + ph, cm::sync_stats(run_->history(), window).front(), it->second, "syncs");
    }
    for (const auto& [dc, mins] : e.availability_by_datacenter) {
      auto it = mins.find(p.phase);
      if (it == mins.end()) continue;
      // The sends of the users homed in `dc` (their own devices).
      const std::set<std::string> mine = run_->processes_homed_in(dc);
      auto include = [&mine](const std::string& process) { return mine.count(process) != 0; };
      windowed("availability." + dc + "." + ph, cm::send_stats(run_->history(), window, include).front(), it->second,
               "sends");
    }
  }
  if (run_->multi_datacenter() && e.replicas_converge) {
    const std::optional<checkers::ReplicaConvergenceVerdict>& rv = run_->replica_verdict();
    ExpectationResult r{"replicas_converge", rv && rv->ok() && rv->home_records > 0, ""};
    if (!rv) {
      r.evidence = fmt::format("the replicas were not judged; seed {}", seed_);
    } else if (rv->ok()) {
      r.evidence = fmt::format("every datacenter's copy of every user's records equals the home datacenter's: {} users, "
                               "{} home records, {} copies compared{}",
                               rv->users, rv->home_records, rv->compared,
                               run_->replication_caught_up_at()
                                   ? fmt::format(", replication caught up {} after the end phase",
                                                 to_string(*run_->replication_caught_up_at() - run_->end_phase_done()))
                                   : std::string());
    } else {
      r.evidence = fmt::format("{} of {} copies differ from the home records{}; first: {}; seed {}", rv->divergent,
                               rv->compared,
                               run_->replication_caught_up_at() ? "" : " (replication had NOT caught up in time)",
                               rv->violations.empty() ? std::string() : rv->violations.front(), seed_);
      for (size_t k = 1; k < std::min<size_t>(rv->violations.size(), 5); ++k) r.evidence += "\n  " + rv->violations[k];
    }
    expectations_.push_back(std::move(r));
  }
}

bool ScenarioRun::passed() const {
  if (!ran_ || failure_) return false;
  for (const ExpectationResult& r : expectations_) {
    if (!r.passed) return false;
  }
  return !expectations_.empty();
}

uint64_t ScenarioRun::trace_hash() { return sim().trace_hash(); }
uint64_t ScenarioRun::events() { return sim().kernel().trace().count(); }
Duration ScenarioRun::simulated() { return sim().now() - TimePoint(); }

std::string ScenarioRun::summary() {
  std::string out;
  const WorkloadSection& w = scenario_.workload;
  out += fmt::format("scenario {} ({}), seed {}{}\n", scenario_.name, scenario_.file, seed_, options_.swarm ? ", swarm" : "");
  if (!scenario_.description.empty()) out += fmt::format("  {}\n", scenario_.description);
  std::vector<std::string> dcs;
  for (const deploy::DatacenterSpec& dc : scenario_.deployment.datacenters) {
    dcs.push_back(fmt::format("{} zones {}", dc.name, join(dc.zones, ",")));
  }
  out += fmt::format("deployment: {} {}, {} KV shard(s){}, {} server nodes; {} users, {} groups, "
                     "{:.2f} sends/user/min for {}\n",
                     dcs.size() > 1 ? "datacenters" : "datacenter", join(dcs, "; "), scenario_.deployment.shards,
                     dcs.size() > 1 ? " per datacenter, users homed in each in turn" : "",
                     run_->deployment().nodes().size(), w.users, w.groups, w.rate_per_min, to_string(w.duration));
  if (options_.swarm) {
    std::vector<std::string> ks;
    for (FaultKind k : swarm_kinds_) ks.emplace_back(to_string(k));
    out += fmt::format("swarm: kinds {} , fault rate x{:.2f}\n", join(ks, ","), swarm_factor_);
  }
  out += "\ntimeline:\n";
  for (const auto& m : run_->timeline()) out += fmt::format("  {:>10}  {}\n", secs(m.at), m.what);
  out += "\nsends per phase (by first attempt; latency first attempt -> OK):\n";
  out += fmt::format("  {:<7} {:<22} {:>14} {:>8} {:>9} {:>9} {:>9}\n", "phase", "window", "ok/attempted", "avail",
                     "p50", "p99", "ok/s");
  for (const PhaseReport& p : phases_) {
    const auto& st = p.stats;
    out += fmt::format("  {:<7} {:<22} {:>14} {:>8} {:>9} {:>9} {:>9.1f}\n", to_string(p.phase),
                       fmt::format("{}-{}", secs(TimePoint() + nanoseconds(st.window.from_ns)),
                                   secs(TimePoint() + nanoseconds(st.window.until_ns))),
                       fmt::format("{}/{}", st.ok, st.attempted),
                       st.attempted ? fmt::format("{:.4f}", st.availability()) : std::string("-"),
                       st.ok ? to_string(nanoseconds(st.latency_ns(0.5))) : std::string("-"),
                       st.ok ? to_string(nanoseconds(st.latency_ns(0.99))) : std::string("-"), st.goodput_per_s());
  }
  out += "\nper access zone (1:1 users by the access zone they prefer; group senders call msg directly):\n";
  out += fmt::format("  {:<7} {:<7} {:>14} {:>8} {:>9} {:>9}\n", "phase", "zone", "ok/attempted", "avail", "p50", "p99");
  for (const PhaseReport& p : phases_) {
    for (const auto& [zone, st] : p.by_zone) {
      if (st.attempted == 0) continue;
      out += fmt::format("  {:<7} {:<7} {:>14} {:>8} {:>9} {:>9}\n", to_string(p.phase), zone,
                         fmt::format("{}/{}", st.ok, st.attempted), fmt::format("{:.4f}", st.availability()),
                         st.ok ? to_string(nanoseconds(st.latency_ns(0.5))) : std::string("-"),
                         st.ok ? to_string(nanoseconds(st.latency_ns(0.99))) : std::string("-"));
    }
  }
  out += "\nexpectations:\n";
  for (const ExpectationResult& r : expectations_) {
    out += fmt::format("  {:<4} {:<22} {}\n", r.passed ? "ok" : "FAIL", r.name, r.evidence);
  }
  out += fmt::format("\n{} — trace hash {}, {} events, {} simulated\n", passed() ? "PASS" : "FAIL", hex16(trace_hash()),
                     events(), to_string(simulated()));
  return out;
}

void ScenarioRun::write_trace_json(std::ostream& out) {
  if (!recorder_) throw std::logic_error("ScenarioRun: trace.json needs RunOptions::record_files");
  sim::report::TraceJsonOptions o;
  o.other_data = {{"scenario", scenario_.name}, {"seed", std::to_string(seed_)}, {"swarm", options_.swarm ? "true" : "false"},
                  {"trace_hash", hex16(trace_hash())}};
  sim::report::write_trace_json(out, *recorder_, o);
}

void ScenarioRun::write_metrics_csv(std::ostream& out) {
  if (!recorder_) throw std::logic_error("ScenarioRun: metrics.csv needs RunOptions::record_files");
  sim::report::write_metrics_csv(out, *recorder_);
}

std::string ScenarioRun::report_json() {
  nlohmann::ordered_json j;
  j["scenario"] = scenario_.name;
  j["file"] = scenario_.file;
  j["seed"] = seed_;
  j["swarm"] = options_.swarm;
  j["trace_hash"] = hex16(trace_hash());
  j["passed"] = passed();
  j["failure"] = failure_ ? nlohmann::ordered_json(*failure_) : nlohmann::ordered_json(nullptr);
  j["events"] = events();
  j["simulated_seconds"] = static_cast<double>(simulated().ns()) / 1e9;
  auto& ex = j["expectations"] = nlohmann::ordered_json::array();
  for (const ExpectationResult& r : expectations_) {
    ex.push_back({{"name", r.name}, {"passed", r.passed}, {"evidence", r.evidence}});
  }
  auto& ph = j["phases"] = nlohmann::ordered_json::array();
  for (const PhaseReport& p : phases_) {
    const auto& st = p.stats;
    ph.push_back({{"phase", std::string(to_string(p.phase))},
                  {"from_s", static_cast<double>(st.window.from_ns) / 1e9},
                  {"until_s", static_cast<double>(st.window.until_ns) / 1e9},
                  {"attempted", st.attempted},
                  {"ok", st.ok},
                  {"availability", st.availability()},
                  {"latency_p50_ms", static_cast<double>(st.latency_ns(0.5)) / 1e6},
                  {"latency_p99_ms", static_cast<double>(st.latency_ns(0.99)) / 1e6},
                  {"goodput_per_s", st.goodput_per_s()}});
    auto& z = ph.back()["by_zone"] = nlohmann::ordered_json::object();
    for (const auto& [zone, zs] : p.by_zone) {
      z[zone] = {{"attempted", zs.attempted},
                 {"ok", zs.ok},
                 {"availability", zs.availability()},
                 {"latency_p50_ms", static_cast<double>(zs.latency_ns(0.5)) / 1e6},
                 {"latency_p99_ms", static_cast<double>(zs.latency_ns(0.99)) / 1e6}};
    }
  }
  auto& fa = j["faults"] = nlohmann::ordered_json::array();
  for (const AppliedFault& a : applied_) {
    fa.push_back({{"at_s", static_cast<double>(a.at.ns()) / 1e9},
                  {"healed_at_s", a.healed_at ? nlohmann::ordered_json(static_cast<double>(a.healed_at->ns()) / 1e9)
                                              : nlohmann::ordered_json(nullptr)},
                  {"what", a.what},
                  {"random", a.random}});
  }
  if (options_.swarm) {
    std::vector<std::string> ks;
    for (FaultKind k : swarm_kinds_) ks.emplace_back(to_string(k));
    j["swarm_draw"] = {{"kinds", ks}, {"rate_factor", swarm_factor_}};
  }
  if (ran_ && !failure_ && !run_->end_phase_timed_out()) {
    const auto& st = run_->verdict().stats;
    j["checker"] = {{"events", st.events},
                    {"messages", st.messages},
                    {"acknowledged", st.messages_acknowledged},
                    {"deliveries_required", st.deliveries_required},
                    {"sends_ok", st.sends_ok},
                    {"sends_fail", st.sends_fail},
                    {"sends_unknown", st.sends_unknown},
                    {"client_finals", st.client_finals},
                    {"violations", run_->verdict().violations.size()}};
  }
  return j.dump(2) + "\n";
}

}  // namespace wx::scenario
