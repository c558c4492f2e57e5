// Task<T> on its own: laziness, values, exceptions, and stack use — constant
// over any number of awaits, in every build type (no reliance on tail calls).
#include "nodes/runtime/task.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace wx {
namespace {

// Drives a Task to completion from plain code. Only for tasks that never
// suspend on anything outside themselves (no runtime here).
template <class T>
struct Driver {
  struct promise_type {
    std::optional<T> value;
    std::exception_ptr error;
    Driver get_return_object() { return Driver{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_value(T v) { value = std::move(v); }
    void unhandled_exception() { error = std::current_exception(); }
  };
  std::coroutine_handle<promise_type> h;
  ~Driver() { h.destroy(); }
};

template <class T>
Driver<T> drive(Task<T> t) {
  co_return co_await std::move(t);
}

Task<int> answer() { co_return 42; }
Task<int> add(int a, int b) { co_return (co_await answer()) - 42 + a + b; }
Task<void> throws() {
  throw std::runtime_error("boom");
  co_return;
}
Task<int> catches() {
  try {
    co_await throws();
  } catch (const std::runtime_error& e) {
    co_return std::string(e.what()) == "boom" ? 7 : -1;
  }
  co_return -2;
}
Task<int> deep(int n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await deep(n - 1);
}
Task<int> chain(int n) {
  // A long sequence of completed awaits in one frame: each child completes
  // inside the awaiter's await_suspend, which returns false, so the stack is
  // unwound before the next await.
  int sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await answer();
  co_return sum;
}

TEST(Task, IsLazyUntilAwaited) {
  int runs = 0;
  auto body = [](int* r) -> Task<int> {
    ++*r;
    co_return 1;
  };
  Task<int> t = body(&runs);
  EXPECT_EQ(runs, 0) << "a Task must not start before it is awaited";
  Driver<int> d = drive(std::move(t));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(*d.h.promise().value, 1);
}

TEST(Task, DestroyingAnUnstartedTaskNeverRunsIt) {
  int runs = 0;
  auto body = [](int* r) -> Task<void> {
    ++*r;
    co_return;
  };
  { Task<void> t = body(&runs); }
  EXPECT_EQ(runs, 0);
}

TEST(Task, ReturnsValues) {
  Driver<int> d = drive(add(2, 3));
  ASSERT_TRUE(d.h.promise().value.has_value());
  EXPECT_EQ(*d.h.promise().value, 5);
}

TEST(Task, ExceptionReachesTheAwaiter) {
  Driver<int> d = drive(catches());
  EXPECT_EQ(*d.h.promise().value, 7);
}

TEST(Task, UncaughtExceptionPropagatesThroughEveryLevel) {
  auto outer = []() -> Task<int> {
    co_await throws();
    co_return 0;
  };
  Driver<int> d = drive(outer());
  ASSERT_TRUE(d.h.promise().error);
  EXPECT_THROW(std::rethrow_exception(d.h.promise().error), std::runtime_error);
}

TEST(Task, LongAwaitChainsUseConstantStack) {
  // One million completed co_awaits. If each one left a frame on the stack
  // (symmetric transfer that the compiler did not make a tail call: g++ at
  // -O0 or under ASan) this would overflow the default 8 MiB stack.
  Driver<int> d = drive(chain(1'000'000));
  EXPECT_EQ(*d.h.promise().value, 42'000'000);
}

TEST(Task, NestedRecursionReturnsThroughEachLevel) {
  Driver<int> d = drive(deep(10'000));
  EXPECT_EQ(*d.h.promise().value, 10'000);
}

TEST(Task, MoveOnlyResults) {
  auto make = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(9); };
  auto use = [make]() -> Task<int> {
    std::unique_ptr<int> p = co_await make();
    co_return *p;
  };
  Driver<int> d = drive(use());
  EXPECT_EQ(*d.h.promise().value, 9);
}


// --- a hand-driven event loop, for tasks that suspend --------------------

// Parked coroutines, resumed in FIFO order by run_all(): a stand-in for the
// Runtime's event loop, so that completions happen "later", from the loop.
struct Loop {
  std::deque<std::coroutine_handle<>> parked;
  struct Park {
    Loop& loop;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { loop.parked.push_back(h); }
    void await_resume() const noexcept {}
  };
  Park park() { return Park{*this}; }
  size_t run_all() {
    size_t n = 0;
    while (!parked.empty()) {
      std::coroutine_handle<> h = parked.front();
      parked.pop_front();
      h.resume();
      ++n;
    }
    return n;
  }
};

// The spread of stack addresses seen by note_stack() calls.
struct StackSpan {
  uintptr_t lowest = UINTPTR_MAX;
  uintptr_t highest = 0;
  uintptr_t spread() const { return highest - lowest; }
};
[[gnu::noinline]] void note_stack(StackSpan& span) {
  // The real machine stack (a local's address could be in the coroutine
  // frame or in ASan's fake stack).
  const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  span.lowest = std::min(span.lowest, here);
  span.highest = std::max(span.highest, here);
}

Task<int> probe_now(StackSpan& span) {
  note_stack(span);
  co_return 1;
}
Task<int> probe_later(Loop& loop, StackSpan& span) {
  co_await loop.park();
  note_stack(span);
  co_return 1;
}

TEST(Task, SynchronousAwaitsDoNotGrowTheStack) {
  // The direct form of LongAwaitChainsUseConstantStack: the child of the
  // 10'000th await runs at the same depth as the child of the first.
  StackSpan span;
  auto body = [](StackSpan& s) -> Task<int> {
    int sum = 0;
    for (int i = 0; i < 10'000; ++i) sum += co_await probe_now(s);
    co_return sum;
  };
  Driver<int> d = drive(body(span));
  EXPECT_EQ(*d.h.promise().value, 10'000);
  EXPECT_LT(span.spread(), 1024u) << "stack grew across awaits";
}

TEST(Task, AsyncCompletionResumesTheAwaiter) {
  Loop loop;
  StackSpan span;
  auto parent = [](Loop& l, StackSpan& s) -> Task<int> { co_return 10 + co_await probe_later(l, s); };
  Driver<int> d = drive(parent(loop, span));
  EXPECT_FALSE(d.h.promise().value.has_value()) << "the child is parked; the parent must wait";
  EXPECT_EQ(loop.run_all(), 1u);
  ASSERT_TRUE(d.h.promise().value.has_value());
  EXPECT_EQ(*d.h.promise().value, 11);
}

TEST(Task, LongLoopOfAsyncAwaitsUsesConstantStack) {
  // Each await suspends and completes later, from the loop; 100'000 of them
  // under a chain of 50 Tasks. Every resumption starts from the loop, so the
  // stack seen by the leaf never grows.
  Loop loop;
  StackSpan span;
  struct Nest {
    static Task<int> loop_of(Loop& l, StackSpan& s, int n) {
      int sum = 0;
      for (int i = 0; i < n; ++i) {
        sum += co_await probe_later(l, s);
        sum += co_await probe_now(s);  // and a synchronous one in between
      }
      co_return sum;
    }
    static Task<int> nest(Loop& l, StackSpan& s, int depth, int n) {
      if (depth == 0) co_return co_await loop_of(l, s, n);
      co_return co_await nest(l, s, depth - 1, n);
    }
  };
  Driver<int> d = drive(Nest::nest(loop, span, 50, 100'000));
  EXPECT_EQ(loop.run_all(), 100'000u);
  ASSERT_TRUE(d.h.promise().value.has_value());
  EXPECT_EQ(*d.h.promise().value, 200'000);
  // Between the first synchronous probe (under 52 frames awaiting inline) and
  // the ones resumed from the loop the depth differs by a bounded amount;
  // what matters is that it does not grow with the number of awaits.
  EXPECT_LT(span.spread(), 64u * 1024u) << "stack grew across async awaits";
}

TEST(Task, DeepChainCompletingLaterReturnsThroughEachLevel) {
  // The async form of NestedRecursionReturnsThroughEachLevel: the leaf parks,
  // and its completion from the loop resumes 10'000 awaiting levels in turn.
  Loop loop;
  struct Deep {
    static Task<int> down(Loop& l, int n) {
      if (n == 0) {
        co_await l.park();
        co_return 0;
      }
      co_return 1 + co_await down(l, n - 1);
    }
  };
  Driver<int> d = drive(Deep::down(loop, 10'000));
  EXPECT_FALSE(d.h.promise().value.has_value());
  EXPECT_EQ(loop.run_all(), 1u);
  ASSERT_TRUE(d.h.promise().value.has_value());
  EXPECT_EQ(*d.h.promise().value, 10'000);
}

TEST(Task, ExceptionAfterSuspendingReachesTheAwaiter) {
  Loop loop;
  auto thrower = [](Loop& l) -> Task<int> {
    co_await l.park();
    throw std::runtime_error("late");
  };
  auto catcher = [thrower](Loop& l) -> Task<int> {
    try {
      co_await thrower(l);
    } catch (const std::runtime_error& e) {
      co_return std::string(e.what()) == "late" ? 3 : -1;
    }
    co_return -2;
  };
  Driver<int> d = drive(catcher(loop));
  loop.run_all();
  ASSERT_TRUE(d.h.promise().value.has_value());
  EXPECT_EQ(*d.h.promise().value, 3);
}

TEST(Task, ChildResumedReentrantlyStillReturnsToItsAwaiter) {
  // An awaiter that resumes its coroutine from inside await_suspend: the
  // child runs to completion while its own awaiter is still inside resume(),
  // but not as the direct callee of that resume(). The awaiter must still
  // see the completion and continue exactly once.
  struct ResumeAtOnce {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { h.resume(); }
    void await_resume() const noexcept {}
  };
  auto child = []() -> Task<int> {
    co_await ResumeAtOnce{};
    co_return 5;
  };
  auto parent = [child]() -> Task<int> {
    int sum = 0;
    for (int i = 0; i < 1000; ++i) sum += co_await child();
    co_return sum;
  };
  Driver<int> d = drive(parent());
  ASSERT_TRUE(d.h.promise().value.has_value());
  EXPECT_EQ(*d.h.promise().value, 5000);
}

TEST(Task, DestroyingASuspendedChainDestroysEveryFrame) {
  // What a crash does: the root is destroyed while its chain waits. Every
  // frame's locals are destroyed; nothing is resumed.
  Loop loop;
  int alive = 0;
  int resumed = 0;
  struct Guard {
    int& n;
    explicit Guard(int& c) : n(c) { ++n; }
    ~Guard() { --n; }
  };
  struct Chain {
    static Task<int> down(Loop& l, int& alive, int& resumed, int n) {
      Guard g(alive);
      if (n == 0) {
        co_await l.park();
        ++resumed;
        co_return 0;
      }
      int v = co_await down(l, alive, resumed, n - 1);
      ++resumed;
      co_return v + 1;
    }
  };
  {
    Driver<int> d = drive(Chain::down(loop, alive, resumed, 100));
    EXPECT_EQ(alive, 101);
    EXPECT_EQ(loop.parked.size(), 1u);
  }
  EXPECT_EQ(alive, 0) << "a frame of the destroyed chain leaked";
  EXPECT_EQ(resumed, 0);
  loop.parked.clear();  // the parked handle died with its frame
}

}  // namespace
}  // namespace wx
