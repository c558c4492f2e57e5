#include "nodes/echo/echo_node.h"

#include "nodes/echo/echo.pb.h"
#include "nodes/runtime/disk.h"
#include "nodes/runtime/transport.h"

namespace wx::echo {

// --- EchoServer -------------------------------------------------------------

void EchoServer::start() {
  sqlite::Database& db = rt_.disk().db();
  db.exec(
      "CREATE TABLE IF NOT EXISTS echo_stats (id INTEGER PRIMARY KEY CHECK (id = 1), served INTEGER NOT NULL);"
      "INSERT OR IGNORE INTO echo_stats (id, served) VALUES (1, 0);");
  sqlite::Statement q = db.prepare("SELECT served FROM echo_stats WHERE id = 1");
  if (q.step()) served_total_ = static_cast<uint64_t>(q.column_int64(0));
  rt_.info("echo server up, served_total={}", served_total_);
  rt_.spawn(serve(), "echo.serve");
}

uint64_t EchoServer::bump_served() {
  sqlite::Database& db = rt_.disk().db();
  sqlite::Statement up = db.prepare("UPDATE echo_stats SET served = served + 1 WHERE id = 1");
  up.run();
  return ++served_total_;
}

Task<void> EchoServer::serve() {
  Transport& net = rt_.transport();
  for (;;) {
    Inbound in = co_await net.receive();
    if (in.kind != Inbound::Kind::frame) continue;  // a client went away; nothing to clean up
    EchoFrame frame;
    if (!frame.ParseFromString(in.data) || !frame.has_ping()) {
      ++malformed_;
      rt_.warn("malformed echo frame ({} bytes) from {}", in.data.size(), to_string(in.peer));
      continue;
    }
    const Ping& ping = frame.ping();
    EchoFrame reply;
    Pong* pong = reply.mutable_pong();
    pong->set_seq(ping.seq());
    pong->set_sent_at_ns(ping.sent_at_ns());
    pong->set_served_total(bump_served());
    pong->set_payload(ping.payload());
    SendStatus st = net.send(in.peer, reply.SerializeAsString());
    if (st != SendStatus::ok) rt_.warn("pong to {} not sent: {}", to_string(in.peer), to_string(st));
  }
}

// --- Pinger -----------------------------------------------------------------

void Pinger::start() {
  if (config_.targets.empty()) {
    rt_.warn("pinger has no targets");
    sending_done_ = true;
    maybe_finish();
    return;
  }
  rt_.spawn(receive_loop(), "ping.receive");
  rt_.spawn(send_loop(), "ping.send");
}

Task<void> Pinger::send_loop() {
  if (config_.start_delay > Duration::zero()) co_await rt_.sleep(config_.start_delay);
  Transport& net = rt_.transport();
  const std::string payload(config_.payload_bytes, 'x');
  size_t next_target = 0;
  while (config_.count_max == 0 || stats_.sent < config_.count_max) {
    const NodeId target = config_.targets[next_target];
    next_target = (next_target + 1) % config_.targets.size();
    const uint64_t seq = next_seq_++;
    const TimePoint sent_at = rt_.now();
    EchoFrame frame;
    Ping* ping = frame.mutable_ping();
    ping->set_seq(seq);
    ping->set_sent_at_ns(sent_at.ns());
    ping->set_payload(payload);
    ++stats_.sent;
    const TimerId timer =
        rt_.call_after(config_.timeout, [this, seq] { complete(seq, PingOutcome::Result::timeout); });
    outstanding_.emplace(seq, Outstanding{target, sent_at, timer});
    SendStatus st = net.send(target, frame.SerializeAsString());
    if (st != SendStatus::ok) {
      rt_.warn("ping to {} not sent: {}", to_string(target), to_string(st));
      complete(seq, PingOutcome::Result::send_failed);
    }
    co_await rt_.sleep(config_.interval);
  }
  sending_done_ = true;
  maybe_finish();
}

Task<void> Pinger::receive_loop() {
  Transport& net = rt_.transport();
  for (;;) {
    Inbound in = co_await net.receive();
    if (in.kind == Inbound::Kind::reset) {
      // Every ping in flight to that peer is lost with its connection.
      std::vector<uint64_t> lost;
      for (const auto& [seq, o] : outstanding_) {
        if (o.target == in.peer) lost.push_back(seq);
      }
      for (uint64_t seq : lost) complete(seq, PingOutcome::Result::reset);
      continue;
    }
    EchoFrame frame;
    if (!frame.ParseFromString(in.data) || !frame.has_pong()) {
      ++stats_.malformed;
      rt_.warn("malformed frame ({} bytes) from {}", in.data.size(), to_string(in.peer));
      continue;
    }
    const Pong& pong = frame.pong();
    auto it = outstanding_.find(pong.seq());
    if (it == outstanding_.end() || it->second.target != in.peer) continue;  // late: already timed out
    stats_.last_served_total = pong.served_total();
    complete(pong.seq(), PingOutcome::Result::ok);
  }
}

void Pinger::complete(uint64_t seq, PingOutcome::Result result) {
  auto it = outstanding_.find(seq);
  if (it == outstanding_.end()) return;
  const Outstanding o = it->second;
  outstanding_.erase(it);
  if (result != PingOutcome::Result::timeout) rt_.cancel(o.timeout_timer);
  switch (result) {
    case PingOutcome::Result::ok: ++stats_.ok; break;
    case PingOutcome::Result::timeout: ++stats_.timeouts; break;
    case PingOutcome::Result::reset: ++stats_.resets; break;
    case PingOutcome::Result::send_failed: ++stats_.send_failed; break;
  }
  if (outcomes_.size() < kOutcomesKeptMax) {
    outcomes_.push_back(PingOutcome{o.target, o.sent_at, result,
                                    result == PingOutcome::Result::ok ? rt_.now() - o.sent_at
                                                                      : Duration::zero()});
  }
  maybe_finish();
}

void Pinger::maybe_finish() {
  if (finished_ || !sending_done_ || !outstanding_.empty()) return;
  finished_ = true;
  rt_.info("pinger finished: sent={} ok={} timeouts={} resets={}", stats_.sent, stats_.ok,
           stats_.timeouts, stats_.resets);
  if (config_.on_finished) config_.on_finished();
}

}  // namespace wx::echo
