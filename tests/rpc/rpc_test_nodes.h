// Test nodes for the RPC tests: a caller that runs a scripted coroutine with
// its own endpoint and router, and a proxy service that calls downstream.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "nodes/echo/echo.pb.h"
#include "nodes/echo/rpc_echo.h"
#include "nodes/rpc/router.h"
#include "sim/simulation.h"

namespace wx::rpc::testing {

class Caller final : public Node {
 public:
  using Script = std::function<Task<void>(Caller&)>;
  Caller(Runtime& rt, ServiceDirectory dir, Locality self, Script script, RouterConfig rc = {})
      : rt(rt), dir_(std::move(dir)), endpoint(rt), router(rt, endpoint, dir_, std::move(self), rc),
        script_(std::move(script)) {}
  void start() override {
    endpoint.start();
    rt.spawn(script_(*this), "script");
  }
  std::string_view kind() const override { return "caller"; }

  Runtime& rt;

 private:
  ServiceDirectory dir_;

 public:
  RpcEndpoint endpoint;
  Router router;

 private:
  Script script_;  // stored: a coroutine lambda's captures live here
};

// Three echo servers, one per zone of datacenter "dc", and a directory.
struct EchoCluster {
  sim::Simulation sim;
  ServiceDirectory dir;
  std::vector<NodeId> servers;  // zones a, b, c

  explicit EchoCluster(uint64_t seed = 1, echo::RpcEchoConfig base = {}) : sim(config(seed)) {
    for (const char* z : {"a", "b", "c"}) {
      echo::RpcEchoConfig c = base;
      c.zone = z;
      NodeId id = sim.add_node({std::string("echo-") + z, sim::Placement{"dc", z, ""},
                                [c](Runtime& rt) { return std::make_unique<echo::RpcEchoServer>(rt, c); }});
      servers.push_back(id);
      dir.add(echo::kEchoService, Instance{id, "dc", z});
    }
  }
  static sim::SimConfig config(uint64_t seed) {
    sim::SimConfig c;
    c.seed = seed;
    c.log_level = LogLevel::off;
    return c;
  }
  NodeId add_caller(const std::string& zone, Caller::Script script, RouterConfig rc = {}) {
    ServiceDirectory d = dir;
    return sim.add_node({"caller-" + zone, sim::Placement{"dc", zone, ""},
                         [d, zone, script, rc](Runtime& rt) {
                           return std::make_unique<Caller>(rt, d, Locality{"dc", zone}, script, rc);
                         }});
  }
  void start_all() {
    for (size_t i = 1; i <= sim.node_count(); ++i) sim.start(NodeId{static_cast<uint32_t>(i)});
  }
  echo::RpcEchoServer& server(size_t i) { return *sim.node_as<echo::RpcEchoServer>(servers[i]); }
};

inline echo::EchoRequest echo_request(const std::string& payload, Duration hold = Duration::zero()) {
  echo::EchoRequest r;
  r.set_payload(payload);
  r.set_hold_ns(hold.ns());
  return r;
}

inline CallOptions with_timeout(Duration d) {
  CallOptions o;
  o.timeout = d;
  return o;
}

}  // namespace wx::rpc::testing
