// The workload model (sim/workload/population.h, docs/messaging.md
// "Workload"): the contact graph, group shapes, the daily send-rate shape and
// online/offline churn, the last two in simulation judged by the messaging
// checker.
//
//   WorkloadSim.ContactGraphSymmetricBoundedDeterministic   edges both ways,
//       no self edges, degrees within the cap, fixed degrees met, a power
//       law's mean below the uniform one, locality keeps edges near; same
//       stream → same graph.
//   WorkloadSim.GroupsFollowSizesAndPreferContacts   sizes within range,
//       members distinct, most non-creator members are the creator's
//       contacts; senders are the first members.
//   WorkloadSim.DailyShapeInterpolatesAndWraps   piecewise-linear factor,
//       wrap-around midnight, bad shapes refused.
//   WorkloadSim.DailyShapeThinsSends   a compressed day: sends near the peak
//       hour outnumber sends near the trough by the ratio of the factors;
//       the checker passes.
//   WorkloadSim.ChurnThroughZoneOutageCheckerPasses   100 users over access
//       long connections, churn (online ~30 s, offline ~10 s), zone b dark
//       20–50 s: the checker passes on every seed (WX_SEEDS, default 3);
//       users were offline, came back and sent afterwards; the offline share
//       of time is near offline / (online + offline).
//   WorkloadSim.ChurnSameSeedSameTrace   determinism with churn.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "checkers/messaging.h"
#include "sim/workload/messaging_workload.h"
#include "sim/workload/population.h"
#include "tests/support/messaging_world.h"
#include "tests/support/seeds.h"

namespace wx::sim::workload {
namespace {

using namespace time_literals;
namespace cm = checkers::messaging;

constexpr const char* kBinary = "build/tests/logic/workload_sim_test";
constexpr Duration kLimit = seconds(600);
constexpr Duration kSettle = seconds(5);

// --- the population, without a simulation ------------------------------------------

void expect_symmetric(const ContactGraph& g, size_t cap) {
  for (size_t i = 0; i < g.size(); ++i) {
    EXPECT_TRUE(std::is_sorted(g[i].begin(), g[i].end()));
    EXPECT_LE(g[i].size(), cap);
    for (size_t j : g[i]) {
      EXPECT_NE(i, j) << "a self edge";
      EXPECT_TRUE(std::binary_search(g[j].begin(), g[j].end(), i)) << i << " has " << j << " but not back";
    }
  }
}

double mean_degree(const ContactGraph& g) {
  size_t e = 0;
  for (const auto& n : g) e += n.size();
  return static_cast<double>(e) / static_cast<double>(g.size());
}

TEST(WorkloadSim, ContactGraphSymmetricBoundedDeterministic) {
  Rng a = Rng::derive(1, "graph"), b = Rng::derive(1, "graph");
  const ContactGraph fixed = make_contact_graph(a, 1000, ContactGraphConfig::fixed(4));
  EXPECT_EQ(fixed, make_contact_graph(b, 1000, ContactGraphConfig::fixed(4))) << "same stream, same graph";
  expect_symmetric(fixed, 4);
  size_t exact = 0;
  for (const auto& n : fixed) exact += n.size() == 4 ? 1 : 0;
  EXPECT_GE(exact, 990u) << "almost every user reaches its fixed degree";

  ContactGraphConfig uniform;
  uniform.degree = {2, 30, 0};
  ContactGraphConfig power = uniform;
  power.degree.alpha = 1.5;
  Rng c = Rng::derive(2, "graph"), d = Rng::derive(2, "graph");
  const ContactGraph gu = make_contact_graph(c, 2000, uniform), gp = make_contact_graph(d, 2000, power);
  expect_symmetric(gu, 30);
  expect_symmetric(gp, 30);
  EXPECT_NEAR(mean_degree(gu), uniform.degree.mean(), 2.0);
  EXPECT_NEAR(mean_degree(gp), power.degree.mean(), 1.5);
  EXPECT_LT(mean_degree(gp), mean_degree(gu) / 2) << "a power law puts most users at small degrees";
  size_t hubs = 0;
  for (const auto& n : gp) hubs += n.size() >= 20 ? 1 : 0;
  EXPECT_GT(hubs, 0u) << "and a few at large ones";

  ContactGraphConfig local = ContactGraphConfig::fixed(6);
  local.locality = 1.0;
  local.locality_window = 5;
  Rng e = Rng::derive(3, "graph");
  const ContactGraph gl = make_contact_graph(e, 500, local);
  expect_symmetric(gl, 6);
  size_t near = 0, all = 0;
  for (size_t i = 0; i < gl.size(); ++i) {
    for (size_t j : gl[i]) {
      const size_t dist = std::min((i + 500 - j) % 500, (j + 500 - i) % 500);
      near += dist <= 5 ? 1 : 0;
      ++all;
    }
  }
  EXPECT_GT(static_cast<double>(near), 0.9 * static_cast<double>(all)) << "locality 1: edges stay within the window";

  Rng f = Rng::derive(4, "graph");
  const ContactGraph none = make_contact_graph(f, 10, ContactGraphConfig::fixed(0));
  for (const auto& n : none) EXPECT_TRUE(n.empty());
}

TEST(WorkloadSim, GroupsFollowSizesAndPreferContacts) {
  Rng rng = Rng::derive(5, "graph");
  const ContactGraph g = make_contact_graph(rng, 300, ContactGraphConfig::fixed(20));
  std::vector<uint64_t> uids;
  for (size_t i = 0; i < 300; ++i) uids.push_back(1000 + i);
  GroupShapeConfig shape;
  shape.groups = 200;
  shape.first_group_id = 7;
  shape.size = {3, 15, 1.0};
  shape.from_contacts_p = 0.9;
  Rng r1 = Rng::derive(6, "groups"), r2 = Rng::derive(6, "groups");
  const std::vector<GroupSpec> groups = make_groups(r1, uids, g, shape);
  const std::vector<GroupSpec> again = make_groups(r2, uids, g, shape);
  ASSERT_EQ(groups.size(), 200u);
  size_t from_contacts = 0, others = 0, small = 0;
  for (size_t k = 0; k < groups.size(); ++k) {
    const GroupSpec& s = groups[k];
    EXPECT_EQ(s.group_id, 7 + k);
    EXPECT_EQ(s.members, again[k].members) << "same stream, same groups";
    EXPECT_GE(s.members.size(), 3u);
    EXPECT_LE(s.members.size(), 15u);
    small += s.members.size() <= 6 ? 1 : 0;
    EXPECT_EQ(std::set<uint64_t>(s.members.begin(), s.members.end()).size(), s.members.size());
    ASSERT_EQ(s.senders.size(), 3u);
    EXPECT_TRUE(std::equal(s.senders.begin(), s.senders.end(), s.members.begin()));
    const auto& contacts = g[s.members[0] - 1000];
    for (size_t i = 1; i < s.members.size(); ++i) {
      const bool c = std::binary_search(contacts.begin(), contacts.end(), s.members[i] - 1000);
      (c ? from_contacts : others) += 1;
    }
  }
  EXPECT_GT(small, 100u) << "power law (alpha 1) over 3..15: most groups are small";
  EXPECT_GT(static_cast<double>(from_contacts), 0.8 * static_cast<double>(from_contacts + others));
}

TEST(WorkloadSim, DailyShapeInterpolatesAndWraps) {
  const TimePoint t0 = TimePoint::zero();
  DailyShape flat;
  EXPECT_TRUE(flat.flat());
  EXPECT_EQ(flat.factor(t0 + 5_s), 1.0);
  DailyShape s({{12, 2.0}, {0, 0.2}});  // any order
  EXPECT_FALSE(s.flat());
  EXPECT_DOUBLE_EQ(s.peak(), 2.0);
  EXPECT_NEAR(s.factor(t0), 0.2, 1e-9);
  EXPECT_NEAR(s.factor(t0 + minutes(6 * 60)), 1.1, 1e-9);
  EXPECT_NEAR(s.factor(t0 + minutes(12 * 60)), 2.0, 1e-9);
  EXPECT_NEAR(s.factor(t0 + minutes(18 * 60)), 1.1, 1e-9) << "from the last point back to the first";
  EXPECT_NEAR(s.factor(t0 + minutes(30 * 60)), 1.1, 1e-9) << "the next day";
  DailyShape late({{0, 0.2}, {12, 2.0}}, 12);  // t = 0 is noon
  EXPECT_NEAR(late.factor(t0), 2.0, 1e-9);
  DailyShape fast({{0, 0.2}, {12, 2.0}}, 0, 60_s);  // a one-minute day
  EXPECT_NEAR(fast.factor(t0 + 30_s), 2.0, 1e-9);
  EXPECT_NEAR(fast.factor(t0 + 45_s), 1.1, 1e-9);
  EXPECT_THROW(DailyShape(std::vector<std::pair<double, double>>{}), std::invalid_argument);
  EXPECT_THROW(DailyShape({{24, 1.0}}), std::invalid_argument);
  EXPECT_THROW(DailyShape({{3, -1.0}}), std::invalid_argument);
  EXPECT_THROW(DailyShape({{3, 0.0}, {5, 0.0}}), std::invalid_argument);
}

// --- in simulation -------------------------------------------------------------------

// The shared set-up (tests/support/messaging_world.h), with an access
// instance per zone when `access`.
struct World : testing::MessagingWorld {
  World(uint64_t seed, bool access)
      : MessagingWorld(seed, [access](deploy::DeploymentSpec& spec) {
          if (access) spec.instances_per_zone[deploy::Role::access] = 1;
        }) {}
};

struct RunOptions {
  size_t users = 100;
  Duration traffic = seconds(90);
  bool access = true;
  bool outage = true;
  ChurnConfig churn{seconds(30), seconds(10)};
  DailyShape shape;
  Duration send_mean = seconds(5);
};

struct RunResult {
  bool finished = false;
  std::string why;
  cm::MessagingVerdict verdict;
  client::MessagingClient::Stats totals;
  ChurnStats churn;
  size_t offline_at_35s = 0;  // users offline mid-outage
  uint64_t trace_hash = 0;
  cm::History history;
};

RunResult run_world(uint64_t seed, const RunOptions& ro) {
  World w(seed, ro.access);
  MessagingWorkloadConfig wc;
  wc.users = ro.users;
  wc.contacts = ContactGraphConfig{{2, 8, 1.0}, 0.5, 8};
  wc.send_interval_mean = ro.send_mean;
  wc.daily_shape = ro.shape;
  wc.churn = ro.churn;
  wc.client.call_timeout = seconds(1);
  wc.ticket_for = [&w](uint64_t uid) { return w.ticket_for(uid); };
  MessagingWorkload load(w.sim, *w.deployment, wc, *w.log);
  w.deployment->start_all();
  if (ro.outage) {
    w.sim.at(TimePoint::zero() + 20_s, [&w] { w.sim.faults().kill_zone("b"); });
    w.sim.at(TimePoint::zero() + 50_s, [&w] { (void)w.sim.faults().restore_zone("b"); });
  }
  RunResult res;
  w.sim.at(TimePoint::zero() + 35_s, [&] {
    for (size_t i = 0; i < load.uids().size(); ++i) res.offline_at_35s += load.user(i)->offline() ? 1 : 0;
  });
  w.sim.run_until(TimePoint::zero() + ro.traffic);
  res.churn = load.churn_totals();  // before the end phase brings everyone back
  res.finished = load.finish(kSettle, w.sim.now() + kLimit, &res.why);
  if (w.sim.failure()) {
    res.finished = false;
    res.why = "simulation failed: " + *w.sim.failure();
  }
  for (size_t i = 0; i < load.uids().size(); ++i) {
    if (load.user(i)->offline()) {
      res.finished = false;
      res.why = "a user is still offline after the end phase";
    }
  }
  res.totals = load.totals();
  res.verdict = testing::judge_messaging(w.log->history(), seed);
  res.trace_hash = w.sim.trace_hash();
  res.history = w.log->history();
  return res;
}

// Sends (first attempts) by the hour of the compressed day they start in.
TEST(WorkloadSim, DailyShapeThinsSends) {
  RunOptions ro;
  ro.users = 50;
  ro.traffic = seconds(120);  // two one-minute days
  ro.access = false;
  ro.outage = false;
  ro.churn = {};
  ro.send_mean = seconds(2);
  ro.shape = DailyShape({{0, 0.2}, {12, 2.0}}, 0, 60_s);
  const uint64_t seed = testing::seed_range(1).first;
  RunResult r = run_world(seed, ro);
  const std::string rerun = testing::rerun_hint(seed, kBinary, "WorkloadSim.DailyShapeThinsSends");
  ASSERT_TRUE(r.finished) << r.why << "\n" << rerun;
  ASSERT_TRUE(r.verdict.ok()) << cm::format_verdict(r.verdict) << "\n" << rerun;
  // Hours 9–15 (factor 1.55..2.0..1.55, mean 1.775) against hours 21–3
  // (0.65..0.2..0.65, mean 0.425): about 4.2 times as many sends.
  std::set<std::pair<std::string, std::string>> seen;
  uint64_t peak = 0, trough = 0, total = 0;
  for (const cm::Event& e : r.history) {
    const auto* inv = std::get_if<cm::Invoke>(&e.body);
    if (inv == nullptr) continue;
    const auto* s = std::get_if<cm::SendRequest>(&inv->request);
    if (s == nullptr || !seen.insert({e.process, s->client_msg_id}).second) continue;  // retries count once
    if (e.t_ns >= (120_s).ns()) continue;
    const double hour = 24.0 * static_cast<double>(e.t_ns % (60_s).ns()) / static_cast<double>((60_s).ns());
    ++total;
    if (hour >= 9 && hour < 15) ++peak;
    if (hour >= 21 || hour < 3) ++trough;
  }
  // Expected: 50 users × 120 s / 2 s × mean factor 1.1 ≈ 3300 sends.
  EXPECT_GT(total, 2800u);
  EXPECT_LT(total, 3800u);
  ASSERT_GT(trough, 0u);
  const double ratio = static_cast<double>(peak) / static_cast<double>(trough);
  EXPECT_GT(ratio, 3.3) << peak << " near the peak, " << trough << " near the trough";
  EXPECT_LT(ratio, 5.5) << peak << " near the peak, " << trough << " near the trough";
  std::printf("daily shape: %llu sends, %llu in hours 9-15, %llu in hours 21-3 (ratio %.2f, expected ~4.2)\n",
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(peak),
              static_cast<unsigned long long>(trough), ratio);
}

TEST(WorkloadSim, ChurnThroughZoneOutageCheckerPasses) {
  const testing::SeedRange seeds = testing::seed_range(3);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    RunOptions ro;
    RunResult r = run_world(seed, ro);
    const std::string rerun = testing::rerun_hint(seed, kBinary, "WorkloadSim.ChurnThroughZoneOutageCheckerPasses");
    ASSERT_TRUE(r.finished) << "seed " << seed << ": " << r.why << "\n" << rerun;
    ASSERT_TRUE(r.verdict.ok()) << cm::format_verdict(r.verdict) << "\n" << rerun;
    EXPECT_EQ(r.verdict.stats.client_finals, ro.users) << rerun;
    EXPECT_EQ(r.verdict.stats.server_finals, ro.users) << rerun;
    // Churn happened: users went offline (some through the outage), came
    // back, and sent afterwards.
    EXPECT_GT(r.churn.offline_periods, ro.users) << rerun;
    EXPECT_GT(r.churn.returns, ro.users / 2) << rerun;
    EXPECT_GT(r.offline_at_35s, 0u) << rerun;
    EXPECT_GT(r.churn.sends_after_return, 100u) << rerun;
    EXPECT_GT(r.totals.sends_ok, 500u) << rerun;
    // Offline share of user time ≈ 10 / (30 + 10) = 0.25 (the first period
    // starts online, so a little less).
    const double share = static_cast<double>(r.churn.offline_time.ns()) /
                         (static_cast<double>(ro.users) * static_cast<double>(ro.traffic.ns()));
    EXPECT_GT(share, 0.12) << rerun;
    EXPECT_LT(share, 0.32) << rerun;
    if (testing::verbose() || seed == seeds.first) {
      std::printf("seed %llu: %llu offline periods, %llu returns, %llu sends after a return, offline share %.3f, "
                  "%zu offline at 35 s, %llu sends ok, %llu received\n",
                  static_cast<unsigned long long>(seed), static_cast<unsigned long long>(r.churn.offline_periods),
                  static_cast<unsigned long long>(r.churn.returns),
                  static_cast<unsigned long long>(r.churn.sends_after_return), share, r.offline_at_35s,
                  static_cast<unsigned long long>(r.totals.sends_ok),
                  static_cast<unsigned long long>(r.totals.messages_received));
    }
  }
}

TEST(WorkloadSim, ChurnSameSeedSameTrace) {
  RunOptions ro;
  ro.users = 20;
  ro.traffic = seconds(40);
  ro.churn = {seconds(8), seconds(4)};
  RunResult a = run_world(9, ro);
  RunResult b = run_world(9, ro);
  ASSERT_TRUE(a.finished) << a.why;
  EXPECT_TRUE(a.verdict.ok()) << cm::format_verdict(a.verdict);
  EXPECT_GT(a.churn.offline_periods, 0u);
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_TRUE(a.history == b.history);
}

}  // namespace
}  // namespace wx::sim::workload
