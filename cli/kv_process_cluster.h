// KvProcessCluster: a replicated key-value store of three `wxsim node --role
// kv` child processes on 127.0.0.1 (cli/kv_layout.h), for loopback
// benchmarks and tests. Header-only; used by bench/kv_tcp_bench.cc and
// tests/storage/kv_tcp_test.cc.
//
// The cluster finds a block of 3 * groups free loopback ports (member m's
// base port is block + (m - 1) * groups), starts the members with
// posix_spawn and --bootstrap, data folders under `dir`, and waits (bounded)
// for each to print `ready`. Every wait is bounded; the destructor stops the
// members still running (SIGTERM, then SIGKILL after kStopBound) and reaps
// them. A member's stderr is the parent's.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cli/child_process.h"
#include "cli/kv_layout.h"

namespace wx::cli {

inline constexpr uint32_t kKvClusterMembers = 3;
// Where free port blocks are looked for (below the usual ephemeral range).
inline constexpr uint32_t kPortSearchFirst = 20000;
inline constexpr uint32_t kPortSearchLast = 32000;
inline constexpr int kPortSearchAttemptsMax = 200;
// Bounds on a member's start (printing `ready`) and stop.
inline constexpr std::chrono::seconds kMemberStartBound{30};
inline constexpr std::chrono::milliseconds kStopBound{5000};

// True if every port in [first, first + count) can be bound on 127.0.0.1 now.
inline bool loopback_ports_free(uint32_t first, uint32_t count) {
  for (uint32_t p = first; p < first + count; ++p) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(p));
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (!ok) return false;
  }
  return true;
}

// The first port of a block of `count` free loopback ports (there is a small
// race with other programs between this check and the members' bind).
inline uint16_t find_free_port_block(uint32_t count) {
  std::mt19937 gen(static_cast<uint32_t>(::getpid()) ^
                   static_cast<uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::uniform_int_distribution<uint32_t> pick(kPortSearchFirst, kPortSearchLast - count);
  for (int i = 0; i < kPortSearchAttemptsMax; ++i) {
    const uint32_t first = pick(gen);
    if (loopback_ports_free(first, count)) return static_cast<uint16_t>(first);
  }
  throw std::runtime_error("no block of free loopback ports found");
}

class KvProcessCluster {
 public:
  using Clock = std::chrono::steady_clock;

  KvProcessCluster(std::string binary, uint32_t groups, std::string dir,
                   std::string log_level = "warn")
      : binary_(std::move(binary)), groups_(groups), dir_(std::move(dir)),
        log_level_(std::move(log_level)) {
    const uint16_t block = find_free_port_block(kKvClusterMembers * groups_);
    for (uint32_t m = 1; m <= kKvClusterMembers; ++m) {
      base_ports_[m] = static_cast<uint16_t>(block + (m - 1) * groups_);
    }
    for (uint32_t m = 1; m <= kKvClusterMembers; ++m) start(m, /*bootstrap=*/true);
    for (uint32_t m = 1; m <= kKvClusterMembers; ++m) wait_ready(m);
  }
  KvProcessCluster(const KvProcessCluster&) = delete;
  KvProcessCluster& operator=(const KvProcessCluster&) = delete;
  ~KvProcessCluster() { stop_all(); }

  uint32_t groups() const { return groups_; }
  // The group's replica node ids, in replica-id order (KvClientConfig::replicas).
  std::vector<NodeId> group_members(uint32_t group) const {
    std::vector<NodeId> ids;
    for (uint32_t m = 1; m <= kKvClusterMembers; ++m) ids.push_back(kv_node_id(m, group));
    return ids;
  }
  // Where a client dials every replica of every group.
  std::map<NodeId, boost::asio::ip::tcp::endpoint> client_peers() const {
    std::map<NodeId, boost::asio::ip::tcp::endpoint> peers;
    const auto loopback = boost::asio::ip::make_address("127.0.0.1");
    for (uint32_t g = 0; g < groups_; ++g) {
      for (uint32_t m = 1; m <= kKvClusterMembers; ++m) {
        peers.emplace(kv_node_id(m, g),
                      boost::asio::ip::tcp::endpoint(loopback, kv_port(base_ports_.at(m), g)));
      }
    }
    return peers;
  }
  ChildProcess& member(uint32_t m) { return *children_.at(m); }
  // SIGKILL, then reap (bounded).
  void kill_member(uint32_t m) {
    ChildProcess& c = member(m);
    c.signal(SIGKILL);
    c.wait(Clock::now() + kStopBound);
  }
  void stop_all() {
    for (auto& [m, c] : children_) {
      if (c) c->stop(kStopBound);
    }
  }

 private:
  void start(uint32_t m, bool bootstrap) {
    std::vector<std::string> args = {"node",
                                     "--role",
                                     "kv",
                                     "--id",
                                     std::to_string(m),
                                     "--groups",
                                     std::to_string(groups_),
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(base_ports_.at(m)),
                                     "--data-dir",
                                     dir_ + "/member-" + std::to_string(m),
                                     "--log-level",
                                     log_level_};
    for (uint32_t p = 1; p <= kKvClusterMembers; ++p) {
      if (p == m) continue;
      args.push_back("--peer");
      args.push_back(std::to_string(p) + "=127.0.0.1:" + std::to_string(base_ports_.at(p)));
    }
    if (bootstrap) args.push_back("--bootstrap");
    children_[m] = std::make_unique<ChildProcess>(binary_, args);
  }
  void wait_ready(uint32_t m) {
    const Clock::time_point deadline = Clock::now() + kMemberStartBound;
    for (;;) {
      const std::optional<std::string> line = children_[m]->read_line(deadline);
      if (!line) throw std::runtime_error("kv member " + std::to_string(m) + " did not print `ready`");
      if (*line == "ready") return;
    }
  }

  std::string binary_;
  uint32_t groups_;
  std::string dir_;
  std::string log_level_;
  std::map<uint32_t, uint16_t> base_ports_;
  std::map<uint32_t, std::unique_ptr<ChildProcess>> children_;
};

}  // namespace wx::cli
