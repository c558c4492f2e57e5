// A test node that owns an RPC endpoint (client side) and runs one scripted
// coroutine. The script is stored in the node, so a coroutine lambda's
// captures live as long as the node.
#pragma once

#include <functional>
#include <string_view>

#include "nodes/rpc/endpoint.h"
#include "nodes/runtime/node.h"

namespace wx::testing {

class ScriptCaller final : public Node {
 public:
  using Script = std::function<Task<void>(ScriptCaller&)>;
  ScriptCaller(Runtime& rt, Script script) : rt(rt), endpoint(rt), script_(std::move(script)) {}
  void start() override {
    endpoint.start();
    rt.spawn(script_(*this), "script");
  }
  std::string_view kind() const override { return "caller"; }

  Runtime& rt;
  rpc::RpcEndpoint endpoint;

 private:
  Script script_;
};

}  // namespace wx::testing
