// kv_tcp_bench: replicated put throughput of the key-value store
// (nodes/storage/kv/) on a real three-process loopback cluster with durable
// SQLite (WAL, synchronous=FULL: one fsync'd transaction per Ready).
//
// For each --groups G it starts three `wxsim node --role kv --groups G`
// processes on 127.0.0.1 (cli/kv_process_cluster.h; data folders under a
// temporary folder it removes at the end), waits until every group accepts a
// put, then runs a closed loop for --duration-s after --warmup-s: W writers
// (max(--writers, G)), writer w on group w mod G, each with its own KvClient
// (its own client id: a KvClient issues one call at a time), put 100-byte
// values (--value-bytes) to keys of their own. All writers share one client
// AsioRuntime and RpcEndpoint in this process, on one thread. A put counts if
// it started and was acknowledged inside the window. Reported per G: puts/s,
// p50 and p99 latency in milliseconds, puts that ended unknown (deadline), and
// PhxPaxos's published three-node figures for comparison (different hardware).
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cli/kv_process_cluster.h"
#include "nodes/prod/asio_runtime.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/storage/kv/kv_client.h"

#ifndef WXSIM_BINARY
#error "WXSIM_BINARY must name the wxsim executable"
#endif

namespace wx::bench {
namespace {

namespace asio = boost::asio;

constexpr NodeId kClientNode{cli::kKvClientNodeIdMin};
// A put's deadline (KvClient retries inside it); on loopback only a broken
// run or a leader change reaches it.
constexpr Duration kPutTimeout = seconds(5);
// How long every group gets to elect a leader and accept its first put.
constexpr Duration kReadyBound = seconds(60);
// Extra time after the window for in-flight puts before the run is cut.
constexpr Duration kDrainBound = seconds(10);
// Keys per writer (a writer cycles over them).
constexpr uint64_t kKeysPerWriter = 1000;
constexpr size_t kLatencySamplesMax = size_t{1} << 24;
// PhxPaxos's published figures (three nodes, 100-byte values, its README).
constexpr double kPhxPaxosOneGroupQps = 1200;
constexpr double kPhxPaxosHundredGroupsQps = 14000;

struct Options {
  double duration_s = 10;
  double warmup_s = 2;
  std::vector<uint32_t> groups = {1, 10, 100};
  size_t writers = 64;
  size_t value_bytes = 100;
  std::string wxsim = WXSIM_BINARY;
};

struct Run {
  asio::io_context* io = nullptr;
  std::vector<std::unique_ptr<kv::KvClient>> clients;
  size_t groups = 0;
  size_t groups_ready = 0;
  bool ready_failed = false;
  TimePoint start, end;
  Duration warmup;
  Duration duration;
  std::string value;
  size_t writers_done = 0;
  uint64_t measured = 0;
  uint64_t unknown = 0;
  std::vector<int64_t> latencies_ns;
};

Task<void> writer(Runtime& rt, Run* run, size_t index) {
  kv::KvClient& client = *run->clients[index];
  uint64_t n = 0;
  for (;;) {
    const TimePoint t0 = rt.now();
    if (t0 >= run->end) break;
    kv::KvResult r =
        co_await client.put(fmt::format("w{}-k{}", index, n++ % kKeysPerWriter), run->value);
    const TimePoint t1 = rt.now();
    if (r.code != kv::KvResultCode::ok) {
      ++run->unknown;
    } else if (t0 >= run->start && t1 <= run->end) {
      ++run->measured;
      if (run->latencies_ns.size() < kLatencySamplesMax) run->latencies_ns.push_back((t1 - t0).ns());
    }
  }
  if (++run->writers_done == run->clients.size()) run->io->stop();
}

// Puts one key to `group` until it is acknowledged; when every group has
// acknowledged one, opens the window and starts the writers.
Task<void> await_group_ready(Runtime& rt, Run* run, size_t group) {
  const TimePoint deadline = rt.now() + kReadyBound;
  kv::KvClient& client = *run->clients[group];  // writer `group` is on group `group`
  for (;;) {
    kv::KvResult r = co_await client.put("ready", run->value);
    if (r.code == kv::KvResultCode::ok) break;
    if (rt.now() >= deadline) {
      run->ready_failed = true;
      run->io->stop();
      co_return;
    }
  }
  if (++run->groups_ready < run->groups) co_return;
  run->start = rt.now() + run->warmup;
  run->end = run->start + run->duration;
  for (size_t i = 0; i < run->clients.size(); ++i) rt.spawn(writer(rt, run, i), "writer");
  rt.call_at(run->end + kDrainBound, [run] { run->io->stop(); });
}

double percentile_ms(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]) / 1e6;
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(in >> one >> five >> fifteen)) return "unknown";
  return fmt::format("{} {} {}", one, five, fifteen);
}

struct Figures {
  size_t writers = 0;
  double puts_per_s = 0;
  double p50_ms = 0, p99_ms = 0;
  uint64_t unknown = 0;
};

Figures run_groups(const Options& o, uint32_t groups, const std::string& dir) {
  cli::KvProcessCluster cluster(o.wxsim, groups, dir, /*log_level=*/"error");
  asio::io_context io;
  prod::AsioRuntimeConfig c;
  c.seed = 1;
  c.log_level = LogLevel::warn;
  c.peers = cluster.client_peers();
  prod::AsioRuntime rt(io, kClientNode, c);
  rpc::RpcEndpoint ep(rt);
  ep.start();
  Run run;
  run.io = &io;
  run.groups = groups;
  run.warmup = microseconds(static_cast<int64_t>(o.warmup_s * 1e6));
  run.duration = microseconds(static_cast<int64_t>(o.duration_s * 1e6));
  run.value = std::string(o.value_bytes, 'v');
  const size_t writers = std::max<size_t>(o.writers, groups);
  for (size_t w = 0; w < writers; ++w) {
    kv::KvClientConfig kc;
    kc.replicas = cluster.group_members(static_cast<uint32_t>(w % groups));
    kc.call_timeout = kPutTimeout;
    run.clients.push_back(std::make_unique<kv::KvClient>(rt, ep, kc));
  }
  for (size_t g = 0; g < groups; ++g) rt.spawn(await_group_ready(rt, &run, g), "ready");
  // Bound on the whole run, whatever happens.
  rt.call_at(rt.now() + kReadyBound + run.warmup + run.duration + kDrainBound,
             [&io] { io.stop(); });
  io.run();
  rt.shutdown();
  if (rt.failed()) throw std::runtime_error("client runtime: " + rt.failure());
  if (run.ready_failed || run.groups_ready < groups) {
    throw std::runtime_error(fmt::format("only {} of {} groups accepted a put", run.groups_ready, groups));
  }
  cluster.stop_all();
  Figures f;
  f.writers = writers;
  f.puts_per_s = static_cast<double>(run.measured) / o.duration_s;
  f.p50_ms = percentile_ms(run.latencies_ns, 0.50);
  f.p99_ms = percentile_ms(run.latencies_ns, 0.99);
  f.unknown = run.unknown;
  return f;
}

std::string phxpaxos_reference(uint32_t groups) {
  if (groups == 1) return fmt::format("~{:.1f} k", kPhxPaxosOneGroupQps / 1e3);
  if (groups == 100) return fmt::format("~{:.0f} k", kPhxPaxosHundredGroupsQps / 1e3);
  return "-";
}

int run(const Options& o) {
  ::signal(SIGPIPE, SIG_IGN);
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / fmt::format("wxsim_kv_tcp_bench_{}", ::getpid());
  fmt::print(
      "kv_tcp_bench: 3 `wxsim node --role kv` processes on 127.0.0.1, SQLite WAL + "
      "synchronous=FULL, {}-byte values, closed loop; {:.1f} s measured after {:.1f} s warm-up\n",
      o.value_bytes, o.duration_s, o.warmup_s);
  fmt::print("cores online: {}; load average at start: {}\n", std::thread::hardware_concurrency(),
             load_average());
  fmt::print("\n{:>6} | {:>7} | {:>8} | {:>8} | {:>8} | {:>7} | {:>17}\n", "groups", "writers",
             "puts/s", "p50 ms", "p99 ms", "unknown", "PhxPaxos puts/s *");
  fmt::print("{:-<7}+{:-<9}+{:-<10}+{:-<10}+{:-<10}+{:-<9}+{:-<18}\n", "", "", "", "", "", "", "");
  int rc = 0;
  for (uint32_t g : o.groups) {
    const std::string dir = (root / fmt::format("groups-{}", g)).string();
    std::filesystem::create_directories(dir);
    try {
      const Figures f = run_groups(o, g, dir);
      fmt::print("{:>6} | {:>7} | {:>8.0f} | {:>8.2f} | {:>8.2f} | {:>7} | {:>17}\n", g, f.writers,
                 f.puts_per_s, f.p50_ms, f.p99_ms, f.unknown, phxpaxos_reference(g));
    } catch (const std::exception& e) {
      fmt::print("{:>6} | failed: {}\n", g, e.what());
      rc = 1;
    }
    std::fflush(stdout);
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  fmt::print(
      "\n* PhxPaxos README, three nodes, 100-byte values, on its own (different) hardware: "
      "~1.2 k QPS with 1 group, ~14 k QPS with 100 groups. Not a like-for-like comparison.\n");
  fmt::print("load average at end: {}\n", load_average());
  std::error_code ignored;
  std::filesystem::remove_all(root, ignored);
  return rc;
}

}  // namespace
}  // namespace wx::bench

int main(int argc, char** argv) {
  wx::bench::Options o;
  CLI::App app{"Replicated put throughput: three wxsim kv processes on loopback, durable SQLite"};
  app.add_option("--duration-s", o.duration_s, "Measured seconds per configuration")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup-s", o.warmup_s, "Warm-up seconds before each measurement")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--groups", o.groups, "Groups per configuration, a list")
      ->delimiter(',')
      ->check(CLI::Range(uint32_t{1}, wx::cli::kKvGroupsMax));
  app.add_option("--writers", o.writers, "Concurrent writers (at least one per group)")
      ->check(CLI::PositiveNumber);
  app.add_option("--value-bytes", o.value_bytes, "Bytes per value");
  app.add_option("--wxsim", o.wxsim, "The wxsim binary")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return wx::bench::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kv_tcp_bench: %s\n", e.what());
    return 1;
  }
}
