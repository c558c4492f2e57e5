// The ping/echo service: the first node written against the Runtime seam.
//
// EchoServer answers every Ping with a Pong and keeps a count of the pings it
// has served in its Disk (SQLite), so a restart keeps the count and a wipe
// loses it. Pinger sends Pings to a list of targets at a fixed interval,
// matches Pongs, and counts timeouts and connection resets.
//
// The same source runs in the simulator (tests/nodes/echo_sim_test.cc,
// `wxsim demo`) and as real processes over TCP (`wxsim node`).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "nodes/runtime/node.h"
#include "nodes/runtime/runtime.h"

namespace wx::echo {

class EchoServer final : public Node {
 public:
  explicit EchoServer(Runtime& rt) : rt_(rt) {}
  void start() override;
  std::string_view kind() const override { return "echo"; }

  // Pings answered over this node's whole life, as stored on its Disk.
  uint64_t served_total() const { return served_total_; }
  uint64_t malformed_frames() const { return malformed_; }

 private:
  Task<void> serve();
  uint64_t bump_served();

  Runtime& rt_;
  uint64_t served_total_ = 0;
  uint64_t malformed_ = 0;
};

struct PingerConfig {
  std::vector<NodeId> targets;  // round robin
  Duration interval = milliseconds(100);
  Duration timeout = seconds(1);
  uint64_t count_max = 0;  // 0: ping forever
  size_t payload_bytes = 16;
  Duration start_delay = Duration::zero();
  // Called once when count_max pings have all been answered or failed.
  std::function<void()> on_finished;
};

struct PingOutcome {
  NodeId target;
  TimePoint sent_at;
  enum class Result : uint8_t { ok, timeout, reset, send_failed } result;
  Duration rtt;  // for ok
};

class Pinger final : public Node {
 public:
  // Outcomes beyond this are counted but not kept individually.
  static constexpr size_t kOutcomesKeptMax = 1u << 20;

  Pinger(Runtime& rt, PingerConfig config) : rt_(rt), config_(std::move(config)) {}
  void start() override;
  std::string_view kind() const override { return "ping"; }

  struct Stats {
    uint64_t sent = 0, ok = 0, timeouts = 0, resets = 0, send_failed = 0, malformed = 0;
    uint64_t last_served_total = 0;
  };
  const Stats& stats() const { return stats_; }
  const std::vector<PingOutcome>& outcomes() const { return outcomes_; }
  bool finished() const { return finished_; }

 private:
  struct Outstanding {
    NodeId target;
    TimePoint sent_at;
    TimerId timeout_timer;
  };
  Task<void> send_loop();
  Task<void> receive_loop();
  void complete(uint64_t seq, PingOutcome::Result result);
  void maybe_finish();

  Runtime& rt_;
  PingerConfig config_;
  Stats stats_;
  uint64_t next_seq_ = 1;
  std::map<uint64_t, Outstanding> outstanding_;
  std::vector<PingOutcome> outcomes_;
  bool sending_done_ = false;
  bool finished_ = false;
};

}  // namespace wx::echo
