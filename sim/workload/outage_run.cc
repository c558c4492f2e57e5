// The messaging outage run (see outage_run.h).
#include "sim/workload/outage_run.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "nodes/deploy/deployment.h"
#include "nodes/logic/ticket/ticket.h"
#include "nodes/storage/kv/kv_replica.h"
#include "nodes/storage/repl/replicator.h"
#include "nodes/storage/shard/shard_map.h"

namespace wx::sim::workload {

namespace {

namespace cm = checkers::messaging;

// One fixed key for the run's ticket ring: the run is a simulation, its
// tickets protect nothing real, and a fixed key keeps runs reproducible.
ticket::KeyRingConfig ring_config() {
  ticket::KeyRingConfig c;
  std::string s;
  for (size_t i = 0; i < ticket::kTicketKeyBytes; ++i) s.push_back(static_cast<char>(0x41 + 7 * i));
  c.keys.push_back({1, s});
  c.current_key_id = 1;
  return c;
}

}  // namespace

std::string validate(const OutageRunConfig& c) {
  if (c.users < 2 || c.users > kOutageUsersMax) {
    return fmt::format("users: {} is not between 2 and {}", c.users, kOutageUsersMax);
  }
  if (c.groups > kOutageGroupsMax) return fmt::format("groups: {} is above {}", c.groups, kOutageGroupsMax);
  if (c.duration < seconds(10) || c.duration > minutes(60)) {
    return fmt::format("duration: {} is not between 10s and 1h", to_string(c.duration));
  }
  if (!c.zone.empty() && (c.outage_start < Duration::zero() || c.outage_start >= c.duration)) {
    return fmt::format("outage_start: {} is not within the traffic (0 to {})", to_string(c.outage_start),
                       to_string(c.duration));
  }
  if (!c.zone.empty() && (c.outage_for < seconds(1) || c.outage_start + c.outage_for > c.duration)) {
    return fmt::format("outage_for: {} is not at least 1s ending by the end of the traffic ({})",
                       to_string(c.outage_for), to_string(c.duration));
  }
  if (!c.zone.empty()) {
    const std::vector<std::string> zones =
        c.spec && !c.spec->datacenters.empty() ? c.spec->datacenters[0].zones : std::vector<std::string>{"a", "b", "c"};
    if (std::find(zones.begin(), zones.end(), c.zone) == zones.end()) {
      std::string list;
      for (const std::string& z : zones) list += (list.empty() ? "" : ", ") + z;
      return fmt::format("zone: '{}' is not one of the deployment's zones ({})", c.zone, list);
    }
  }
  if (!(c.rate_per_min > 0 && c.rate_per_min <= kOutageRateMax)) {
    return fmt::format("rate_per_min: {} is not above 0 and at most {}", c.rate_per_min, kOutageRateMax);
  }
  if (c.contacts.degree.min < 1 || c.contacts.degree.max < c.contacts.degree.min ||
      c.contacts.degree.max > kContactsPerUserMax || c.contacts.degree.alpha < 0 ||
      !(c.contacts.locality >= 0 && c.contacts.locality <= 1)) {
    return fmt::format("contacts: degrees {}..{} (alpha {}), locality {}: expected 1 <= min <= max <= {}, "
                       "alpha >= 0, locality in [0, 1]",
                       c.contacts.degree.min, c.contacts.degree.max, c.contacts.degree.alpha, c.contacts.locality,
                       kContactsPerUserMax);
  }
  if (c.group_size.min < 2 || c.group_size.max < c.group_size.min || c.group_size.max > kGroupSizeMax ||
      c.group_size.alpha < 0) {
    return fmt::format("group_size: {}..{} (alpha {}): expected 2 <= min <= max <= {}, alpha >= 0", c.group_size.min,
                       c.group_size.max, c.group_size.alpha, kGroupSizeMax);
  }
  if (c.churn.online_mean < Duration::zero() || c.churn.offline_mean < Duration::zero() ||
      (c.churn.online_mean > Duration::zero()) != (c.churn.offline_mean > Duration::zero())) {
    return "churn: online and offline means are both 0 (no churn) or both positive";
  }
  for (auto [name, d] : {std::pair{"sync_interval", c.sync_interval},
                         std::pair{"heartbeat_interval", c.heartbeat_interval},
                         std::pair{"client_call_timeout", c.client_call_timeout}}) {
    if (d < milliseconds(10) || d > minutes(10)) {
      return fmt::format("{}: {} is not between 10ms and 10m", name, to_string(d));
    }
  }
  if (c.settle < Duration::zero() || c.end_limit < seconds(10)) return "settle/end_limit: out of range";
  return {};
}

OutageRun::OutageRun(OutageRunConfig config) : config_(std::move(config)) {
  if (std::string why = validate(config_); !why.empty()) throw std::invalid_argument("outage run: " + why);
  SimConfig cfg;
  cfg.seed = config_.seed;
  cfg.log_level = config_.log_level;
  cfg.trace_records_max = config_.trace_records_max;
  cfg.latency = config_.latency;
  sim_ = std::make_unique<Simulation>(cfg);
  Simulation& sim = *sim_;
  log_ = std::make_unique<HistoryLog>(sim);
  recorder_ = std::make_unique<GroupRecorder>(sim, *log_);

  deploy::DeploymentSpec spec;
  if (config_.spec) {
    spec = *config_.spec;
  } else {
    spec = deploy::single_datacenter_spec();
    for (deploy::Role r : {deploy::Role::msg, deploy::Role::access, deploy::Role::group, deploy::Role::fanout}) {
      spec.instances_per_zone[r] = 1;
    }
  }
  if (spec.datacenters.size() > 1) {
    // Several datacenters (docs/multi-dc.md): users homed in turn in each
    // (unless the spec says), replicators in every zone, cross-datacenter 1:1
    // messages in queues of their own.
    if (spec.home_datacenter.empty()) {
      for (size_t i = 0; i < config_.users; ++i) {
        spec.home_datacenter[kOutageUidBase + i] = spec.datacenters[i % spec.datacenters.size()].name;
      }
    }
    if (!spec.instances_per_zone.count(deploy::Role::repl)) spec.instances_per_zone[deploy::Role::repl] = 1;
    if (spec.templates.msg.queue.remote_queues == 0) spec.templates.msg.queue.remote_queues = 4;
    spec.templates.fanout.queue = spec.templates.msg.queue;
  }
  spec.templates.msg.keys = ring_config();
  spec.templates.access.keys = ring_config();
  // The server drops a session it has not heard from for 4 heartbeats (the
  // defaults: 1 s beats, 4 s timeout); its sweep runs 4 times per beat.
  spec.templates.access.session_timeout = config_.heartbeat_interval * 4;
  spec.templates.access.sweep_interval = std::max(milliseconds(250), config_.heartbeat_interval / 4);
  spec.templates.group.keys = ring_config();
  spec.templates.msg.ack_observer = log_->ack_observer();
  spec.templates.msg.group_members_observer = recorder_->members_observer();
  spec.templates.msg.group_ack_observer = recorder_->ack_observer();
  spec.templates.msg.unsafe_ack_before_inbox_commit = config_.unsafe_ack_before_inbox_commit;
  spec.templates.fanout.group_members_observer = recorder_->members_observer();
  spec.templates.fanout.group_ack_observer = recorder_->ack_observer();
  deployment_desc_ = std::make_shared<const deploy::Deployment>(spec);
  deployment_ = std::make_unique<SimDeployment>(sim, deployment_desc_);
  for (const deploy::NodeDesc& n : deployment_desc_->nodes()) {
    zone_nodes_ += !config_.zone.empty() && n.zone == config_.zone ? 1 : 0;
  }
  const std::string client_dc = spec.datacenters.at(0).name;

  // Tickets outlive the whole run (traffic, the end phase and a margin).
  const Duration ticket_ttl = config_.duration + config_.end_limit + minutes(10);
  auto ring = std::make_shared<ticket::KeyRing>(ring_config());
  auto ticket_for = [ring, ticket_ttl, &sim](uint64_t uid) { return *ring->issue(uid, sim.now(), ticket_ttl); };
  const Duration send_mean = nanoseconds(static_cast<int64_t>(60e9 / config_.rate_per_min));

  MessagingWorkloadConfig wc;
  wc.users = config_.users;
  wc.uid_base = kOutageUidBase;
  wc.contacts = config_.contacts;
  wc.send_interval_mean = send_mean;
  wc.churn = config_.churn;
  wc.sync_interval = config_.sync_interval;
  wc.daily_shape = config_.shape;
  wc.client_datacenter = client_dc;
  wc.path = UserPath::long_connection;
  wc.client.call_timeout = config_.client_call_timeout;
  wc.access.heartbeat_interval = config_.heartbeat_interval;
  wc.ticket_for = ticket_for;
  one_to_one_ = std::make_unique<MessagingWorkload>(sim, *deployment_, wc, *log_);

  if (config_.groups > 0) {
    GroupWorkloadConfig gc;
    GroupShapeConfig shape;
    shape.groups = config_.groups;
    shape.size = config_.group_size;
    shape.senders_max = kOutageGroupSendersMax;
    Rng rng = sim.derive_rng("demo-groups");
    gc.groups = make_groups(rng, one_to_one_->uids(), one_to_one_->contact_graph(), shape);
    gc.send_interval_mean = send_mean;
    gc.shape = config_.group_shape;
    gc.client_datacenter = client_dc;
    gc.ticket_for = ticket_for;
    gc.process_prefix = "g";  // the 1:1 clients are "c<uid>"
    gc.read_inboxes = false;  // the 1:1 workload's reader reads every user
    groups_ = std::make_unique<GroupWorkload>(sim, *deployment_, gc, *recorder_);
  }
  deployment_->start_all();

  const TimePoint t0 = sim.now();
  start_at_ = t0;
  down_at_ = t0 + config_.outage_start;
  up_at_ = down_at_ + config_.outage_for;
  end_at_ = t0 + config_.duration;
}

OutageRun::~OutageRun() = default;

size_t OutageRun::group_members() const { return groups_ ? groups_->uids().size() : 0; }

double OutageRun::mean_contacts() const {
  size_t edges = 0;
  for (const auto& n : one_to_one_->contact_graph()) edges += n.size();
  return static_cast<double>(edges) / static_cast<double>(config_.users);
}

void OutageRun::schedule_zone_outage() {
  Simulation& sim = *sim_;
  const std::string zone = config_.zone;
  sim.at(down_at_, [this, zone] {
    sim_->faults().kill_zone(zone);
    timeline_.push_back(
        {sim_->now(), fmt::format("zone {} loses power ({} server nodes, silently)", zone, zone_nodes_)});
  });
  sim.at(up_at_, [this, zone] {
    (void)sim_->faults().restore_zone(zone);
    timeline_.push_back({sim_->now(), fmt::format("zone {} restored (its nodes restart from their disks)", zone)});
  });
}

bool OutageRun::run(std::string* why, const std::function<void()>& before_end_phase) {
  Simulation& sim = *sim_;
  if (!config_.zone.empty()) schedule_zone_outage();
  if (groups_) {
    if (sim.run_until([this] { return groups_->all_created(); }, end_at_) && groups_->all_created()) {
      groups_->start_traffic();
      timeline_.push_back({sim.now(), fmt::format("all {} groups created: group sends start", config_.groups)});
    } else {
      timeline_.push_back({sim.now(), "groups not all created by the end of the traffic: no group sends"});
    }
  }
  sim.run_until(end_at_);
  if (sim.failure()) {
    *why = *sim.failure();
    return false;
  }
  timeline_.push_back({sim.now(), "traffic stops; quiescence, then final states"});
  if (before_end_phase) before_end_phase();
  EndPhase end = one_to_one_->end_phase();
  if (groups_) end += groups_->end_phase();
  if (!run_end_phase(sim, end, config_.settle, sim.now() + config_.end_limit, why)) {
    end_timed_out_ = !sim.failure().has_value();
    return false;
  }
  done_at_ = sim.now();
  if (sim.failure()) {
    *why = *sim.failure();
    return false;
  }
  timeline_.push_back({sim.now(), "final states recorded"});
  std::stable_sort(timeline_.begin(), timeline_.end(), [](const Mark& x, const Mark& y) { return x.at < y.at; });

  cm::CheckOptions co;
  co.context = fmt::format("seed {}", config_.seed);
  verdict_ = cm::check_messaging(log_->history(), co);
  if (multi_datacenter()) {
    const bool caught_up = wait_for_replication();
    timeline_.push_back({sim.now(), caught_up ? "replicas caught up: every datacenter's copies dumped"
                                              : "replicas NOT caught up within the limit: dumped as they are"});
    replica_verdict_ = checkers::check_replica_convergence(dump_replicas(), user_placements());
    if (sim.failure()) {
      *why = *sim.failure();
      return false;
    }
  }
  return true;
}

bool OutageRun::multi_datacenter() const { return deployment_desc_->shard_map()->multi_datacenter(); }

bool OutageRun::wait_for_replication() {
  Simulation& sim = *sim_;
  const deploy::Deployment& d = *deployment_desc_;
  const shard::ShardMap& map = *d.shard_map();
  // What each source group had applied when the end phase finished: every
  // user record written by then is below it.
  std::map<std::pair<std::string, uint32_t>, uint64_t> target;
  for (size_t g = 0; g < map.group_count(); ++g) {
    uint64_t applied = 0;
    for (NodeId id : map.group(g).replicas) {
      if (auto* r = sim.node_as<kv::KvReplica>(id)) applied = std::max(applied, r->applied_index());
    }
    target[{map.group(g).datacenter, map.group(g).shard}] = applied;
  }
  std::vector<NodeId> replicators = d.nodes_of(deploy::Role::repl);
  auto caught_up = [&] {
    for (const deploy::DatacenterSpec& dc : d.spec().datacenters) {
      // Every stream into dc: some replicator of dc holds it with a cursor at
      // or past the target.
      for (const auto& [src, applied] : target) {
        if (src.first == dc.name) continue;
        bool ok = false;
        for (NodeId id : replicators) {
          if (d.node(id).datacenter != dc.name) continue;
          auto* r = sim.node_as<repl::Replicator>(id);
          if (r == nullptr) continue;
          for (const repl::StreamStatus& st : r->stats().streams) {
            if (st.held && st.source_dc == src.first && st.shard == src.second && st.cursor >= applied) ok = true;
          }
        }
        if (!ok) return false;
      }
    }
    return true;
  };
  const TimePoint limit = sim.now() + config_.replication_limit;
  const bool ok = sim.run_until(caught_up, limit) && caught_up();
  if (ok) caught_up_at_ = sim.now();
  sim.run_until(sim.now() + config_.replica_settle);
  return ok;
}

std::vector<checkers::ReplicaDump> OutageRun::dump_replicas() {
  std::vector<checkers::ReplicaDump> out;
  for (const deploy::NodeDesc& n : deployment_desc_->nodes()) {
    if (n.role != deploy::Role::kv || n.global) continue;
    checkers::ReplicaDump dump;
    dump.datacenter = n.datacenter;
    dump.replica = n.name;
    dump.shard = n.shard;
    if (auto* r = sim_->node_as<kv::KvReplica>(n.id)) {
      for (const kv::Item& item : r->dump()) {
        const std::optional<uint64_t> uid = shard::user_of_key(item.key());
        if (!uid) continue;
        dump.items.push_back(checkers::ReplicaItem{*uid, item.key(), item.version(), msg::body_hash(item.value())});
      }
    }
    out.push_back(std::move(dump));
  }
  return out;
}

std::map<uint64_t, checkers::UserPlacement> OutageRun::user_placements() const {
  std::map<uint64_t, checkers::UserPlacement> out;
  const shard::ShardMap& map = *deployment_desc_->shard_map();
  for (uint64_t uid : one_to_one_->uids()) {
    out[uid] = checkers::UserPlacement{map.home_of(uid).value_or(""), map.shard_of(uid)};
  }
  return out;
}

std::set<std::string> OutageRun::processes_homed_in(const std::string& datacenter) const {
  std::set<std::string> out;
  const shard::ShardMap& map = *deployment_desc_->shard_map();
  for (uint64_t uid : one_to_one_->uids()) {
    if (map.home_of(uid).value_or("") != datacenter) continue;
    out.insert("c" + std::to_string(uid));
    out.insert("g" + std::to_string(uid));
  }
  return out;
}

}  // namespace wx::sim::workload
