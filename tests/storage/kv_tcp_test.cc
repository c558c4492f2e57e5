// The replicated key-value store as real processes over TCP: three `wxsim
// node --role kv` children (path from the WXSIM_BINARY compile definition) on
// 127.0.0.1 with SQLite on disk (cli/kv_process_cluster.h), driven by a
// KvClient on an AsioRuntime in the test process. Writes and reads keys,
// SIGKILLs the leader's process, and checks that the two survivors keep
// serving and every acknowledged write is still readable. Every wait is
// bounded; no assertion on speed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/kv_process_cluster.h"
#include "nodes/prod/asio_runtime.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/storage/kv/kv_client.h"

#ifndef WXSIM_BINARY
#error "WXSIM_BINARY must name the wxsim executable"
#endif

namespace wx::kv {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr NodeId kClientNode{cli::kKvClientNodeIdMin};
// Generous bounds: only a hang comes near them.
constexpr auto kPhaseBound = 60s;
constexpr Duration kCallTimeout = seconds(15);
constexpr Duration kProbeTimeout = seconds(1);
constexpr Duration kProbeBackoff = milliseconds(50);
constexpr int kKeysPerPhase = 10;

struct Phase {
  bool done = false;
  std::map<std::string, std::string> acked;  // key -> value acknowledged ok
  std::map<std::string, std::optional<std::string>> read;  // key -> value read (nullopt: absent)
  int failed_reads = 0;
  uint32_t leader_member = 0;  // 0: not found
};

// Puts `count` keys `prefix<i>`, then reads back every key in `to_read`.
Task<void> write_then_read(KvClient* client, std::string prefix,
                           std::vector<std::string> to_read, Phase* out, asio::io_context* io) {
  for (int i = 0; i < kKeysPerPhase; ++i) {
    const std::string key = prefix + std::to_string(i);
    const std::string value = "value-of-" + key;
    KvResult r = co_await client->put(key, value);
    if (r.code == KvResultCode::ok) out->acked[key] = value;
  }
  for (const auto& [key, value] : out->acked) to_read.push_back(key);
  for (const std::string& key : to_read) {
    KvResult r = co_await client->get(key);
    if (r.code != KvResultCode::ok) {
      ++out->failed_reads;
      continue;
    }
    out->read[key] = r.found ? std::optional<std::string>(r.value) : std::nullopt;
  }
  out->done = true;
  io->stop();
}

// Asks each replica directly for a key until one answers as the leader (a
// follower answers NOT_LEADER).
Task<void> find_leader(Runtime& rt, rpc::RpcEndpoint* ep, std::vector<NodeId> members, Phase* out,
                       asio::io_context* io) {
  GetRequest req;
  req.set_key("probe");
  rpc::CallOptions options;
  options.timeout = kProbeTimeout;
  while (out->leader_member == 0) {
    for (size_t i = 0; i < members.size() && out->leader_member == 0; ++i) {
      rpc::Result<GetReply> r = co_await ep->call<GetReply>(members[i], kGetMethod, req, options);
      if (r.ok() && r->code() == OK) out->leader_member = static_cast<uint32_t>(i + 1);
    }
    if (out->leader_member == 0) co_await rt.sleep(kProbeBackoff);
  }
  out->done = true;
  io->stop();
}

class KvTcp : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("wxsim_kv_tcp_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(KvTcp, SurvivorsServeEveryAcknowledgedWriteAfterTheLeaderIsKilled) {
  cli::KvProcessCluster cluster(WXSIM_BINARY, /*groups=*/1, dir_.string());
  asio::io_context io;
  prod::AsioRuntimeConfig c;
  c.log_level = LogLevel::warn;
  c.peers = cluster.client_peers();
  prod::AsioRuntime rt(io, kClientNode, c);
  rpc::RpcEndpoint ep(rt);
  ep.start();
  KvClientConfig kc;
  kc.replicas = cluster.group_members(0);
  kc.call_timeout = kCallTimeout;
  KvClient client(rt, ep, kc);

  // 1. All three up: write and read back.
  Phase before;
  rt.spawn(write_then_read(&client, "a", {}, &before, &io), "phase1");
  io.run_for(kPhaseBound);
  ASSERT_TRUE(before.done) << "phase 1 did not finish in time";
  EXPECT_EQ(before.acked.size(), static_cast<size_t>(kKeysPerPhase));
  EXPECT_EQ(before.failed_reads, 0);
  for (const auto& [key, value] : before.acked) EXPECT_EQ(before.read[key], value) << key;

  // 2. Find the leader and SIGKILL its process.
  Phase probe;
  io.restart();
  rt.spawn(find_leader(rt, &ep, kc.replicas, &probe, &io), "probe");
  io.run_for(kPhaseBound);
  ASSERT_TRUE(probe.done && probe.leader_member != 0) << "no replica answered as the leader";
  cluster.kill_member(probe.leader_member);
  ASSERT_FALSE(cluster.member(probe.leader_member).running());

  // 3. The two survivors elect a leader and serve new writes and every
  // acknowledged old one.
  std::vector<std::string> old_keys;
  for (const auto& [key, value] : before.acked) old_keys.push_back(key);
  Phase after;
  io.restart();
  rt.spawn(write_then_read(&client, "b", old_keys, &after, &io), "phase3");
  io.run_for(kPhaseBound);
  ASSERT_TRUE(after.done) << "phase 3 did not finish in time";
  EXPECT_EQ(after.acked.size(), static_cast<size_t>(kKeysPerPhase));
  EXPECT_EQ(after.failed_reads, 0);
  std::map<std::string, std::string> all = before.acked;
  all.insert(after.acked.begin(), after.acked.end());
  for (const auto& [key, value] : all) EXPECT_EQ(after.read[key], value) << key;

  rt.shutdown();
  EXPECT_FALSE(rt.failed()) << rt.failure();
  // The survivors stop cleanly on SIGTERM.
  for (uint32_t m = 1; m <= cli::kKvClusterMembers; ++m) {
    if (m == probe.leader_member) continue;
    const std::optional<int> st = cluster.member(m).stop(cli::kStopBound);
    ASSERT_TRUE(st.has_value());
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << "member " << m << " status " << *st;
    EXPECT_TRUE(std::filesystem::exists(dir_ / ("member-" + std::to_string(m)) /
                                        ("node-" + std::to_string(m) + ".sqlite")));
  }
}

}  // namespace
}  // namespace wx::kv
