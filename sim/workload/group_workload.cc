// The group-chat workload: users, recorder and reader (see group_workload.h).
#include "sim/workload/group_workload.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "nodes/logic/group/group_service.h"

namespace wx::sim::workload {

namespace cm = checkers::messaging;

// --- GroupRecorder ----------------------------------------------------------------

msg::GroupMembersObserver GroupRecorder::members_observer() {
  return [this](NodeId server, const msg::GroupMembersRecord& r) {
    cm::GroupMembers f;
    f.group = r.group_id;
    f.sender = r.sender;
    f.client_msg_id = r.client_msg_id;
    f.message_id = r.message_id;
    f.members = r.members;
    log_.history().push_back(cm::Event{sim_.now().ns(), "srv-" + std::to_string(server.value), std::move(f)});
    Progress& p = progress_[r.message_id];
    if (p.expected.empty()) {
      for (uint64_t m : r.members) {
        if (m != r.sender) p.expected.insert(m);
      }
    }
    update_pending(r.message_id, p);
  };
}

msg::GroupAckObserver GroupRecorder::ack_observer() {
  return [this](NodeId server, const msg::GroupAckRecord& a) {
    cm::SendAck ack;
    ack.message_id = a.message_id;
    ack.sender = a.sender;
    ack.client_msg_id = a.client_msg_id;
    ack.to = cm::Conversation{cm::ConversationKind::group, a.group_id};
    for (const auto& [member, seq] : a.recipients) ack.recipients.push_back(cm::RecipientSeq{member, seq});
    log_.history().push_back(cm::Event{sim_.now().ns(), "srv-" + std::to_string(server.value), std::move(ack)});
    Progress& p = progress_[a.message_id];
    const bool was_done = !p.expected.empty() && p.stored.size() >= p.expected.size();
    for (const auto& [member, seq] : a.recipients) p.stored.insert(member);
    update_pending(a.message_id, p);
    if (!was_done && !p.expected.empty() && p.stored.size() >= p.expected.size()) {
      completed_at_[a.message_id] = sim_.now();
    }
  };
}

void GroupRecorder::update_pending(const std::string& message_id, const Progress& p) {
  bool missing = false;
  for (uint64_t m : p.expected) {
    if (!p.stored.count(m)) {
      missing = true;
      break;
    }
  }
  if (missing) {
    pending_.insert(message_id);
  } else {
    pending_.erase(message_id);
  }
}

bool GroupRecorder::drained() const { return pending_.empty(); }

void GroupRecorder::record_invoke(const std::string& process, uint64_t op_id, uint64_t user, uint64_t group,
                                  const std::string& cmid, uint64_t body_hash) {
  log_.history().push_back(cm::Event{
      sim_.now().ns(), process,
      cm::Invoke{op_id, cm::SendRequest{user, cm::Conversation{cm::ConversationKind::group, group}, cmid, body_hash}}});
}

void GroupRecorder::record_completion(const std::string& process, uint64_t op_id, cm::Outcome outcome,
                                      const std::string& message_id, const std::string& error) {
  cm::Completion c;
  c.op_id = op_id;
  c.op = cm::OpKind::send;
  c.outcome = outcome;
  if (outcome == cm::Outcome::ok) {
    c.result = cm::Result{cm::SendResult{message_id}};
  } else {
    c.error = error;
  }
  log_.history().push_back(cm::Event{sim_.now().ns(), process, std::move(c)});
}

// --- GroupUser --------------------------------------------------------------------

GroupUser::GroupUser(Runtime& rt, const rpc::ServiceDirectory& directory, rpc::Locality locality, uint64_t uid,
                     std::string ticket, std::vector<GroupSpec> to_create, std::vector<uint64_t> send_groups,
                     const GroupWorkloadConfig* config, GroupRecorder* recorder)
    : rt_(rt),
      endpoint_(rt),
      router_(rt, endpoint_, directory, std::move(locality)),
      uid_(uid),
      ticket_(std::move(ticket)),
      process_(config->process_prefix + std::to_string(uid)),
      to_create_(std::move(to_create)),
      send_groups_(std::move(send_groups)),
      config_(config),
      recorder_(recorder) {}

void GroupUser::start() {
  endpoint_.start();
  rt_.spawn(create_loop(), "group-create");
}

void GroupUser::start_traffic() {
  if (traffic_ || send_groups_.empty()) return;
  traffic_ = true;
  rt_.spawn(send_loop(), "group-send");
}

Task<void> GroupUser::create_loop() {
  for (const GroupSpec& g : to_create_) {
    for (;;) {
      group::CreateRequest req;
      req.set_group_id(g.group_id);
      req.set_creator(uid_);
      for (uint64_t m : g.members) req.add_members(m);
      rpc::CallOptions o;
      o.ticket = ticket_;
      o.timeout = config_->call_timeout;
      rpc::Result<group::GroupReply> r =
          co_await router_.call<group::GroupReply>(std::string(group::kServiceName), group::kCreateMethod, req, o);
      if (r.ok() && r->code() == group::GROUP_OK) break;
      if (r.ok() && r->code() != group::GROUP_UNKNOWN) {
        rt_.error("group create {} refused: {}", g.group_id, r->error());
        break;
      }
      co_await rt_.sleep(config_->retry_pause);
    }
  }
  created_ = true;
}

Task<msg::MsgCode> GroupUser::send_once(uint64_t group, std::string body, std::string* message_id) {
  const std::string cmid = process_ + "-g" + std::to_string(next_cmid_++);
  const uint64_t hash = msg::body_hash(body);
  msg::MsgCode last = msg::MSG_UNKNOWN;
  for (int attempt = 0; attempt < config_->attempts_max; ++attempt) {
    msg::GroupSendRequest req;
    req.set_group_id(group);
    req.set_client_msg_id(cmid);
    req.set_body(body);
    rpc::CallOptions o;
    o.ticket = ticket_;
    o.timeout = config_->call_timeout;
    const uint64_t op = next_op_++;
    recorder_->record_invoke(process_, op, uid_, group, cmid, hash);
    rpc::Result<msg::GroupSendReply> r =
        co_await router_.call<msg::GroupSendReply>("msg", msg::kGroupSendMethod, req, o);
    if (!r.ok() || r->code() == msg::MSG_UNKNOWN) {
      recorder_->record_completion(process_, op, cm::Outcome::info, "", r.ok() ? r->error() : "rpc failed");
      co_await rt_.sleep(config_->retry_pause);
      continue;
    }
    last = r->code();
    if (r->code() == msg::MSG_OK) {
      recorder_->record_completion(process_, op, cm::Outcome::ok, r->message_id(), "");
      if (message_id != nullptr) *message_id = r->message_id();
      ++sends_ok_;
    } else {
      recorder_->record_completion(process_, op, cm::Outcome::fail, "", r->error());
    }
    break;
  }
  co_return last;
}

Task<void> GroupUser::send_loop() {
  uint64_t n = 0;
  // A shape: draw at the peak rate and keep a draw with probability
  // factor / peak (thinning), as SimUser::send_loop does.
  const DailyShape* shape = config_->shape.flat() ? nullptr : &config_->shape;
  const double peak = shape != nullptr ? shape->peak() : 1.0;
  const Duration draw_mean =
      shape != nullptr
          ? nanoseconds(static_cast<int64_t>(static_cast<double>(config_->send_interval_mean.ns()) / peak))
          : config_->send_interval_mean;
  while (!stopped_) {
    co_await rt_.sleep(rt_.rng().exponential(draw_mean));
    if (stopped_) break;
    if (shape != nullptr && !rt_.rng().bernoulli(shape->factor(rt_.now()) / peak)) continue;
    const uint64_t g = send_groups_[rt_.rng().uniform(send_groups_.size())];
    sending_ = true;
    (void)co_await send_once(g, "to g" + std::to_string(g) + " #" + std::to_string(++n) + " from " +
                                    std::to_string(uid_), nullptr);
    sending_ = false;
  }
}

// --- GroupWorkload ----------------------------------------------------------------

GroupWorkload::GroupWorkload(Simulation& sim, SimDeployment& deployment, GroupWorkloadConfig config,
                             GroupRecorder& recorder)
    : sim_(sim), config_(std::move(config)), recorder_(recorder) {
  std::set<uint64_t> all;
  std::map<uint64_t, std::vector<GroupSpec>> creates;
  std::map<uint64_t, std::vector<uint64_t>> sends;
  for (const GroupSpec& g : config_.groups) {
    if (g.members.empty()) throw std::invalid_argument("group workload: a group without members");
    all.insert(g.members.begin(), g.members.end());
    creates[g.members.front()].push_back(g);
    for (uint64_t s : g.senders) sends[s].push_back(g.group_id);
  }
  if (all.size() > kGroupWorkloadUsersMax) throw std::invalid_argument("group workload: too many users");
  uids_.assign(all.begin(), all.end());
  const rpc::ServiceDirectory& directory = deployment.deployment().directory();
  const shard::ShardMap& shards = *deployment.deployment().shard_map();
  const GroupWorkloadConfig* cfg = &config_;
  GroupRecorder* rec = &recorder_;
  for (uint64_t uid : uids_) {
    if (!creates.count(uid) && !sends.count(uid)) continue;  // receives only: no node
    const std::string ticket = config_.ticket_for ? config_.ticket_for(uid) : std::string();
    std::vector<GroupSpec> c = creates[uid];
    std::vector<uint64_t> s = sends[uid];
    // Several datacenters: the device sits in the user's home datacenter.
    const std::string dc = shards.multi_datacenter() ? shards.home_of(uid).value_or(config_.client_datacenter)
                                                     : config_.client_datacenter;
    const rpc::Locality locality{dc, config_.client_zone};
    users_[uid] = sim.add_node({config_.process_prefix + std::to_string(uid), Placement{dc, config_.client_zone, ""},
                                [&directory, locality, uid, ticket, c, s, cfg, rec](Runtime& rt) {
                                  return std::make_unique<GroupUser>(rt, directory, locality, uid, ticket, c, s, cfg,
                                                                     rec);
                                }});
  }
  if (config_.read_inboxes) {
    reader_ = add_inbox_reader(sim, deployment, "group-reader", uids_, config_.ticket_for, recorder_.log(),
                               config_.client_datacenter, config_.client_zone);
  }
}

GroupUser* GroupWorkload::user(uint64_t uid) {
  auto it = users_.find(uid);
  return it == users_.end() ? nullptr : sim_.node_as<GroupUser>(it->second);
}

bool GroupWorkload::all_created() {
  for (const auto& [uid, id] : users_) {
    GroupUser* u = sim_.node_as<GroupUser>(id);
    if (u == nullptr || !u->created()) return false;
  }
  return true;
}

void GroupWorkload::start_traffic() {
  for (const auto& [uid, id] : users_) {
    if (GroupUser* u = sim_.node_as<GroupUser>(id)) u->start_traffic();
  }
}

void GroupWorkload::stop_traffic() {
  for (const auto& [uid, id] : users_) {
    if (GroupUser* u = sim_.node_as<GroupUser>(id)) u->stop_traffic();
  }
}

bool GroupWorkload::all_idle() {
  for (const auto& [uid, id] : users_) {
    GroupUser* u = sim_.node_as<GroupUser>(id);
    if (u != nullptr && !u->idle()) return false;
  }
  return true;
}

EndPhase GroupWorkload::end_phase() {
  EndPhase p;
  p.stop.push_back([this] { stop_traffic(); });
  p.idle.push_back([this] { return all_idle(); });
  p.drained.push_back([this] { return recorder_.drained(); });
  if (reader_) p.readers.push_back(*reader_);
  return p;
}

bool GroupWorkload::finish(Duration settle, TimePoint limit, std::string* why) {
  return run_end_phase(sim_, end_phase(), settle, limit, why);
}

}  // namespace wx::sim::workload
