// Task<T>: the coroutine type all node code is written in.
//
// A Task is lazily started: creating it runs nothing; the body starts when the
// task is first awaited. Completion transfers control straight back to the
// awaiter (symmetric transfer), so arbitrarily long chains of `co_await` use
// constant stack. An exception thrown inside the body is captured and
// rethrown from the awaiter's `co_await`.
//
// Ownership: a Task owns its coroutine frame and destroys it in its destructor,
// whether or not the body ran to completion. Destroying a suspended root task
// therefore destroys the whole chain of frames it awaits; this is how a crash
// in the simulator kills every coroutine of a node incarnation. Awaiters that
// registered a wake-up with a Runtime (timers, channels) cancel it in their
// destructors, so a destroyed frame is never resumed.
//
// Root tasks are started with `Runtime::spawn`, which owns them.
#pragma once

#include <cassert>
#include <coroutine>
#include <exception>
#include <utility>
#include <variant>

namespace wx {

template <class T = void>
class Task;

namespace detail {

struct TaskFinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
    return h.promise().continuation;
  }
  void await_resume() const noexcept {}
};

struct TaskPromiseBase {
  std::coroutine_handle<> continuation = std::noop_coroutine();
  std::suspend_always initial_suspend() const noexcept { return {}; }
  TaskFinalAwaiter final_suspend() const noexcept { return {}; }
};

template <class T>
struct TaskPromise : TaskPromiseBase {
  std::variant<std::monostate, T, std::exception_ptr> result;
  Task<T> get_return_object() noexcept;
  void unhandled_exception() noexcept { result.template emplace<2>(std::current_exception()); }
  template <class U>
  void return_value(U&& value) {
    result.template emplace<1>(std::forward<U>(value));
  }
  T take() {
    if (result.index() == 2) std::rethrow_exception(std::get<2>(result));
    assert(result.index() == 1 && "Task result read before completion");
    return std::move(std::get<1>(result));
  }
};

template <>
struct TaskPromise<void> : TaskPromiseBase {
  std::exception_ptr error;
  bool done = false;
  Task<void> get_return_object() noexcept;
  void unhandled_exception() noexcept { error = std::current_exception(); }
  void return_void() noexcept { done = true; }
  void take() {
    if (error) std::rethrow_exception(error);
    assert(done && "Task result read before completion");
  }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  explicit Task(Handle h) : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  bool valid() const { return static_cast<bool>(h_); }
  bool done() const { return h_ && h_.done(); }

  struct Awaiter {
    Handle h;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
      h.promise().continuation = awaiting;
      return h;
    }
    T await_resume() { return h.promise().take(); }
  };

  // A Task is awaited exactly once, as an rvalue: `co_await f();` or
  // `co_await std::move(t);`.
  Awaiter operator co_await() && noexcept {
    assert(h_ && !h_.done() && "awaiting an empty or finished Task");
    return Awaiter{h_};
  }

 private:
  void reset() {
    if (h_) {
      h_.destroy();
      h_ = {};
    }
  }
  Handle h_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}
}  // namespace detail

}  // namespace wx
