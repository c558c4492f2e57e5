// Same seed, same run: identical trace hash over well over 100,000 events,
// with crashes, restarts and wipes drawn from the seed. Different seeds give
// different runs.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "nodes/echo/echo_node.h"
#include "sim/simulation.h"

namespace wx::sim {
namespace {

using namespace time_literals;

struct RunResult {
  uint64_t hash;
  uint64_t events;
  uint64_t pings_ok;
  uint64_t stale_dropped;
  bool operator==(const RunResult&) const = default;
};

RunResult run_cluster(uint64_t seed, Duration duration) {
  SimConfig cfg;
  cfg.seed = seed;
  cfg.log_level = LogLevel::off;
  Simulation sim(cfg);
  const char* zones[] = {"z-a", "z-b", "z-c"};
  std::vector<NodeId> echoes, pingers;
  for (const char* z : zones) {
    echoes.push_back(sim.add_node({std::string("echo-") + z, Placement{"dc", z, ""},
                                   [](Runtime& rt) { return std::make_unique<echo::EchoServer>(rt); }}));
  }
  for (const char* z : zones) {
    echo::PingerConfig pc;
    pc.targets = echoes;
    pc.interval = 1_ms;
    pc.timeout = 50_ms;
    pingers.push_back(sim.add_node({std::string("ping-") + z, Placement{"dc", z, ""},
                                    [pc](Runtime& rt) { return std::make_unique<echo::Pinger>(rt, pc); }}));
  }
  for (NodeId id : echoes) sim.start(id);
  for (NodeId id : pingers) sim.start(id);

  // A fault schedule drawn from the seed: every ~500 ms one echo server
  // crashes, restarts or is wiped, and comes back 100–300 ms later.
  Rng faults = sim.derive_rng("faults");
  for (TimePoint t = TimePoint::zero() + faults.exponential(500_ms); t < TimePoint::zero() + duration;
       t += faults.exponential(500_ms)) {
    const NodeId victim = echoes[faults.uniform(echoes.size())];
    const bool wipe = faults.bernoulli(0.3);
    const Duration down_for = faults.uniform(100_ms, 300_ms);
    sim.at(t, [&sim, victim, wipe] {
      if (!sim.is_up(victim)) return;
      if (wipe) sim.wipe(victim); else sim.crash(victim);
    });
    sim.at(t + down_for, [&sim, victim] {
      if (!sim.is_up(victim)) sim.start(victim);
    });
  }
  EXPECT_TRUE(sim.run_until(TimePoint::zero() + duration)) << sim.failure().value_or("");
  uint64_t ok = 0;
  for (NodeId id : pingers) ok += sim.node_as<echo::Pinger>(id)->stats().ok;
  return RunResult{sim.trace_hash(), sim.kernel().events_executed(), ok, sim.kernel().stale_dropped()};
}

TEST(Determinism, SameSeedSameTraceHashOverMoreThan100kEvents) {
  const RunResult a = run_cluster(42, 10_s);
  const RunResult b = run_cluster(42, 10_s);
  EXPECT_GE(a.events, 100'000u);
  EXPECT_GT(a.pings_ok, 10'000u) << "the cluster must do real work, not idle";
  EXPECT_EQ(a.hash, b.hash);
  EXPECT_EQ(a, b);
}

TEST(Determinism, DifferentSeedsGiveDifferentTraces) {
  const RunResult a = run_cluster(1, 2_s);
  const RunResult b = run_cluster(2, 2_s);
  const RunResult c = run_cluster(3, 2_s);
  EXPECT_NE(a.hash, b.hash);
  EXPECT_NE(a.hash, c.hash);
  EXPECT_NE(b.hash, c.hash);
}

TEST(Determinism, InterleavedSimulationsDoNotDisturbEachOther) {
  // Two simulations alive in one process must not share any state (streams,
  // disks, counters): running one between runs of the other changes nothing.
  const RunResult alone = run_cluster(7, 1_s);
  const RunResult other = run_cluster(8, 1_s);
  const RunResult again = run_cluster(7, 1_s);
  EXPECT_EQ(alone, again);
  EXPECT_NE(alone.hash, other.hash);
}

}  // namespace
}  // namespace wx::sim
