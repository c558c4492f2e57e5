// Channel<T>: a bounded FIFO between coroutines of one node.
//
// `push` never blocks: it hands the item to the longest-waiting receiver or
// queues it, and fails when `capacity_max` items are already queued. `pop` is
// awaited; a woken receiver resumes through a zero-delay Runtime timer (never
// inline), so a push never re-enters the receiver's code. If a waiting frame is
// destroyed (crash), its awaiter leaves the wait list and cancels its wake-up.
#pragma once

#include <algorithm>
#include <cassert>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <optional>

#include "nodes/runtime/runtime.h"

namespace wx {

template <class T>
class Channel {
 public:
  Channel(Runtime& rt, size_t capacity_max) : rt_(rt), capacity_max_(capacity_max) {}
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  ~Channel() { assert(waiters_.empty() && "Channel destroyed while coroutines wait on it"); }

  // False if the queue already holds capacity_max items (the item is dropped).
  [[nodiscard]] bool push(T item) {
    if (waiters_.empty() && items_.size() >= capacity_max_) return false;
    push_unbounded(std::move(item));
    return true;
  }

  // Queues even past capacity_max. Only for items whose number is bounded
  // elsewhere (e.g. one connection reset per broken connection).
  void push_unbounded(T item) {
    if (!waiters_.empty()) {
      PopAwaiter* w = waiters_.front();
      waiters_.pop_front();
      w->queued_ = false;
      w->value_.emplace(std::move(item));
      std::coroutine_handle<> h = w->handle_;
      w->wake_ = rt_.call_at(rt_.now(), [h] { h.resume(); });
      return;
    }
    items_.push_back(std::move(item));
  }

  size_t size() const { return items_.size(); }
  size_t waiting() const { return waiters_.size(); }
  size_t capacity_max() const { return capacity_max_; }

  class PopAwaiter {
   public:
    explicit PopAwaiter(Channel& ch) : ch_(ch) {}
    PopAwaiter(const PopAwaiter&) = delete;
    PopAwaiter& operator=(const PopAwaiter&) = delete;
    ~PopAwaiter() {
      if (queued_) {
        auto it = std::find(ch_.waiters_.begin(), ch_.waiters_.end(), this);
        if (it != ch_.waiters_.end()) ch_.waiters_.erase(it);
      }
      if (wake_ != 0) ch_.rt_.cancel(wake_);
    }
    bool await_ready() {
      if (ch_.items_.empty()) return false;
      value_.emplace(std::move(ch_.items_.front()));
      ch_.items_.pop_front();
      return true;
    }
    void await_suspend(std::coroutine_handle<> h) {
      handle_ = h;
      queued_ = true;
      ch_.waiters_.push_back(this);
    }
    T await_resume() {
      wake_ = 0;
      return std::move(*value_);
    }

   private:
    friend class Channel;
    Channel& ch_;
    std::coroutine_handle<> handle_;
    std::optional<T> value_;
    TimerId wake_ = 0;
    bool queued_ = false;
  };

  PopAwaiter pop() { return PopAwaiter(*this); }

 private:
  Runtime& rt_;
  size_t capacity_max_;
  std::deque<T> items_;
  std::deque<PopAwaiter*> waiters_;
};

}  // namespace wx
