// The datacenter graph: vertices and links per placement, latency per tier
// within the configured bounds, shortest paths that reroute around a link
// that is down (or cut the pair when no path is left), and the route cache.
#include <gtest/gtest.h>

#include <map>
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

struct Net {
  Simulation sim;
  std::map<uint32_t, std::vector<Arrival>> logs;

  explicit Net(LatencyConfig latency = {}) : sim(make_config(latency)) {}
  static SimConfig make_config(LatencyConfig latency) {
    SimConfig c;
    c.latency = latency;
    c.log_level = LogLevel::off;
    return c;
  }
  NodeId add(Placement p) {
    const uint32_t id = static_cast<uint32_t>(sim.node_count() + 1);
    std::vector<Arrival>* log = &logs[id];
    NodeId n = sim.add_node(NodeSpec{"r" + std::to_string(id), std::move(p), [log](Runtime& rt) {
                                       return std::make_unique<Recorder>(rt, log);
                                     }});
    sim.start(n);
    return n;
  }
  // Sends one frame carrying its send time, so the receiver's log gives the
  // one-way latency of each frame.
  void send_stamped(NodeId from, NodeId to) {
    ASSERT_EQ(sim.runtime(from)->transport().send(to, std::to_string(sim.now().ns())),
              SendStatus::ok);
  }
  // One-way latencies of every frame `to` got from `from`.
  std::vector<Duration> latencies(NodeId from, NodeId to) {
    std::vector<Duration> out;
    for (const Arrival& a : logs[to.value]) {
      if (a.kind == Inbound::Kind::frame && a.peer == from.value) {
        out.push_back(a.at - TimePoint::from_ns(std::stoll(a.data)));
      }
    }
    return out;
  }
  // `count` frames from → to, `gap` apart (wide enough that FIFO never
  // holds one behind another), then runs until they are all in.
  std::vector<Duration> measure(NodeId from, NodeId to, int count, Duration gap = 100_ms) {
    logs[to.value].clear();
    const TimePoint t0 = sim.now();
    for (int i = 0; i < count; ++i) {
      sim.at(t0 + gap * i, [this, from, to] { send_stamped(from, to); });
    }
    EXPECT_TRUE(sim.run_until(t0 + gap * count + 1_s));
    return latencies(from, to);
  }
};

Duration min_of(const std::vector<Duration>& v) {
  return *std::min_element(v.begin(), v.end());
}
Duration max_of(const std::vector<Duration>& v) {
  return *std::max_element(v.begin(), v.end());
}

TEST(Topology, OneVertexPerHostZoneAndDatacenterAndTheLinksBetweenThem) {
  Topology t{LatencyConfig{}};
  t.place(NodeId{1}, Placement{"dc1", "a", "h1"});
  t.place(NodeId{2}, Placement{"dc1", "a", "h1"});  // same host
  t.place(NodeId{3}, Placement{"dc1", "a", ""});    // a host of its own
  t.place(NodeId{4}, Placement{"dc1", "b", ""});
  t.place(NodeId{5}, Placement{"dc2", "c", ""});
  t.place(NodeId{6}, Placement{"dc3", "d", ""});
  // 3 cores + 4 zone switches + 5 hosts (h1, and one each for nodes 3–6).
  EXPECT_EQ(t.vertex_count(), 12u);
  // 5 host links + 4 zone links + a WAN mesh of 3.
  EXPECT_EQ(t.link_count(), 12u);
  EXPECT_EQ(t.host_of(NodeId{1}), t.host_of(NodeId{2}));
  EXPECT_NE(t.host_of(NodeId{1}), t.host_of(NodeId{3}));
  ASSERT_EQ(t.find_hosts("h1").size(), 1u);
  EXPECT_EQ(t.vertex_kind(t.find_hosts("h1")[0]), VertexKind::host);
  ASSERT_EQ(t.find_zones("a").size(), 1u);
  EXPECT_EQ(t.vertex_name(t.find_zones("a")[0]), "zone:dc1/a");
  EXPECT_TRUE(t.find_datacenter("dc3").has_value());
  EXPECT_FALSE(t.find_datacenter("dc4").has_value());
  // Every datacenter core is linked to every other one.
  const VertexId dc1 = *t.find_datacenter("dc1"), dc2 = *t.find_datacenter("dc2"),
                 dc3 = *t.find_datacenter("dc3");
  EXPECT_TRUE(t.find_link(dc1, dc2) && t.find_link(dc2, dc3) && t.find_link(dc1, dc3));
  EXPECT_EQ(t.link(*t.find_link(dc1, dc2)).tier, LinkTier::wan);

  const LatencyConfig c;
  const Route& same_host = t.route(NodeId{1}, NodeId{2});
  EXPECT_TRUE(same_host.same_host);
  EXPECT_TRUE(same_host.links.empty());
  EXPECT_EQ(t.route(NodeId{1}, NodeId{3}).links.size(), 2u);
  EXPECT_EQ(t.route(NodeId{1}, NodeId{4}).links.size(), 4u);
  EXPECT_EQ(t.route(NodeId{1}, NodeId{5}).links.size(), 5u);
  EXPECT_EQ(t.route(NodeId{1}, NodeId{3}).latency.max, c.bounds(Proximity::same_zone).max);
  EXPECT_EQ(t.route(NodeId{3}, NodeId{4}).latency.min, c.bounds(Proximity::same_datacenter).min);
  EXPECT_EQ(t.route(NodeId{6}, NodeId{3}).latency.mean, c.bounds(Proximity::remote).mean);

  EXPECT_THROW(t.place(NodeId{7}, Placement{"dc1", "", ""}), std::invalid_argument);
  EXPECT_THROW(t.add_link(dc1, dc2, c.wan_link), std::invalid_argument) << "links are unique";
}

TEST(Topology, DefaultLatenciesLookLikeADatacenterAndTheTiersDoNotOverlap) {
  const LatencyConfig c;
  const LatencyBounds host = c.bounds(Proximity::same_host), zone = c.bounds(Proximity::same_zone),
                      dc = c.bounds(Proximity::same_datacenter), wan = c.bounds(Proximity::remote);
  EXPECT_GE(zone.min, 100_us);
  EXPECT_LE(zone.max, 300_us);
  EXPECT_GE(dc.min, 500_us);
  EXPECT_LE(dc.max, 2_ms);
  EXPECT_GE(wan.min, 10_ms);
  EXPECT_LE(wan.max, 100_ms);
  EXPECT_LT(host.max, zone.min);
  EXPECT_LT(zone.max, dc.min);
  EXPECT_LT(dc.max, wan.min);
}

TEST(Topology, FrameLatenciesFollowTheTiersWithinTheConfiguredBounds) {
  // A non-default configuration, to show the tiers come from it.
  LatencyConfig lc;
  lc.host_link = LinkLatency{20_us, 30_us};
  lc.zone_link = LinkLatency{1_ms, 500_us};
  lc.wan_link = LinkLatency{60_ms, 20_ms};
  Net n(lc);
  const NodeId a = n.add({"dc1", "z1", "h1"}), same_host = n.add({"dc1", "z1", "h1"}),
               same_zone = n.add({"dc1", "z1", ""}), other_zone = n.add({"dc1", "z2", ""}),
               other_dc = n.add({"dc2", "z3", ""});
  struct Case {
    NodeId to;
    Proximity p;
  };
  std::vector<Duration> prev;
  for (const Case& k :
       {Case{same_host, Proximity::same_host}, Case{same_zone, Proximity::same_zone},
        Case{other_zone, Proximity::same_datacenter}, Case{other_dc, Proximity::remote}}) {
    const std::vector<Duration> got = n.measure(a, k.to, 200);
    ASSERT_EQ(got.size(), 200u);
    const LatencyBounds b = lc.bounds(k.p);
    EXPECT_GE(min_of(got), b.min);
    EXPECT_LE(max_of(got), b.max);
    // Jitter is real: the samples spread over the range.
    EXPECT_LT(min_of(got), b.mean);
    EXPECT_GT(max_of(got), b.mean);
    if (!prev.empty()) {
      EXPECT_LT(max_of(prev), min_of(got)) << "tiers must not overlap";
    }
    prev = got;
    const Network::Path path = n.sim.network().path(a, k.to);
    EXPECT_EQ(path.latency.min, b.min);
    EXPECT_EQ(path.latency.max, b.max);
  }
}

TEST(Topology, ALinkDownReroutesOverTheLongerPathOrCutsThePairWhenNoneIsLeft) {
  Net n;
  const LatencyConfig lc;
  const NodeId a = n.add({"dc1", "z1", ""}), b = n.add({"dc2", "z2", ""});
  n.add({"dc3", "z3", ""});  // a third datacenter: the detour
  Faults& f = n.sim.faults();

  // Direct: host, zone, WAN, zone, host.
  EXPECT_EQ(n.sim.network().path(a, b).links, 5u);
  std::vector<Duration> direct = n.measure(a, b, 50);
  ASSERT_EQ(direct.size(), 50u);
  EXPECT_LE(max_of(direct), lc.bounds(Proximity::remote).max);
  const uint64_t epoch = n.sim.network().connection(a, b).epoch;

  // dc1–dc2 down: through dc3, two WAN links.
  f.set_link_up(Selector::datacenter("dc1"), Selector::datacenter("dc2"), false);
  const Network::Path detour = n.sim.network().path(a, b);
  EXPECT_TRUE(detour.reachable);
  EXPECT_EQ(detour.links, 6u);
  EXPECT_EQ(detour.latency.min, lc.bounds(Proximity::remote).min + lc.wan_link.min());
  std::vector<Duration> rerouted = n.measure(a, b, 50);
  ASSERT_EQ(rerouted.size(), 50u) << "traffic reroutes; nothing is lost";
  EXPECT_GT(min_of(rerouted), max_of(direct)) << "the detour is longer";
  EXPECT_GE(min_of(rerouted), detour.latency.min);
  EXPECT_LE(max_of(rerouted), detour.latency.max);
  EXPECT_EQ(n.sim.network().connection(a, b).epoch, epoch)
      << "a reroute does not break the connection";
  EXPECT_TRUE(n.sim.network().connection(a, b).open);

  // dc1–dc3 down too: dc1 is cut off. The pair behaves as partitioned: the
  // open connection breaks silently, sends are dropped, nobody gets a reset.
  f.set_link_up(Selector::datacenter("dc1"), Selector::datacenter("dc3"), false);
  EXPECT_FALSE(n.sim.network().path(a, b).reachable);
  EXPECT_FALSE(n.sim.network().connection(a, b).open);
  const uint64_t dropped = n.sim.network().stats().frames_dropped_blocked;
  EXPECT_TRUE(n.measure(a, b, 10).empty());
  EXPECT_EQ(n.sim.network().stats().frames_dropped_blocked, dropped + 10);
  EXPECT_TRUE(n.logs[a.value].empty()) << "no reset crosses a cut";
  EXPECT_EQ(n.sim.network().stats().resets, 0u);

  // Back up: the direct route again, on a new connection.
  f.set_link_up(Selector::datacenter("dc1"), Selector::datacenter("dc2"), true);
  f.set_link_up(Selector::datacenter("dc1"), Selector::datacenter("dc3"), true);
  EXPECT_EQ(n.sim.network().path(a, b).links, 5u);
  std::vector<Duration> back = n.measure(a, b, 50);
  ASSERT_EQ(back.size(), 50u);
  EXPECT_LE(max_of(back), lc.bounds(Proximity::remote).max);
  EXPECT_GT(n.sim.network().connection(a, b).epoch, epoch + 1);
}

TEST(Topology, AZoneLinkDownCutsTheZoneOffButTrafficInsideItFlows) {
  Net n;
  const NodeId a1 = n.add({"dc1", "za", ""}), a2 = n.add({"dc1", "za", ""}),
               b = n.add({"dc1", "zb", ""});
  n.sim.faults().set_link_up(Selector::zone("za"), Selector::datacenter("dc1"), false);
  EXPECT_EQ(n.measure(a1, a2, 5).size(), 5u);
  EXPECT_TRUE(n.measure(a1, b, 5).empty());
  EXPECT_TRUE(n.measure(b, a2, 5).empty());
  EXPECT_THROW(n.sim.faults().set_link_up(Selector::zone("za"), Selector::zone("zb"), false),
               std::invalid_argument)
      << "there is no such link";
  EXPECT_THROW(
      n.sim.faults().set_link_up(Selector::zone("nope"), Selector::datacenter("dc1"), false),
      std::invalid_argument);
}

TEST(Topology, AnExtraLinkShortensTheRoute) {
  Net n;
  const NodeId a = n.add({"dc1", "za", ""}), b = n.add({"dc1", "zb", ""});
  const LatencyBounds before = n.sim.network().path(a, b).latency;
  Topology& t = n.sim.topology();
  t.add_link(t.find_zones("za")[0], t.find_zones("zb")[0], LinkLatency{100_us, 50_us});
  const Network::Path after = n.sim.network().path(a, b);
  EXPECT_EQ(after.links, 3u);
  EXPECT_LT(after.latency.max, before.min);
  const std::vector<Duration> got = n.measure(a, b, 20);
  ASSERT_EQ(got.size(), 20u);
  EXPECT_LE(max_of(got), after.latency.max);
}

TEST(Topology, RoutesAreComputedOnceAndAgainOnlyAfterALinkChanges) {
  Net n;
  const NodeId a = n.add({"dc1", "za", ""}), b = n.add({"dc2", "zb", ""});
  n.add({"dc3", "zc", ""});
  n.measure(a, b, 20);
  n.measure(b, a, 20);
  const uint64_t runs = n.sim.topology().shortest_path_runs();
  EXPECT_EQ(runs, 1u) << "one Dijkstra for the pair, however many frames";
  n.measure(a, b, 20);
  EXPECT_EQ(n.sim.topology().shortest_path_runs(), runs);
  n.sim.faults().set_link_loss(Selector::datacenter("dc1"), Selector::datacenter("dc2"), 0.01);
  n.measure(a, b, 5);
  EXPECT_EQ(n.sim.topology().shortest_path_runs(), runs) << "loss does not move routes";
  n.sim.faults().set_link_up(Selector::datacenter("dc1"), Selector::datacenter("dc2"), false);
  n.measure(a, b, 5);
  EXPECT_EQ(n.sim.topology().shortest_path_runs(), runs + 1);
}

}  // namespace
}  // namespace wx::sim
