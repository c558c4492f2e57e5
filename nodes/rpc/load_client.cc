#include "nodes/rpc/load_client.h"

namespace wx::rpc {

LoadClient::LoadClient(Runtime& rt, LoadConfig config)
    : rt_(rt),
      config_(std::move(config)),
      endpoint_(rt),
      router_(rt, endpoint_, config_.directory, config_.self, config_.router) {}

void LoadClient::start() {
  endpoint_.start();
  rt_.spawn(arrivals(), "load.arrivals");
}

Task<void> LoadClient::arrivals() {
  if (config_.start_delay > Duration::zero()) co_await rt_.sleep(config_.start_delay);
  const TimePoint end = rt_.now() + config_.duration;
  const Duration mean_gap = nanoseconds(static_cast<int64_t>(1e9 / config_.rate_per_s));
  for (;;) {
    co_await rt_.sleep(rt_.rng().exponential(mean_gap));
    if (rt_.now() >= end) break;
    if (in_flight_ >= config_.in_flight_max) {
      ++shed_;
      continue;
    }
    ++issued_;
    ++in_flight_;
    rt_.spawn(one_call(rt_.now()), "load.call");
  }
}

Task<void> LoadClient::one_call(TimePoint sent_at) {
  Result<std::string> r = co_await router_.call_raw(config_.service, config_.method, config_.request, config_.options);
  --in_flight_;
  const CallRecord rec{sent_at, rt_.now() - sent_at, r.code()};
  if (records_.size() < config_.records_max) records_.push_back(rec);
  if (config_.on_record) config_.on_record(rec);
}

}  // namespace wx::rpc
