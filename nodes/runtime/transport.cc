#include "nodes/runtime/transport.h"

namespace wx {

std::string_view to_string(SendStatus s) {
  switch (s) {
    case SendStatus::ok: return "ok";
    case SendStatus::frame_too_large: return "frame_too_large";
    case SendStatus::unknown_peer: return "unknown_peer";
    case SendStatus::to_self: return "to_self";
  }
  return "?";
}

}  // namespace wx
