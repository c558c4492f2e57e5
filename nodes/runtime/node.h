// Node identity and the node interface.
//
// A node is one process-like unit of a cluster (an access, logic or storage
// server, or a client). It is constructed with the Runtime of one incarnation
// and lives exactly as long as that incarnation: a crash destroys it (after
// every coroutine it spawned has been destroyed); a restart constructs a new
// object with a new Runtime and the same Disk.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace wx {

class Runtime;

struct NodeId {
  uint32_t value = 0;
  constexpr auto operator<=>(const NodeId&) const = default;
};
inline std::string to_string(NodeId id) { return "n" + std::to_string(id.value); }

class Node {
 public:
  virtual ~Node() = default;
  // Called once, right after construction. Typically spawns the node's
  // long-running coroutines with Runtime::spawn and returns.
  virtual void start() = 0;
  // A short name of the node's role ("echo", "ping", ...), used in logs.
  virtual std::string_view kind() const = 0;
};

using NodeFactory = std::function<std::unique_ptr<Node>(Runtime&)>;

}  // namespace wx

template <>
struct std::hash<wx::NodeId> {
  size_t operator()(wx::NodeId id) const noexcept { return std::hash<uint32_t>()(id.value); }
};
