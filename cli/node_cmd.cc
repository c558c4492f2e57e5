// `wxsim node`: runs one node on real sockets (production mode).
//
//   wxsim node --role echo --id 1 --listen 127.0.0.1:0 --data-dir DIR
//       Prints `listening <host>:<port>` on stdout once it accepts connections,
//       serves until SIGINT/SIGTERM, exits 0.
//   wxsim node --role ping --id 2 --peer 1=127.0.0.1:PORT [--target 1 ...]
//            [--count N] [--interval 10ms] [--timeout 1s]
//       Pings the targets (default: every peer), prints one summary line
//       `ping: sent=N ok=N timeouts=N resets=N send_failed=N p50_us=X p99_us=Y`
//       and exits 0 iff every ping was answered, else 1.
//
//   wxsim node --role kv --id M --listen HOST:PORT --peer ID=HOST:PORT ...
//            [--groups G] [--bootstrap] [--kv-workers N] --data-dir DIR
//       One member of a replicated key-value store (nodes/storage/kv/): the
//       KvReplica of member M in each of G groups, each replica its own
//       AsioRuntime on this process's io_context; node ids and ports follow
//       cli/kv_layout.h (group g: id M + 1000 g, port PORT + g; the members
//       are M and the --peer ids). --bootstrap only on the very first start of
//       a brand-new group. Prints `kv group <g> node <id> listening HOST:PORT`
//       per group, then `ready`, on stdout; serves until SIGINT/SIGTERM.
//
// Exit codes: 0 success; 1 ping failures or a startup error (address in use,
// database cannot be opened); 2 bad arguments; 70 a node task failed (a bug).
#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <charconv>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.h"
#include "cli/kv_layout.h"
#include "nodes/echo/echo_node.h"
#include "nodes/prod/asio_runtime.h"
#include "nodes/storage/kv/kv_replica.h"

namespace wx::cli {

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// --role kv: RPC server workers per replica. A kv.Put / kv.Get handler holds
// its worker until the write is applied (or wait_max), so the workers bound
// how many writes a leader can have in flight — and batch into one Paxos
// round. (paxos.Step itself is Dispatch::immediate and never waits for a
// worker; before that, 8 concurrent writes froze a group: see
// KvStore.MoreConcurrentWritersThanRpcWorkersStillCommit.) Enough workers for
// every write and read the replica admits, plus headroom.
constexpr size_t kKvStepWorkersHeadroom = 64;
constexpr size_t kKvServerWorkersDefault =
    kv::kPendingWritesMax + kv::kPendingReadsMax + kKvStepWorkersHeadroom;

struct NodeOptions {
  std::string role;
  uint32_t id = 0;
  std::string listen;
  std::string data_dir = "wxsim-data";
  std::vector<std::string> peers;
  std::vector<uint32_t> targets;
  uint64_t count = 10;
  std::string interval = "100ms";
  std::string timeout = "1s";
  uint64_t seed = 0;
  std::string log_level = "info";
  // Set when the flag appeared on the command line.
  CLI::Option* listen_opt = nullptr;
  CLI::Option* seed_opt = nullptr;
  std::vector<CLI::Option*> ping_only;
  // --role kv
  uint32_t groups = 1;
  bool bootstrap = false;
  size_t kv_workers = kKvServerWorkersDefault;
  std::vector<CLI::Option*> kv_only;
};

// A bad argument; the message names the flag and what was expected.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "HOST:PORT" or "[V6]:PORT". HOST is an IP address or a name resolved once,
// here, at startup. Errors quote `shown` (the whole argument) after `flag`.
tcp::endpoint parse_host_port(asio::io_context& io, std::string_view flag, std::string_view shown,
                              std::string_view text, bool port_zero_ok) {
  const auto bad = [&](std::string_view why) {
    return UsageError(fmt::format("{} '{}': {}", flag, shown, why));
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    throw bad("expected HOST:PORT, e.g. 127.0.0.1:7000");
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  uint32_t port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    throw bad("port must be a number from 0 to 65535");
  }
  if (port == 0 && !port_zero_ok)
    throw bad("port 0 cannot be dialed; give the port the peer listens on");
  boost::system::error_code addr_ec;
  const asio::ip::address address = asio::ip::make_address(std::string(host), addr_ec);
  if (!addr_ec) return tcp::endpoint(address, static_cast<uint16_t>(port));
  tcp::resolver resolver(io);
  boost::system::error_code resolve_ec;
  const auto results = resolver.resolve(std::string(host), std::string(port_text), resolve_ec);
  if (resolve_ec || results.empty()) {
    throw bad(fmt::format("cannot resolve host '{}': {}", host,
                          resolve_ec ? resolve_ec.message() : std::string("no addresses")));
  }
  return results.begin()->endpoint();
}

Duration parse_duration_flag(std::string_view flag, const std::string& text, bool zero_ok) {
  const std::optional<Duration> d = parse_duration(text);
  if (!d) {
    throw UsageError(fmt::format("{} '{}': expected a duration with a unit, e.g. 10ms, 1.5s, 250us",
                                 flag, text));
  }
  if (*d < Duration::zero() || (!zero_ok && *d == Duration::zero())) {
    throw UsageError(
        fmt::format("{} '{}': expected a duration {} 0", flag, text, zero_ok ? ">=" : ">"));
  }
  return *d;
}

LogLevel parse_log_level(const std::string& text) {
  if (text == "debug") return LogLevel::debug;
  if (text == "info") return LogLevel::info;
  if (text == "warn") return LogLevel::warn;
  if (text == "error") return LogLevel::error;
  if (text == "off") return LogLevel::off;
  throw UsageError(
      fmt::format("--log-level '{}': expected one of debug, info, warn, error, off", text));
}

std::string host_port_text(const tcp::endpoint& ep) {
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

prod::AsioRuntimeConfig build_config(asio::io_context& io, const NodeOptions& o) {
  prod::AsioRuntimeConfig config;
  config.data_dir = o.data_dir;
  config.log_level = parse_log_level(o.log_level);
  if (o.seed_opt->count() > 0) config.seed = o.seed;
  if (o.listen_opt->count() > 0) {
    config.listen = parse_host_port(io, "--listen", o.listen, o.listen, /*port_zero_ok=*/true);
  } else if (o.role == "echo") {
    config.listen = tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0);
  }
  for (const std::string& spec : o.peers) {
    const size_t eq = spec.find('=');
    uint32_t peer_id = 0;
    const auto [end, ec] =
        std::from_chars(spec.data(), spec.data() + (eq == std::string::npos ? 0 : eq), peer_id);
    if (eq == std::string::npos || eq == 0 || ec != std::errc() || end != spec.data() + eq) {
      throw UsageError(
          fmt::format("--peer '{}': expected ID=HOST:PORT, e.g. 1=127.0.0.1:7000", spec));
    }
    if (peer_id == o.id)
      throw UsageError(fmt::format("--peer '{}': names this node's own id {}", spec, o.id));
    const tcp::endpoint ep =
        parse_host_port(io, "--peer", spec, std::string_view(spec).substr(eq + 1),
                        /*port_zero_ok=*/false);
    if (!config.peers.emplace(NodeId{peer_id}, ep).second) {
      throw UsageError(fmt::format("--peer '{}': node {} is given twice", spec, peer_id));
    }
  }
  return config;
}

echo::PingerConfig build_pinger_config(const NodeOptions& o,
                                       const prod::AsioRuntimeConfig& config) {
  echo::PingerConfig pc;
  if (config.peers.empty()) throw UsageError("--role ping needs at least one --peer ID=HOST:PORT");
  if (o.targets.empty()) {
    for (const auto& [peer, ep] : config.peers) pc.targets.push_back(peer);
  } else {
    for (uint32_t t : o.targets) {
      if (config.peers.count(NodeId{t}) == 0) {
        throw UsageError(fmt::format("--target {}: no --peer gives an address for node {}", t, t));
      }
      pc.targets.push_back(NodeId{t});
    }
  }
  if (o.count == 0) throw UsageError("--count 0: expected a number of pings >= 1");
  pc.count_max = o.count;
  pc.interval = parse_duration_flag("--interval", o.interval, /*zero_ok=*/true);
  pc.timeout = parse_duration_flag("--timeout", o.timeout, /*zero_ok=*/false);
  return pc;
}

// Nearest-rank percentile of sorted values; q in (0, 1].
int64_t percentile(const std::vector<int64_t>& sorted, double q) {
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

std::string summary_line(const echo::Pinger& pinger) {
  const echo::Pinger::Stats& s = pinger.stats();
  std::vector<int64_t> rtt_us;
  for (const echo::PingOutcome& o : pinger.outcomes()) {
    if (o.result == echo::PingOutcome::Result::ok) rtt_us.push_back(o.rtt.ns() / 1000);
  }
  std::sort(rtt_us.begin(), rtt_us.end());
  const std::string p50 = rtt_us.empty() ? "-" : std::to_string(percentile(rtt_us, 0.50));
  const std::string p99 = rtt_us.empty() ? "-" : std::to_string(percentile(rtt_us, 0.99));
  return fmt::format("ping: sent={} ok={} timeouts={} resets={} send_failed={} p50_us={} p99_us={}",
                     s.sent, s.ok, s.timeouts, s.resets, s.send_failed, p50, p99);
}

// --role kv: the replicas of member o.id in o.groups groups, one AsioRuntime
// each, all on one io_context (cli/kv_layout.h).
int run_kv_node(const NodeOptions& o, asio::io_context& io, const prod::AsioRuntimeConfig& base) {
  if (o.id == 0 || o.id > kKvMemberIdMax)
    throw UsageError(fmt::format("--id {}: expected a member id from 1 to {}", o.id, kKvMemberIdMax));
  if (o.groups == 0 || o.groups > kKvGroupsMax)
    throw UsageError(fmt::format("--groups {}: expected 1 to {}", o.groups, kKvGroupsMax));
  if (!base.listen || base.listen->port() == 0)
    throw UsageError("--role kv needs --listen HOST:PORT with a fixed port (peers dial it)");
  if (o.kv_workers == 0) throw UsageError("--kv-workers 0: expected at least 1");
  if (base.peers.empty()) throw UsageError("--role kv needs the other members as --peer ID=HOST:PORT");
  const auto port_fits = [&](uint16_t port) { return uint32_t{port} + o.groups - 1 <= 65535; };
  if (!port_fits(base.listen->port()))
    throw UsageError(fmt::format("--listen: port {} + {} groups passes 65535", base.listen->port(), o.groups));
  std::vector<uint32_t> member_ids = {o.id};
  for (const auto& [peer, ep] : base.peers) {
    if (peer.value > kKvMemberIdMax)
      throw UsageError(fmt::format("--peer {}: member ids go from 1 to {}", peer.value, kKvMemberIdMax));
    if (!port_fits(ep.port()))
      throw UsageError(fmt::format("--peer {}: port {} + {} groups passes 65535", peer.value, ep.port(), o.groups));
    member_ids.push_back(peer.value);
  }
  std::sort(member_ids.begin(), member_ids.end());
  const size_t self_index =
      static_cast<size_t>(std::find(member_ids.begin(), member_ids.end(), o.id) - member_ids.begin());

  std::vector<std::unique_ptr<prod::AsioRuntime>> runtimes;
  std::vector<std::unique_ptr<kv::KvReplica>> replicas;
  const auto shutdown_all = [&] {
    // runtime.h order: every runtime's tasks, then the nodes, then the runtimes.
    for (auto& rt : runtimes) rt->shutdown();
    replicas.clear();
    runtimes.clear();
  };
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    runtimes.front()->info("received signal {}; shutting down", signo);
    io.stop();
  });
  std::vector<std::string> lines;
  try {
    for (uint32_t g = 0; g < o.groups; ++g) {
      prod::AsioRuntimeConfig c = base;
      c.listen->port(kv_port(base.listen->port(), g));
      c.peers.clear();
      for (const auto& [peer, ep] : base.peers) {
        tcp::endpoint group_ep = ep;
        group_ep.port(kv_port(ep.port(), g));
        c.peers.emplace(kv_node_id(peer.value, g), group_ep);
      }
      const NodeId self = kv_node_id(o.id, g);
      runtimes.push_back(std::make_unique<prod::AsioRuntime>(io, self, std::move(c)));
      kv::KvReplicaConfig kc;
      for (uint32_t m : member_ids) kc.members.push_back(kv_node_id(m, g));
      kc.self_index = self_index;
      kc.bootstrap = o.bootstrap;
      kc.server.workers = o.kv_workers;
      replicas.push_back(std::make_unique<kv::KvReplica>(*runtimes.back(), std::move(kc)));
      replicas.back()->start();
      lines.push_back(fmt::format("kv group {} node {} listening {}\n", g, self.value,
                                  host_port_text(*runtimes.back()->tcp().listen_endpoint())));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wxsim node: cannot start kv member %u (group %zu of %u): %s\n", o.id,
                 lines.size(), o.groups, e.what());
    signals.cancel();
    shutdown_all();
    return kExitFailed;
  }
  for (const std::string& line : lines) std::fputs(line.c_str(), stdout);
  std::fputs("ready\n", stdout);
  std::fflush(stdout);

  io.run();
  signals.cancel();
  bool failed = false;
  for (const auto& rt : runtimes) failed = failed || rt->failed();
  shutdown_all();
  return failed ? prod::kExitTaskFailed : kExitOk;
}

int run_node(const NodeOptions& o) {
  // A peer that vanishes mid-write must not kill the process; the write error
  // is handled as a broken connection.
  ::signal(SIGPIPE, SIG_IGN);
  for (CLI::Option* opt : o.ping_only) {
    if (o.role != "ping" && opt->count() > 0) {
      throw UsageError(fmt::format("{} applies only to --role ping", opt->get_name()));
    }
  }
  for (CLI::Option* opt : o.kv_only) {
    if (o.role != "kv" && opt->count() > 0) {
      throw UsageError(fmt::format("{} applies only to --role kv", opt->get_name()));
    }
  }
  asio::io_context io(1);
  prod::AsioRuntimeConfig config = build_config(io, o);
  if (o.role == "kv") return run_kv_node(o, io, config);
  std::optional<echo::PingerConfig> pinger_config;
  if (o.role == "ping") pinger_config = build_pinger_config(o, config);

  std::unique_ptr<prod::AsioRuntime> rt;
  std::unique_ptr<Node> node;
  echo::Pinger* pinger = nullptr;
  // Installed before the `listening` line, so a parent that signals as soon
  // as it reads that line finds the handler in place. Handlers run only
  // inside io.run(), when rt is set.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    rt->info("received signal {}; shutting down", signo);
    io.stop();
  });
  try {
    rt = std::make_unique<prod::AsioRuntime>(io, NodeId{o.id}, std::move(config));
    if (pinger_config) {
      pinger_config->on_finished = [&io] { io.stop(); };
      auto p = std::make_unique<echo::Pinger>(*rt, std::move(*pinger_config));
      pinger = p.get();
      node = std::move(p);
    } else {
      node = std::make_unique<echo::EchoServer>(*rt);
    }
    node->start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wxsim node: cannot start node %u (%s): %s\n", o.id, o.role.c_str(),
                 e.what());
    if (rt) rt->shutdown();
    return kExitFailed;
  }
  if (const std::optional<tcp::endpoint> ep = rt->tcp().listen_endpoint(); ep && o.role == "echo") {
    std::fputs(fmt::format("listening {}\n", host_port_text(*ep)).c_str(), stdout);
    std::fflush(stdout);
  }

  // The Pinger may have finished inside start() (no targets); then there is
  // nothing to run.
  if (!(pinger && pinger->finished())) io.run();

  signals.cancel();
  const bool failed = rt->failed();
  std::string summary;
  bool all_ok = false;
  if (pinger) {
    summary = summary_line(*pinger);
    all_ok = pinger->finished() && pinger->stats().ok == pinger->stats().sent;
  }
  // runtime.h order: tasks, then the node, then the runtime.
  rt->shutdown();
  node.reset();
  rt.reset();

  if (failed) return prod::kExitTaskFailed;
  if (pinger) {
    std::fputs((summary + "\n").c_str(), stdout);
    std::fflush(stdout);
    return all_ok ? kExitOk : kExitFailed;
  }
  return kExitOk;
}

}  // namespace

void add_node_command(CLI::App& app, int& exit_code) {
  CLI::App* sub = app.add_subcommand("node", "Run one node on real sockets (production mode)");
  auto o = std::make_shared<NodeOptions>();
  sub->add_option("--role", o->role, "What the node does")
      ->required()
      ->check(CLI::IsMember({"echo", "ping", "kv"}));
  sub->add_option("--id", o->id, "This node's id")->required();
  o->listen_opt =
      sub->add_option("--listen", o->listen,
                      "Accept connections on HOST:PORT (port 0: any free port; echo default "
                      "127.0.0.1:0)");
  sub->add_option("--data-dir", o->data_dir, "Folder of the node's database (node-<id>.sqlite)")
      ->capture_default_str();
  sub->add_option("--peer", o->peers, "Address of another node, ID=HOST:PORT (repeatable)");
  o->seed_opt =
      sub->add_option("--seed", o->seed, "Seed of the node's random stream (default: random)");
  sub->add_option("--log-level", o->log_level, "debug, info, warn, error or off")
      ->capture_default_str();
  o->ping_only.push_back(
      sub->add_option("--target", o->targets, "Node to ping (repeatable; default: every --peer)"));
  o->ping_only.push_back(
      sub->add_option("--count", o->count, "Pings to send")->capture_default_str());
  o->ping_only.push_back(
      sub->add_option("--interval", o->interval, "Pause between pings, e.g. 10ms")
          ->capture_default_str());
  o->ping_only.push_back(
      sub->add_option("--timeout", o->timeout, "How long to wait for each pong, e.g. 1s")
          ->capture_default_str());
  o->kv_only.push_back(
      sub->add_option("--groups", o->groups,
                      "kv: groups hosted (group g: node id ID + 1000 g, port PORT + g)")
          ->capture_default_str());
  o->kv_only.push_back(sub->add_flag(
      "--bootstrap", o->bootstrap, "kv: first start of a brand-new group (never on a restart)"));
  o->kv_only.push_back(
      sub->add_option("--kv-workers", o->kv_workers,
                      "kv: RPC server workers per replica (fewer than the concurrent writes "
                      "on a leader stalls the group)")
          ->capture_default_str());
  sub->callback([o, &exit_code] {
    try {
      exit_code = run_node(*o);
    } catch (const UsageError& e) {
      std::fprintf(stderr, "wxsim node: %s\n", e.what());
      exit_code = kExitUsage;
    }
  });
}

}  // namespace wx::cli
