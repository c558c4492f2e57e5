// Task<T> on its own: laziness, values, exceptions, symmetric transfer.
#include "nodes/runtime/task.h"

#include <gtest/gtest.h>

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
  // A long sequence of completed awaits in one frame: with symmetric
  // transfer each returns without growing the stack.
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
  // One million completed co_awaits; without symmetric transfer this would
  // need a stack frame per await and overflow the default 8 MiB stack.
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

}  // namespace
}  // namespace wx
