// RPC in simulation: calls, deadlines, deadline propagation, zone-aware
// routing, fail-over for idempotent methods only.
#include <gtest/gtest.h>

#include <limits>
#include <map>

#include "nodes/rpc/rpc.pb.h"
#include "tests/rpc/rpc_test_nodes.h"

namespace wx::rpc::testing {
namespace {

using namespace time_literals;
using echo::EchoReply;

struct Outcome {
  bool done = false;
  StatusCode code = StatusCode::internal;
  std::string zone;
  uint64_t count = 0;
  TimePoint finished_at;
};

Task<void> run_call(Caller& c, Outcome* out, const MethodSpec& spec, echo::EchoRequest req, CallOptions opts,
                    std::string service);

Caller::Script call_once(Outcome* out, const MethodSpec& spec, echo::EchoRequest req, CallOptions opts,
                         std::string service = echo::kEchoService) {
  return [out, &spec, req, opts, service](Caller& c) -> Task<void> {
    return run_call(c, out, spec, req, opts, service);
  };
}

Task<void> run_call(Caller& c, Outcome* out, const MethodSpec& spec, echo::EchoRequest req, CallOptions opts,
                    std::string service) {
  Result<EchoReply> r = co_await c.router.call<EchoReply>(service, spec, req, opts);
  out->done = true;
  out->code = r.code();
  out->finished_at = c.rt.now();
  if (r.ok()) {
    out->zone = r->zone();
    out->count = r->count();
  }
}

TEST(Rpc, CallsGoToTheCallersOwnZoneFirst) {
  for (const char* zone : {"a", "b", "c"}) {
    EchoCluster cl;
    Outcome out;
    NodeId caller = cl.add_caller(zone, call_once(&out, echo::kEchoMethod, echo_request("hi"), with_timeout(1_s)));
    cl.start_all();
    ASSERT_TRUE(cl.sim.run_for(1_s));
    ASSERT_TRUE(out.done);
    EXPECT_EQ(out.code, StatusCode::ok);
    EXPECT_EQ(out.zone, zone);
    EXPECT_EQ(cl.sim.node_as<Caller>(caller)->router.stats().attempts, 1u);
  }
}

TEST(Rpc, AnExceededDeadlineReturnsTimeoutAtTheDeadlineNeverAHang) {
  EchoCluster cl;
  Outcome out;
  // The handler holds 5 s; the caller allows 100 ms.
  cl.add_caller("a", call_once(&out, echo::kEchoMethod, echo_request("slow", 5_s), with_timeout(100_ms)),
                RouterConfig{.attempts_max = 1});
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_for(200_ms));
  ASSERT_TRUE(out.done) << "the call must complete by its deadline";
  EXPECT_EQ(out.code, StatusCode::timeout);
  EXPECT_EQ(out.finished_at, TimePoint::zero() + 100_ms);
}

TEST(Rpc, ACallToANodeThatIsDownFailsFastWithUnavailable) {
  EchoCluster cl;
  Outcome out;
  cl.add_caller("a", call_once(&out, echo::kEchoMethod, echo_request("x"), with_timeout(1_s)),
                RouterConfig{.attempts_max = 1});
  for (size_t i = 0; i < cl.sim.node_count(); ++i) {
    if (i != 0) cl.sim.start(NodeId{static_cast<uint32_t>(i + 1)});  // echo-a stays down
  }
  ASSERT_TRUE(cl.sim.run_for(1_s));
  ASSERT_TRUE(out.done);
  EXPECT_EQ(out.code, StatusCode::unavailable);
  EXPECT_LT(out.finished_at, TimePoint::zero() + 10_ms) << "a refused connect is a reset, not a timeout";
}

TEST(Rpc, UnknownServiceAndMethodAreReported) {
  EchoCluster cl;
  Outcome no_service, no_method;
  static const MethodSpec kMissing{"echo.Missing", Idempotent::yes, Duration::zero()};
  cl.add_caller("a", call_once(&no_service, echo::kEchoMethod, echo_request("x"), with_timeout(1_s), "nope"));
  cl.add_caller("b", call_once(&no_method, kMissing, echo_request("x"), with_timeout(1_s)));
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_for(1_s));
  EXPECT_EQ(no_service.code, StatusCode::not_found);
  EXPECT_EQ(no_method.code, StatusCode::not_found);
}

TEST(Rpc, ACallIntoADeadZoneFailsOverToALiveZoneForIdempotentMethods) {
  EchoCluster cl;
  Outcome out;
  NodeId caller = cl.add_caller("b", [&out](Caller& c) -> Task<void> {
    co_await c.rt.sleep(1_s);  // zone b dies at 500 ms
    co_await run_call(c, &out, echo::kEchoMethod, echo_request("x"), with_timeout(1_s), echo::kEchoService);
  });
  cl.start_all();
  cl.sim.at(TimePoint::zero() + 500_ms, [&] { cl.sim.crash(cl.servers[1]); });  // all of zone b's servers
  ASSERT_TRUE(cl.sim.run_for(3_s));
  ASSERT_TRUE(out.done);
  EXPECT_EQ(out.code, StatusCode::ok);
  EXPECT_NE(out.zone, "b");
  const Router::Stats& st = cl.sim.node_as<Caller>(caller)->router.stats();
  EXPECT_EQ(st.attempts, 2u) << "first to its own (dead) zone, then fail-over";
  EXPECT_EQ(st.failovers, 1u);
}

TEST(Rpc, ANonIdempotentMethodIsNeverRetried) {
  EchoCluster cl;
  Outcome out;
  NodeId caller = cl.add_caller("b", [&out](Caller& c) -> Task<void> {
    co_await c.rt.sleep(1_s);
    co_await run_call(c, &out, echo::kAppendMethod, echo_request(""), with_timeout(1_s), echo::kEchoService);
  });
  cl.start_all();
  cl.sim.at(TimePoint::zero() + 500_ms, [&] { cl.sim.crash(cl.servers[1]); });
  ASSERT_TRUE(cl.sim.run_for(3_s));
  ASSERT_TRUE(out.done);
  EXPECT_EQ(out.code, StatusCode::unavailable) << "the caller sees the failure";
  EXPECT_EQ(cl.sim.node_as<Caller>(caller)->router.stats().attempts, 1u);
  EXPECT_EQ(cl.server(0).appends_total() + cl.server(2).appends_total(), 0u) << "no other zone executed it";
}

TEST(Rpc, ANonIdempotentMethodSucceedsOnceWhenTheZoneIsUp) {
  EchoCluster cl;
  Outcome out;
  cl.add_caller("c", call_once(&out, echo::kAppendMethod, echo_request(""), with_timeout(1_s)));
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_for(1_s));
  EXPECT_EQ(out.code, StatusCode::ok);
  EXPECT_EQ(out.zone, "c");
  EXPECT_EQ(out.count, 1u);
  EXPECT_EQ(cl.server(2).appends_total(), 1u);
}

// A proxy service: its handler calls echo downstream with the caller's
// deadline inherited.
class Proxy final : public Node {
 public:
  static inline const MethodSpec kRelay{"proxy.Relay", Idempotent::yes, Duration::zero()};
  Proxy(Runtime& rt, ServiceDirectory dir) : rt_(rt), dir_(std::move(dir)), ep_(rt), router_(rt, ep_, dir_, {"dc", "a"}, RouterConfig{.attempts_max = 1}) {}
  void start() override {
    ep_.register_method<echo::EchoRequest, EchoReply>(
        kRelay, [this](CallContext ctx, echo::EchoRequest req) -> Task<Result<EchoReply>> {
          return relay(std::move(ctx), std::move(req));
        });
    ep_.start();
  }
  std::string_view kind() const override { return "proxy"; }
  TimePoint downstream_finished_at;
  StatusCode downstream_code = StatusCode::internal;

 private:
  Task<Result<EchoReply>> relay(CallContext ctx, echo::EchoRequest req) {
    // Asks for 10 s downstream; the inherited deadline must win.
    Result<EchoReply> r = co_await router_.call<EchoReply>(echo::kEchoService, echo::kEchoMethod, req,
                                                           CallOptions::downstream(ctx, 10_s));
    downstream_finished_at = rt_.now();
    downstream_code = r.code();
    co_return r;
  }
  Runtime& rt_;
  ServiceDirectory dir_;
  RpcEndpoint ep_;
  Router router_;
};

TEST(Rpc, DeadlinesPropagateDownstream) {
  EchoCluster cl;
  NodeId proxy = cl.sim.add_node({"proxy", sim::Placement{"dc", "a", ""}, [d = cl.dir](Runtime& rt) {
                                    return std::make_unique<Proxy>(rt, d);
                                  }});
  cl.dir.add("proxy", Instance{proxy, "dc", "a"});
  Outcome out;
  cl.add_caller("a", call_once(&out, Proxy::kRelay, echo_request("deep", 5_s), with_timeout(200_ms), "proxy"),
                RouterConfig{.attempts_max = 1});
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_for(1_s));
  ASSERT_TRUE(out.done);
  EXPECT_EQ(out.code, StatusCode::timeout);
  Proxy* p = cl.sim.node_as<Proxy>(proxy);
  EXPECT_EQ(p->downstream_code, StatusCode::timeout);
  // The downstream call gave up with the upstream deadline, not after 10 s.
  // Deadlines travel as the time left when sent, so the proxy's deadline is
  // its arrival time + 200 ms: later than the caller's by the one hop the
  // request took (same zone: under 1 ms). Clocks are never compared.
  EXPECT_LE(p->downstream_finished_at, TimePoint::zero() + 201_ms);
  EXPECT_GE(p->downstream_finished_at, TimePoint::zero() + 200_ms);
}

TEST(Rpc, SameSeedSameTrace) {
  auto run = [](uint64_t seed) {
    EchoCluster cl(seed);
    Outcome out;
    cl.add_caller("b", [&out](Caller& c) -> Task<void> {
      for (int i = 0; i < 200; ++i) {
        co_await run_call(c, &out, echo::kEchoMethod, echo_request("x"), with_timeout(50_ms), echo::kEchoService);
        co_await c.rt.sleep(c.rt.rng().exponential(5_ms));
      }
    });
    cl.start_all();
    cl.sim.at(TimePoint::zero() + 300_ms, [&] { cl.sim.crash(cl.servers[1]); });
    cl.sim.at(TimePoint::zero() + 600_ms, [&] { cl.sim.start(cl.servers[1]); });
    EXPECT_TRUE(cl.sim.run_for(5_s));
    return cl.sim.trace_hash();
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}


// --- every call completes, whatever its timeout ------------------------------
// Regression for a hang: a call with timeout Duration::max() and no deadline
// sent timeout_ns = INT64_MAX - now; the server's now + timeout overflowed, the
// request was dropped as expired, and the caller had armed no timer.

CallOptions infinite_timeout() {
  CallOptions o;
  o.timeout = Duration::max();
  return o;
}

Task<void> raw_call(Caller& c, Outcome* out, NodeId target, CallOptions opts, Duration hold) {
  Result<std::string> r =
      co_await c.endpoint.call_raw(target, echo::kEchoMethod, echo_request("x", hold).SerializeAsString(), opts);
  out->done = true;
  out->code = r.code();
  out->finished_at = c.rt.now();
}

TEST(Rpc, ACallWithAnInfiniteTimeoutIsServed) {
  EchoCluster cl;
  Outcome out;
  const NodeId target = cl.servers[0];
  cl.add_caller("a", [&out, target](Caller& c) -> Task<void> {
    co_await c.rt.sleep(1_s);  // now > 0, so INT64_MAX - now + now would overflow
    co_await raw_call(c, &out, target, infinite_timeout(), 10_ms);
  });
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_for(2_s));
  ASSERT_TRUE(out.done);
  EXPECT_EQ(out.code, StatusCode::ok);
}

TEST(Rpc, ACallWithAnInfiniteTimeoutToASilentNodeEndsAtTheTimeoutBound) {
  EchoCluster cl;
  Outcome direct, routed;
  const NodeId target = cl.servers[0];
  // The callers sit in a fourth zone; every echo server's zone loses power
  // (silently: no reset ever comes) once the calls are on the wire.
  cl.add_caller("d", [&direct, target](Caller& c) -> Task<void> {
    co_await raw_call(c, &direct, target, infinite_timeout(), Duration::zero());
  });
  cl.add_caller("d", call_once(&routed, echo::kEchoMethod, echo_request("x"), infinite_timeout()),
                RouterConfig{.attempts_max = 1});
  cl.start_all();
  for (const char* z : {"a", "b", "c"}) cl.sim.faults().kill_zone(z);
  ASSERT_TRUE(cl.sim.run_for(kCallTimeoutMax + 1_s));
  for (const Outcome* o : {&direct, &routed}) {
    ASSERT_TRUE(o->done) << "a call never hangs";
    EXPECT_EQ(o->code, StatusCode::timeout);
    EXPECT_LE(o->finished_at, TimePoint::zero() + kCallTimeoutMax + 1_ms);
  }
}

// A node that sends hand-made request frames, as a remote peer in production
// may, and counts the responses.
class RawSender final : public Node {
 public:
  RawSender(Runtime& rt, NodeId target, std::vector<int64_t> timeouts_ns)
      : rt_(rt), target_(target), timeouts_ns_(std::move(timeouts_ns)) {}
  void start() override { rt_.spawn(run(), "raw"); }
  std::string_view kind() const override { return "raw"; }
  std::map<uint64_t, int> responses;  // call id → wire status

 private:
  Task<void> run() {
    co_await rt_.sleep(1_s);
    uint64_t id = 0;
    for (int64_t t : timeouts_ns_) {
      wire::Frame f;
      f.mutable_request()->set_call_id(++id);
      f.mutable_request()->set_method(echo::kEchoMethod.name);
      f.mutable_request()->set_timeout_ns(t);
      f.mutable_request()->set_payload(echo_request("x").SerializeAsString());
      (void)rt_.transport().send(target_, f.SerializeAsString());
    }
    for (;;) {
      Inbound in = co_await rt_.transport().receive();
      wire::Frame f;
      if (in.kind == Inbound::Kind::frame && f.ParseFromString(in.data) && f.has_response()) {
        responses[f.response().call_id()] = f.response().status();
      }
    }
  }
  Runtime& rt_;
  NodeId target_;
  std::vector<int64_t> timeouts_ns_;
};

TEST(Rpc, RemoteTimeoutsOfAnySizeAreServedOrDroppedNeverOverflow) {
  EchoCluster cl;
  const NodeId target = cl.servers[0];
  const std::vector<int64_t> timeouts = {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max() / 2,
                                         (1_s).ns(), 0, -1, std::numeric_limits<int64_t>::min()};
  NodeId raw = cl.sim.add_node({"raw", sim::Placement{"dc", "a", ""}, [target, timeouts](Runtime& rt) {
                                  return std::make_unique<RawSender>(rt, target, timeouts);
                                }});
  cl.start_all();
  ASSERT_TRUE(cl.sim.run_for(3_s));
  const auto& got = cl.sim.node_as<RawSender>(raw)->responses;
  // Positive budgets, however large, are served; zero or negative ones mean
  // the caller has already given up, so they are dropped unanswered.
  EXPECT_EQ(got.size(), 3u);
  for (uint64_t id : {1, 2, 3}) {
    ASSERT_TRUE(got.count(id)) << "request " << id << " got no response";
    EXPECT_EQ(got.at(id), wire::OK) << "request " << id;
  }
}

}  // namespace
}  // namespace wx::rpc::testing
