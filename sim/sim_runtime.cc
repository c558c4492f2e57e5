#include "sim/sim_runtime.h"

#include <exception>

#include "sim/simulation.h"

namespace wx::sim {

SimTransport::SimTransport(Runtime& rt, Simulation& sim, NodeId self)
    : Transport(rt, kFrameBytesMaxDefault, kInboxFramesMaxDefault), sim_(sim), self_(self) {}

SendStatus SimTransport::send(NodeId to, std::string frame) {
  if (frame.size() > frame_bytes_max()) return SendStatus::frame_too_large;
  if (to == self_) return SendStatus::to_self;
  if (!sim_.knows(to)) return SendStatus::unknown_peer;
  return sim_.network().send(self_, to, std::move(frame));
}

SimNodeRuntime::SimNodeRuntime(Simulation& sim, NodeId id, uint32_t incarnation, OwnerId owner,
                               uint64_t seed, std::string disk_uri, Duration clock_offset)
    : sim_(sim),
      id_(id),
      incarnation_(incarnation),
      owner_(owner),
      clock_offset_(clock_offset),
      rng_(seed),
      transport_(*this, sim, id),
      disk_(std::move(disk_uri)) {}

SimNodeRuntime::~SimNodeRuntime() {
  // The Simulation calls teardown() before destroying the Node; this covers
  // a runtime destroyed without a Node (e.g. a factory that threw).
  destroy_tasks();
}

TimePoint SimNodeRuntime::now() const { return sim_.kernel().now() + clock_offset_; }

TimerId SimNodeRuntime::call_at(TimePoint at, UniqueFunction fn) {
  return sim_.kernel().schedule_at(at - clock_offset_, owner_, TraceTag{TraceKind::timer, id_.value, 0},
                                   std::move(fn));
}

bool SimNodeRuntime::cancel(TimerId id) { return sim_.kernel().cancel(id); }

bool SimNodeRuntime::buggify(std::string_view site) { return sim_.buggify(id_, site); }

LogLevel SimNodeRuntime::log_level() const { return sim_.config().log_level; }

void SimNodeRuntime::log_write(LogLevel level, std::string_view message) {
  sim_.log(id_, incarnation_, level, message);
}

void SimNodeRuntime::on_task_failed(std::string_view name, std::exception_ptr error) {
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  std::string reason = "node " + to_string(id_) + " (" + sim_.spec(id_).name + ", incarnation " +
                       std::to_string(incarnation_) + ") task '" + std::string(name) + "' threw: " + what;
  log_write(LogLevel::error, reason);
  sim_.kernel().fail(std::move(reason));
}

}  // namespace wx::sim
