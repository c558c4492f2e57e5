// Runtime: the one seam between node code and the world.
//
// Every node is constructed with a `Runtime&` and reaches time, timers,
// randomness, the network, its disk and its log only through it. Two
// implementations exist:
//   * sim/  — one thread, virtual time, a seeded event queue (SimNodeRuntime);
//   * nodes/prod/ — boost::asio::io_context, real TCP and SQLite files.
// Node code never includes either; the build enforces it (docs/architecture.md).
//
// Lifetime: one Runtime object per node incarnation. When the incarnation ends
// (crash, or process exit) the Runtime first destroys every task it spawned —
// which destroys their whole chains of awaited frames and cancels their
// pending timers — then the Node, then itself. No callback or coroutine of a
// dead incarnation is ever run afterwards.
//
// Threading: a Runtime and everything it drives run on one thread; node code
// needs no locks and must not create threads.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <map>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "nodes/runtime/function.h"
#include "nodes/runtime/node.h"
#include "nodes/runtime/random.h"
#include "nodes/runtime/task.h"
#include "nodes/runtime/time.h"

namespace wx {

class Transport;
class Disk;

// 0 means "no timer".
using TimerId = uint64_t;

enum class LogLevel : uint8_t { debug = 0, info = 1, warn = 2, error = 3, off = 4 };
std::string_view to_string(LogLevel level);

class Runtime {
 public:
  Runtime() = default;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  virtual ~Runtime();

  virtual NodeId node_id() const = 0;

  // --- time -------------------------------------------------------------
  // The node's local clock. In simulation it may be skewed from the kernel's
  // global time (a clock-skew fault); it never goes backwards.
  virtual TimePoint now() const = 0;

  // Runs `fn` at local time `at` (or as soon as possible if `at` has passed),
  // after every callback already due at that time. Returns a non-zero id.
  virtual TimerId call_at(TimePoint at, UniqueFunction fn) = 0;
  TimerId call_after(Duration d, UniqueFunction fn) { return call_at(now() + d, std::move(fn)); }
  // Cancels a pending callback. Cancelling a fired, cancelled or unknown id is
  // a no-op. Returns whether a pending callback was removed.
  virtual bool cancel(TimerId id) = 0;

  class SleepAwaiter;
  // co_await rt.sleep(d): resumes after local duration d. sleep(0) yields.
  SleepAwaiter sleep(Duration d);
  SleepAwaiter sleep_until(TimePoint t);

  // co_await rt.compute(cost): CPU work of `cost`. In simulation the caller
  // is held for `cost` of virtual time, which is how service costs turn into
  // busy workers, queues and overload; in production the real work already
  // takes real time, so this returns at once without suspending.
  virtual SleepAwaiter compute(Duration cost);

  // --- tasks ------------------------------------------------------------
  // Starts `task` as a root task owned by this Runtime: it runs at once until
  // its first suspension, and is destroyed when it completes or when the
  // incarnation ends. An exception escaping it is a node bug: reported through
  // on_task_failed (the simulator fails the run; production logs and exits).
  void spawn(Task<void> task, std::string name);
  size_t live_tasks() const { return tasks_.size(); }

  // --- randomness, network, disk ------------------------------------------
  // This incarnation's random stream (in simulation derived from the root seed,
  // the node id and the incarnation number).
  virtual Rng& rng() = 0;
  virtual Transport& transport() = 0;
  virtual Disk& disk() = 0;

  // Fault-injection point (FoundationDB's BUGGIFY). In simulation, with
  // buggify enabled, each site is switched on for the run with some chance the
  // first time it is evaluated, and then fires with some chance per
  // evaluation, all from a seeded stream. In production it is always false.
  virtual bool buggify(std::string_view site) = 0;

  // --- logging ----------------------------------------------------------
  // Lines are stamped with node id and local time by the implementation.
  virtual LogLevel log_level() const = 0;
  virtual void log_write(LogLevel level, std::string_view message) = 0;

  template <class... A>
  void log(LogLevel level, fmt::format_string<A...> f, A&&... args) {
    if (level >= log_level()) log_write(level, fmt::format(f, std::forward<A>(args)...));
  }
  template <class... A>
  void debug(fmt::format_string<A...> f, A&&... args) { log(LogLevel::debug, f, std::forward<A>(args)...); }
  template <class... A>
  void info(fmt::format_string<A...> f, A&&... args) { log(LogLevel::info, f, std::forward<A>(args)...); }
  template <class... A>
  void warn(fmt::format_string<A...> f, A&&... args) { log(LogLevel::warn, f, std::forward<A>(args)...); }
  template <class... A>
  void error(fmt::format_string<A...> f, A&&... args) { log(LogLevel::error, f, std::forward<A>(args)...); }

 protected:
  // Implementations call this first when an incarnation ends, while all their
  // own members (timers, transport, disk) are still alive: every root task is
  // destroyed, in spawn order.
  void destroy_tasks();
  virtual void on_task_failed(std::string_view name, std::exception_ptr error) = 0;

 private:
  friend struct RootTaskAccess;
  void root_finished(uint64_t id);
  void root_failed(const std::string& name, std::exception_ptr error) { on_task_failed(name, error); }

  uint64_t next_task_id_ = 1;
  // Ordered by spawn id, so teardown order is deterministic.
  std::map<uint64_t, std::coroutine_handle<>> tasks_;
};

// Suspends until a timer fires. If the awaiting frame is destroyed first
// (a crash), the destructor cancels the timer, so it never resumes a dead frame.
class Runtime::SleepAwaiter {
 public:
  SleepAwaiter(Runtime& rt, TimePoint at, bool ready = false) : rt_(rt), at_(at), ready_(ready) {}
  // An awaiter that does not suspend at all.
  static SleepAwaiter ready(Runtime& rt) { return SleepAwaiter(rt, TimePoint::zero(), true); }
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  ~SleepAwaiter() {
    if (timer_ != 0) rt_.cancel(timer_);
  }
  bool await_ready() const noexcept { return ready_; }
  void await_suspend(std::coroutine_handle<> h) {
    timer_ = rt_.call_at(at_, [h] { h.resume(); });
  }
  void await_resume() noexcept { timer_ = 0; }

 private:
  Runtime& rt_;
  TimePoint at_;
  TimerId timer_ = 0;
  bool ready_;
};

inline Runtime::SleepAwaiter Runtime::sleep(Duration d) { return SleepAwaiter(*this, now() + d); }
inline Runtime::SleepAwaiter Runtime::sleep_until(TimePoint t) { return SleepAwaiter(*this, t); }
inline Runtime::SleepAwaiter Runtime::compute(Duration) { return SleepAwaiter::ready(*this); }

}  // namespace wx
