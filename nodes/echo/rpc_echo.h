// The echo service over RPC: the first service behind nodes/rpc.
//
// Methods (specs shared by clients and servers):
//   echo.Echo   — idempotent: returns the payload (after `hold_ns`, if set);
//   echo.Append — NOT idempotent: adds one to a counter persisted on the
//                 server's Disk and returns it. Retrying it would count twice,
//                 which is what makes it the test of "never retried".
// The service cost per call is the server's, set in its config.
#pragma once

#include <string>

#include "nodes/echo/echo.pb.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/runtime/node.h"

namespace wx::echo {

inline constexpr const char* kEchoService = "echo";
inline const rpc::MethodSpec kEchoMethod{"echo.Echo", rpc::Idempotent::yes, Duration::zero()};
inline const rpc::MethodSpec kAppendMethod{"echo.Append", rpc::Idempotent::no, Duration::zero()};

struct RpcEchoConfig {
  rpc::ServerConfig server;
  Duration cost = microseconds(100);  // service cost of each method
  std::string zone;                   // reported in replies
};

class RpcEchoServer final : public Node {
 public:
  RpcEchoServer(Runtime& rt, RpcEchoConfig config);
  void start() override;
  std::string_view kind() const override { return "rpc-echo"; }

  rpc::RpcEndpoint& endpoint() { return endpoint_; }
  uint64_t echoes() const { return echoes_; }
  uint64_t appends_total() const { return appends_total_; }

 private:
  // Member coroutines: their inputs are parameters, copied into the frame.
  Task<rpc::Result<EchoReply>> serve_echo(EchoRequest req);
  Task<rpc::Result<EchoReply>> serve_append();

  Runtime& rt_;
  RpcEchoConfig config_;
  rpc::RpcEndpoint endpoint_;
  uint64_t echoes_ = 0;
  uint64_t appends_total_ = 0;
};

}  // namespace wx::echo
