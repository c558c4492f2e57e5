// Task<T>: the coroutine type all node code is written in.
//
// A Task is lazily started: creating it runs nothing; the body starts when the
// task is first awaited. An exception thrown inside the body is captured and
// rethrown from the awaiter's `co_await`.
//
// Stack use, in every build type (-O0, -O2, sanitizers): nothing here relies
// on the compiler turning symmetric transfer into a tail call (g++ does so
// only when optimising, and not under AddressSanitizer). Awaiting a Task
// resumes the child with a plain call from the awaiter's `await_suspend`:
//   * if the child runs to completion inside that call (it never suspended,
//     or everything it awaited completed at once), its final awaiter sees that
//     its awaiter is still inside `await_suspend` and just returns; the
//     awaiter then returns false, so the parent continues on the unwound
//     stack. A loop of any number of such `co_await`s uses constant stack;
//   * if the child suspends, `await_suspend` returns true and the parent
//     stays suspended; when the child completes later (resumed from the event
//     loop), its final awaiter resumes the parent. The stack then holds one
//     level per Task in the chain of awaits being completed, never one per
//     `co_await` executed.
// So stack depth is bounded by the depth of nested awaits (recursion), not by
// how many awaits a frame performs.
//
// Ownership: a Task owns its coroutine frame and destroys it in its destructor,
// whether or not the body ran to completion. Destroying a suspended root task
// therefore destroys the whole chain of frames it awaits; this is how a crash
// in the simulator kills every coroutine of a node incarnation. Awaiters that
// registered a wake-up with a Runtime (timers, channels) cancel it in their
// destructors, so a destroyed frame is never resumed. A frame must not be
// destroyed while it is running (e.g. a child destroying its own awaiter).
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

// Where a Task's awaiter is, as seen by the Task's final awaiter. Single
// threaded; the transitions are:
//   detached --await_suspend--> inline --child completes inside resume()--> completed
//                                      --child suspended, resume() returns--> detached
// `completed` is only ever seen by the awaiter right after resume() returns.
enum class TaskAwaitState : unsigned char {
  detached,   // nobody is inside await_suspend: completion resumes `continuation`
  inline_,    // the awaiter is inside await_suspend, in child.resume()
  completed,  // the child finished inside that resume() call
};

struct TaskPromiseBase {
  std::coroutine_handle<> continuation = std::noop_coroutine();
  TaskAwaitState state = TaskAwaitState::detached;
  std::suspend_always initial_suspend() const noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    // The frame is suspended here. In the inline case, control goes back to
    // whoever resumed this coroutine — the awaiter's resume() call, or (for a
    // child resumed synchronously from elsewhere while the awaiter was still
    // inside resume()) that resumer; either way the awaiter finds `completed`
    // when its resume() returns. Otherwise the awaiter is resumed from here:
    // by symmetric transfer, which is a tail call when optimised and one
    // extra level of stack per completing Task otherwise.
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      TaskPromiseBase& p = h.promise();
      if (p.state == TaskAwaitState::inline_) {
        p.state = TaskAwaitState::completed;
        return std::noop_coroutine();
      }
      return p.continuation;
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }
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
    // Runs the child with a plain call. Returns false (continue the awaiter
    // now, on this stack) if the child completed inside it; true if the
    // child suspended, in which case its final awaiter resumes `awaiting`.
    // No exception leaves resume(): the body's is captured in the promise.
    bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
      detail::TaskPromiseBase& p = h.promise();
      p.continuation = awaiting;
      p.state = detail::TaskAwaitState::inline_;
      h.resume();
      if (p.state == detail::TaskAwaitState::completed) return false;
      p.state = detail::TaskAwaitState::detached;
      return true;
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
