// Reads the header of an RPC envelope (nodes/rpc/rpc.proto, wire::Frame)
// straight from a frame's bytes, for observers of the simulated network.
//
// The envelope is a protobuf `Frame` whose one field is a `Request` (call id,
// method, time budget, ... payload) or a `Response` (call id, status, ...).
// This reads the protobuf wire format by hand — varints and lengths only —
// so classifying a frame allocates nothing and never copies its payload.
// Anything that is not a well-formed envelope (other nodes' frames, such as
// the echo nodes' pings) is `none`.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <string_view>

namespace wx::sim::report {

struct RpcFrameInfo {
  enum class Kind : uint8_t { none, request, response };
  Kind kind = Kind::none;
  uint64_t call_id = 0;
  std::string_view method;  // request: the method name (a view into the frame)
  int64_t timeout_ns = 0;   // request: the caller's time budget when it was sent
  int32_t status = 0;       // response: wire::StatusCode (0 = OK)
};

RpcFrameInfo classify_rpc_frame(std::string_view frame);

// "OK", "TIMEOUT", ... for a wire::StatusCode; "STATUS_OTHER" for others.
std::string_view rpc_status_name(int32_t status);

}  // namespace wx::sim::report
