// Transport: framed messages between nodes, addressed by NodeId.
//
// Semantics (identical in simulation and production, as TCP gives them):
//   * Frames to one peer arrive in the order sent, each whole, or not at all.
//   * There is no acknowledgement. A broken connection (peer crash, partition,
//     overflow, malformed frame) loses whatever was in flight on it; the node
//     learns of it by an Inbound of kind `reset` for that peer — or, when the
//     network just goes silent, only by its own timeouts.
//   * The next send after a reset opens a new connection.
//   * A reset names a peer, not a connection: where two connections to one
//     peer exist (both dialled at once), the break of either is reported.
//   * Resets always reach the inbox, even a full one (they are bounded by the
//     number of connections); frames beyond inbox_frames_max break their
//     connection instead.
// A frame is opaque bytes (protobuf in practice) of at most frame_bytes_max;
// an empty frame is legal (an empty protobuf message serialises to nothing).
//
// Addressing: in simulation every node of the cluster can be sent to; in
// production, the peers in the node's address table, plus any node while a
// connection it dialled in is up (a client without a listening address).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "nodes/runtime/channel.h"
#include "nodes/runtime/node.h"

namespace wx {

// Frames larger than this are refused by send() and, on the wire, close the
// connection that carries them.
constexpr size_t kFrameBytesMaxDefault = 4u << 20;
// Received frames waiting for the node; overflow breaks that connection.
constexpr size_t kInboxFramesMaxDefault = 1u << 16;

struct Inbound {
  enum class Kind : uint8_t { frame, reset };
  Kind kind = Kind::frame;
  NodeId peer;
  std::string data;  // empty for resets
};

enum class SendStatus : uint8_t { ok, frame_too_large, unknown_peer, to_self };
std::string_view to_string(SendStatus s);

class Transport {
 public:
  Transport(Runtime& rt, size_t frame_bytes_max, size_t inbox_frames_max)
      : frame_bytes_max_(frame_bytes_max), inbox_(rt, inbox_frames_max) {}
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  virtual ~Transport() = default;

  // Queues `frame` for `to`. Never blocks. `ok` means only "handed to the
  // network", not "delivered".
  [[nodiscard]] virtual SendStatus send(NodeId to, std::string frame) = 0;

  // co_await transport.receive(): the next frame or reset, in arrival order.
  Channel<Inbound>::PopAwaiter receive() { return inbox_.pop(); }

  size_t frame_bytes_max() const { return frame_bytes_max_; }
  size_t inbox_size() const { return inbox_.size(); }

 protected:
  // For implementations: hands an arrival to the node. False when a frame
  // finds the inbox full; the caller must then break that connection (whose
  // reset, like every reset, is always accepted).
  [[nodiscard]] bool deliver(Inbound in) {
    if (in.kind == Inbound::Kind::reset) {
      inbox_.push_unbounded(std::move(in));
      return true;
    }
    return inbox_.push(std::move(in));
  }

 private:
  size_t frame_bytes_max_;
  Channel<Inbound> inbox_;
};

}  // namespace wx
