// Two datacenters (docs/multi-dc.md): users homed in both, a 2-minute
// partition between the datacenters in the middle of the traffic. Judged from
// the recorded history and the replicas' dumped records only:
//   * every messaging check (no acknowledged message lost — cross-datacenter
//     ones included, delivered after the heal —, none twice, order,
//     convergence of every client with the server);
//   * each side's own users keep >= 99 % of their sends and of their syncs
//     while the datacenters are apart;
//   * after the heal every datacenter's copy of every user's records equals
//     the home datacenter's (checkers/replica_convergence.h).
// Seeds: WX_SEEDS (tests/support/seeds.h); defaults: 50 seeds at 100 users,
// 3 seeds at 1,000 users.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "checkers/availability.h"
#include "nodes/deploy/deployment.h"
#include "sim/workload/outage_run.h"
#include "tests/support/seeds.h"

namespace wx::sim::workload {
namespace {

namespace cm = checkers::messaging;

deploy::DeploymentSpec two_datacenters() {
  deploy::DeploymentSpec spec;
  spec.datacenters = {{"dc1", {"a", "b", "c"}}, {"dc2", {"a", "b", "c"}}};
  spec.default_datacenter = "dc1";
  spec.instances_per_zone = deploy::DeploymentSpec::full_set_per_zone();
  for (deploy::Role r : {deploy::Role::msg, deploy::Role::access, deploy::Role::group, deploy::Role::fanout}) {
    spec.instances_per_zone[r] = 1;
  }
  return spec;
}

struct Outcome {
  bool ran = false;
  std::string why;
};

void run_partition(uint64_t seed, size_t users, Duration duration) {
  OutageRunConfig c;
  c.seed = seed;
  c.users = users;
  c.groups = 0;
  c.duration = duration;
  c.zone = "";
  c.rate_per_min = 2;
  c.spec = two_datacenters();
  OutageRun run(c);
  const TimePoint t0 = run.traffic_start();
  const TimePoint cut = t0 + seconds(15), heal = cut + minutes(2);
  FaultId f{};
  run.sim().at(cut, [&] { f = run.sim().faults().partition({{Selector::datacenter("dc1")}, {Selector::datacenter("dc2")}}); });
  run.sim().at(heal, [&] { run.sim().faults().heal(f); });
  std::string why;
  ASSERT_TRUE(run.run(&why)) << "seed " << seed << ": " << why;
  const cm::MessagingVerdict& v = run.verdict();
  EXPECT_TRUE(v.ok()) << "seed " << seed << ": " << (v.violations.empty() ? "" : cm::format_violation(v.violations.front(), ""));
  ASSERT_TRUE(run.replica_verdict().has_value());
  const checkers::ReplicaConvergenceVerdict& rv = *run.replica_verdict();
  EXPECT_TRUE(run.replication_caught_up_at().has_value()) << "seed " << seed;
  EXPECT_TRUE(rv.ok()) << "seed " << seed << ": " << rv.divergent << " divergent copies; first: "
                       << (rv.violations.empty() ? "" : rv.violations.front());
  EXPECT_EQ(rv.users, users);
  EXPECT_GT(rv.home_records, users);  // every user has records: the check compared something
  const std::vector<cm::Window> during{{"during", cut.ns(), heal.ns()}};
  for (const std::string dc : {"dc1", "dc2"}) {
    const std::set<std::string> mine = run.processes_homed_in(dc);
    auto include = [&mine](const std::string& p) { return mine.count(p) != 0; };
    const cm::WindowStats sends = cm::send_stats(run.history(), during, include).front();
    const cm::WindowStats syncs = cm::sync_stats(run.history(), during, include).front();
    EXPECT_GT(sends.attempted, 0u);
    EXPECT_GT(syncs.attempted, 0u);
    EXPECT_GE(sends.availability(), 0.99) << "seed " << seed << " " << dc << ": " << sends.ok << "/" << sends.attempted;
    EXPECT_GE(syncs.availability(), 0.99) << "seed " << seed << " " << dc << ": " << syncs.ok << "/" << syncs.attempted;
    if (testing::verbose()) {
      std::printf("seed %llu %s: sends %llu/%llu, syncs %llu/%llu during the partition\n",
                  static_cast<unsigned long long>(seed), dc.c_str(), static_cast<unsigned long long>(sends.ok),
                  static_cast<unsigned long long>(sends.attempted), static_cast<unsigned long long>(syncs.ok),
                  static_cast<unsigned long long>(syncs.attempted));
    }
  }
  EXPECT_GT(v.stats.messages_acknowledged, 0u);
}

TEST(MultiDc, PartitionThousandUsers) {
  const testing::SeedRange seeds = testing::seed_range(3);
  for (uint64_t s = seeds.first; s < seeds.end(); ++s) {
    run_partition(s, 1000, seconds(150));
    if (HasFailure()) {
      std::printf("%s\n", testing::rerun_hint(s, "tests/scale/multidc_run_test", "MultiDc.PartitionThousandUsers").c_str());
      return;
    }
  }
}

// 50 seeds by default, in kShards shards so ctest runs them side by side.
constexpr int kShards = 5;
class PartitionHundredUsers : public ::testing::TestWithParam<int> {};
TEST_P(PartitionHundredUsers, EverySeedPasses) {
  const testing::SeedRange seeds = testing::seed_range(50);
  for (uint64_t s = seeds.first + static_cast<uint64_t>(GetParam()); s < seeds.end(); s += kShards) {
    run_partition(s, 100, seconds(150));
    if (HasFailure()) {
      std::printf("%s\n", testing::rerun_hint(s, "tests/scale/multidc_run_test", "MultiDc/PartitionHundredUsers.*").c_str());
      return;
    }
  }
}
INSTANTIATE_TEST_SUITE_P(MultiDc, PartitionHundredUsers, ::testing::Range(0, kShards));

}  // namespace
}  // namespace wx::sim::workload
