// The first messaging vertical slice in simulation: the msg logic service
// (msg.Send, msg.Sync; nodes/logic/msg/), the client library
// (nodes/client/), simulated users (sim/workload/) and the history they
// record, judged by the messaging checker (checkers/messaging.h).
//
//   MsgSim.SendThenSyncOnceAndRetryStoredOnce   send → the recipient syncs it
//       exactly once; a retried send (same client message id) returns the
//       same message id and seq and is stored once; a reused client message
//       id with another body is refused; the basics' history passes.
//   MsgSim.BadTicketsAreRefused   forged, expired, unknown-key and missing
//       tickets are refused by msg.Send and msg.Sync (MSG_UNAUTHENTICATED),
//       and a valid ticket only ever acts for its own user.
//   MsgSim.HundredUsersZoneOutageCheckerPasses   100 users in one datacenter
//       (three zones), 90 s of Poisson sends and periodic syncs, zone "b"
//       dark from 20 s to 50 s, then quiescence and final states: the
//       messaging checker passes on every seed (WX_SEEDS, default 10).
//   MsgSim.ShortTimeoutRetriesStoreOnce   250 ms attempts: many retries of
//       one client message id while earlier attempts run; still stored once.
//   MsgSim.UnsafeAckBeforeInboxCommitIsCaught   with the test-only fault the
//       checker fails `lost`, naming the message, the recipient and the seed.
//   MsgSim.SameSeedSameTraceAndHistory   determinism.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkers/messaging.h"
#include "nodes/client/messaging_client.h"
#include "nodes/deploy/deployment.h"
#include "nodes/logic/msg/msg_service.h"
#include "nodes/logic/ticket/ticket.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "sim/workload/messaging_workload.h"
#include "tests/support/messaging_world.h"
#include "tests/support/script_caller.h"
#include "tests/support/seeds.h"

namespace wx::msg {
namespace {

using namespace time_literals;
namespace cm = checkers::messaging;
using Caller = wx::testing::ScriptCaller;

constexpr const char* kBinary = "build/tests/logic/msg_sim_test";
constexpr uint64_t kBaseSeeds = 10;  // the 100-user sweep in CI (about 4 s each)
constexpr Duration kTicketTtl = minutes(120);
constexpr Duration kScenarioLimit = seconds(600);
constexpr Duration kSettle = seconds(5);

using testing::key_ring_config;

// The shared set-up (tests/support/messaging_world.h); `unsafe` turns on the
// test-only fault.
struct World : testing::MessagingWorld {
  World(uint64_t seed, bool unsafe)
      : MessagingWorld(seed, [unsafe](deploy::DeploymentSpec& spec) {
          spec.templates.msg.unsafe_ack_before_inbox_commit = unsafe;
        }) {}
};

cm::MessagingVerdict judge(const cm::History& h, uint64_t seed) { return testing::judge_messaging(h, seed); }

// --- basics ------------------------------------------------------------------

TEST(MsgSim, SendThenSyncOnceAndRetryStoredOnce) {
  World w(1, false);
  constexpr uint64_t kAlice = 11, kBob = 12;
  const std::string alice_ticket = w.ticket_for(kAlice), bob_ticket = w.ticket_for(kBob);
  bool done = false;
  client::SendOutcome first, again, retry_a, retry_b, reused;
  std::vector<MessageRecord> bob_got;
  uint64_t bob_key = 0;
  client::MessagingClient::Stats bob_stats;
  w.sim.add_node({"caller", sim::Placement{"dc1", "clients", ""}, [&](Runtime& rt) {
    return std::make_unique<Caller>(rt, [&](Caller& c) -> Task<void> {
      rpc::Router router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"});
      client::MessagingClient alice(c.rt, router, {kAlice, alice_ticket, "c11"}, w.log.get());
      client::MessagingClient bob(c.rt, router, {kBob, bob_ticket, "c12"}, w.log.get());
      co_await c.rt.sleep(3_s);  // leaders elected
      first = co_await alice.send(kBob, "hello bob");
      (void)co_await bob.sync();
      (void)co_await bob.sync();  // nothing new the second time
      // The same client message id twice: one message.
      retry_a = co_await alice.send_with_id(kBob, "c11-retry", "are you there?");
      retry_b = co_await alice.send_with_id(kBob, "c11-retry", "are you there?");
      // Reused with another body: refused. (Not recorded: the checker's
      // `history` check rightly rejects a history where a client does this.)
      client::MessagingClient careless(c.rt, router, {kAlice, alice_ticket, "c11-careless"}, nullptr);
      reused = co_await careless.send_with_id(kBob, "c11-retry", "something else");
      again = co_await alice.send(kBob, "third");
      (void)co_await bob.sync();
      bob_got = bob.received();
      bob_key = bob.last_seq();
      bob_stats = bob.stats();
      alice.record_final();
      bob.record_final();
      done = true;
    });
  }});
  w.deployment->start_all();
  ASSERT_TRUE(w.sim.run_until([&] { return done; }, w.sim.now() + kScenarioLimit));
  ASSERT_EQ(first.status, client::SendStatus::ok) << first.error;
  EXPECT_EQ(first.message_id, "m11-c11-1");
  ASSERT_EQ(retry_a.status, client::SendStatus::ok) << retry_a.error;
  ASSERT_EQ(retry_b.status, client::SendStatus::ok) << retry_b.error;
  EXPECT_EQ(retry_a.message_id, retry_b.message_id);
  EXPECT_EQ(retry_a.seq, retry_b.seq) << "a retried send reuses its seq";
  EXPECT_EQ(reused.status, client::SendStatus::failed);
  EXPECT_NE(reused.error.find("MSG_CMID_REUSED"), std::string::npos) << reused.error;
  ASSERT_EQ(again.status, client::SendStatus::ok);
  ASSERT_EQ(bob_got.size(), 3u) << "hello, the retried message once, third";
  EXPECT_EQ(bob_got[0].message_id, first.message_id);
  EXPECT_EQ(bob_got[0].seq, first.seq);
  EXPECT_EQ(bob_got[1].message_id, retry_a.message_id);
  EXPECT_EQ(bob_got[2].message_id, again.message_id);
  EXPECT_LT(bob_got[0].seq, bob_got[1].seq);
  EXPECT_LT(bob_got[1].seq, bob_got[2].seq);
  EXPECT_EQ(bob_key, again.seq);
  EXPECT_EQ(bob_got[0].body_hash, cm::body_hash("hello bob"));
  EXPECT_EQ(bob_stats.messages_received, 3u);

  // The history of the basics is judged too. No server final state is
  // recorded here, so `convergence` has nothing to compare; every other
  // check must pass.
  cm::MessagingVerdict v = judge(w.log->history(), 1);
  for (cm::Check c : {cm::Check::history, cm::Check::lost, cm::Check::duplicated, cm::Check::order,
                      cm::Check::origin}) {
    EXPECT_TRUE(v.passed(c)) << cm::format_verdict(v);
  }
  EXPECT_EQ(v.stats.messages_acknowledged, 3u);
}

TEST(MsgSim, BadTicketsAreRefused) {
  World w(2, false);
  constexpr uint64_t kAlice = 21, kBob = 22;
  ticket::KeyRing other_ring(key_ring_config(7, 0x55));  // a key the services do not hold
  const std::string good = w.ticket_for(kAlice);
  std::string forged = good;
  forged[forged.size() - 1] ^= 0x01;  // a flipped signature bit
  const std::string short_lived = w.ticket_for(kAlice, 1_s);
  const std::string unknown_key = *other_ring.issue(kAlice, w.sim.now(), kTicketTtl);
  const std::string bob_ticket = w.ticket_for(kBob);
  bool done = false;
  std::vector<std::pair<std::string, int>> send_codes, sync_codes;
  client::SendOutcome alice_ok;
  std::vector<MessageRecord> alice_sees, bob_sees;
  w.sim.add_node({"caller", sim::Placement{"dc1", "clients", ""}, [&](Runtime& rt) {
    return std::make_unique<Caller>(rt, [&](Caller& c) -> Task<void> {
      rpc::Router router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"});
      co_await c.rt.sleep(3_s);  // leaders elected; short_lived has expired
      const std::vector<std::pair<std::string, std::string>> tickets = {
          {"forged", forged}, {"expired", short_lived}, {"unknown key", unknown_key},
          {"missing", ""}, {"garbage", "not a ticket"}};
      for (const auto& [name, t] : tickets) {
        SendRequest s;
        s.set_to_uid(kBob);
        s.set_client_msg_id("x-1");
        s.set_body("should not be stored");
        rpc::CallOptions o;
        o.ticket = t;
        o.timeout = 3_s;
        rpc::Result<SendReply> r = co_await router.call<SendReply>("msg", kSendMethod, s, o);
        send_codes.emplace_back(name, r.ok() ? static_cast<int>(r->code()) : -1);
        SyncRequest y;
        rpc::Result<SyncReply> q = co_await router.call<SyncReply>("msg", kSyncMethod, y, o);
        sync_codes.emplace_back(name, q.ok() ? static_cast<int>(q->code()) : -1);
      }
      // A valid ticket acts for its own user only: Alice's send is hers, and
      // her sync shows her inbox (empty), not Bob's.
      client::MessagingClient alice(c.rt, router, {kAlice, good, "c21"}, nullptr);
      client::MessagingClient bob(c.rt, router, {kBob, bob_ticket, "c22"}, nullptr);
      alice_ok = co_await alice.send(kBob, "hi");
      (void)co_await alice.sync();
      (void)co_await bob.sync();
      alice_sees = alice.received();
      bob_sees = bob.received();
      done = true;
    });
  }});
  w.deployment->start_all();
  ASSERT_TRUE(w.sim.run_until([&] { return done; }, w.sim.now() + kScenarioLimit));
  ASSERT_EQ(send_codes.size(), 5u);
  for (const auto& [name, code] : send_codes) EXPECT_EQ(code, MSG_UNAUTHENTICATED) << "msg.Send, " << name;
  for (const auto& [name, code] : sync_codes) EXPECT_EQ(code, MSG_UNAUTHENTICATED) << "msg.Sync, " << name;
  ASSERT_EQ(alice_ok.status, client::SendStatus::ok) << alice_ok.error;
  EXPECT_TRUE(alice_sees.empty());
  ASSERT_EQ(bob_sees.size(), 1u) << "only the valid send was stored";
  EXPECT_EQ(bob_sees[0].sender, kAlice);
  EXPECT_EQ(bob_sees[0].message_id, alice_ok.message_id);
}

// --- the 100-user run ------------------------------------------------------------

struct RunResult {
  bool finished = false;
  std::string why;
  cm::MessagingVerdict verdict;
  client::MessagingClient::Stats totals;
  uint64_t trace_hash = 0;
  size_t events = 0;
  bool outage_seen = false;  // the msg instance of zone b was down mid-outage
  double sim_seconds = 0, wall_seconds = 0;
  cm::History history;
};

struct RunOptions {
  size_t users = 100;
  Duration traffic = seconds(90);
  bool outage = true;
  bool unsafe = false;
  // One attempt's timeout: short enough that some attempts end unknown
  // during the outage and are retried under the same client message id.
  Duration call_timeout = seconds(1);
};

RunResult run_world(uint64_t seed, const RunOptions& ro) {
  const auto wall0 = std::chrono::steady_clock::now();
  World w(seed, ro.unsafe);
  sim::workload::MessagingWorkloadConfig wc;
  wc.users = ro.users;
  wc.uid_base = 1000;
  wc.contacts = sim::workload::ContactGraphConfig::fixed(4);
  wc.send_interval_mean = seconds(5);
  wc.sync_interval = seconds(3);
  wc.ticket_for = [&w](uint64_t uid) { return w.ticket_for(uid); };
  wc.client.call_timeout = ro.call_timeout;
  sim::workload::MessagingWorkload load(w.sim, *w.deployment, wc, *w.log);
  w.deployment->start_all();
  if (ro.outage) {
    w.sim.at(TimePoint::zero() + 20_s, [&w] { w.sim.faults().kill_zone("b"); });
    w.sim.at(TimePoint::zero() + 50_s, [&w] { (void)w.sim.faults().restore_zone("b"); });
  }
  RunResult res;
  const NodeId msg_b = w.deployment->nodes_of(deploy::Role::msg)[1];
  w.sim.at(TimePoint::zero() + 35_s, [&w, &res, msg_b] { res.outage_seen = !w.sim.is_up(msg_b); });
  w.sim.run_until(TimePoint::zero() + ro.traffic);
  res.finished = load.finish(kSettle, w.sim.now() + kScenarioLimit, &res.why);
  if (w.sim.failure()) {
    res.finished = false;
    res.why = "simulation failed: " + *w.sim.failure();
  }
  res.totals = load.totals();
  res.verdict = judge(w.log->history(), seed);
  res.trace_hash = w.sim.trace_hash();
  res.events = w.log->history().size();
  res.sim_seconds = static_cast<double>(w.sim.now().ns()) / 1e9;
  res.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  res.history = w.log->history();
  return res;
}

TEST(MsgSim, HundredUsersZoneOutageCheckerPasses) {
  const testing::SeedRange seeds = testing::seed_range(kBaseSeeds);
  double sim_total = 0, wall_total = 0;
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    RunResult r = run_world(seed, RunOptions{});
    sim_total += r.sim_seconds;
    wall_total += r.wall_seconds;
    const std::string rerun =
        testing::rerun_hint(seed, kBinary, "MsgSim.HundredUsersZoneOutageCheckerPasses");
    ASSERT_TRUE(r.finished) << "seed " << seed << ": " << r.why << "\n" << rerun;
    ASSERT_TRUE(r.verdict.ok()) << cm::format_verdict(r.verdict) << "\n" << rerun;
    // Not a vacuous pass: the outage happened, traffic flowed through it and
    // everyone ended with a final state.
    EXPECT_TRUE(r.outage_seen) << rerun;
    EXPECT_GT(r.totals.sends_ok, 1000u) << rerun;
    EXPECT_EQ(r.verdict.stats.client_finals, 100u) << rerun;
    EXPECT_EQ(r.verdict.stats.server_finals, 100u) << rerun;
    EXPECT_GE(r.verdict.stats.messages_acknowledged, r.totals.sends_ok) << rerun;
    if (testing::verbose() || seed == seeds.first) {
      std::printf("seed %llu: %llu sends ok, %llu failed, %llu unknown (%llu attempts), %llu received, "
                  "%zu events, %.1f sim s in %.2f wall s (%.1f sim s / wall s)\n",
                  static_cast<unsigned long long>(seed), static_cast<unsigned long long>(r.totals.sends_ok),
                  static_cast<unsigned long long>(r.totals.sends_failed),
                  static_cast<unsigned long long>(r.totals.sends_unknown),
                  static_cast<unsigned long long>(r.totals.send_attempts),
                  static_cast<unsigned long long>(r.totals.messages_received), r.events, r.sim_seconds,
                  r.wall_seconds, r.sim_seconds / r.wall_seconds);
    }
  }
  std::printf("%llu seeds: %.1f simulated s per wall s\n", static_cast<unsigned long long>(seeds.count),
              sim_total / wall_total);
}

// Attempts time out often (a short per-attempt timeout through the outage),
// so sends are retried under the same client message id while earlier
// attempts may still be running on the servers: each message is still stored
// once, at one seq.
TEST(MsgSim, ShortTimeoutRetriesStoreOnce) {
  const testing::SeedRange seeds = testing::seed_range(3);
  uint64_t retries = 0;
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    RunOptions ro;
    ro.users = 30;
    ro.traffic = seconds(60);
    ro.call_timeout = milliseconds(250);
    RunResult r = run_world(seed, ro);
    const std::string rerun = testing::rerun_hint(seed, kBinary, "MsgSim.ShortTimeoutRetriesStoreOnce");
    ASSERT_TRUE(r.finished) << "seed " << seed << ": " << r.why << "\n" << rerun;
    ASSERT_TRUE(r.verdict.ok()) << cm::format_verdict(r.verdict) << "\n" << rerun;
    retries += r.totals.send_attempts - r.totals.sends;
    if (testing::verbose()) {
      std::printf("seed %llu: %llu sends, %llu attempts, %llu ok, %llu unknown\n",
                  static_cast<unsigned long long>(seed), static_cast<unsigned long long>(r.totals.sends),
                  static_cast<unsigned long long>(r.totals.send_attempts),
                  static_cast<unsigned long long>(r.totals.sends_ok),
                  static_cast<unsigned long long>(r.totals.sends_unknown));
    }
  }
  EXPECT_GT(retries, 0u) << "no send was retried: the test exercised nothing";
  std::printf("%llu retried attempts over %llu seeds\n", static_cast<unsigned long long>(retries),
              static_cast<unsigned long long>(seeds.count));
}

TEST(MsgSim, UnsafeAckBeforeInboxCommitIsCaught) {
  const uint64_t seed = testing::seed_range(1).first;
  RunOptions ro;
  ro.users = 30;
  ro.traffic = seconds(40);
  ro.outage = false;
  ro.unsafe = true;
  RunResult r = run_world(seed, ro);
  const std::string rerun = testing::rerun_hint(seed, kBinary, "MsgSim.UnsafeAckBeforeInboxCommitIsCaught");
  ASSERT_TRUE(r.finished) << r.why << "\n" << rerun;
  ASSERT_FALSE(r.verdict.ok()) << "the broken service went unnoticed\n" << rerun;
  EXPECT_FALSE(r.verdict.passed(cm::Check::lost)) << cm::format_verdict(r.verdict);
  EXPECT_TRUE(r.verdict.passed(cm::Check::history)) << cm::format_verdict(r.verdict);
  std::vector<const cm::Violation*> lost = r.verdict.of(cm::Check::lost);
  ASSERT_FALSE(lost.empty());
  const cm::Violation& v = *lost.front();
  ASSERT_TRUE(v.recipient.has_value());
  const std::string line = cm::format_violation(v, r.verdict.context);
  EXPECT_FALSE(v.message_id.empty());
  EXPECT_NE(line.find(v.message_id), std::string::npos) << line;
  EXPECT_NE(line.find("u" + std::to_string(*v.recipient)), std::string::npos) << line;
  EXPECT_NE(line.find("seed " + std::to_string(seed)), std::string::npos) << line;
  std::printf("caught: %s\n", line.c_str());
}

TEST(MsgSim, SameSeedSameTraceAndHistory) {
  RunOptions ro;
  ro.users = 20;
  ro.traffic = seconds(30);
  ro.outage = true;
  RunResult a = run_world(5, ro);
  RunResult b = run_world(5, ro);
  ASSERT_TRUE(a.finished) << a.why;
  EXPECT_TRUE(a.verdict.ok()) << cm::format_verdict(a.verdict);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_TRUE(a.history == b.history);
  RunResult c = run_world(6, ro);
  EXPECT_NE(a.trace_hash, c.trace_hash);
}

}  // namespace
}  // namespace wx::msg
