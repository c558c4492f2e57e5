// Coroutine costs.
//
// BM_PingPongThroughKernel: two coroutines of one simulated node hand a token
// back and forth through two Channels. Every hand-off is a real wake-up: the
// pusher schedules the waiter's resumption as a kernel event, the kernel pops
// it and resumes the frame. This is the path every message wake-up in node
// code takes. Reports resumes/s.
//
// BM_TaskAwaitChain: a coroutine awaiting a child Task that completes at
// once, in a loop: the raw cost of Task creation, start, symmetric transfer
// back and destruction, with no kernel involved. Reports awaits/s.
#include <benchmark/benchmark.h>

#include <memory>

#include "nodes/runtime/channel.h"
#include "sim/simulation.h"

namespace wx {
namespace {

class PingPongNode final : public Node {
 public:
  explicit PingPongNode(Runtime& rt) : rt_(rt), to_b_(rt, 4), to_a_(rt, 4) {}
  std::string_view kind() const override { return "pingpong"; }
  void start() override {
    rt_.spawn(player_b(), "b");
    rt_.spawn(player_a(), "a");
  }
  uint64_t resumes() const { return resumes_; }

 private:
  Task<void> player_a() {
    for (;;) {
      (void)to_b_.push(1);
      co_await to_a_.pop();
      ++resumes_;
    }
  }
  Task<void> player_b() {
    for (;;) {
      co_await to_b_.pop();
      ++resumes_;
      (void)to_a_.push(1);
    }
  }
  Runtime& rt_;
  Channel<int> to_b_, to_a_;
  uint64_t resumes_ = 0;
};

void BM_PingPongThroughKernel(benchmark::State& state) {
  sim::SimConfig cfg;
  cfg.log_level = LogLevel::off;
  sim::Simulation sim(cfg);
  NodeId id = sim.add_node({"pp", sim::Placement{}, [](Runtime& rt) { return std::make_unique<PingPongNode>(rt); }});
  sim.start(id);
  constexpr uint64_t kEventsPerIteration = 1'000'000;
  for (auto _ : state) sim.kernel().run_until_idle(kEventsPerIteration);
  const uint64_t resumes = sim.node_as<PingPongNode>(id)->resumes();
  state.SetItemsProcessed(static_cast<int64_t>(resumes));
  state.counters["resumes"] = static_cast<double>(resumes);
}
BENCHMARK(BM_PingPongThroughKernel)->Unit(benchmark::kMillisecond)->MinTime(2.0);

Task<int> ready_value(int x) { co_return x; }

Task<int> await_loop(int64_t n) {
  int sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += co_await ready_value(1);
  co_return sum;
}

// Drives a Task that never suspends on anything external.
struct Driver {
  struct promise_type {
    int value = 0;
    Driver get_return_object() { return Driver{std::coroutine_handle<promise_type>::from_promise(*this)}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_value(int v) { value = v; }
    void unhandled_exception() { std::terminate(); }
  };
  std::coroutine_handle<promise_type> h;
  ~Driver() { h.destroy(); }
};
Driver drive(Task<int> t) { co_return co_await std::move(t); }

void BM_TaskAwaitChain(benchmark::State& state) {
  constexpr int64_t kAwaitsPerIteration = 1'000'000;
  int64_t total = 0;
  for (auto _ : state) {
    Driver d = drive(await_loop(kAwaitsPerIteration));
    benchmark::DoNotOptimize(d.h.promise().value);
    total += kAwaitsPerIteration;
  }
  state.SetItemsProcessed(total);
}
BENCHMARK(BM_TaskAwaitChain)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace
}  // namespace wx

BENCHMARK_MAIN();
