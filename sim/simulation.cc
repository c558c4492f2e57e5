#include "sim/simulation.h"

#include <cstdio>
#include <stdexcept>

namespace wx::sim {

namespace {
void default_log_sink(const LogLine& line) {
  std::fprintf(stderr, "[%s n%u#%u] %s: %s\n", to_string(line.at).c_str(), line.node.value,
               line.incarnation, std::string(to_string(line.level)).c_str(), line.message.c_str());
}
}  // namespace

Simulation::Simulation(SimConfig config)
    : config_(std::move(config)),
      kernel_(config_.trace_records_max),
      topology_(config_.latency),
      faults_(*this),
      network_(*this, topology_, faults_, config_.tcp, Rng::derive(config_.seed, "network"),
               Rng::derive(config_.seed, "network.loss")),
      buggify_rng_(Rng::derive(config_.seed, "buggify")) {
  if (!config_.log_sink) config_.log_sink = default_log_sink;
}

Simulation::~Simulation() {
  // Tear incarnations down in id order while the kernel and disks still exist.
  for (auto& s : nodes_) {
    if (s.rt) {
      kernel_.kill_owner(s.rt->owner());
      s.rt->teardown();
      s.node.reset();
      s.rt.reset();
    }
  }
}

Simulation::Slot& Simulation::slot(NodeId id) {
  if (!knows(id)) throw std::out_of_range("simulation: no node " + to_string(id));
  return nodes_[id.value - 1];
}
const Simulation::Slot& Simulation::slot(NodeId id) const {
  if (!knows(id)) throw std::out_of_range("simulation: no node " + to_string(id));
  return nodes_[id.value - 1];
}

NodeId Simulation::add_node(NodeSpec spec) {
  if (!spec.factory) throw std::invalid_argument("simulation: node '" + spec.name + "' has no factory");
  const NodeId id{static_cast<uint32_t>(nodes_.size() + 1)};
  topology_.place(id, spec.placement);  // throws on a bad placement, before anything changes
  nodes_.push_back(Slot{std::move(spec), 0, LocalClock{}, nullptr, nullptr});
  return id;
}

const NodeSpec& Simulation::spec(NodeId id) const { return slot(id).spec; }
bool Simulation::is_up(NodeId id) const { return knows(id) && slot(id).node != nullptr; }
uint32_t Simulation::incarnation(NodeId id) const { return slot(id).incarnation; }

void Simulation::set_clock_offset(NodeId id, Duration offset) {
  Slot& s = slot(id);
  s.clock = s.clock.stepped(kernel_.now(), offset);
  const std::string what =
      "clock " + to_string(id) + " offset " +
      (offset < Duration::zero() ? "-" + to_string(-offset) : to_string(offset));
  kernel_.note(TraceTag{TraceKind::fault, id.value, fnv1a64(what)});
  observe_fault(id.value, what);
  log(id, s.incarnation, LogLevel::info, "fault: " + what);
  if (s.rt) s.rt->set_clock(s.clock);
}

void Simulation::set_clock_rate(NodeId id, int64_t ppm) {
  Slot& s = slot(id);
  if (!LocalClock::valid_ppm(ppm)) {
    throw std::invalid_argument("simulation: clock rate of " + to_string(id) + " out of range: " +
                                std::to_string(ppm) + " ppm");
  }
  s.clock = s.clock.with_rate(kernel_.now(), ppm);
  // Integer formatting only: the note's hash must not depend on a locale.
  const std::string what =
      "clock " + to_string(id) + " rate " + (ppm < 0 ? "" : "+") + std::to_string(ppm) + "ppm";
  kernel_.note(TraceTag{TraceKind::fault, id.value, fnv1a64(what)});
  observe_fault(id.value, what);
  log(id, s.incarnation, LogLevel::info, "fault: " + what);
  if (s.rt) s.rt->set_clock(s.clock);
}

Duration Simulation::clock_offset(NodeId id) const { return slot(id).clock.offset_at(kernel_.now()); }

void Simulation::start(NodeId id) {
  Slot& s = slot(id);
  if (s.rt) throw std::logic_error("simulation: start of " + to_string(id) + " which is up");
  ++s.incarnation;
  const OwnerId owner = kernel_.new_owner();
  kernel_.note(TraceTag{TraceKind::start, id.value, s.incarnation});
  if (lifecycle_observer_) lifecycle_observer_(LifecycleEvent{LifecycleEvent::Kind::start, now(), id, s.incarnation, {}});
  s.rt = std::make_unique<SimNodeRuntime>(*this, id, s.incarnation, owner,
                                          Rng::derive_seed(config_.seed, "node",
                                                           (uint64_t{id.value} << 32) | s.incarnation),
                                          disks_.uri_for(id), s.clock);
  try {
    s.node = s.spec.factory(*s.rt);
    if (!s.node) throw std::runtime_error("factory returned no node");
    s.node->start();
  } catch (const std::exception& e) {
    kernel_.fail("node " + to_string(id) + " (" + s.spec.name + ") failed to start: " + e.what());
  }
}

void Simulation::crash(NodeId id) {
  Slot& s = slot(id);
  if (!s.rt) return;
  kernel_.note(TraceTag{TraceKind::crash, id.value, s.incarnation});
  if (lifecycle_observer_) lifecycle_observer_(LifecycleEvent{LifecycleEvent::Kind::crash, now(), id, s.incarnation, {}});
  kernel_.kill_owner(s.rt->owner());
  s.rt->teardown();
  s.node.reset();
  s.rt.reset();
  network_.node_down(id);
}

void Simulation::restart(NodeId id) {
  crash(id);
  start(id);
}

void Simulation::wipe(NodeId id) {
  crash(id);
  kernel_.note(TraceTag{TraceKind::wipe, id.value, slot(id).incarnation});
  if (lifecycle_observer_) {
    lifecycle_observer_(LifecycleEvent{LifecycleEvent::Kind::wipe, now(), id, slot(id).incarnation, {}});
  }
  disks_.wipe(id);
}

void Simulation::at(TimePoint when, std::function<void()> action) {
  kernel_.schedule_at(when, kKernelOwner, TraceTag{TraceKind::callback, 0, 0},
                      [action = std::move(action)] { action(); });
}

bool Simulation::run_until(const std::function<bool()>& done, TimePoint limit) {
  while (!done()) {
    auto next = kernel_.next_event_time();
    if (!next || *next > limit) return kernel_.run_until(limit) && done();
    if (!kernel_.step() && kernel_.failure()) return false;
  }
  return true;
}

bool Simulation::buggify(NodeId node, std::string_view site) {
  if (!config_.buggify) return false;
  auto it = buggify_sites_.find(site);
  if (it == buggify_sites_.end()) {
    it = buggify_sites_.emplace(std::string(site), buggify_rng_.bernoulli(config_.buggify_site_enable_p)).first;
  }
  if (!it->second || !buggify_rng_.bernoulli(config_.buggify_fire_p)) return false;
  kernel_.note(TraceTag{TraceKind::buggify, node.value, fnv1a64(site)});
  return true;
}

void Simulation::log(NodeId node, uint32_t incarnation, LogLevel level, std::string_view message) {
  if (level < config_.log_level) return;
  config_.log_sink(LogLine{kernel_.now(), node, incarnation, level, std::string(message)});
}

Simulation::Arrival Simulation::arrive(NodeId to, uint32_t incarnation, Inbound in) {
  Slot& s = slot(to);
  if (!s.rt || (incarnation != 0 && s.incarnation != incarnation)) return Arrival::node_gone;
  return s.rt->sim_transport().arrive(std::move(in)) ? Arrival::delivered : Arrival::inbox_full;
}

}  // namespace wx::sim
