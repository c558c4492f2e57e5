// The ping/echo node in simulation: three zones, real SQLite disks, a crash.
// Its twin over real TCP is tests/prod/echo_tcp_test.cc — same source file
// (nodes/echo/echo_node.cc), different Runtime.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "nodes/echo/echo_node.h"
#include "sim/simulation.h"

namespace wx {
namespace {

using namespace time_literals;

TEST(EchoSim, PingsAcrossThreeZonesAllSucceedWithZoneLatencies) {
  sim::SimConfig cfg;
  cfg.log_level = LogLevel::off;
  sim::Simulation s(cfg);
  std::vector<NodeId> echoes;
  for (const char* z : {"a", "b", "c"}) {
    echoes.push_back(s.add_node({std::string("echo-") + z, sim::Placement{"dc", z, ""},
                                 [](Runtime& rt) { return std::make_unique<echo::EchoServer>(rt); }}));
  }
  bool finished = false;
  echo::PingerConfig pc;
  pc.targets = echoes;
  pc.count_max = 300;
  pc.interval = 5_ms;
  pc.on_finished = [&finished] { finished = true; };
  NodeId pinger = s.add_node({"ping", sim::Placement{"dc", "a", ""},
                              [pc](Runtime& rt) { return std::make_unique<echo::Pinger>(rt, pc); }});
  for (NodeId e : echoes) s.start(e);
  s.start(pinger);
  ASSERT_TRUE(s.run_until([&] { return finished; }, TimePoint::zero() + 10_s));

  const echo::Pinger* p = s.node_as<echo::Pinger>(pinger);
  EXPECT_EQ(p->stats().sent, 300u);
  EXPECT_EQ(p->stats().ok, 300u);
  const sim::LatencyConfig lc;
  const sim::LatencyBounds same_zone = lc.bounds(sim::Proximity::same_zone);
  const sim::LatencyBounds other_zone = lc.bounds(sim::Proximity::same_datacenter);
  for (const echo::PingOutcome& o : p->outcomes()) {
    ASSERT_EQ(o.result, echo::PingOutcome::Result::ok);
    if (o.target == echoes[0]) {  // same zone: one way each, both within the zone
      EXPECT_GE(o.rtt, same_zone.min * 2);
      EXPECT_LE(o.rtt, same_zone.max * 2);
    } else {
      EXPECT_GE(o.rtt, other_zone.min * 2);
      EXPECT_LE(o.rtt, other_zone.max * 2);
    }
  }
  for (NodeId e : echoes) EXPECT_EQ(s.node_as<echo::EchoServer>(e)->served_total(), 100u);
}

TEST(EchoSim, ACrashedEchoServerCostsPingsAndKeepsItsCountOnDisk) {
  sim::SimConfig cfg;
  cfg.log_level = LogLevel::off;
  sim::Simulation s(cfg);
  NodeId e = s.add_node({"echo", sim::Placement{"dc", "b", ""},
                         [](Runtime& rt) { return std::make_unique<echo::EchoServer>(rt); }});
  echo::PingerConfig pc;
  pc.targets = {e};
  pc.interval = 10_ms;
  pc.timeout = 100_ms;
  NodeId pinger = s.add_node({"ping", sim::Placement{"dc", "a", ""},
                              [pc](Runtime& rt) { return std::make_unique<echo::Pinger>(rt, pc); }});
  s.start(e);
  s.start(pinger);
  s.run_until(TimePoint::zero() + 1_s);
  const uint64_t served = s.node_as<echo::EchoServer>(e)->served_total();
  EXPECT_GE(served, 95u);
  s.crash(e);
  s.run_until(TimePoint::zero() + 2_s);
  const auto& st = s.node_as<echo::Pinger>(pinger)->stats();
  EXPECT_GT(st.resets, 50u) << "pings to a down server fail fast by reset, not by timeout";
  s.start(e);
  EXPECT_EQ(s.node_as<echo::EchoServer>(e)->served_total(), served) << "count kept on disk";
  s.run_until(TimePoint::zero() + 3_s);
  EXPECT_GE(s.node_as<echo::EchoServer>(e)->served_total(), served + 95);
  EXPECT_EQ(s.node_as<echo::Pinger>(pinger)->stats().malformed, 0u);
}

}  // namespace
}  // namespace wx
