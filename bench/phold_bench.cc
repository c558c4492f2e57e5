// PHOLD on the simulation kernel: the standard synthetic benchmark of
// discrete-event engines. N logical processes (LPs) start with `density`
// events each; every event, when run, schedules exactly one new event at
// now + Exp(mean) for an LP chosen uniformly at random. The handler does
// nothing else, so the figure is the kernel's own cost per event: queue
// push/pop, callback dispatch and the trace hash.
//
// Reports events/s (items_per_second). One thread, so it is per core.
#include <benchmark/benchmark.h>

#include <vector>

#include "nodes/runtime/random.h"
#include "sim/kernel.h"

namespace wx::sim {
namespace {

struct Phold {
  Kernel kernel;
  Rng rng{Rng::derive(1, "phold")};
  std::vector<uint64_t> handled;
  Duration mean = microseconds(100);

  Phold(uint32_t lps, uint32_t density) : handled(lps) {
    for (uint32_t lp = 0; lp < lps; ++lp)
      for (uint32_t i = 0; i < density; ++i) schedule(lp);
  }
  void schedule(uint32_t lp) {
    kernel.schedule_after(rng.exponential(mean), kKernelOwner, TraceTag{TraceKind::callback, lp, 0},
                          [this, lp] { on_event(lp); });
  }
  void on_event(uint32_t lp) {
    ++handled[lp];
    schedule(static_cast<uint32_t>(rng.uniform(handled.size())));
  }
};

void BM_Phold(benchmark::State& state) {
  const auto lps = static_cast<uint32_t>(state.range(0));
  const auto density = static_cast<uint32_t>(state.range(1));
  Phold model(lps, density);
  constexpr uint64_t kEventsPerIteration = 1'000'000;
  for (auto _ : state) {
    model.kernel.run_until_idle(kEventsPerIteration);
  }
  state.SetItemsProcessed(static_cast<int64_t>(model.kernel.events_executed()));
  state.counters["pending"] = static_cast<double>(model.kernel.pending());
  benchmark::DoNotOptimize(model.kernel.trace().hash());
}
// (LPs, initial events per LP): pending-queue sizes from 1 k to 1 M events.
BENCHMARK(BM_Phold)->Args({1'000, 1})->Args({10'000, 1})->Args({10'000, 10})->Args({100'000, 10})
    ->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace
}  // namespace wx::sim

BENCHMARK_MAIN();
