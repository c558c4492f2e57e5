// RPC round trips in simulation: how fast the simulator runs a loaded cluster.
//
// Three RPC echo servers (one per zone, 8 workers, 100 us service cost) and
// three open-loop load clients (one per zone) calling through the zone-aware
// router with 1 KiB payloads. Each benchmark iteration simulates 1 s of
// virtual time. Reported: kernel events per wall second, completed RPC round
// trips per wall second, and how many times faster than real time the
// cluster runs.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "nodes/echo/echo.pb.h"
#include "nodes/echo/rpc_echo.h"
#include "nodes/rpc/load_client.h"
#include "sim/simulation.h"

namespace wx {
namespace {

void BM_RpcClusterInSimulation(benchmark::State& state) {
  const double rate_per_client = static_cast<double>(state.range(0));
  sim::SimConfig cfg;
  cfg.seed = 1;
  cfg.log_level = LogLevel::off;
  sim::Simulation sim(cfg);
  rpc::ServiceDirectory dir;
  std::vector<NodeId> servers, clients;
  for (const char* z : {"a", "b", "c"}) {
    echo::RpcEchoConfig sc;
    sc.server.workers = 8;
    sc.cost = microseconds(100);
    sc.zone = z;
    NodeId id = sim.add_node({std::string("echo-") + z, sim::Placement{"dc", z, ""},
                              [sc](Runtime& rt) { return std::make_unique<echo::RpcEchoServer>(rt, sc); }});
    servers.push_back(id);
    dir.add(echo::kEchoService, rpc::Instance{id, "dc", z});
  }
  echo::EchoRequest req;
  req.set_payload(std::string(1024, 'x'));
  for (const char* z : {"a", "b", "c"}) {
    rpc::LoadConfig lc;
    lc.service = echo::kEchoService;
    lc.method = echo::kEchoMethod;
    lc.request = req.SerializeAsString();
    lc.rate_per_s = rate_per_client;
    lc.duration = seconds(1'000'000);
    lc.options.timeout = milliseconds(200);
    lc.directory = dir;
    lc.self = rpc::Locality{"dc", z};
    lc.records_max = 0;  // count only
    clients.push_back(sim.add_node({std::string("load-") + z, sim::Placement{"dc", z, ""},
                                    [lc](Runtime& rt) { return std::make_unique<rpc::LoadClient>(rt, lc); }}));
  }
  for (NodeId id : servers) sim.start(id);
  for (NodeId id : clients) sim.start(id);

  const uint64_t events_before = sim.kernel().events_executed();
  uint64_t calls_before = 0;
  for (NodeId id : servers) calls_before += sim.node_as<echo::RpcEchoServer>(id)->echoes();
  int64_t simulated_ns = 0;
  for (auto _ : state) {
    sim.run_for(seconds(1));
    simulated_ns += seconds(1).ns();
  }
  uint64_t calls = 0;
  for (NodeId id : servers) calls += sim.node_as<echo::RpcEchoServer>(id)->echoes();
  const double events = static_cast<double>(sim.kernel().events_executed() - events_before);
  state.counters["events_per_s"] = benchmark::Counter(events, benchmark::Counter::kIsRate);
  state.counters["rpcs_per_s"] = benchmark::Counter(static_cast<double>(calls - calls_before), benchmark::Counter::kIsRate);
  state.counters["x_realtime"] =
      benchmark::Counter(static_cast<double>(simulated_ns) / 1e9, benchmark::Counter::kIsRate);
  state.counters["events_per_rpc"] = events / static_cast<double>(calls - calls_before);
}
// Offered load per client (3 clients): 1 k, 10 k and 30 k calls/s of virtual time.
BENCHMARK(BM_RpcClusterInSimulation)->Arg(1'000)->Arg(10'000)->Arg(30'000)->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace
}  // namespace wx

BENCHMARK_MAIN();
