#include "nodes/rpc/status.h"

namespace wx::rpc {

std::string_view to_string(StatusCode code) {
  switch (code) {
    case StatusCode::ok: return "ok";
    case StatusCode::timeout: return "timeout";
    case StatusCode::unavailable: return "unavailable";
    case StatusCode::overloaded: return "overloaded";
    case StatusCode::unauthenticated: return "unauthenticated";
    case StatusCode::invalid_argument: return "invalid_argument";
    case StatusCode::internal: return "internal";
    case StatusCode::not_found: return "not_found";
  }
  return "?";
}

std::string Status::to_string() const {
  std::string s(rpc::to_string(code));
  if (!message.empty()) s += ": " + message;
  return s;
}

}  // namespace wx::rpc
