#include "nodes/prod/asio_runtime.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstdio>
#include <filesystem>
#include <random>
#include <system_error>
#include <utility>

namespace wx::prod {

namespace asio = boost::asio;

namespace {

uint64_t draw_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
}

TcpTransportConfig transport_config(const AsioRuntimeConfig& c) {
  TcpTransportConfig t;
  t.peers = c.peers;
  t.frame_bytes_max = c.frame_bytes_max;
  t.inbox_frames_max = c.inbox_frames_max;
  t.write_queue_bytes_max = c.write_queue_bytes_max;
  t.handshake_timeout = c.handshake_timeout;
  t.connections_max = c.connections_max;
  return t;
}

// An absolute `file:` URI for `path`, so that no character of the path can be
// taken for URI syntax (Database::open passes SQLITE_OPEN_URI).
std::string file_uri(const std::filesystem::path& path) {
  const std::string text = std::filesystem::absolute(path).lexically_normal().string();
  std::string uri = "file:";
  for (unsigned char ch : text) {
    const bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                       (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' ||
                       ch == '~' || ch == '/';
    if (plain) {
      uri.push_back(static_cast<char>(ch));
    } else {
      uri += fmt::format("%{:02X}", ch);
    }
  }
  return uri;
}

std::string exception_text(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception (not derived from std::exception)";
  }
}

}  // namespace

// --- FileDisk -----------------------------------------------------------------

FileDisk::FileDisk(std::string data_dir, NodeId id) : data_dir_(std::move(data_dir)) {
  if (!data_dir_.empty()) {
    path_ = (std::filesystem::path(data_dir_) / fmt::format("node-{}.sqlite", id.value)).string();
  }
}

sqlite::Database& FileDisk::db() {
  if (db_.is_open()) return db_;
  if (data_dir_.empty())
    throw sqlite::SqliteError(SQLITE_MISUSE, "disk: no data folder configured for this node");
  std::error_code ec;
  std::filesystem::create_directories(data_dir_, ec);
  if (ec) {
    throw sqlite::SqliteError(
        SQLITE_CANTOPEN,
        fmt::format("disk: cannot create data folder '{}': {}", data_dir_, ec.message()));
  }
  sqlite::Database db = sqlite::Database::open(file_uri(path_));
  {
    sqlite::Statement mode = db.prepare("PRAGMA journal_mode=WAL");
    const std::string got = mode.step() ? mode.column_text(0) : std::string("(no answer)");
    if (got != "wal") {
      throw sqlite::SqliteError(
          SQLITE_ERROR,
          fmt::format("disk: '{}' stayed in journal_mode {} instead of wal", path_, got));
    }
  }
  db.exec("PRAGMA synchronous=FULL");
  db_ = std::move(db);
  return db_;
}

// --- AsioRuntime ----------------------------------------------------------------

AsioRuntime::AsioRuntime(asio::io_context& io, NodeId id, AsioRuntimeConfig config)
    : io_(io),
      id_(id),
      config_(std::move(config)),
      epoch_(std::chrono::steady_clock::now()),
      seed_(config_.seed ? *config_.seed : draw_seed()),
      rng_(Rng::derive(seed_, "prod.node", id.value)),
      wake_timer_(io),
      disk_(config_.data_dir, id),
      transport_(*this, io, id, transport_config(config_)) {
  if (!config_.seed)
    info("rng seed {} (drawn at random; pass it as the seed to repeat this run's choices)", seed_);
  if (config_.listen) transport_.listen(*config_.listen);
}

AsioRuntime::~AsioRuntime() {
  shutdown();
}

void AsioRuntime::shutdown() {
  if (shut_down_) return;
  // runtime.h: tasks die first, while timers, transport and disk still work
  // (their awaiters cancel timers and leave channels as they are destroyed).
  destroy_tasks();
  shut_down_ = true;
  // Callbacks of this incarnation never run. Move them out first: destroying
  // a callback may run destructors that call cancel().
  std::map<TimerKey, UniqueFunction> doomed;
  doomed.swap(timers_);
  timer_at_ns_.clear();
  doomed.clear();
  wake_timer_.cancel();
  ++wake_generation_;
  transport_.close();
  disk_.close();
}

TimePoint AsioRuntime::now() const {
  const auto elapsed = std::chrono::steady_clock::now() - epoch_;
  return TimePoint::from_ns(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
}

TimerId AsioRuntime::call_at(TimePoint at, UniqueFunction fn) {
  const TimerId id = next_timer_id_++;
  if (shut_down_) return id;  // the incarnation is over: it never runs
  // A time already passed runs as soon as possible, after everything already due.
  const int64_t at_ns = std::max(at.ns(), now().ns());
  timers_.emplace(TimerKey{at_ns, id}, std::move(fn));
  timer_at_ns_.emplace(id, at_ns);
  arm();
  return id;
}

bool AsioRuntime::cancel(TimerId id) {
  auto it = timer_at_ns_.find(id);
  if (it == timer_at_ns_.end()) return false;
  timers_.erase(TimerKey{it->second, id});
  timer_at_ns_.erase(it);
  // The wake-up may now fire early; it then finds nothing due and re-arms.
  return true;
}

void AsioRuntime::arm() {
  if (shut_down_ || timers_.empty()) return;
  const int64_t first_ns = timers_.begin()->first.at_ns;
  const int64_t now_ns = now().ns();
  if (first_ns <= now_ns) {
    if (!post_pending_) {
      post_pending_ = true;
      asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
        if (alive.expired()) return;
        post_pending_ = false;
        dispatch_due();
      });
    }
    return;
  }
  if (wake_armed_at_ns_ && *wake_armed_at_ns_ <= first_ns) return;
  wake_armed_at_ns_ = first_ns;
  const uint64_t generation = ++wake_generation_;
  const Duration delay = std::min(Duration::from_ns(first_ns - now_ns), kTimerArmHorizonMax);
  wake_timer_.expires_after(std::chrono::nanoseconds(delay.ns()));  // cancels the previous wait
  wake_timer_.async_wait(
      [this, alive = std::weak_ptr<int>(alive_), generation](const boost::system::error_code& ec) {
        if (alive.expired() || ec || generation != wake_generation_) return;
        wake_armed_at_ns_.reset();
        dispatch_due();
      });
}

void AsioRuntime::dispatch_due() {
  if (shut_down_) return;
  const int64_t now_ns = now().ns();
  // Callbacks scheduled while this batch runs wait for the next one, so a
  // callback that reschedules itself at "now" cannot starve I/O.
  const TimerId watermark = next_timer_id_;
  size_t ran = 0;
  while (!timers_.empty() && !shut_down_ && !failed_ && ran < kTimerCallbacksPerDispatchMax) {
    auto it = timers_.begin();
    if (it->first.at_ns > now_ns || it->first.id >= watermark) break;
    UniqueFunction fn = std::move(it->second);
    timer_at_ns_.erase(it->first.id);
    timers_.erase(it);
    ++ran;
    try {
      fn();
    } catch (...) {
      on_task_failed("timer callback", std::current_exception());
    }
  }
  if (!failed_) arm();
}

void AsioRuntime::on_task_failed(std::string_view name, std::exception_ptr error) {
  const std::string message = fmt::format("task '{}' failed: {}", name, exception_text(error));
  if (!failed_) failure_ = message;
  failed_ = true;
  log_write(LogLevel::error, message);  // whatever the log level: this ends the process
  io_.stop();
}

void AsioRuntime::log_write(LogLevel level, std::string_view message) {
  const auto wall = std::chrono::system_clock::now();
  const time_t seconds_since_epoch = std::chrono::system_clock::to_time_t(wall);
  tm local{};
  localtime_r(&seconds_since_epoch, &local);
  char stamp[32];
  const size_t stamp_len = std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &local);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count() % 1000;
  std::string line = fmt::format("[{}.{:03d} n{}] {}: {}", std::string_view(stamp, stamp_len), ms,
                                 id_.value, to_string(level), message);
  if (config_.log_sink) {
    config_.log_sink(line);
    return;
  }
  line.push_back('\n');
  // One write per line, so lines of concurrent processes do not interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

std::optional<uint16_t> AsioRuntime::listen_port() const {
  auto ep = transport_.listen_endpoint();
  if (!ep) return std::nullopt;
  return ep->port();
}

}  // namespace wx::prod
