#include "nodes/echo/rpc_echo.h"

#include "nodes/echo/echo.pb.h"
#include "nodes/runtime/disk.h"

namespace wx::echo {

RpcEchoServer::RpcEchoServer(Runtime& rt, RpcEchoConfig config)
    : rt_(rt), config_(std::move(config)), endpoint_(rt, config_.server) {}

void RpcEchoServer::start() {
  sqlite::Database& db = rt_.disk().db();
  db.exec(
      "CREATE TABLE IF NOT EXISTS echo_appends (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);"
      "INSERT OR IGNORE INTO echo_appends (id, n) VALUES (1, 0);");
  {
    sqlite::Statement q = db.prepare("SELECT n FROM echo_appends WHERE id = 1");
    if (q.step()) appends_total_ = static_cast<uint64_t>(q.column_int64(0));
  }

  rpc::MethodSpec echo = kEchoMethod, append = kAppendMethod;
  echo.cost = append.cost = config_.cost;

  endpoint_.register_method<EchoRequest, EchoReply>(
      echo, [this](rpc::CallContext, EchoRequest req) -> Task<rpc::Result<EchoReply>> {
        return serve_echo(std::move(req));
      });
  endpoint_.register_method<EchoRequest, EchoReply>(
      append, [this](rpc::CallContext, EchoRequest) -> Task<rpc::Result<EchoReply>> { return serve_append(); });
  endpoint_.start();
}

Task<rpc::Result<EchoReply>> RpcEchoServer::serve_echo(EchoRequest req) {
  if (req.hold_ns() > 0) co_await rt_.sleep(nanoseconds(req.hold_ns()));
  ++echoes_;
  EchoReply reply;
  reply.set_payload(std::move(*req.mutable_payload()));
  reply.set_zone(config_.zone);
  co_return reply;
}

Task<rpc::Result<EchoReply>> RpcEchoServer::serve_append() {
  sqlite::Database& db = rt_.disk().db();
  db.prepare("UPDATE echo_appends SET n = n + 1 WHERE id = 1").run();
  ++appends_total_;
  EchoReply reply;
  reply.set_zone(config_.zone);
  reply.set_count(appends_total_);
  co_return reply;
}

}  // namespace wx::echo
