// Overload: one service offered three times its capacity, with FastReject on
// and off. With it on, goodput stays near capacity and admitted requests'
// latency stays bounded; with it off, the queue grows, every request waits
// longer than its caller will, and goodput collapses.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "nodes/rpc/load_client.h"
#include "tests/rpc/rpc_test_nodes.h"

namespace wx::rpc::testing {
namespace {

using namespace time_literals;

struct OverloadResult {
  double goodput_per_s;     // ok responses per second in the measured window
  double capacity_per_s;
  Duration ok_latency_p99;  // of the admitted (ok) calls
  uint64_t rejected, dropped_expired, served;
  size_t queue_len_at_end;
};

// 4 workers × 10 ms per request = 400 requests/s of capacity, offered
// 1,200/s (Poisson) by three clients, one per zone, each call with a 100 ms
// timeout. Measured from 5 s to 20 s (after warm-up).
OverloadResult run_overload(bool fast_reject, uint64_t seed) {
  echo::RpcEchoConfig server;
  server.server.workers = 4;
  server.server.fast_reject = fast_reject;
  server.server.queue_len_max = 1'000'000;
  server.cost = 10_ms;
  sim::SimConfig cfg = EchoCluster::config(seed);
  sim::Simulation sim(cfg);
  NodeId srv = sim.add_node({"echo", sim::Placement{"dc", "a", ""},
                             [server](Runtime& rt) { return std::make_unique<echo::RpcEchoServer>(rt, server); }});
  ServiceDirectory dir;
  dir.add(echo::kEchoService, Instance{srv, "dc", "a"});
  std::vector<NodeId> clients;
  for (const char* z : {"a", "b", "c"}) {
    LoadConfig lc;
    lc.service = echo::kEchoService;
    lc.method = echo::kEchoMethod;
    lc.request = echo_request(std::string(100, 'x')).SerializeAsString();
    lc.rate_per_s = 400;
    lc.duration = 20_s;
    lc.options.timeout = 100_ms;
    lc.router.attempts_max = 1;  // measure the server, not client retries
    lc.directory = dir;
    lc.self = Locality{"dc", z};
    clients.push_back(sim.add_node({std::string("load-") + z, sim::Placement{"dc", z, ""},
                                    [lc](Runtime& rt) { return std::make_unique<LoadClient>(rt, lc); }}));
  }
  sim.start(srv);
  for (NodeId c : clients) sim.start(c);
  EXPECT_TRUE(sim.run_until(TimePoint::zero() + 21_s)) << sim.failure().value_or("");

  const TimePoint from = TimePoint::zero() + 5_s, to = TimePoint::zero() + 20_s;
  uint64_t ok = 0;
  std::vector<int64_t> lat;
  for (NodeId c : clients) {
    for (const CallRecord& r : sim.node_as<LoadClient>(c)->records()) {
      if (r.sent_at < from || r.sent_at >= to || r.code != StatusCode::ok) continue;
      ++ok;
      lat.push_back(r.latency.ns());
    }
  }
  std::sort(lat.begin(), lat.end());
  const auto& st = sim.node_as<echo::RpcEchoServer>(srv)->endpoint().server_stats();
  OverloadResult res{};
  res.goodput_per_s = static_cast<double>(ok) / (to - from).s_f();
  res.capacity_per_s = 4 / (10_ms).s_f();
  res.ok_latency_p99 = lat.empty() ? Duration::zero() : nanoseconds(lat[lat.size() * 99 / 100]);
  res.rejected = st.rejected_on_arrival + st.rejected_after_queueing;
  res.dropped_expired = st.dropped_expired;
  res.served = st.served_ok;
  res.queue_len_at_end = sim.node_as<echo::RpcEchoServer>(srv)->endpoint().queue_len();
  std::printf("fast_reject=%s seed=%llu: goodput %.0f/s of capacity %.0f/s (%.0f %%), ok p99 %s, "
              "rejected %llu, dropped expired %llu, served %llu, queue at end %zu\n",
              fast_reject ? "on " : "off", static_cast<unsigned long long>(seed), res.goodput_per_s,
              res.capacity_per_s, 100 * res.goodput_per_s / res.capacity_per_s, to_string(res.ok_latency_p99).c_str(),
              static_cast<unsigned long long>(res.rejected), static_cast<unsigned long long>(res.dropped_expired),
              static_cast<unsigned long long>(res.served), res.queue_len_at_end);
  return res;
}

TEST(Overload, FastRejectKeepsGoodputAtCapacityAndLatencyBounded) {
  for (uint64_t seed : {1, 2, 3}) {
    const OverloadResult on = run_overload(true, seed);
    EXPECT_GE(on.goodput_per_s, 0.8 * on.capacity_per_s);
    // Admitted calls wait at most the 20 ms threshold, then 10 ms of service,
    // plus a few intra/inter-zone hops.
    EXPECT_LE(on.ok_latency_p99, 40_ms);
    EXPECT_GT(on.rejected, 0u) << "at 3x capacity something must be rejected";
  }
}

TEST(Overload, WithoutFastRejectGoodputCollapses) {
  for (uint64_t seed : {1, 2, 3}) {
    const OverloadResult off = run_overload(false, seed);
    EXPECT_LT(off.goodput_per_s, 0.1 * off.capacity_per_s);
    EXPECT_GT(off.queue_len_at_end, 1000u) << "the queue grows without bound";
    EXPECT_EQ(off.rejected, 0u);
  }
}

}  // namespace
}  // namespace wx::rpc::testing
