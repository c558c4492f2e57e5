// AsioRuntime: the wx::Runtime seam for production mode, on one
// boost::asio::io_context, real TCP on the configured addresses and a SQLite
// file per node.
//
// What it provides:
//   * now(): the steady clock, counted from this runtime's construction;
//   * call_at/cancel: its own timer queue ordered by (time, id) — callbacks due
//     at the same time run in the order they were scheduled, a cancelled id
//     never runs, ids are never 0 — driven by a single asio steady_timer;
//   * rng(): a wx::Rng seeded from the configured seed (derived per node id),
//     or from std::random_device when none is given (the seed is logged);
//   * transport(): a TcpTransport (nodes/prod/tcp_transport.h);
//   * disk(): data_dir/node-<id>.sqlite, opened on first use in WAL mode with
//     synchronous=FULL (data_dir is created if missing);
//   * buggify(): always false;
//   * log lines "[<local time> n<id>] <level>: <message>" on stderr (or a sink).
//
// A task failure (an exception escaping a spawned task or a timer callback)
// is a bug: it is logged with its what(), failed() becomes true and the
// io_context is stopped; the process should then exit with kExitTaskFailed.
//
// Lifetime: shutdown() (run by the destructor if not called before) ends the
// incarnation in the order runtime.h requires: every task is destroyed first,
// while timers, transport and disk still work; then pending timers are
// dropped, the transport is closed, and the database closed. Destroy the Node
// after shutdown() and before the runtime.
//
// Threading: one thread — the one calling io_context::run(). Nothing here is
// thread-safe and nothing here starts a thread.
#pragma once

#include "nodes/prod/prod_only.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "nodes/prod/tcp_transport.h"
#include "nodes/runtime/disk.h"
#include "nodes/runtime/runtime.h"
#include "nodes/runtime/sqlite.h"

namespace wx::prod {

// Process exit code after a task failure (sysexits.h EX_SOFTWARE).
constexpr int kExitTaskFailed = 70;
// Timer callbacks run per dispatch before I/O gets a turn.
constexpr size_t kTimerCallbacksPerDispatchMax = 4096;
// The wake-up timer is never armed further out than this; it re-arms on firing.
constexpr Duration kTimerArmHorizonMax = seconds(24 * 3600);

struct AsioRuntimeConfig {
  // Address to accept connections on (port 0: any free port); none: dial only.
  std::optional<boost::asio::ip::tcp::endpoint> listen;
  // Where to dial each peer.
  std::map<NodeId, boost::asio::ip::tcp::endpoint> peers;
  // Folder of this node's database (node-<id>.sqlite). Must be set to use disk().
  std::string data_dir;
  // Root seed; the node's stream is derived from it and the node id.
  std::optional<uint64_t> seed;
  LogLevel log_level = LogLevel::info;
  size_t frame_bytes_max = kFrameBytesMaxDefault;
  size_t inbox_frames_max = kInboxFramesMaxDefault;
  size_t write_queue_bytes_max = kWriteQueueBytesMaxDefault;
  Duration handshake_timeout = kHandshakeTimeoutDefault;
  size_t connections_max = kConnectionsMaxDefault;
  // Receives each finished log line (no trailing newline); empty: stderr.
  std::function<void(std::string_view line)> log_sink;
};

// The node's database file under a data folder. Opened lazily; close() ends
// the connection (rolling back an open transaction, as a crash would).
class FileDisk final : public Disk {
 public:
  FileDisk(std::string data_dir, NodeId id);
  ~FileDisk() override = default;
  // Creates data_dir if needed, opens the file, sets journal_mode=WAL and
  // synchronous=FULL. Throws sqlite::SqliteError on any failure.
  sqlite::Database& db() override;
  void close() { db_.close(); }
  bool is_open() const { return db_.is_open(); }
  // data_dir/node-<id>.sqlite
  const std::string& path() const { return path_; }

 private:
  std::string data_dir_;
  std::string path_;
  sqlite::Database db_;
};

class AsioRuntime final : public Runtime {
 public:
  // Starts listening if config.listen is set. Throws std::system_error or
  // std::invalid_argument (naming the address) if it cannot.
  AsioRuntime(boost::asio::io_context& io, NodeId id, AsioRuntimeConfig config);
  ~AsioRuntime() override;

  NodeId node_id() const override { return id_; }
  TimePoint now() const override;
  TimerId call_at(TimePoint at, UniqueFunction fn) override;
  bool cancel(TimerId id) override;
  Rng& rng() override { return rng_; }
  Transport& transport() override { return transport_; }
  Disk& disk() override { return disk_; }
  bool buggify(std::string_view) override { return false; }
  LogLevel log_level() const override { return config_.log_level; }
  void log_write(LogLevel level, std::string_view message) override;

  // Ends the incarnation (see the header comment). Idempotent. Afterwards
  // call_at schedules nothing and send() drops frames.
  void shutdown();
  bool is_shut_down() const { return shut_down_; }

  // True once a task (or timer callback) has failed; the io_context was stopped.
  bool failed() const { return failed_; }
  const std::string& failure() const { return failure_; }

  TcpTransport& tcp() { return transport_; }
  FileDisk& file_disk() { return disk_; }
  // The port connections are accepted on, if listening.
  std::optional<uint16_t> listen_port() const;
  // The seed the rng was built from (the configured one, or the one drawn).
  uint64_t seed() const { return seed_; }
  size_t pending_timers() const { return timers_.size(); }

 protected:
  void on_task_failed(std::string_view name, std::exception_ptr error) override;

 private:
  struct TimerKey {
    int64_t at_ns;
    TimerId id;
    auto operator<=>(const TimerKey&) const = default;
  };
  // Makes sure the wake-up fires by the earliest pending deadline.
  void arm();
  void dispatch_due();

  boost::asio::io_context& io_;
  const NodeId id_;
  const AsioRuntimeConfig config_;
  const std::chrono::steady_clock::time_point epoch_;
  uint64_t seed_;
  Rng rng_;

  TimerId next_timer_id_ = 1;
  std::map<TimerKey, UniqueFunction> timers_;
  std::unordered_map<TimerId, int64_t> timer_at_ns_;  // id -> at, to find it in timers_
  boost::asio::steady_timer wake_timer_;
  std::optional<int64_t> wake_armed_at_ns_;  // deadline the wake-up timer is set for
  uint64_t wake_generation_ = 0;  // bumps on every re-arm; stale wake-ups ignore themselves
  bool post_pending_ = false;     // a dispatch is posted for already-due timers

  bool failed_ = false;
  std::string failure_;
  bool shut_down_ = false;

  FileDisk disk_;
  TcpTransport transport_;

  // Handlers hold a weak_ptr to this; it expires with the runtime.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace wx::prod
