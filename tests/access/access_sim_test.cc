// The access layer in simulation (nodes/access/, nodes/client/access_link.*;
// docs/messaging.md, "Access layer"): long connections with heartbeats,
// payload-less notifies pushed after msg.Send stores a message, notify-driven
// syncs, reconnects, the short connection, and tickets checked at access.
// Every convergence run (run_world) also has 4 group chats among its users,
// fanned out through the durable queue, and is judged by the messaging
// checker over every recipient's client final state: each 1:1 and each group
// message held exactly once, in order, by every recipient.
//
//   AccessSim.NotifyReachesOnlineRecipientQuickly   send → push → sync: the
//       recipient holds the message well under the periodic sync interval.
//   AccessSim.LostNotifiesConverge          every push dropped: converges.
//   AccessSim.DuplicatedNotifiesConverge    every push sent twice: converges,
//       duplicates cost no extra syncs.
//   AccessSim.AccessCrashMidPushConverges   access nodes crash while pushing.
//   AccessSim.OfflineClientThroughZoneOutage  clients offline through a whole
//       zone outage come back and converge.
//   AccessSim.BadTicketsRefusedAtAccess     forged / expired / other user's
//       tickets refused by every access method, nothing forwarded; the same
//       forged ticket straight into msg.Send is refused there too.
//   AccessSim.HeartbeatTimeoutDropsSilentSession
//   AccessSim.ReconnectsToAnotherZoneWhenItsZoneDies
//   AccessSim.ShortConnectionPathConverges
//   AccessSim.HundredUsersZoneOutageThroughAccess  the msg_sim_test run, via
//       access nodes (WX_SEEDS, default 2).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <variant>
#include <string>
#include <vector>

#include "checkers/messaging.h"
#include "nodes/access/access_service.h"
#include "nodes/client/messaging_client.h"
#include "nodes/deploy/deployment.h"
#include "nodes/logic/msg/msg_service.h"
#include "nodes/logic/ticket/ticket.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "sim/workload/end_phase.h"
#include "sim/workload/group_workload.h"
#include "sim/workload/messaging_workload.h"
#include "sim/workload/population.h"
#include "tests/support/messaging_world.h"
#include "tests/support/script_caller.h"
#include "tests/support/seeds.h"

namespace wx::access {
namespace {

using namespace time_literals;
namespace cm = checkers::messaging;
namespace wl = sim::workload;
using Caller = wx::testing::ScriptCaller;

constexpr const char* kBinary = "build/tests/access/access_sim_test";
constexpr Duration kTicketTtl = minutes(120);
constexpr Duration kScenarioLimit = seconds(600);
constexpr Duration kSettle = seconds(5);

using testing::key_ring_config;

// The shared set-up (tests/support/messaging_world.h) with an access, a
// group and a fan-out instance per zone; the group facts (members, acks) go
// to `groups` through the msg and fan-out observers.
struct GroupSlot {
  std::unique_ptr<wl::GroupRecorder> recorder;
};

struct World : testing::MessagingWorld {
  explicit World(uint64_t seed, const std::function<void(deploy::DeploymentSpec&)>& tweak = {})
      : World(seed, tweak, std::make_shared<GroupSlot>()) {}
  std::shared_ptr<GroupSlot> group_slot;
  wl::GroupRecorder& groups() { return *group_slot->recorder; }

 private:
  World(uint64_t seed, const std::function<void(deploy::DeploymentSpec&)>& tweak, std::shared_ptr<GroupSlot> slot)
      : MessagingWorld(seed,
                       [&tweak, slot](deploy::DeploymentSpec& spec) {
                         spec.instances_per_zone[deploy::Role::access] = 1;
                         spec.instances_per_zone[deploy::Role::group] = 1;
                         spec.instances_per_zone[deploy::Role::fanout] = 1;
                         spec.templates.group.keys = key_ring_config();
                         auto members = [slot](NodeId n, const msg::GroupMembersRecord& r) {
                           if (slot->recorder) slot->recorder->members_observer()(n, r);
                         };
                         auto acks = [slot](NodeId n, const msg::GroupAckRecord& a) {
                           if (slot->recorder) slot->recorder->ack_observer()(n, a);
                         };
                         spec.templates.msg.group_members_observer = members;
                         spec.templates.msg.group_ack_observer = acks;
                         spec.templates.fanout.group_members_observer = members;
                         spec.templates.fanout.group_ack_observer = acks;
                         if (tweak) tweak(spec);
                       }),
        group_slot(std::move(slot)) {
    group_slot->recorder = std::make_unique<wl::GroupRecorder>(sim, *log);
  }

 public:
  std::vector<NodeId> access_nodes() const { return deployment->nodes_of(deploy::Role::access); }
  AccessServiceStats access_totals() {
    AccessServiceStats t;
    for (NodeId n : access_nodes()) {
      if (AccessService* a = sim.node_as<AccessService>(n)) {
        const AccessServiceStats& s = a->stats();
        t.pushes += s.pushes;
        t.pushes_dropped += s.pushes_dropped;
        t.pushes_duplicated += s.pushes_duplicated;
        t.forwarded += s.forwarded;
        t.notifies += s.notifies;
        t.unauthenticated += s.unauthenticated;
      }
    }
    return t;
  }
};

cm::MessagingVerdict judge(const cm::History& h, uint64_t seed) { return testing::judge_messaging(h, seed); }

// --- workload runs ------------------------------------------------------------------

struct RunOptions {
  size_t users = 30;
  Duration traffic = seconds(60);
  bool outage = false;  // zone b dark 20–50 s
  wl::UserPath path = wl::UserPath::automatic;
  Duration sync_interval = seconds(3);
  // Group chats among the users (3-8 members, mostly contacts), the first 3
  // members of each sending from a second device ("g<uid>"); every member's
  // client must end holding every group message exactly once.
  size_t groups = 4;
  std::function<void(deploy::DeploymentSpec&)> tweak;
  // Called after the deployment and users exist, before start.
  std::function<void(World&, wl::MessagingWorkload&)> setup;
};

struct RunResult {
  bool finished = false;
  std::string why;
  cm::MessagingVerdict verdict;
  client::MessagingClient::Stats totals;
  size_t group_acks = 0;  // group sends acknowledged
  AccessServiceStats access;
  uint64_t link_connects = 0, link_drops = 0;
  double sim_seconds = 0, wall_seconds = 0;
};

RunResult run_world(uint64_t seed, const RunOptions& ro) {
  const auto wall0 = std::chrono::steady_clock::now();
  World w(seed, ro.tweak);
  wl::MessagingWorkloadConfig wc;
  wc.users = ro.users;
  wc.contacts = wl::ContactGraphConfig::fixed(4);
  wc.send_interval_mean = seconds(5);
  wc.sync_interval = ro.sync_interval;
  wc.path = ro.path;
  wc.ticket_for = [&w](uint64_t uid) { return w.ticket_for(uid); };
  wc.client.call_timeout = seconds(1);
  wl::MessagingWorkload load(w.sim, *w.deployment, wc, *w.log);
  std::unique_ptr<wl::GroupWorkload> groups;
  if (ro.groups > 0) {
    wl::GroupWorkloadConfig gc;
    wl::GroupShapeConfig shape;
    shape.groups = ro.groups;
    shape.size = {3, 8, 0};
    Rng rng = w.sim.derive_rng("access-test-groups");
    gc.groups = wl::make_groups(rng, load.uids(), load.contact_graph(), shape);
    gc.send_interval_mean = seconds(5);
    gc.ticket_for = wc.ticket_for;
    gc.process_prefix = "g";  // the 1:1 clients are "c<uid>"
    gc.read_inboxes = false;  // the 1:1 workload's reader reads every user
    groups = std::make_unique<wl::GroupWorkload>(w.sim, *w.deployment, gc, w.groups());
  }
  if (ro.setup) ro.setup(w, load);
  w.deployment->start_all();
  if (ro.outage) {
    w.sim.at(TimePoint::zero() + 20_s, [&w] { w.sim.faults().kill_zone("b"); });
    w.sim.at(TimePoint::zero() + 50_s, [&w] { (void)w.sim.faults().restore_zone("b"); });
  }
  RunResult res;
  if (groups) {
    if (!w.sim.run_until([&] { return groups->all_created(); }, TimePoint::zero() + 15_s)) {
      res.why = "the groups were not all created within 15 s";
      return res;
    }
    groups->start_traffic();
  }
  w.sim.run_until(TimePoint::zero() + ro.traffic);
  res.access = w.access_totals();  // before the end phase
  wl::EndPhase end = load.end_phase();
  if (groups) end += groups->end_phase();
  res.finished = wl::run_end_phase(w.sim, end, kSettle, w.sim.now() + kScenarioLimit, &res.why);
  for (const cm::Event& e : w.log->history()) {
    const auto* ack = std::get_if<cm::SendAck>(&e.body);
    res.group_acks += ack != nullptr && ack->to.kind == cm::ConversationKind::group;
  }
  if (w.sim.failure()) {
    res.finished = false;
    res.why = "simulation failed: " + *w.sim.failure();
  }
  res.totals = load.totals();
  for (size_t i = 0; i < load.uids().size(); ++i) {
    if (wl::SimUser* u = load.user(i); u != nullptr && u->link() != nullptr) {
      res.link_connects += u->link()->stats().connects;
      res.link_drops += u->link()->stats().drops;
    }
  }
  res.verdict = judge(w.log->history(), seed);
  res.sim_seconds = static_cast<double>(w.sim.now().ns()) / 1e9;
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return res;
}

void expect_converged(const RunResult& r, uint64_t seed, const char* test, size_t users) {
  const std::string rerun = testing::rerun_hint(seed, kBinary, test);
  ASSERT_TRUE(r.finished) << "seed " << seed << ": " << r.why << "\n" << rerun;
  ASSERT_TRUE(r.verdict.ok()) << cm::format_verdict(r.verdict) << "\n" << rerun;
  EXPECT_EQ(r.verdict.stats.client_finals, users) << rerun;
  EXPECT_EQ(r.verdict.stats.server_finals, users) << rerun;
  EXPECT_GT(r.totals.sends_ok, 0u) << rerun;
  // Group messages too: each member's client holds each exactly once (the
  // checker's lost / duplicated checks over every recipient's final state).
  EXPECT_GT(r.group_acks, 0u) << "no group message was acknowledged\n" << rerun;
  if (testing::verbose()) {
    std::printf("%s seed %llu: %llu sends (%llu failed, %llu unknown), %llu ok, %llu received, %llu notifies (%llu stale), %llu notify syncs, "
                "%llu pushes, %llu link connects, %.1f sim s in %.2f wall s\n",
                test, static_cast<unsigned long long>(seed), static_cast<unsigned long long>(r.totals.sends),
                static_cast<unsigned long long>(r.totals.sends_failed),
                static_cast<unsigned long long>(r.totals.sends_unknown),
                static_cast<unsigned long long>(r.totals.sends_ok),
                static_cast<unsigned long long>(r.totals.messages_received),
                static_cast<unsigned long long>(r.totals.notifies),
                static_cast<unsigned long long>(r.totals.notifies_stale),
                static_cast<unsigned long long>(r.totals.notify_syncs),
                static_cast<unsigned long long>(r.access.pushes), static_cast<unsigned long long>(r.link_connects),
                r.sim_seconds, r.wall_seconds);
  }
}

// --- notify latency -----------------------------------------------------------------

Task<void> send_one(wl::SimUser* user, uint64_t to, client::SendOutcome* out, bool* done) {
  *out = co_await user->client().send(to, "ping over the long connection");
  *done = true;
}

bool holds(wl::SimUser* u, const std::string& message_id) {
  for (const msg::MessageRecord& m : u->client().received()) {
    if (m.message_id == message_id) return true;
  }
  return false;
}

TEST(AccessSim, NotifyReachesOnlineRecipientQuickly) {
  World w(3);
  wl::MessagingWorkloadConfig wc;
  wc.users = 2;
  wc.contacts = wl::ContactGraphConfig::fixed(0);  // no random sends
  wc.sync_interval = seconds(60);        // the periodic sync is far away
  wc.ticket_for = [&w](uint64_t uid) { return w.ticket_for(uid); };
  wl::MessagingWorkload load(w.sim, *w.deployment, wc, *w.log);
  w.deployment->start_all();
  w.sim.run_until(TimePoint::zero() + 5_s);  // leaders, sessions, first syncs
  wl::SimUser* alice = load.user(0);
  wl::SimUser* bob = load.user(1);
  ASSERT_NE(bob->link(), nullptr);
  ASSERT_TRUE(bob->link()->connected());
  Duration worst = Duration::zero();
  for (int i = 0; i < 5; ++i) {
    client::SendOutcome out;
    bool done = false;
    w.sim.runtime(load.user_nodes()[0])->spawn(send_one(alice, load.uids()[1], &out, &done), "test-send");
    ASSERT_TRUE(w.sim.run_until([&] { return done; }, w.sim.now() + 30_s));
    ASSERT_EQ(out.status, client::SendStatus::ok) << out.error;
    const TimePoint acked = w.sim.now();
    ASSERT_TRUE(w.sim.run_until([&] { return holds(bob, out.message_id); }, w.sim.now() + 30_s));
    const Duration latency = w.sim.now() - acked;
    worst = std::max(worst, latency);
    w.sim.run_for(2_s);
  }
  // The periodic sync is 60 s away: only the push can explain this.
  EXPECT_LT(worst, milliseconds(200)) << "worst send→held latency " << to_string(worst);
  EXPECT_GE(bob->client().stats().notify_syncs, 5u);
  EXPECT_GE(bob->link()->stats().pushes, 5u);
  std::printf("worst latency from send OK to the recipient holding it: %s (periodic sync: 60 s)\n",
              to_string(worst).c_str());
}

// --- faults on the notify path -------------------------------------------------------

TEST(AccessSim, LostNotifiesConverge) {
  const testing::SeedRange seeds = testing::seed_range(2);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    RunOptions ro;
    ro.tweak = [](deploy::DeploymentSpec& s) { s.templates.access.test_drop_push_p = 1.0; };
    RunResult r = run_world(seed, ro);
    expect_converged(r, seed, "AccessSim.LostNotifiesConverge", ro.users);
    EXPECT_GT(r.access.pushes_dropped, 100u);
    EXPECT_EQ(r.access.pushes, 0u) << "every push was to be lost";
    EXPECT_EQ(r.totals.notifies, 0u);
  }
}

TEST(AccessSim, DuplicatedNotifiesConverge) {
  const testing::SeedRange seeds = testing::seed_range(2);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    RunOptions ro;
    ro.tweak = [](deploy::DeploymentSpec& s) { s.templates.access.test_duplicate_push_p = 1.0; };
    RunResult r = run_world(seed, ro);
    expect_converged(r, seed, "AccessSim.DuplicatedNotifiesConverge", ro.users);
    EXPECT_GT(r.access.pushes_duplicated, 100u);
    // Each duplicate finds its version already due or held: no sync of its own.
    EXPECT_GE(r.totals.notifies_stale * 2 + 2, r.totals.notifies);
    EXPECT_LE(r.totals.notify_syncs, r.totals.notifies - r.totals.notifies_stale + r.link_connects);
  }
}

TEST(AccessSim, AccessCrashMidPushConverges) {
  const testing::SeedRange seeds = testing::seed_range(2);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    RunOptions ro;
    auto crashes = std::make_shared<int>(0);
    auto pushes = std::make_shared<uint64_t>(0);
    World* world = nullptr;
    auto world_ptr = std::make_shared<World*>(nullptr);
    ro.setup = [world_ptr](World& w, wl::MessagingWorkload&) { *world_ptr = &w; };
    ro.tweak = [crashes, pushes, world_ptr](deploy::DeploymentSpec& s) {
      // Every 40th push: the pushing node crashes right after sending it
      // (the frame is lost with the connection), and restarts 3 s later.
      s.templates.access.on_push = [crashes, pushes, world_ptr](NodeId self, uint64_t, uint64_t) {
        World* w = *world_ptr;
        if (w == nullptr || ++*pushes % 40 != 0 || *crashes >= 6) return;
        ++*crashes;
        w->sim.at(w->sim.now(), [w, self] { w->sim.crash(self); });
        w->sim.at(w->sim.now() + 3_s, [w, self] { w->sim.start(self); });
      };
    };
    (void)world;
    RunResult r = run_world(seed, ro);
    expect_converged(r, seed, "AccessSim.AccessCrashMidPushConverges", ro.users);
    EXPECT_GE(*crashes, 3) << "the access nodes were to crash mid-push";
    EXPECT_GT(r.link_drops, 0u) << "clients noticed the crashes";
    EXPECT_GT(r.link_connects, ro.users) << "clients reconnected";
  }
}

TEST(AccessSim, OfflineClientThroughZoneOutage) {
  const testing::SeedRange seeds = testing::seed_range(2);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    RunOptions ro;
    ro.outage = true;
    ro.traffic = seconds(70);
    auto offline_received = std::make_shared<std::vector<size_t>>();
    ro.setup = [offline_received](World& w, wl::MessagingWorkload& load) {
      for (size_t i = 0; i < 3; ++i) {
        const NodeId n = load.user_nodes()[i];
        w.sim.at(TimePoint::zero() + 15_s, [&w, n] { w.sim.node_as<wl::SimUser>(n)->set_offline(true); });
        w.sim.at(TimePoint::zero() + 55_s, [&w, n, offline_received] {
          wl::SimUser* u = w.sim.node_as<wl::SimUser>(n);
          offline_received->push_back(u->client().received().size());
          u->set_offline(false);
        });
      }
    };
    RunResult r = run_world(seed, ro);
    expect_converged(r, seed, "AccessSim.OfflineClientThroughZoneOutage", ro.users);
    EXPECT_EQ(offline_received->size(), 3u);
  }
}

TEST(AccessSim, ShortConnectionPathConverges) {
  const uint64_t seed = testing::seed_range(1).first;
  RunOptions ro;
  ro.users = 20;
  ro.traffic = seconds(40);
  ro.path = wl::UserPath::short_connection;
  RunResult r = run_world(seed, ro);
  expect_converged(r, seed, "AccessSim.ShortConnectionPathConverges", ro.users);
  EXPECT_GT(r.access.forwarded, 100u) << "requests went through the access layer";
  EXPECT_EQ(r.link_connects, 0u);
}

TEST(AccessSim, HundredUsersZoneOutageThroughAccess) {
  const testing::SeedRange seeds = testing::seed_range(2);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    RunOptions ro;
    ro.users = 100;
    ro.traffic = seconds(90);
    ro.outage = true;
    RunResult r = run_world(seed, ro);
    expect_converged(r, seed, "AccessSim.HundredUsersZoneOutageThroughAccess", ro.users);
    EXPECT_GT(r.totals.sends_ok, 1000u);
    EXPECT_GT(r.access.forwarded, 1000u);
    EXPECT_GT(r.totals.notify_syncs, 100u);
    std::printf("seed %llu: %llu sends ok, %llu notify syncs, %llu link connects, %.1f sim s in %.2f wall s\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(r.totals.sends_ok),
                static_cast<unsigned long long>(r.totals.notify_syncs),
                static_cast<unsigned long long>(r.link_connects), r.sim_seconds, r.wall_seconds);
  }
}

// --- tickets at the access layer ------------------------------------------------------

TEST(AccessSim, BadTicketsRefusedAtAccess) {
  World w(4);
  constexpr uint64_t kAlice = 31, kBob = 32;
  ticket::KeyRing other_ring(key_ring_config(7, 0x55));  // a key the services do not hold
  const std::string good = w.ticket_for(kAlice);
  std::string forged = good;
  forged[forged.size() - 1] ^= 0x01;
  const std::string expired = w.ticket_for(kAlice, 1_s);
  const std::string unknown_key = *other_ring.issue(kAlice, w.sim.now(), kTicketTtl);
  const std::string bobs = w.ticket_for(kBob);  // valid, but another user's
  const NodeId access_a = w.access_nodes()[0];
  bool done = false;
  std::vector<std::pair<std::string, int>> connect_codes, request_codes, call_codes;
  int msg_direct_code = -1;
  uint64_t forwarded_before = 0, forwarded_after = 0;
  w.sim.add_node({"caller", sim::Placement{"dc1", "clients", ""}, [&](Runtime& rt) {
    return std::make_unique<Caller>(rt, [&](Caller& c) -> Task<void> {
      rpc::Router router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"});
      co_await c.rt.sleep(3_s);  // leaders elected; `expired` has expired
      forwarded_before = w.sim.node_as<AccessService>(access_a)->stats().forwarded;
      const std::vector<std::pair<std::string, std::string>> bad = {
          {"forged", forged}, {"expired", expired}, {"unknown key", unknown_key}, {"other user", bobs},
          {"missing", ""}};
      for (const auto& [name, t] : bad) {
        rpc::CallOptions o;
        o.ticket = t;
        o.timeout = 3_s;
        ConnectRequest cr;
        cr.set_uid(kAlice);
        rpc::Result<ConnectReply> r = co_await c.endpoint.call<ConnectReply>(access_a, kConnectMethod, cr, o);
        connect_codes.emplace_back(name, r.ok() ? static_cast<int>(r->code()) : -1);
        ForwardRequest fr;
        fr.set_uid(kAlice);
        fr.mutable_send()->set_to_uid(kBob);
        fr.mutable_send()->set_client_msg_id("x-1");
        fr.mutable_send()->set_body("must not be stored");
        rpc::Result<ForwardReply> q = co_await c.endpoint.call<ForwardReply>(access_a, kRequestMethod, fr, o);
        request_codes.emplace_back(name, q.ok() ? static_cast<int>(q->code()) : -1);
      }
      // A valid session of Alice's, then calls on it with the bad tickets.
      rpc::CallOptions ok;
      ok.ticket = good;
      ok.timeout = 3_s;
      ConnectRequest cr;
      cr.set_uid(kAlice);
      rpc::Result<ConnectReply> session = co_await c.endpoint.call<ConnectReply>(access_a, kConnectMethod, cr, ok);
      if (session.ok() && session->code() == ACCESS_OK) {
        for (const auto& [name, t] : bad) {
          rpc::CallOptions o;
          o.ticket = t;
          o.timeout = 3_s;
          ForwardRequest fr;
          fr.set_session_id(session->session_id());
          fr.mutable_sync();
          rpc::Result<ForwardReply> q = co_await c.endpoint.call<ForwardReply>(access_a, kCallMethod, fr, o);
          call_codes.emplace_back(name, q.ok() ? static_cast<int>(q->code()) : -1);
        }
      }
      forwarded_after = w.sim.node_as<AccessService>(access_a)->stats().forwarded;
      // The same forged ticket injected straight into the msg service.
      msg::SendRequest s;
      s.set_to_uid(kBob);
      s.set_client_msg_id("x-2");
      s.set_body("must not be stored");
      rpc::CallOptions o;
      o.ticket = forged;
      o.timeout = 3_s;
      rpc::Result<msg::SendReply> m = co_await router.call<msg::SendReply>("msg", msg::kSendMethod, s, o);
      msg_direct_code = m.ok() ? static_cast<int>(m->code()) : -1;
      done = true;
    });
  }});
  w.deployment->start_all();
  ASSERT_TRUE(w.sim.run_until([&] { return done; }, w.sim.now() + kScenarioLimit));
  ASSERT_EQ(connect_codes.size(), 5u);
  for (const auto& [name, code] : connect_codes) EXPECT_EQ(code, ACCESS_UNAUTHENTICATED) << "Connect, " << name;
  for (const auto& [name, code] : request_codes) EXPECT_EQ(code, ACCESS_UNAUTHENTICATED) << "Request, " << name;
  ASSERT_EQ(call_codes.size(), 5u) << "the valid session was opened";
  for (const auto& [name, code] : call_codes) EXPECT_EQ(code, ACCESS_UNAUTHENTICATED) << "Call, " << name;
  EXPECT_EQ(forwarded_after, forwarded_before) << "nothing reached the logic layer";
  EXPECT_EQ(msg_direct_code, msg::MSG_UNAUTHENTICATED) << "the msg service checks again";
}

// --- heartbeats and reconnects --------------------------------------------------------

TEST(AccessSim, HeartbeatTimeoutDropsSilentSession) {
  World w(5);
  constexpr uint64_t kAlice = 41;
  const std::string good = w.ticket_for(kAlice);
  const NodeId access_a = w.access_nodes()[0];
  bool done = false;
  size_t sessions_early = 99, sessions_late = 99;
  int beat_code = -1;
  Duration timeout = w.deployment->deployment().spec().templates.access.session_timeout;
  w.sim.add_node({"caller", sim::Placement{"dc1", "clients", ""}, [&](Runtime& rt) {
    return std::make_unique<Caller>(rt, [&](Caller& c) -> Task<void> {
      co_await c.rt.sleep(1_s);
      rpc::CallOptions o;
      o.ticket = good;
      o.timeout = 3_s;
      ConnectRequest cr;
      cr.set_uid(kAlice);
      rpc::Result<ConnectReply> s = co_await c.endpoint.call<ConnectReply>(access_a, kConnectMethod, cr, o);
      if (!s.ok() || s->code() != ACCESS_OK) co_return;
      co_await c.rt.sleep(timeout / 2);
      sessions_early = w.sim.node_as<AccessService>(access_a)->sessions_of(kAlice);
      co_await c.rt.sleep(timeout + 1_s);  // silent: no heartbeat
      sessions_late = w.sim.node_as<AccessService>(access_a)->sessions_of(kAlice);
      HeartbeatRequest hb;
      hb.set_session_id(s->session_id());
      rpc::Result<HeartbeatReply> b = co_await c.endpoint.call<HeartbeatReply>(access_a, kHeartbeatMethod, hb, o);
      beat_code = b.ok() ? static_cast<int>(b->code()) : -1;
      done = true;
    });
  }});
  w.deployment->start_all();
  ASSERT_TRUE(w.sim.run_until([&] { return done; }, w.sim.now() + kScenarioLimit));
  EXPECT_EQ(sessions_early, 1u);
  EXPECT_EQ(sessions_late, 0u) << "a silent session is dropped after the heartbeat timeout";
  EXPECT_EQ(beat_code, ACCESS_NO_SESSION);
  EXPECT_GE(w.sim.node_as<AccessService>(access_a)->stats().sessions_expired, 1u);
}

TEST(AccessSim, ReconnectsToAnotherZoneWhenItsZoneDies) {
  World w(6);
  wl::MessagingWorkloadConfig wc;
  wc.users = 3;  // preferred zones a, b, c
  wc.contacts = wl::ContactGraphConfig::fixed(2);
  wc.send_interval_mean = seconds(1);
  wc.ticket_for = [&w](uint64_t uid) { return w.ticket_for(uid); };
  wc.client.call_timeout = seconds(1);
  wl::MessagingWorkload load(w.sim, *w.deployment, wc, *w.log);
  w.deployment->start_all();
  w.sim.run_until(TimePoint::zero() + 8_s);
  wl::SimUser* u = load.user(0);
  ASSERT_TRUE(u->link()->connected());
  EXPECT_EQ(w.deployment->deployment().node(u->link()->node()).zone, "a") << "its own zone first";
  w.sim.faults().kill_zone("a");
  const uint64_t drops_before = u->link()->stats().drops;
  const uint64_t ok_before = u->client().stats().sends_ok;
  w.sim.run_until(TimePoint::zero() + 20_s);
  ASSERT_TRUE(u->link()->connected());
  EXPECT_NE(w.deployment->deployment().node(u->link()->node()).zone, "a") << "reconnected to another zone";
  EXPECT_GT(u->link()->stats().drops, drops_before);
  EXPECT_GT(u->client().stats().sends_ok, ok_before) << "sends go on through the other zone";
  (void)w.sim.faults().restore_zone("a");
  std::string why;
  ASSERT_TRUE(load.finish(kSettle, w.sim.now() + kScenarioLimit, &why)) << why;
  cm::MessagingVerdict v = judge(w.log->history(), 6);
  EXPECT_TRUE(v.ok()) << cm::format_verdict(v);
}

}  // namespace
}  // namespace wx::access
