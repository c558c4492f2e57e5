// The network's connection model: latency by placement, FIFO per
// connection, resets on crash and on connecting to a down node. Faults are
// in faults_test.cc, the graph in topology_test.cc.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "nodes/runtime/transport.h"
#include "sim/simulation.h"
#include "tests/sim/recorder_node.h"

namespace wx::sim {
namespace {

using namespace time_literals;

using testing::Arrival;
using testing::Recorder;

struct Fixture {
  Simulation sim{SimConfig{}};
  std::vector<std::vector<Arrival>> logs = std::vector<std::vector<Arrival>>(8);
  NodeId add(const std::string& dc, const std::string& zone) {
    const size_t idx = sim.node_count() + 1;
    return sim.add_node(NodeSpec{zone, Placement{dc, zone, ""}, [this, idx](Runtime& rt) {
                                   return std::make_unique<Recorder>(rt, &logs[idx]);
                                 }});
  }
  void send(NodeId from, NodeId to, std::string data) {
    ASSERT_EQ(sim.runtime(from)->transport().send(to, std::move(data)), SendStatus::ok);
  }
};

TEST(Network, LatencyFollowsTheTiers) {
  Fixture f;
  NodeId a = f.add("dc1", "z1"), a2 = f.add("dc1", "z1"), b = f.add("dc1", "z2"), r = f.add("dc2", "z9");
  for (NodeId id : {a, a2, b, r}) f.sim.start(id);
  f.send(a, a2, "same-zone");
  f.send(a, b, "other-zone");
  f.send(a, r, "other-dc");
  ASSERT_TRUE(f.sim.run_for(1_s));
  const LatencyConfig lc;
  const LatencyBounds zone_b = lc.bounds(Proximity::same_zone);
  const LatencyBounds inter_b = lc.bounds(Proximity::same_datacenter);
  const LatencyBounds dc_b = lc.bounds(Proximity::remote);
  ASSERT_EQ(f.logs[a2.value].size(), 1u);
  ASSERT_EQ(f.logs[b.value].size(), 1u);
  ASSERT_EQ(f.logs[r.value].size(), 1u);
  const Duration zone = f.logs[a2.value][0].at - TimePoint::zero();
  const Duration inter = f.logs[b.value][0].at - TimePoint::zero();
  const Duration dc = f.logs[r.value][0].at - TimePoint::zero();
  EXPECT_GE(zone, zone_b.min);
  EXPECT_LE(zone, zone_b.max);
  EXPECT_GE(inter, inter_b.min);
  EXPECT_LE(inter, inter_b.max);
  EXPECT_GE(dc, dc_b.min);
  EXPECT_LE(dc, dc_b.max);
}

TEST(Network, FramesOnOneConnectionArriveInOrder) {
  Fixture f;
  NodeId a = f.add("dc1", "z1"), b = f.add("dc1", "z2");
  f.sim.start(a);
  f.sim.start(b);
  // Latency is drawn per frame; without FIFO enforcement these would reorder.
  for (int i = 0; i < 500; ++i) f.send(a, b, std::to_string(i));
  ASSERT_TRUE(f.sim.run_for(1_s));
  ASSERT_EQ(f.logs[b.value].size(), 500u);
  for (int i = 0; i < 500; ++i) EXPECT_EQ(f.logs[b.value][i].data, std::to_string(i));
}

TEST(Network, CrashLosesFramesInFlightAndResetsThePeer) {
  Fixture f;
  NodeId a = f.add("dc1", "z1"), b = f.add("dc1", "z2");
  f.sim.start(a);
  f.sim.start(b);
  f.send(a, b, "hello");
  f.sim.run_for(10_ms);
  ASSERT_EQ(f.logs[b.value].size(), 1u);
  f.send(a, b, "in-flight");
  ASSERT_GT(LatencyConfig{}.bounds(Proximity::same_datacenter).min, 100_us);
  f.sim.run_for(100_us);
  f.sim.crash(b);
  f.sim.run_for(10_ms);
  // `a` learns of the broken connection by one reset; the frame is lost.
  ASSERT_EQ(f.logs[a.value].size(), 1u);
  EXPECT_EQ(f.logs[a.value][0].kind, Inbound::Kind::reset);
  EXPECT_EQ(f.logs[a.value][0].peer, b.value);
  f.sim.start(b);
  f.sim.run_for(10_ms);
  EXPECT_TRUE(f.logs[b.value].size() == 1u) << "the lost frame must not reach the new incarnation";
  // A new connection works.
  f.send(a, b, "again");
  f.sim.run_for(10_ms);
  ASSERT_EQ(f.logs[b.value].size(), 2u);
  EXPECT_EQ(f.logs[b.value][1].data, "again");
}

TEST(Network, SendingToADownNodeIsRefusedAfterARoundTrip) {
  Fixture f;
  NodeId a = f.add("dc1", "z1"), b = f.add("dc1", "z2");
  f.sim.start(a);
  f.send(a, b, "anyone?");
  f.sim.run_for(1_ms);
  EXPECT_TRUE(f.logs[a.value].empty()) << "a refused connect takes a round trip";
  f.sim.run_for(10_ms);
  ASSERT_EQ(f.logs[a.value].size(), 1u);
  EXPECT_EQ(f.logs[a.value][0].kind, Inbound::Kind::reset);
  EXPECT_GE(f.logs[a.value][0].at - TimePoint::zero(), LatencyConfig{}.bounds(Proximity::same_datacenter).min * 2);
  EXPECT_EQ(f.sim.network().stats().refused, 1u);
}

TEST(Network, SendRejectsBadArguments) {
  Fixture f;
  NodeId a = f.add("dc1", "z1");
  f.sim.start(a);
  Transport& t = f.sim.runtime(a)->transport();
  EXPECT_EQ(t.send(a, "x"), SendStatus::to_self);
  EXPECT_EQ(t.send(NodeId{99}, "x"), SendStatus::unknown_peer);
  EXPECT_EQ(t.send(NodeId{0}, "x"), SendStatus::unknown_peer);
  EXPECT_EQ(t.send(a, std::string(kFrameBytesMaxDefault + 1, 'x')), SendStatus::frame_too_large);
}

}  // namespace
}  // namespace wx::sim
