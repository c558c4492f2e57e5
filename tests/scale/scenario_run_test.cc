// Scenario runs (sim/scenario/run.h) end to end, in the test command:
//   * Canonical/<name>: every scenario in scenarios/ passes with its own seed
//     (swarm.yaml with --swarm);
//   * ZoneOutageSweep/<shard>: scenarios/zone-outage.yaml over WX_SEEDS seeds
//     (default 100) in kShards shards — every expectation holds for every seed;
//   * SwarmSweep/<shard>: scenarios/swarm.yaml with --swarm (each seed draws its
//     own fault kinds, targets and rate) over WX_SEEDS seeds (default 100);
//   * the planted bug (tests/scenarios/ack_before_commit_swarm.yaml) makes a
//     swarm sweep fail, and re-running the failing seed gives the same trace
//     hash and the same report;
//   * the same seed gives the same report.json and trace hash; different seeds
//     diverge and first_divergence names where.
//   * Swarm96FanoutDrainsAfterAStalledSeqsvrConnection: swarm seed 96 (a fan-out worker
//     stalled on seqsvr but holding its leases) passes — a regression test;
// A failing seed prints the exact `wxsim run … --seed N` line that reproduces it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "sim/scenario/run.h"
#include "sim/scenario/scenario.h"
#include "tests/support/seeds.h"

namespace wx::scenario {
namespace {

const std::filesystem::path kSource = WX_SOURCE_DIR;
constexpr int kShards = 5;

Scenario load(const std::string& relative) {
  auto r = load_scenario((kSource / relative).string());
  if (const auto* err = std::get_if<ScenarioError>(&r)) throw std::runtime_error(err->text());
  return std::get<Scenario>(r);
}

std::vector<std::string> canonical_names() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(kSource / "scenarios")) {
    if (e.path().extension() == ".yaml") out.push_back(e.path().stem().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Runs one seed; on failure adds the summary and the reproduction line.
bool run_seed(const Scenario& s, const std::string& relative, uint64_t seed, bool swarm, std::string* report) {
  RunOptions o;
  o.seed = seed;
  o.swarm = swarm;
  ScenarioRun run(s, o);
  const bool ok = run.run();
  if (!ok) {
    *report += run.summary();
    *report += "reproduce: " + reproduction_line("build/cli/wxsim", relative, seed, swarm) + "\n";
  }
  return ok;
}

class Canonical : public ::testing::TestWithParam<std::string> {};

TEST_P(Canonical, PassesWithItsSeed) {
  const std::string relative = "scenarios/" + GetParam() + ".yaml";
  const Scenario s = load(relative);
  const bool swarm = s.random_faults.has_value();
  RunOptions o;
  o.swarm = swarm;
  ScenarioRun run(s, o);
  const bool ok = run.run();
  EXPECT_TRUE(ok) << run.summary() << "reproduce: " << reproduction_line("build/cli/wxsim", relative, run.seed(), swarm);
  // Every expectation was judged, the safety ones among them.
  std::vector<std::string> names;
  for (const auto& e : run.expectations()) names.push_back(e.name);
  for (const char* n : {"history", "no_loss", "no_duplicates", "order", "convergence", "unique_ids",
                        "no_cross_user_access", "converge_within"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  EXPECT_GT(run.outage().verdict().stats.messages_acknowledged, 0u);
}

INSTANTIATE_TEST_SUITE_P(Scenarios, Canonical, ::testing::ValuesIn(canonical_names()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

void sweep(const std::string& relative, bool swarm, int shard) {
  const Scenario s = load(relative);
  const testing::SeedRange seeds = testing::seed_range(100);
  std::string report;
  std::vector<uint64_t> failed;
  size_t ran = 0;
  for (uint64_t seed = seeds.first + static_cast<uint64_t>(shard); seed < seeds.end(); seed += kShards) {
    ++ran;
    if (!run_seed(s, relative, seed, swarm, &report)) failed.push_back(seed);
  }
  EXPECT_TRUE(failed.empty()) << failed.size() << " of " << ran << " seeds failed:\n" << report;
  std::printf("%s%s shard %d: %zu seeds, %zu failed\n", relative.c_str(), swarm ? " --swarm" : "", shard, ran,
              failed.size());
}

class ZoneOutageSweep : public ::testing::TestWithParam<int> {};
TEST_P(ZoneOutageSweep, EverySeedPasses) { sweep("scenarios/zone-outage.yaml", false, GetParam()); }
INSTANTIATE_TEST_SUITE_P(Scenarios, ZoneOutageSweep, ::testing::Range(0, kShards));

class SwarmSweep : public ::testing::TestWithParam<int> {};
TEST_P(SwarmSweep, EverySeedPasses) { sweep("scenarios/swarm.yaml", true, GetParam()); }
INSTANTIATE_TEST_SUITE_P(Scenarios, SwarmSweep, ::testing::Range(0, kShards));

// Regression (swarm seed 96): a 5 s lossy link on fanout-dc1-b (p≈0.48)
// left one frame to seqsvr-dc1-a in retransmission backoff for 444.6 s; every
// allocation behind it on that connection timed out, while the worker kept
// renewing its queue leases over the healthy KV connections — its three
// queues never drained. Fixed by the fan-out worker yielding a queue it holds
// without progress (FanoutWorkerConfig::stall_yield_after).
TEST(ScenarioRun, Swarm96FanoutDrainsAfterAStalledSeqsvrConnection) {
  const std::string relative = "scenarios/swarm.yaml";
  const Scenario s = load(relative);
  std::string report;
  EXPECT_TRUE(run_seed(s, relative, 96, true, &report)) << report;
}

TEST(ScenarioRun, PlantedAckBeforeCommitFailsASwarmSweepAndTheSeedReproduces) {
  const std::string relative = "tests/scenarios/ack_before_commit_swarm.yaml";
  const Scenario s = load(relative);
  const testing::SeedRange seeds = testing::seed_range(5);
  std::optional<uint64_t> failing;
  std::string first_report;
  uint64_t first_hash = 0;
  for (uint64_t seed = seeds.first; seed < seeds.end() && !failing; ++seed) {
    RunOptions o;
    o.seed = seed;
    o.swarm = true;
    ScenarioRun run(s, o);
    if (run.run()) continue;
    failing = seed;
    first_report = run.report_json();
    first_hash = run.trace_hash();
    // The failure explains itself: the no_loss expectation names a message,
    // a recipient and the seed.
    bool named = false;
    for (const auto& e : run.expectations()) {
      if (e.name != "no_loss" || e.passed) continue;
      named = e.evidence.find("lost: message m") != std::string::npos &&
              e.evidence.find("recipient u") != std::string::npos &&
              e.evidence.find("seed " + std::to_string(seed)) != std::string::npos;
    }
    EXPECT_TRUE(named) << run.summary();
  }
  ASSERT_TRUE(failing.has_value()) << "the planted bug went unnoticed over " << seeds.count << " swarm seeds";
  // The reproduction: same scenario, same seed, --swarm → bit for bit.
  RunOptions o;
  o.seed = *failing;
  o.swarm = true;
  ScenarioRun again(s, o);
  EXPECT_FALSE(again.run());
  EXPECT_EQ(again.trace_hash(), first_hash);
  EXPECT_EQ(again.report_json(), first_report);
  EXPECT_EQ(reproduction_line("wxsim", relative, *failing, true),
            "wxsim run " + relative + " --seed " + std::to_string(*failing) + " --swarm");
}

TEST(ScenarioRun, SameSeedSameReportAndTraceHashDifferentSeedDiverges) {
  const Scenario s = load("scenarios/zone-outage.yaml");
  RunOptions o;
  o.seed = 7;
  o.trace_records_max = 50'000'000;
  ScenarioRun a(s, o), b(s, o);
  a.run();
  b.run();
  EXPECT_EQ(a.trace_hash(), b.trace_hash());
  EXPECT_EQ(a.report_json(), b.report_json());
  EXPECT_EQ(first_divergence(a.sim().kernel().trace(), b.sim().kernel().trace()), "");
  EXPECT_NE(a.report_json().find("\"seed\": 7"), std::string::npos);
  o.seed = 8;
  ScenarioRun c(s, o);
  c.run();
  EXPECT_NE(a.trace_hash(), c.trace_hash());
  const std::string d = first_divergence(a.sim().kernel().trace(), c.sim().kernel().trace());
  EXPECT_EQ(d.rfind("the runs diverge at event ", 0), 0u) << d;
  EXPECT_NE(d.find("run 1: "), std::string::npos);
  EXPECT_NE(d.find("run 2: "), std::string::npos);
}

}  // namespace
}  // namespace wx::scenario
