#include "nodes/storage/kv/kv_client.h"

#include <algorithm>

namespace wx::kv {

KvClient::KvClient(Runtime& rt, rpc::RpcEndpoint& endpoint, KvClientConfig config)
    : rt_(rt), endpoint_(endpoint), config_(std::move(config)) {
  if (config_.client_id == 0) config_.client_id = rt_.rng().next_u64() | 1;
}

template <class Resp>
Task<std::optional<Resp>> KvClient::call_leader(rpc::MethodSpec spec, std::string payload, int* attempts) {
  TimePoint deadline = rt_.now() + config_.call_timeout;
  const size_t n = config_.replicas.size();
  while (rt_.now() < deadline) {
    rpc::CallOptions opts;
    opts.timeout = std::min(config_.attempt_timeout, deadline - rt_.now());
    ++*attempts;
    rpc::Result<std::string> raw = co_await endpoint_.call_raw(config_.replicas[leader_], spec, payload, opts);
    std::optional<Resp> r;
    if (raw.ok()) {
      r.emplace();
      if (!r->ParseFromString(raw.value())) r.reset();
    }
    if (r) {
      Code code = r->code();
      if (code == NOT_LEADER && r->leader_hint() >= 1 && r->leader_hint() <= n &&
          r->leader_hint() - 1 != leader_) {
        leader_ = r->leader_hint() - 1;
        continue;  // straight to the hinted leader
      }
      if (code != NOT_LEADER && code != RETRY) co_return std::move(*r);
      if (code == RETRY && r->leader_hint() >= 1 && r->leader_hint() <= n) {
        leader_ = r->leader_hint() - 1;
      } else {
        leader_ = (leader_ + 1) % n;
      }
    } else {
      leader_ = (leader_ + 1) % n;
    }
    if (rt_.now() + config_.retry_backoff >= deadline) break;
    co_await rt_.sleep(config_.retry_backoff);
  }
  co_return std::nullopt;
}


Task<KvResult> KvClient::get(std::string key) {
  GetRequest req;
  req.set_key(std::move(key));
  KvResult out;
  std::optional<GetReply> r = co_await call_leader<GetReply>(kGetMethod, req.SerializeAsString(), &out.attempts);
  if (!r || r->code() != OK) co_return out;
  out.code = KvResultCode::ok;
  out.found = r->found();
  out.value = r->value();
  out.version = r->version();
  co_return out;
}

Task<KvResult> KvClient::write(rpc::MethodSpec spec, Command cmd) {
  cmd.set_client_id(config_.client_id);
  cmd.set_seq(next_seq_++);
  WriteRequest req;
  *req.mutable_command() = std::move(cmd);
  KvResult out;
  std::optional<WriteReply> r = co_await call_leader<WriteReply>(spec, req.SerializeAsString(), &out.attempts);
  if (!r) co_return out;
  if (r->code() == OK) {
    out.code = KvResultCode::ok;
    out.version = r->version();
  } else if (r->code() == CAS_FAILED) {
    out.code = KvResultCode::cas_failed;
    out.version = r->version();
  }
  // STALE: cannot happen for a sequential client; unknown is the safe answer.
  co_return out;
}

Task<KvResult> KvClient::put(std::string key, std::string value) {
  Command cmd;
  cmd.set_kind(Command::PUT);
  cmd.set_key(std::move(key));
  cmd.set_value(std::move(value));
  return write(kPutMethod, std::move(cmd));
}

Task<KvResult> KvClient::cas(std::string key, uint64_t expected_version, std::string value) {
  Command cmd;
  cmd.set_kind(Command::CAS);
  cmd.set_key(std::move(key));
  cmd.set_value(std::move(value));
  cmd.set_expected_version(expected_version);
  return write(kCasMethod, std::move(cmd));
}

Task<KvTxnResult> KvClient::txn(std::vector<KvTxnCondition> conditions, std::vector<KvTxnWrite> writes) {
  Command cmd;
  cmd.set_kind(Command::TXN);
  for (KvTxnCondition& c : conditions) {
    TxnCondition* tc = cmd.add_conditions();
    tc->set_key(std::move(c.key));
    tc->set_expected_version(c.expected_version);
  }
  for (KvTxnWrite& w : writes) {
    TxnWrite* tw = cmd.add_writes();
    tw->set_key(std::move(w.key));
    tw->set_value(std::move(w.value));
  }
  KvTxnResult out;
  if (std::string err = validate_txn(cmd); !err.empty()) {
    out.code = KvTxnCode::invalid;  // no request id spent: nothing is fenced
    out.error = std::move(err);
    co_return out;
  }
  cmd.set_client_id(config_.client_id);
  cmd.set_seq(next_seq_++);
  WriteRequest req;
  *req.mutable_command() = std::move(cmd);
  std::optional<TxnReply> r = co_await call_leader<TxnReply>(kTxnMethod, req.SerializeAsString(), &out.attempts);
  if (!r) co_return out;
  const TxnOutcome& o = r->outcome();
  switch (r->code()) {
    case OK:
      out.code = KvTxnCode::ok;
      out.write_versions.assign(o.write_versions().begin(), o.write_versions().end());
      out.condition_versions.assign(o.condition_versions().begin(), o.condition_versions().end());
      break;
    case TXN_FAILED:
      out.code = KvTxnCode::conditions_failed;
      out.condition_versions.assign(o.condition_versions().begin(), o.condition_versions().end());
      out.failed_conditions.assign(o.failed_conditions().begin(), o.failed_conditions().end());
      break;
    case INVALID:
      out.code = KvTxnCode::invalid;
      out.error = r->error();
      break;
    default:
      // STALE: cannot happen for a sequential client; unknown is the safe answer.
      break;
  }
  co_return out;
}

Task<KvReplicateResult> KvClient::replicate(std::vector<VersionedWrite> writes, std::string cursor_key,
                                            uint64_t cursor_index) {
  Command cmd;
  cmd.set_kind(Command::REPLICATE);
  for (VersionedWrite& w : writes) *cmd.add_replicated() = std::move(w);
  cmd.set_cursor_key(std::move(cursor_key));
  cmd.set_cursor_index(cursor_index);
  KvReplicateResult out;
  if (std::string err = validate_replicate(cmd); !err.empty()) {
    out.code = KvReplicateCode::invalid;
    out.error = std::move(err);
    co_return out;
  }
  cmd.set_client_id(config_.client_id);
  cmd.set_seq(next_seq_++);
  WriteRequest req;
  *req.mutable_command() = std::move(cmd);
  std::optional<WriteReply> r =
      co_await call_leader<WriteReply>(kReplicateMethod, req.SerializeAsString(), &out.attempts);
  if (!r) co_return out;
  if (r->code() == OK) {
    out.code = KvReplicateCode::ok;
    out.applied_writes = r->version();
  } else if (r->code() == INVALID) {
    out.code = KvReplicateCode::invalid;
  }
  co_return out;
}

Task<KvScanResult> KvClient::scan(std::string prefix, std::string from, std::string to, uint32_t limit) {
  ScanRequest req;
  req.set_prefix(std::move(prefix));
  req.set_from(std::move(from));
  req.set_to(std::move(to));
  req.set_limit(limit);
  KvScanResult out;
  int attempts = 0;
  std::optional<ScanReply> r = co_await call_leader<ScanReply>(kScanMethod, req.SerializeAsString(), &attempts);
  if (!r || r->code() != OK) co_return out;
  out.code = KvResultCode::ok;
  out.items.assign(r->items().begin(), r->items().end());
  co_return out;
}

}  // namespace wx::kv
