// A test node shared by the network tests: it logs every arrival (frame or
// reset) with its local arrival time, and does nothing else.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/runtime/runtime.h"
#include "nodes/runtime/transport.h"

namespace wx::sim::testing {

struct Arrival {
  TimePoint at;
  Inbound::Kind kind;
  uint32_t peer;
  std::string data;
};

class Recorder final : public Node {
 public:
  Recorder(Runtime& rt, std::vector<Arrival>* log) : rt_(rt), log_(log) {}
  std::string_view kind() const override { return "recorder"; }
  void start() override { rt_.spawn(loop(), "recv"); }

 private:
  Task<void> loop() {
    for (;;) {
      Inbound in = co_await rt_.transport().receive();
      log_->push_back({rt_.now(), in.kind, in.peer.value, in.data});
    }
  }
  Runtime& rt_;
  std::vector<Arrival>* log_;
};

}  // namespace wx::sim::testing
