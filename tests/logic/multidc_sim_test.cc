// Two datacenters at small size (docs/multi-dc.md), cheap enough for the
// sanitized run (label logic): users homed in both, 1:1 chats AND group chats
// whose members live on both sides, a partition between the datacenters,
// then the heal. Exercises forwarding, the remote queues, msg.Deliver for 1:1
// and group members, the replicators and the replica-convergence check under
// ASan/UBSan; the scale test (tests/scale/multidc_run_test.cc) runs the same
// at 100 and 1,000 users over many seeds. WX_SEEDS (default 2).
#include <gtest/gtest.h>

#include <string>

#include "nodes/deploy/deployment.h"
#include "sim/workload/outage_run.h"
#include "tests/support/seeds.h"

namespace wx::sim::workload {
namespace {

namespace cm = checkers::messaging;

TEST(MultiDcSim, SmallPartitionWithGroupsDeliversOnceAndConverges) {
  const testing::SeedRange seeds = testing::seed_range(2);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    deploy::DeploymentSpec spec;
    spec.datacenters = {{"dc1", {"a", "b", "c"}}, {"dc2", {"a", "b", "c"}}};
    spec.default_datacenter = "dc1";
    spec.instances_per_zone = deploy::DeploymentSpec::full_set_per_zone();
    for (deploy::Role r : {deploy::Role::msg, deploy::Role::access, deploy::Role::group, deploy::Role::fanout}) {
      spec.instances_per_zone[r] = 1;
    }
    OutageRunConfig c;
    c.seed = seed;
    c.users = 16;
    c.groups = 3;
    c.group_size = SizeDistribution{3, 8, 1.0};
    c.duration = seconds(45);
    c.zone = "";
    c.rate_per_min = 6;
    c.spec = spec;
    OutageRun run(c);
    const TimePoint cut = run.traffic_start() + seconds(10), heal = cut + seconds(25);
    FaultId f{};
    run.sim().at(cut, [&] { f = run.sim().faults().partition({{Selector::datacenter("dc1")}, {Selector::datacenter("dc2")}}); });
    run.sim().at(heal, [&] { run.sim().faults().heal(f); });
    std::string why;
    ASSERT_TRUE(run.run(&why)) << "seed " << seed << ": " << why;
    const cm::MessagingVerdict& v = run.verdict();
    EXPECT_TRUE(v.ok()) << "seed " << seed << ": " << cm::format_verdict(v, 5);
    EXPECT_GT(v.stats.messages_acknowledged, 0u);
    ASSERT_TRUE(run.replica_verdict().has_value());
    EXPECT_TRUE(run.replica_verdict()->ok()) << "seed " << seed << ": "
                                             << (run.replica_verdict()->violations.empty()
                                                     ? std::string()
                                                     : run.replica_verdict()->violations.front());
    EXPECT_TRUE(run.replication_caught_up_at().has_value()) << "seed " << seed;
    // Something crossed: group members and 1:1 peers on the other side.
    EXPECT_GT(run.group_members(), 0u);
  }
}

}  // namespace
}  // namespace wx::sim::workload
