// RPC in production mode: the same RpcEchoServer, RpcEndpoint and Router that
// the simulation tests drive (tests/rpc/), here on AsioRuntimes sharing one
// io_context and talking real TCP on 127.0.0.1.
//
// Covered: typed calls and their payloads; a deadline shorter than the
// handler's hold ends the call with `timeout` (and the late answer is
// dropped); a server whose incarnation ends mid-call fails the call with
// `unavailable`; a non-idempotent method is never retried while an idempotent
// one fails over; hostile bytes on raw sockets (an oversized length prefix, a
// frame that is not an RPC envelope) are logged and contained while a
// well-behaved client keeps being answered.
//
// Every wait is bounded (run_until); no test asserts how fast anything is.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodes/echo/echo.pb.h"
#include "nodes/echo/rpc_echo.h"
#include "nodes/prod/asio_runtime.h"
#include "tests/prod/prod_test_util.h"
#include "nodes/prod/frame.h"
#include "nodes/prod/wire.pb.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/rpc/router.h"
#include "nodes/rpc/rpc.pb.h"

namespace wx::prod {
namespace {

using namespace wx::prod::testing;  // NOLINT: test-local helpers

namespace asio = boost::asio;
using asio::ip::tcp;
using echo::EchoReply;
using echo::EchoRequest;
using rpc::CallOptions;
using rpc::Result;
using rpc::StatusCode;
using namespace std::chrono_literals;

// Generous: only a broken implementation comes near it.
// A handler hold no test waits for: the call must end some other way.
constexpr Duration kHoldForever = seconds(3600);

constexpr NodeId kServerA{1};
constexpr NodeId kServerB{2};
constexpr NodeId kClient{10};
constexpr uint32_t kRawClientNode = 77;

EchoRequest echo_request(std::string payload, Duration hold = Duration::zero()) {
  EchoRequest r;
  r.set_payload(std::move(payload));
  r.set_hold_ns(hold.ns());
  return r;
}

CallOptions with_timeout(Duration d) {
  CallOptions o;
  o.timeout = d;
  return o;
}

// An RPC echo server incarnation in this process: its runtime (listening on
// a free port, with a SQLite file under `data_dir`) and its node. Teardown is
// in the order runtime.h requires: tasks, then the node, then the runtime.
class EchoServerProcess {
 public:
  EchoServerProcess(asio::io_context& io, NodeId id, const std::string& data_dir,
                    std::string zone, LogCapture& logs) {
    AsioRuntimeConfig c = config(logs);
    c.listen = loopback(0);
    c.data_dir = data_dir;
    rt_ = std::make_unique<AsioRuntime>(io, id, c);
    echo::RpcEchoConfig ec;
    ec.cost = Duration::zero();
    ec.zone = std::move(zone);
    // FastReject answers `overloaded` after 20 ms of queueing, which a slow
    // or loaded machine (valgrind, a busy CI) reaches with real clocks. It is
    // tested in simulation (tests/rpc/overload_test.cc); here every request
    // is served, so outcomes do not depend on the machine's speed.
    ec.server.fast_reject = false;
    node_ = std::make_unique<echo::RpcEchoServer>(*rt_, ec);
    node_->start();
  }
  EchoServerProcess(const EchoServerProcess&) = delete;
  EchoServerProcess& operator=(const EchoServerProcess&) = delete;
  ~EchoServerProcess() {
    rt_->shutdown();
    node_.reset();
    rt_.reset();
  }
  // Ends the incarnation as a crash would: every task and timer dies and
  // every socket closes. The node object stays readable for its counters.
  void shut_down() { rt_->shutdown(); }
  uint16_t port() const { return *rt_->listen_port(); }
  AsioRuntime& rt() { return *rt_; }
  echo::RpcEchoServer& node() { return *node_; }

 private:
  std::unique_ptr<AsioRuntime> rt_;
  std::unique_ptr<echo::RpcEchoServer> node_;
};

// The calling side: a runtime that only dials, its endpoint, and the service
// directory its routers read. Routers are made per test (fresh suspicion
// state) and must be destroyed after shutdown().
class ClientProcess {
 public:
  ClientProcess(asio::io_context& io, std::map<NodeId, tcp::endpoint> peers, LogCapture& logs) {
    AsioRuntimeConfig c = config(logs);
    c.peers = std::move(peers);
    rt_ = std::make_unique<AsioRuntime>(io, kClient, c);
    endpoint_ = std::make_unique<rpc::RpcEndpoint>(*rt_);
    endpoint_->start();
  }
  ClientProcess(const ClientProcess&) = delete;
  ClientProcess& operator=(const ClientProcess&) = delete;
  ~ClientProcess() {
    rt_->shutdown();
    routers_.clear();
    endpoint_.reset();
    rt_.reset();
  }
  AsioRuntime& rt() { return *rt_; }
  rpc::RpcEndpoint& endpoint() { return *endpoint_; }
  rpc::ServiceDirectory& directory() { return directory_; }
  // A new Router over this client's endpoint, calling from zone `zone` of "dc".
  rpc::Router& new_router(const std::string& zone, rpc::RouterConfig rc = {}) {
    routers_.push_back(
        std::make_unique<rpc::Router>(*rt_, *endpoint_, directory_, rpc::Locality{"dc", zone}, rc));
    return *routers_.back();
  }

 private:
  std::unique_ptr<AsioRuntime> rt_;
  std::unique_ptr<rpc::RpcEndpoint> endpoint_;
  rpc::ServiceDirectory directory_;
  std::vector<std::unique_ptr<rpc::Router>> routers_;
};

struct Outcome {
  bool done = false;
  StatusCode code = StatusCode::internal;
  std::string message;
  std::string payload;
  std::string zone;
  uint64_t count = 0;
  TimePoint started, finished;
};

void record(Runtime& rt, const Result<EchoReply>& r, Outcome* out) {
  out->done = true;
  out->finished = rt.now();
  out->code = r.code();
  if (r.ok()) {
    out->payload = r->payload();
    out->zone = r->zone();
    out->count = r->count();
  } else {
    out->message = r.status().message;
  }
}

// Coroutines take their inputs as parameters (no lambda captures).
Task<void> direct_call(Runtime& rt, rpc::RpcEndpoint& ep, NodeId server, rpc::MethodSpec spec,
                       EchoRequest req, CallOptions opts, Outcome* out) {
  out->started = rt.now();
  Result<EchoReply> r = co_await ep.call<EchoReply>(server, spec, req, std::move(opts));
  record(rt, r, out);
}

Task<void> routed_call(Runtime& rt, rpc::Router& router, rpc::MethodSpec spec, EchoRequest req,
                       CallOptions opts, Outcome* out) {
  out->started = rt.now();
  Result<EchoReply> r =
      co_await router.call<EchoReply>(echo::kEchoService, spec, req, std::move(opts));
  record(rt, r, out);
}

// Calls echo over and over, one at a time, checking every answer.
struct SteadyCaller {
  uint64_t ok = 0;
  uint64_t wrong = 0;  // an answer with another payload, or an error
  std::string last_error;
};
Task<void> call_forever(rpc::RpcEndpoint& ep, NodeId server, SteadyCaller* stats) {
  for (uint64_t i = 0;; ++i) {
    const std::string payload = "steady-" + std::to_string(i);
    Result<EchoReply> r = co_await ep.call<EchoReply>(
        server, echo::kEchoMethod, echo_request(payload), with_timeout(seconds(5)));
    if (r.ok() && r->payload() == payload) {
      ++stats->ok;
    } else {
      ++stats->wrong;
      stats->last_error = r.ok() ? "payload " + r->payload() : r.status().to_string();
    }
  }
}

std::string hello_frame(uint32_t node_id) {
  Hello h;
  h.set_node_id(node_id);
  h.set_protocol_version(kProtocolVersion);
  return encode_frame(h.SerializeAsString());
}

class RpcTcpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("wxsim_rpc_tcp_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string data_dir() const { return dir_.string(); }

  std::filesystem::path dir_;
};

// --- (a) typed calls ----------------------------------------------------------------

TEST_F(RpcTcpTest, TypedEchoCallsReturnTheirPayloads) {
  asio::io_context io;
  LogCapture server_logs, client_logs;
  EchoServerProcess server(io, kServerA, data_dir(), "a", server_logs);
  ClientProcess client(io, {{kServerA, loopback(server.port())}}, client_logs);
  client.directory().add(echo::kEchoService, rpc::Instance{kServerA, "dc", "a"});
  rpc::Router& router = client.new_router("a");

  std::string binary("\0\x01\xff payload", 11);
  const std::vector<std::string> payloads = {"hello", "", binary, std::string(1024, 'k'),
                                             std::string(1u << 20, 'm')};
  std::vector<Outcome> direct(payloads.size()), routed(payloads.size());
  for (size_t i = 0; i < payloads.size(); ++i) {
    client.rt().spawn(direct_call(client.rt(), client.endpoint(), kServerA, echo::kEchoMethod,
                                  echo_request(payloads[i]), with_timeout(seconds(10)), &direct[i]),
                      "direct");
    client.rt().spawn(routed_call(client.rt(), router, echo::kEchoMethod, echo_request(payloads[i]),
                                  with_timeout(seconds(10)), &routed[i]),
                      "routed");
  }
  ASSERT_TRUE(run_until(io, [&] {
    for (size_t i = 0; i < payloads.size(); ++i) {
      if (!direct[i].done || !routed[i].done) return false;
    }
    return true;
  })) << server_logs.dump() << client_logs.dump();
  for (size_t i = 0; i < payloads.size(); ++i) {
    SCOPED_TRACE("payload " + std::to_string(i));
    EXPECT_EQ(direct[i].code, StatusCode::ok) << direct[i].message;
    EXPECT_EQ(direct[i].payload, payloads[i]);
    EXPECT_EQ(direct[i].zone, "a");
    EXPECT_EQ(routed[i].code, StatusCode::ok) << routed[i].message;
    EXPECT_EQ(routed[i].payload, payloads[i]);
  }

  // Many calls in flight at once on the one connection, each matched to its answer.
  constexpr size_t kConcurrent = 200;
  std::vector<Outcome> many(kConcurrent);
  for (size_t i = 0; i < kConcurrent; ++i) {
    client.rt().spawn(direct_call(client.rt(), client.endpoint(), kServerA, echo::kEchoMethod,
                                  echo_request("call-" + std::to_string(i)),
                                  with_timeout(seconds(10)), &many[i]),
                      "many");
  }
  ASSERT_TRUE(run_until(io, [&] {
    for (const Outcome& o : many) {
      if (!o.done) return false;
    }
    return true;
  })) << server_logs.dump();
  for (size_t i = 0; i < kConcurrent; ++i) {
    EXPECT_EQ(many[i].code, StatusCode::ok) << many[i].message;
    EXPECT_EQ(many[i].payload, "call-" + std::to_string(i));
  }

  // The non-idempotent method runs once per call and its count is persisted.
  Outcome append;
  client.rt().spawn(routed_call(client.rt(), router, echo::kAppendMethod, echo_request(""),
                                with_timeout(seconds(10)), &append),
                    "append");
  ASSERT_TRUE(run_until(io, [&] { return append.done; }));
  EXPECT_EQ(append.code, StatusCode::ok) << append.message;
  EXPECT_EQ(append.count, 1u);
  EXPECT_EQ(server.node().appends_total(), 1u);

  const auto& served = server.node().endpoint().server_stats();
  EXPECT_EQ(served.served_ok, 2 * payloads.size() + kConcurrent + 1);
  EXPECT_EQ(served.malformed, 0u);
  EXPECT_EQ(client.endpoint().client_stats().ok, 2 * payloads.size() + kConcurrent + 1);
  EXPECT_EQ(client.endpoint().pending_calls(), 0u);
  EXPECT_EQ(client.rt().tcp().stats().connections_dialed, 1u);
}

// --- (b) deadlines -----------------------------------------------------------------

TEST_F(RpcTcpTest, AnExceededDeadlineReturnsTimeoutNeverAHang) {
  asio::io_context io;
  LogCapture server_logs, client_logs;
  EchoServerProcess server(io, kServerA, data_dir(), "a", server_logs);
  ClientProcess client(io, {{kServerA, loopback(server.port())}}, client_logs);
  client.directory().add(echo::kEchoService, rpc::Instance{kServerA, "dc", "a"});
  rpc::Router& router = client.new_router("a");

  constexpr Duration kTimeout = milliseconds(100);
  constexpr Duration kHold = milliseconds(400);  // > kTimeout: the answer comes too late
  Outcome direct, routed;
  client.rt().spawn(direct_call(client.rt(), client.endpoint(), kServerA, echo::kEchoMethod,
                                echo_request("slow", kHold), with_timeout(kTimeout), &direct),
                    "direct");
  // Through the Router the idempotent call may be retried, but never past
  // its deadline.
  client.rt().spawn(routed_call(client.rt(), router, echo::kEchoMethod,
                                echo_request("slow", kHoldForever), with_timeout(kTimeout),
                                &routed),
                    "routed");
  ASSERT_TRUE(run_until(io, [&] { return direct.done && routed.done; }))
      << "a call must end by its deadline\n"
      << client_logs.dump();
  EXPECT_EQ(direct.code, StatusCode::timeout) << direct.message;
  EXPECT_GE(direct.finished - direct.started, kTimeout) << "not before the deadline";
  EXPECT_EQ(routed.code, StatusCode::timeout) << routed.message;
  EXPECT_GE(routed.finished - routed.started, kTimeout);

  // The server answers the direct call when its hold ends; the client drops
  // that late answer without harm.
  ASSERT_TRUE(run_until(io, [&] { return client.endpoint().client_stats().late_responses >= 1; }))
      << server_logs.dump();
  EXPECT_EQ(client.endpoint().pending_calls(), 0u);
  EXPECT_EQ(client.endpoint().client_stats().ok, 0u);

  // The connection is still good for the next call.
  Outcome after;
  client.rt().spawn(direct_call(client.rt(), client.endpoint(), kServerA, echo::kEchoMethod,
                                echo_request("fast"), with_timeout(seconds(10)), &after),
                    "after");
  ASSERT_TRUE(run_until(io, [&] { return after.done; }));
  EXPECT_EQ(after.code, StatusCode::ok) << after.message;
  EXPECT_EQ(after.payload, "fast");
}

// --- (c) server gone: resets and fail-over --------------------------------------------

TEST_F(RpcTcpTest, AServerShutDownMidCallFailsThePendingCallWithUnavailable) {
  asio::io_context io;
  LogCapture server_logs, client_logs;
  EchoServerProcess server(io, kServerA, data_dir(), "a", server_logs);
  ClientProcess client(io, {{kServerA, loopback(server.port())}}, client_logs);

  // The handler holds far longer than any wait here, and the call's own
  // timeout is longer still: only the reset can end it.
  Outcome held;
  client.rt().spawn(direct_call(client.rt(), client.endpoint(), kServerA, echo::kEchoMethod,
                                echo_request("held", kHoldForever), with_timeout(kHoldForever * 2),
                                &held),
                    "held");
  ASSERT_TRUE(run_until(io, [&] { return server.node().endpoint().server_stats().received >= 1; }))
      << server_logs.dump() << client_logs.dump();
  ASSERT_FALSE(held.done);

  server.shut_down();
  ASSERT_TRUE(run_until(io, [&] { return held.done; })) << client_logs.dump();
  EXPECT_EQ(held.code, StatusCode::unavailable) << held.message;
  EXPECT_EQ(client.endpoint().client_stats().unavailable, 1u);
  EXPECT_EQ(client.endpoint().pending_calls(), 0u);

  // Nothing listens there any more: the next call is refused, also as unavailable.
  Outcome next;
  client.rt().spawn(direct_call(client.rt(), client.endpoint(), kServerA, echo::kEchoMethod,
                                echo_request("next"), with_timeout(kHoldForever), &next),
                    "next");
  ASSERT_TRUE(run_until(io, [&] { return next.done; })) << client_logs.dump();
  EXPECT_EQ(next.code, StatusCode::unavailable) << next.message;
}

TEST_F(RpcTcpTest, WithTheFirstServerDownAppendIsNotRetriedWhileEchoFailsOver) {
  asio::io_context io;
  LogCapture logs_a, logs_b, client_logs;
  EchoServerProcess server_a(io, kServerA, data_dir(), "a", logs_a);
  EchoServerProcess server_b(io, kServerB, data_dir(), "b", logs_b);
  ClientProcess client(
      io, {{kServerA, loopback(server_a.port())}, {kServerB, loopback(server_b.port())}},
      client_logs);
  // The client is in zone a: server_a is always its first choice.
  client.directory().add(echo::kEchoService, rpc::Instance{kServerA, "dc", "a"});
  client.directory().add(echo::kEchoService, rpc::Instance{kServerB, "dc", "b"});

  // A connection to server_a exists when it goes down.
  Outcome warm;
  client.rt().spawn(direct_call(client.rt(), client.endpoint(), kServerA, echo::kEchoMethod,
                                echo_request("warm"), with_timeout(seconds(10)), &warm),
                    "warm");
  ASSERT_TRUE(run_until(io, [&] { return warm.done; }));
  ASSERT_EQ(warm.code, StatusCode::ok) << warm.message;
  server_a.shut_down();
  ASSERT_TRUE(run_until(io, [&] { return !client.rt().tcp().has_connection(kServerA); }))
      << client_logs.dump();

  // Append is not idempotent: one attempt, to server_a, and the caller sees
  // the failure. server_b never executes it.
  rpc::Router& append_router = client.new_router("a");
  Outcome append;
  client.rt().spawn(routed_call(client.rt(), append_router, echo::kAppendMethod,
                                echo_request(""), with_timeout(seconds(10)), &append),
                    "append");
  ASSERT_TRUE(run_until(io, [&] { return append.done; })) << client_logs.dump();
  EXPECT_EQ(append.code, StatusCode::unavailable) << append.message;
  EXPECT_EQ(append_router.stats().attempts, 1u);
  EXPECT_EQ(append_router.stats().retries, 0u);

  // Echo is idempotent: server_a refuses, the Router fails over to server_b.
  rpc::Router& echo_router = client.new_router("a");
  Outcome echoed;
  client.rt().spawn(routed_call(client.rt(), echo_router, echo::kEchoMethod,
                                echo_request("failover"), with_timeout(seconds(10)), &echoed),
                    "echo");
  ASSERT_TRUE(run_until(io, [&] { return echoed.done; })) << client_logs.dump();
  EXPECT_EQ(echoed.code, StatusCode::ok) << echoed.message;
  EXPECT_EQ(echoed.payload, "failover");
  EXPECT_EQ(echoed.zone, "b");
  EXPECT_EQ(echo_router.stats().attempts, 2u);
  EXPECT_EQ(echo_router.stats().failovers, 1u);

  EXPECT_EQ(server_b.node().appends_total(), 0u) << "the Append must not have reached server_b";
  EXPECT_EQ(server_b.node().endpoint().server_stats().received, 1u) << "only the echo";
  EXPECT_EQ(server_a.node().appends_total(), 0u);
}

// --- (d) hostile input at the RPC level --------------------------------------------------

TEST_F(RpcTcpTest, BadBytesAreContainedWhileAGoodClientKeepsGettingAnswers) {
  asio::io_context io;
  LogCapture server_logs, client_logs;
  EchoServerProcess server(io, kServerA, data_dir(), "a", server_logs);
  ClientProcess client(io, {{kServerA, loopback(server.port())}}, client_logs);
  SteadyCaller steady;
  client.rt().spawn(call_forever(client.endpoint(), kServerA, &steady), "steady");
  ASSERT_TRUE(run_until(io, [&] { return steady.ok >= 5; })) << server_logs.dump();

  // (i) A length prefix far beyond frame_bytes_max: that connection is closed
  // and the reason logged as an error naming the remote endpoint.
  RawClient oversized(io, server.port());
  oversized.write(hello_frame(kRawClientNode) + std::string("\x7f\xff\xff\xff", 4));
  ASSERT_TRUE(run_until(io, [&] { return oversized.closed(); })) << server_logs.dump();
  EXPECT_TRUE(server_logs.contains_all(
      {"error:", "127.0.0.1:" + std::to_string(oversized.local_port()), "exceeds frame_bytes_max"}))
      << server_logs.dump();
  const uint64_t ok_after_oversized = steady.ok;
  ASSERT_TRUE(run_until(io, [&] { return steady.ok >= ok_after_oversized + 5; }));

  // (ii) A valid Hello, then a frame that is not a wx.rpc.wire.Frame: logged
  // and ignored; the connection stays up and still serves a valid request.
  const std::string garbage(12, '\xff');  // a varint longer than 10 bytes
  ASSERT_FALSE(rpc::wire::Frame().ParseFromString(garbage));
  RawClient raw(io, server.port());
  raw.write(hello_frame(kRawClientNode) + encode_frame(garbage));
  ASSERT_TRUE(run_until(io, [&] { return server_logs.contains_all({"rpc: malformed frame"}); }))
      << server_logs.dump();
  EXPECT_TRUE(server_logs.contains_all({"warn:", "rpc: malformed frame", "n77"}))
      << server_logs.dump();
  EXPECT_EQ(server.node().endpoint().server_stats().malformed, 1u);

  constexpr uint64_t kRawCallId = 5;
  rpc::wire::Frame request;
  rpc::wire::Request* req = request.mutable_request();
  req->set_call_id(kRawCallId);
  req->set_method(echo::kEchoMethod.name);
  req->set_timeout_ns(seconds(10).ns());
  req->set_payload(echo_request("raw").SerializeAsString());
  raw.write(encode_frame(request.SerializeAsString()));

  // Expected back: the server's Hello, then the response.
  FrameDecoder decoder;
  std::vector<std::string> frames;
  size_t fed = 0;
  ASSERT_TRUE(run_until(io, [&] {
    if (raw.received().size() > fed) {
      decoder.feed(std::string_view(raw.received()).substr(fed));
      fed = raw.received().size();
      while (std::optional<std::string> f = decoder.next()) frames.push_back(std::move(*f));
    }
    return frames.size() >= 2 || raw.closed();
  })) << server_logs.dump();
  EXPECT_FALSE(raw.closed()) << "a malformed RPC frame does not close the connection";
  ASSERT_EQ(frames.size(), 2u);
  Hello hello;
  ASSERT_TRUE(hello.ParseFromString(frames[0]));
  EXPECT_EQ(hello.node_id(), kServerA.value);
  rpc::wire::Frame response;
  ASSERT_TRUE(response.ParseFromString(frames[1]));
  ASSERT_TRUE(response.has_response());
  EXPECT_EQ(response.response().call_id(), kRawCallId);
  EXPECT_EQ(response.response().status(), rpc::wire::OK);
  EchoReply reply;
  ASSERT_TRUE(reply.ParseFromString(response.response().payload()));
  EXPECT_EQ(reply.payload(), "raw");

  // Throughout, the well-behaved client got only correct answers, and keeps doing so.
  const uint64_t ok_after_garbage = steady.ok;
  ASSERT_TRUE(run_until(io, [&] { return steady.ok >= ok_after_garbage + 5; }));
  EXPECT_EQ(steady.wrong, 0u) << steady.last_error;
  EXPECT_EQ(server.rt().tcp().stats().protocol_errors, 1u) << "only the oversized frame";
  EXPECT_EQ(client.rt().tcp().stats().connections_dialed, 1u);
  EXPECT_EQ(client.rt().tcp().stats().resets_delivered, 0u);
}

}  // namespace
}  // namespace wx::prod
