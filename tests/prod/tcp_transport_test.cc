// Production runtime in-process: AsioRuntimes on one io_context talking real
// TCP over 127.0.0.1, raw sockets misbehaving against a server, timers, the
// SQLite disk, and task failure. Every wait is bounded (run_until), and no
// test asserts how fast anything is.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "nodes/prod/asio_runtime.h"
#include "tests/prod/prod_test_util.h"
#include "nodes/prod/frame.h"
#include "nodes/prod/wire.pb.h"
#include "nodes/runtime/disk.h"
#include "nodes/runtime/transport.h"

namespace wx::prod {
namespace {

using namespace wx::prod::testing;  // NOLINT: test-local helpers

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// Generous: only a broken implementation comes near it.

AsioRuntimeConfig listening(LogCapture& logs) {
  AsioRuntimeConfig c = config(logs);
  c.listen = loopback(0);
  return c;
}

// Coroutines take their inputs as parameters (no lambda captures).
Task<void> collect(Transport& t, std::vector<Inbound>* out) {
  for (;;) out->push_back(co_await t.receive());
}

// Answers every frame with "re:" + frame.
Task<void> respond(Transport& t, std::vector<Inbound>* seen) {
  for (;;) {
    Inbound in = co_await t.receive();
    seen->push_back(in);
    if (in.kind == Inbound::Kind::frame) (void)t.send(in.peer, "re:" + in.data);
  }
}

size_t count_kind(const std::vector<Inbound>& v, Inbound::Kind kind) {
  size_t n = 0;
  for (const Inbound& in : v) n += in.kind == kind ? 1 : 0;
  return n;
}

std::string hello_bytes(uint32_t node_id, uint32_t version) {
  Hello h;
  h.set_node_id(node_id);
  h.set_protocol_version(version);
  return h.SerializeAsString();
}

// --- frames between two runtimes -------------------------------------------------

TEST(TcpTransport, TwoRuntimesExchangeFramesInOrder) {
  asio::io_context io;
  LogCapture logs1, logs2;
  AsioRuntime n1(io, NodeId{1}, listening(logs1));
  ASSERT_TRUE(n1.listen_port().has_value());
  AsioRuntimeConfig c2 = config(logs2);
  c2.peers[NodeId{1}] = loopback(*n1.listen_port());
  AsioRuntime n2(io, NodeId{2}, c2);

  std::vector<Inbound> at1, at2;
  n1.spawn(respond(n1.transport(), &at1), "respond");
  n2.spawn(collect(n2.transport(), &at2), "collect");

  constexpr int kFrames = 300;
  for (int i = 0; i < kFrames; ++i) {
    ASSERT_EQ(n2.transport().send(NodeId{1}, "f" + std::to_string(i)), SendStatus::ok);
  }
  // A big frame and an empty one travel too.
  const std::string big(n2.transport().frame_bytes_max() - 3, 'b');  // "re:" + big == max
  ASSERT_EQ(n2.transport().send(NodeId{1}, big), SendStatus::ok);
  ASSERT_EQ(n2.transport().send(NodeId{1}, ""), SendStatus::ok);

  ASSERT_TRUE(run_until(io, [&] { return at2.size() >= kFrames + 2; }))
      << logs1.dump() << logs2.dump();
  for (int i = 0; i < kFrames; ++i) {
    ASSERT_EQ(at2[i].kind, Inbound::Kind::frame);
    EXPECT_EQ(at2[i].peer, NodeId{1});
    EXPECT_EQ(at2[i].data, "re:f" + std::to_string(i));
  }
  EXPECT_EQ(at2[kFrames].data, "re:" + big);
  EXPECT_EQ(at2[kFrames + 1].data, "re:");
  EXPECT_EQ(count_kind(at1, Inbound::Kind::reset), 0u);
  EXPECT_EQ(n1.tcp().stats().protocol_errors, 0u);
  EXPECT_EQ(n2.tcp().stats().connections_dialed, 1u);
  EXPECT_EQ(n1.tcp().stats().connections_accepted, 1u);
  EXPECT_TRUE(n2.tcp().has_connection(NodeId{1}));
  EXPECT_TRUE(n1.tcp().has_connection(NodeId{2}));
}

TEST(TcpTransport, SendStatuses) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntimeConfig c = config(logs);
  c.frame_bytes_max = 1024;
  c.peers[NodeId{7}] = loopback(1);  // never dialed below: every send fails before that
  AsioRuntime rt(io, NodeId{1}, c);
  Transport& t = rt.transport();
  EXPECT_EQ(t.frame_bytes_max(), 1024u);
  EXPECT_EQ(t.send(NodeId{1}, "me"), SendStatus::to_self);
  EXPECT_EQ(t.send(NodeId{9}, "who"), SendStatus::unknown_peer);
  EXPECT_EQ(t.send(NodeId{7}, std::string(1025, 'x')), SendStatus::frame_too_large);
  EXPECT_EQ(rt.tcp().connection_count(), 0u);
}

TEST(TcpTransport, ListenTwiceOrOnBadAddressThrows) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntime rt(io, NodeId{1}, listening(logs));
  EXPECT_THROW(rt.tcp().listen("127.0.0.1", 0), std::logic_error);
  AsioRuntime other(io, NodeId{2}, config(logs));
  EXPECT_THROW(other.tcp().listen("not-an-address", 0), std::invalid_argument);
  // The port is taken by rt.
  AsioRuntimeConfig clash = config(logs);
  clash.listen = loopback(*rt.listen_port());
  EXPECT_THROW(AsioRuntime(io, NodeId{3}, clash), std::system_error);
}

// --- misbehaving clients ------------------------------------------------------

TEST(TcpTransport, BadClientsAreClosedWhileAGoodPeerKeepsBeingServed) {
  asio::io_context io;
  LogCapture logs1, logs2;
  AsioRuntimeConfig c1 = listening(logs1);
  c1.handshake_timeout = milliseconds(300);
  AsioRuntime server(io, NodeId{1}, c1);
  const uint16_t port = *server.listen_port();
  AsioRuntimeConfig c2 = config(logs2);
  c2.peers[NodeId{1}] = loopback(port);
  AsioRuntime good(io, NodeId{2}, c2);

  std::vector<Inbound> at_server, at_good;
  server.spawn(respond(server.transport(), &at_server), "respond");
  good.spawn(collect(good.transport(), &at_good), "collect");
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(good.transport().send(NodeId{1}, "a" + std::to_string(i)), SendStatus::ok);
  ASSERT_TRUE(run_until(io, [&] { return at_good.size() >= 10; })) << logs1.dump();

  struct Case {
    const char* name;
    std::string bytes;
    const char* log_says;
  };
  const std::vector<Case> cases = {
      {"oversized length prefix", "\xff\xff\xff\xff", "exceeds frame_bytes_max"},
      {"garbage Hello", encode_frame("\xff\xff\xff\xff\xff"), "garbled Hello"},
      {"zero-length Hello", encode_frame(""), "empty Hello"},
      {"wrong protocol version", encode_frame(hello_bytes(7, kProtocolVersion + 1)),
       "protocol version"},
      {"Hello naming the server", encode_frame(hello_bytes(1, kProtocolVersion)), "own id"},
      {"Hello too long", encode_frame(std::string(kHelloBytesMax + 1, '\0')),
       "exceeds frame_bytes_max"},
      {"silent (no Hello)", "", "no Hello within"},
      {"half a header then silence", "\0\0", "no Hello within"},
  };
  std::vector<std::unique_ptr<RawClient>> clients;
  for (const Case& k : cases) {
    clients.push_back(std::make_unique<RawClient>(io, port));
    if (!k.bytes.empty()) clients.back()->write(k.bytes);
  }
  ASSERT_TRUE(run_until(io, [&] {
    for (const auto& cl : clients) {
      if (!cl->closed()) return false;
    }
    return true;
  })) << logs1.dump();

  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    // The server answers nothing (not even its Hello) to a client without a valid Hello.
    EXPECT_EQ(clients[i]->received(), "");
    // The error names the remote endpoint and what was wrong.
    EXPECT_TRUE(logs1.contains_all(
        {"error:", "127.0.0.1:" + std::to_string(clients[i]->local_port()), cases[i].log_says}))
        << logs1.dump();
  }
  EXPECT_EQ(server.tcp().stats().protocol_errors, cases.size());

  // The well-behaved peer is still served on its connection.
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(good.transport().send(NodeId{1}, "b" + std::to_string(i)), SendStatus::ok);
  ASSERT_TRUE(run_until(io, [&] { return at_good.size() >= 20; })) << logs1.dump();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(at_good[10 + i].data, "re:b" + std::to_string(i));
  EXPECT_EQ(good.tcp().stats().connections_dialed, 1u);
  // Nothing from the bad clients reached the node: only n2's frames, no resets.
  for (const Inbound& in : at_server) {
    EXPECT_EQ(in.kind, Inbound::Kind::frame);
    EXPECT_EQ(in.peer, NodeId{2});
  }
  EXPECT_EQ(count_kind(at_good, Inbound::Kind::reset), 0u);
}

TEST(TcpTransport, RawClientSpeakingTheWireProtocolIsAnswered) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntime server(io, NodeId{1}, listening(logs));
  std::vector<Inbound> seen;
  server.spawn(respond(server.transport(), &seen), "respond");

  RawClient client(io, *server.listen_port());
  client.write(encode_frame(hello_bytes(9, kProtocolVersion)) + encode_frame("x") +
               encode_frame("yz"));
  const std::string expected =
      encode_frame(hello_bytes(1, kProtocolVersion)) + encode_frame("re:x") + encode_frame("re:yz");
  ASSERT_TRUE(run_until(io, [&] { return client.received().size() >= expected.size(); }))
      << logs.dump();
  EXPECT_EQ(client.received(), expected);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].peer, NodeId{9});
  EXPECT_EQ(seen[1].data, "yz");
}

TEST(TcpTransport, ConnectionsBeyondTheLimitAreRefused) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntimeConfig c = listening(logs);
  c.connections_max = 1;
  AsioRuntime server(io, NodeId{1}, c);
  RawClient first(io, *server.listen_port());
  RawClient second(io, *server.listen_port());
  ASSERT_TRUE(run_until(io, [&] { return second.closed(); })) << logs.dump();
  EXPECT_FALSE(first.closed());
  EXPECT_EQ(server.tcp().stats().connections_refused, 1u);
  EXPECT_TRUE(logs.contains_all({"refusing", "connections_max 1"})) << logs.dump();
}

// --- resets -------------------------------------------------------------------------

TEST(TcpTransport, PeerGoingAwayAndFailedRedialEachGiveOneReset) {
  asio::io_context io;
  LogCapture logs1, logs2;
  auto n1 = std::make_unique<AsioRuntime>(io, NodeId{1}, listening(logs1));
  std::vector<Inbound> at1, at2;
  n1->spawn(respond(n1->transport(), &at1), "respond");
  AsioRuntimeConfig c2 = config(logs2);
  c2.peers[NodeId{1}] = loopback(*n1->listen_port());
  AsioRuntime n2(io, NodeId{2}, c2);
  n2.spawn(collect(n2.transport(), &at2), "collect");

  ASSERT_EQ(n2.transport().send(NodeId{1}, "hi"), SendStatus::ok);
  ASSERT_TRUE(run_until(io, [&] { return at2.size() >= 1; }));

  n1.reset();  // the peer's incarnation ends: its socket closes
  ASSERT_TRUE(run_until(io, [&] { return at2.size() >= 2; })) << logs2.dump();
  EXPECT_EQ(at2[1].kind, Inbound::Kind::reset);
  EXPECT_EQ(at2[1].peer, NodeId{1});
  EXPECT_FALSE(n2.tcp().has_connection(NodeId{1}));
  run_for(io, 50ms);
  EXPECT_EQ(at2.size(), 2u) << "exactly one reset per broken connection";

  // Nobody listens there any more: the redial fails, which is one more reset.
  ASSERT_EQ(n2.transport().send(NodeId{1}, "anyone?"), SendStatus::ok);
  ASSERT_TRUE(run_until(io, [&] { return at2.size() >= 3; })) << logs2.dump();
  EXPECT_EQ(at2[2].kind, Inbound::Kind::reset);
  EXPECT_EQ(at2[2].peer, NodeId{1});
  run_for(io, 50ms);
  EXPECT_EQ(at2.size(), 3u);
  EXPECT_EQ(n2.tcp().stats().dial_failures, 1u);
  EXPECT_TRUE(logs2.contains_all({"connect failed"})) << logs2.dump();
}

TEST(TcpTransport, HelloFromTheWrongNodeBreaksTheDialedConnection) {
  asio::io_context io;
  LogCapture logs1, logs2;
  AsioRuntime n1(io, NodeId{1}, listening(logs1));
  AsioRuntimeConfig c2 = config(logs2);
  c2.peers[NodeId{3}] = loopback(*n1.listen_port());  // misconfigured: n1 is there
  AsioRuntime n2(io, NodeId{2}, c2);
  std::vector<Inbound> at1, at2;
  n1.spawn(collect(n1.transport(), &at1), "collect");
  n2.spawn(collect(n2.transport(), &at2), "collect");
  ASSERT_EQ(n2.transport().send(NodeId{3}, "for n3"), SendStatus::ok);
  ASSERT_TRUE(run_until(io, [&] { return count_kind(at2, Inbound::Kind::reset) >= 1; }))
      << logs2.dump();
  EXPECT_EQ(at2.back().peer, NodeId{3});
  EXPECT_TRUE(logs2.contains_all({"error:", "Hello names n1 but n3 was dialed"})) << logs2.dump();
  // n1 accepted a valid Hello from n2, so n1 sees that connection break too.
  ASSERT_TRUE(run_until(io, [&] { return count_kind(at1, Inbound::Kind::reset) >= 1; }))
      << logs1.dump();
  EXPECT_EQ(at1.back().peer, NodeId{2});
}

TEST(TcpTransport, SimultaneousDialKeepsOrderBothWays) {
  asio::io_context io;
  LogCapture logs1, logs2;
  AsioRuntime n1(io, NodeId{1}, listening(logs1));
  AsioRuntime n2(io, NodeId{2}, listening(logs2));
  n1.tcp().set_peer(NodeId{2}, loopback(*n2.listen_port()));
  n2.tcp().set_peer(NodeId{1}, loopback(*n1.listen_port()));
  std::vector<Inbound> at1, at2;
  n1.spawn(collect(n1.transport(), &at1), "collect");
  n2.spawn(collect(n2.transport(), &at2), "collect");

  constexpr int kRound = 100;
  // Both dial before either runs: two connections, one registered per side.
  for (int i = 0; i < kRound; ++i) {
    ASSERT_EQ(n1.transport().send(NodeId{2}, "from1-" + std::to_string(i)), SendStatus::ok);
    ASSERT_EQ(n2.transport().send(NodeId{1}, "from2-" + std::to_string(i)), SendStatus::ok);
  }
  ASSERT_TRUE(run_until(io, [&] { return at1.size() >= kRound && at2.size() >= kRound; }))
      << logs1.dump() << logs2.dump();
  EXPECT_EQ(n1.tcp().connection_count(), 2u);
  EXPECT_EQ(n2.tcp().connection_count(), 2u);
  // A second round goes over the same connections, still in order.
  for (int i = kRound; i < 2 * kRound; ++i) {
    ASSERT_EQ(n1.transport().send(NodeId{2}, "from1-" + std::to_string(i)), SendStatus::ok);
    ASSERT_EQ(n2.transport().send(NodeId{1}, "from2-" + std::to_string(i)), SendStatus::ok);
  }
  ASSERT_TRUE(run_until(io, [&] { return at1.size() >= 2 * kRound && at2.size() >= 2 * kRound; }));
  for (int i = 0; i < 2 * kRound; ++i) {
    EXPECT_EQ(at1[i].data, "from2-" + std::to_string(i));
    EXPECT_EQ(at2[i].data, "from1-" + std::to_string(i));
  }
  EXPECT_EQ(n1.tcp().stats().connections_dialed + n2.tcp().stats().connections_dialed, 2u);
  EXPECT_EQ(n1.tcp().connection_count(), 2u);
  EXPECT_EQ(count_kind(at1, Inbound::Kind::reset) + count_kind(at2, Inbound::Kind::reset), 0u);
}

TEST(TcpTransport, WriteQueueOverflowBreaksTheConnection) {
  asio::io_context io;
  LogCapture logs1, logs2;
  AsioRuntime n1(io, NodeId{1}, listening(logs1));
  AsioRuntimeConfig c2 = config(logs2);
  c2.peers[NodeId{1}] = loopback(*n1.listen_port());
  c2.write_queue_bytes_max = 4096;
  AsioRuntime n2(io, NodeId{2}, c2);
  std::vector<Inbound> at1, at2;
  n1.spawn(collect(n1.transport(), &at1), "collect");
  n2.spawn(collect(n2.transport(), &at2), "collect");

  // Nothing is written before the io_context runs, so the queue only grows.
  const std::string kilobyte(1000, 'k');
  for (int i = 0; i < 5; ++i) ASSERT_EQ(n2.transport().send(NodeId{1}, kilobyte), SendStatus::ok);
  EXPECT_EQ(n2.tcp().stats().write_queue_overflows, 1u);
  ASSERT_TRUE(run_until(io, [&] { return !at2.empty(); })) << logs2.dump();
  EXPECT_EQ(at2[0].kind, Inbound::Kind::reset);
  EXPECT_TRUE(logs2.contains_all({"error:", "write queue overflow", "write_queue_bytes_max 4096"}))
      << logs2.dump();

  // The next send opens a new connection that works.
  ASSERT_EQ(n2.transport().send(NodeId{1}, "after"), SendStatus::ok);
  ASSERT_TRUE(run_until(io, [&] {
    return !at1.empty() && at1.back().kind == Inbound::Kind::frame && at1.back().data == "after";
  })) << logs1.dump();
}

TEST(TcpTransport, InboxOverflowClosesTheConnectionAndItsResetFollowsTheFrames) {
  asio::io_context io;
  LogCapture logs1, logs2;
  AsioRuntimeConfig c1 = listening(logs1);
  c1.inbox_frames_max = 4;
  AsioRuntime n1(io, NodeId{1}, c1);
  AsioRuntimeConfig c2 = config(logs2);
  c2.peers[NodeId{1}] = loopback(*n1.listen_port());
  AsioRuntime n2(io, NodeId{2}, c2);
  std::vector<Inbound> at1, at2;
  n2.spawn(collect(n2.transport(), &at2), "collect");

  // n1 reads nothing yet: its inbox fills and the connection breaks.
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(n2.transport().send(NodeId{1}, "m" + std::to_string(i)), SendStatus::ok);
  ASSERT_TRUE(run_until(io, [&] { return !at2.empty(); })) << logs1.dump() << logs2.dump();
  EXPECT_EQ(at2[0].kind, Inbound::Kind::reset);
  EXPECT_EQ(n1.tcp().stats().inbox_overflows, 1u);
  EXPECT_TRUE(logs1.contains_all({"error:", "inbox full"})) << logs1.dump();
  // The 4 frames that fit, then the reset: resets are never refused.
  EXPECT_EQ(n1.transport().inbox_size(), 5u);

  // Once n1 reads, it gets the 4 frames, then the reset for that connection.
  n1.spawn(collect(n1.transport(), &at1), "collect");
  ASSERT_TRUE(run_until(io, [&] { return at1.size() >= 5; })) << logs1.dump();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(at1[i].kind, Inbound::Kind::frame);
    EXPECT_EQ(at1[i].data, "m" + std::to_string(i));
  }
  EXPECT_EQ(at1[4].kind, Inbound::Kind::reset);
  EXPECT_EQ(at1[4].peer, NodeId{2});
  run_for(io, 30ms);
  EXPECT_EQ(at1.size(), 5u);
}

// --- timers, rng, logging ------------------------------------------------------------

TEST(AsioRuntime, TimersFireInTimeThenScheduleOrderAndCancelledNeverFire) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntime rt(io, NodeId{1}, config(logs));
  std::vector<int> order;
  const TimerId late = rt.call_after(milliseconds(60), [&] { order.push_back(1); });
  const TimerId early = rt.call_after(milliseconds(10), [&] { order.push_back(2); });
  const TimerId doomed = rt.call_after(milliseconds(20), [&] { order.push_back(99); });
  const TimePoint same = rt.now() + milliseconds(5);
  const TimerId s1 = rt.call_at(same, [&] { order.push_back(10); });
  const TimerId s2 = rt.call_at(same, [&] { order.push_back(11); });
  const TimerId s3 = rt.call_at(same, [&] { order.push_back(12); });
  const TimerId past = rt.call_at(TimePoint::zero(), [&] { order.push_back(20); });

  const std::vector<TimerId> ids = {late, early, doomed, s1, s2, s3, past};
  for (size_t i = 0; i < ids.size(); ++i) {
    EXPECT_NE(ids[i], 0u);
    for (size_t j = 0; j < i; ++j) EXPECT_NE(ids[i], ids[j]);
  }
  EXPECT_TRUE(rt.cancel(doomed));
  EXPECT_FALSE(rt.cancel(doomed));
  EXPECT_FALSE(rt.cancel(0));
  EXPECT_FALSE(rt.cancel(987654321));

  ASSERT_TRUE(run_until(io, [&] { return order.size() >= 6; }));
  EXPECT_EQ(order, (std::vector<int>{20, 10, 11, 12, 2, 1}));
  EXPECT_FALSE(rt.cancel(late)) << "a fired timer is no longer pending";
  EXPECT_EQ(rt.pending_timers(), 0u);
}

TEST(AsioRuntime, NowMovesForwardAndSleepResumes) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntime rt(io, NodeId{1}, config(logs));
  const TimePoint t0 = rt.now();
  EXPECT_GE(t0, TimePoint::zero());
  struct Probe {
    static Task<void> run(Runtime& r, TimePoint* woke) {
      co_await r.sleep(milliseconds(15));
      *woke = r.now();
    }
  };
  TimePoint woke = TimePoint::zero();
  rt.spawn(Probe::run(rt, &woke), "sleeper");
  EXPECT_EQ(rt.live_tasks(), 1u);
  ASSERT_TRUE(run_until(io, [&] { return rt.live_tasks() == 0; }));
  EXPECT_GE(woke - t0, milliseconds(15));
}

TEST(AsioRuntime, ShutdownDestroysTasksAndTimersAndStopsTheTransport) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntimeConfig c = listening(logs);
  c.peers[NodeId{2}] = loopback(1);
  AsioRuntime rt(io, NodeId{1}, c);
  std::vector<Inbound> got;
  bool fired = false;
  struct Sleeper {
    static Task<void> run(Runtime& r, bool* flag) {
      co_await r.sleep(milliseconds(5));
      *flag = true;
    }
  };
  rt.spawn(collect(rt.transport(), &got), "collect");
  rt.spawn(Sleeper::run(rt, &fired), "sleeper");
  rt.call_after(milliseconds(5), [&] { fired = true; });
  EXPECT_EQ(rt.live_tasks(), 2u);
  rt.shutdown();
  EXPECT_EQ(rt.live_tasks(), 0u);
  EXPECT_EQ(rt.pending_timers(), 0u);
  EXPECT_FALSE(rt.listen_port().has_value());
  EXPECT_NE(rt.call_after(milliseconds(1), [&] { fired = true; }), 0u);
  EXPECT_EQ(rt.transport().send(NodeId{2}, "late"), SendStatus::ok);
  EXPECT_EQ(rt.tcp().connection_count(), 0u);
  run_for(io, 30ms);
  EXPECT_FALSE(fired);
  EXPECT_TRUE(got.empty());
  rt.shutdown();  // idempotent
}

TEST(AsioRuntime, RngIsSeededPerNode) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntime a(io, NodeId{1}, config(logs));
  AsioRuntime b(io, NodeId{1}, config(logs));
  AsioRuntime c(io, NodeId{2}, config(logs));
  const uint64_t a1 = a.rng().next_u64();
  EXPECT_EQ(a1, b.rng().next_u64());
  EXPECT_NE(a1, c.rng().next_u64());
  EXPECT_EQ(a.seed(), 42u);
  EXPECT_FALSE(a.buggify("anything"));
}

TEST(AsioRuntime, LogLinesCarryTimeNodeAndLevel) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntimeConfig cfg = config(logs);
  cfg.log_level = LogLevel::info;
  AsioRuntime rt(io, NodeId{12}, cfg);
  rt.debug("hidden {}", 1);
  rt.info("hello {}", "world");
  ASSERT_EQ(logs.lines.size(), 1u) << logs.dump();
  const std::regex shape(R"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} n12\] info: hello world)");
  EXPECT_TRUE(std::regex_match(logs.lines[0], shape)) << logs.lines[0];
}

// --- task failure ------------------------------------------------------------------

TEST(AsioRuntime, TaskFailureIsLoggedAndStopsTheIoContext) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntime rt(io, NodeId{1}, config(logs));
  struct Failing {
    static Task<void> run(Runtime& r) {
      co_await r.sleep(milliseconds(1));
      throw std::runtime_error("boom at the seam");
    }
  };
  // Keeps the io_context busy, so only the failure can stop it early.
  rt.call_after(seconds(30), [] {});
  rt.spawn(Failing::run(rt), "failing");
  io.run_for(std::chrono::duration_cast<std::chrono::milliseconds>(kWaitBound));
  EXPECT_TRUE(io.stopped());
  EXPECT_TRUE(rt.failed());
  EXPECT_NE(rt.failure().find("boom at the seam"), std::string::npos) << rt.failure();
  EXPECT_NE(rt.failure().find("failing"), std::string::npos) << rt.failure();
  EXPECT_TRUE(logs.contains_all({"error:", "boom at the seam"})) << logs.dump();
  EXPECT_EQ(kExitTaskFailed, 70);
}

TEST(AsioRuntime, ThrowingTimerCallbackCountsAsTaskFailure) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntime rt(io, NodeId{1}, config(logs));
  rt.call_after(milliseconds(1), [] { throw std::runtime_error("callback broke"); });
  rt.call_after(seconds(30), [] {});
  io.run_for(std::chrono::duration_cast<std::chrono::milliseconds>(kWaitBound));
  EXPECT_TRUE(rt.failed());
  EXPECT_NE(rt.failure().find("callback broke"), std::string::npos);
}

// --- disk -------------------------------------------------------------------------------

class DiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("wxsim_prod_disk_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(DiskTest, CommittedDataSurvivesReopenAndOpenTransactionsRollBack) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntimeConfig c = config(logs);
  c.data_dir = (dir_ / "data").string();  // does not exist yet
  {
    AsioRuntime rt(io, NodeId{5}, c);
    EXPECT_FALSE(rt.file_disk().is_open()) << "opened lazily";
    sqlite::Database& db = rt.disk().db();
    {
      // Scoped: a statement left mid-step would hold the implicit
      // transaction open, and nothing after it would commit.
      sqlite::Statement mode = db.prepare("PRAGMA journal_mode");
      ASSERT_TRUE(mode.step());
      EXPECT_EQ(mode.column_text(0), "wal");
      sqlite::Statement sync = db.prepare("PRAGMA synchronous");
      ASSERT_TRUE(sync.step());
      EXPECT_EQ(sync.column_int64(0), 2) << "synchronous=FULL";
    }
    db.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
    db.prepare("INSERT INTO kv VALUES (?, ?)")
        .bind(1, std::string_view("kept"))
        .bind(2, std::string_view("1"))
        .run();
    db.exec("BEGIN");
    db.exec("INSERT INTO kv VALUES ('lost', '2')");
    // The incarnation ends mid-transaction.
  }
  EXPECT_TRUE(std::filesystem::exists(dir_ / "data" / "node-5.sqlite"));
  {
    AsioRuntime rt(io, NodeId{5}, c);
    sqlite::Statement q = rt.disk().db().prepare("SELECT k, v FROM kv ORDER BY k");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.column_text(0), "kept");
    EXPECT_EQ(q.column_text(1), "1");
    EXPECT_FALSE(q.step()) << "the uncommitted row must be gone";
  }
  // Another node id in the same folder has its own database.
  {
    AsioRuntime rt(io, NodeId{6}, c);
    sqlite::Statement q =
        rt.disk().db().prepare("SELECT count(*) FROM sqlite_master WHERE name = 'kv'");
    ASSERT_TRUE(q.step());
    EXPECT_EQ(q.column_int64(0), 0);
  }
}

TEST_F(DiskTest, PathWithUriLikeCharactersIsTakenLiterally) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntimeConfig c = config(logs);
  c.data_dir = (dir_ / "odd ?name#%20").string();
  AsioRuntime rt(io, NodeId{1}, c);
  rt.disk().db().exec("CREATE TABLE t (x)");
  EXPECT_TRUE(std::filesystem::exists(dir_ / "odd ?name#%20" / "node-1.sqlite"));
}

TEST(AsioRuntimeDisk, NoDataFolderMeansNoDisk) {
  asio::io_context io;
  LogCapture logs;
  AsioRuntime rt(io, NodeId{1}, config(logs));
  EXPECT_THROW(rt.disk().db(), sqlite::SqliteError);
}

}  // namespace
}  // namespace wx::prod
