#include "nodes/runtime/runtime.h"

#include <cassert>
#include <utility>

namespace wx {

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
    case LogLevel::off: return "off";
  }
  return "?";
}

// A root task: a coroutine that awaits the user's Task, reports an escaping
// exception, and on completion unregisters and destroys itself.
struct RootTaskAccess {
  struct Promise;
  using Handle = std::coroutine_handle<Promise>;
  struct Root {
    using promise_type = Promise;
    Handle h;
  };
  struct Promise {
    Runtime* rt = nullptr;
    uint64_t id = 0;
    Root get_return_object() noexcept { return Root{Handle::from_promise(*this)}; }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    struct Final {
      bool await_ready() const noexcept { return false; }
      void await_suspend(Handle h) noexcept {
        Runtime* rt = h.promise().rt;
        const uint64_t id = h.promise().id;
        h.destroy();
        rt->root_finished(id);
      }
      void await_resume() const noexcept {}
    };
    Final final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // run() catches everything
  };

  // Parameters are taken by value: they live in the coroutine frame.
  static Root run(Task<void> task, Runtime* rt, std::string name) {
    try {
      co_await std::move(task);
    } catch (...) {
      rt->root_failed(name, std::current_exception());
    }
  }
};

Runtime::~Runtime() {
  // Implementations must have called destroy_tasks(); this is the last guard.
  assert(tasks_.empty() && "Runtime destroyed with live tasks: call destroy_tasks() first");
}

void Runtime::spawn(Task<void> task, std::string name) {
  const uint64_t id = next_task_id_++;
  RootTaskAccess::Root root = RootTaskAccess::run(std::move(task), this, std::move(name));
  root.h.promise().rt = this;
  root.h.promise().id = id;
  tasks_.emplace(id, root.h);
  root.h.resume();  // may finish (and unregister) before returning
}

void Runtime::root_finished(uint64_t id) { tasks_.erase(id); }

void Runtime::destroy_tasks() {
  // Destroying a frame may run destructors that touch this Runtime (timer
  // cancellation); take the set first so nothing iterates a changing map.
  std::map<uint64_t, std::coroutine_handle<>> doomed;
  doomed.swap(tasks_);
  for (auto& [id, h] : doomed) h.destroy();
  // A destructor above may have spawned (it must not); those die too.
  while (!tasks_.empty()) {
    doomed.clear();
    doomed.swap(tasks_);
    for (auto& [id, h] : doomed) h.destroy();
  }
}

}  // namespace wx
