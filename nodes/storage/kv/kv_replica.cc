#include "nodes/storage/kv/kv_replica.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <stdexcept>

#include "nodes/runtime/disk.h"
#include "nodes/storage/paxos/codec.h"

namespace wx::kv {

namespace {

int64_t to_i64(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t to_u64(int64_t v) { return static_cast<uint64_t>(v); }

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS kv_group (id INTEGER PRIMARY KEY CHECK (id = 1));"
    "CREATE TABLE IF NOT EXISTS paxos_hard (id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  round INTEGER NOT NULL, replica INTEGER NOT NULL, commit_index INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS paxos_log (idx INTEGER PRIMARY KEY, round INTEGER NOT NULL,"
    "  replica INTEGER NOT NULL, command BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kv_applied (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kv_data (key BLOB PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kv_sessions (client_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL,"
    "  code INTEGER NOT NULL, version INTEGER NOT NULL);"
    // The full result of a client's last TXN (a TxnOutcome), for a retry of
    // the same request id; kv_sessions stays the authority on the seq.
    "CREATE TABLE IF NOT EXISTS kv_txn_results (client_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL,"
    "  outcome BLOB NOT NULL);"
    // The change stream: the writes of each applied local-origin command, by
    // log index (idx) and position in the command (pos); at_ns is the
    // applying replica's clock. kv_changes_floor: the highest idx trimmed.
    "CREATE TABLE IF NOT EXISTS kv_changes (idx INTEGER NOT NULL, pos INTEGER NOT NULL, key BLOB NOT NULL,"
    "  value BLOB NOT NULL, version INTEGER NOT NULL, at_ns INTEGER NOT NULL, PRIMARY KEY (idx, pos));"
    "CREATE TABLE IF NOT EXISTS kv_changes_floor (id INTEGER PRIMARY KEY CHECK (id = 1), floor INTEGER NOT NULL);";

// The version of `key` in the state machine (0: absent).
uint64_t version_of(sqlite::Database& db, const std::string& key) {
  sqlite::Statement q = db.prepare("SELECT version FROM kv_data WHERE key = ?");
  q.bind_blob(1, key);
  uint64_t v = q.step() ? to_u64(q.column_int64(0)) : 0;
  q.reset();
  return v;
}

void write_key(sqlite::Database& db, const std::string& key, const std::string& value, uint64_t version) {
  db.prepare("INSERT OR REPLACE INTO kv_data (key, value, version) VALUES (?, ?, ?)")
      .bind_blob(1, key)
      .bind_blob(2, value)
      .bind(3, to_i64(version))
      .run();
}

// Erases the map entry on destruction (also when a crash destroys the frame).
template <class Map, class It>
struct EraseGuard {
  Map& map;
  It it;
  ~EraseGuard() { map.erase(it); }
};

}  // namespace

std::string validate_txn(const Command& cmd) {
  const size_t nc = static_cast<size_t>(cmd.conditions_size());
  const size_t nw = static_cast<size_t>(cmd.writes_size());
  if (nw == 0) return "a txn needs at least one write";
  if (nw > kTxnWritesMax) return "txn has " + std::to_string(nw) + " writes, more than " + std::to_string(kTxnWritesMax);
  if (nc > kTxnConditionsMax)
    return "txn has " + std::to_string(nc) + " conditions, more than " + std::to_string(kTxnConditionsMax);
  size_t bytes = 0;
  auto check_key = [](const std::string& key, const char* what, size_t i) -> std::string {
    if (key.empty()) return std::string(what) + " " + std::to_string(i) + ": empty key";
    if (key.size() > kKeyBytesMax) {
      return std::string(what) + " " + std::to_string(i) + ": key of " + std::to_string(key.size()) +
             " bytes, more than " + std::to_string(kKeyBytesMax);
    }
    return {};
  };
  for (size_t i = 0; i < nc; ++i) {
    const std::string& key = cmd.conditions(static_cast<int>(i)).key();
    if (std::string e = check_key(key, "condition", i); !e.empty()) return e;
    for (size_t j = 0; j < i; ++j) {
      if (cmd.conditions(static_cast<int>(j)).key() == key)
        return "condition " + std::to_string(i) + ": key repeated (condition " + std::to_string(j) + ")";
    }
    bytes += key.size();
  }
  for (size_t i = 0; i < nw; ++i) {
    const TxnWrite& w = cmd.writes(static_cast<int>(i));
    if (std::string e = check_key(w.key(), "write", i); !e.empty()) return e;
    for (size_t j = 0; j < i; ++j) {
      if (cmd.writes(static_cast<int>(j)).key() == w.key())
        return "write " + std::to_string(i) + ": key repeated (write " + std::to_string(j) + ")";
    }
    bytes += w.key().size() + w.value().size();
  }
  if (bytes > kTxnBytesMax)
    return "txn carries " + std::to_string(bytes) + " bytes of keys and values, more than " +
           std::to_string(kTxnBytesMax);
  return {};
}

std::string validate_replicate(const Command& cmd) {
  const size_t nw = static_cast<size_t>(cmd.replicated_size());
  if (nw == 0 && cmd.cursor_key().empty()) return "a replicate needs a write or a cursor";
  if (nw > kReplicateWritesMax)
    return "replicate has " + std::to_string(nw) + " writes, more than " + std::to_string(kReplicateWritesMax);
  if (cmd.cursor_key().size() > kKeyBytesMax) return "cursor key too long";
  size_t bytes = cmd.cursor_key().size();
  for (size_t i = 0; i < nw; ++i) {
    const VersionedWrite& w = cmd.replicated(static_cast<int>(i));
    if (w.key().empty()) return "write " + std::to_string(i) + ": empty key";
    if (w.key().size() > kKeyBytesMax) return "write " + std::to_string(i) + ": key too long";
    if (w.version() == 0) return "write " + std::to_string(i) + ": version 0";
    if (w.key() == cmd.cursor_key()) return "write " + std::to_string(i) + ": the cursor key";
    for (size_t j = 0; j < i; ++j) {
      if (cmd.replicated(static_cast<int>(j)).key() == w.key())
        return "write " + std::to_string(i) + ": key repeated (write " + std::to_string(j) + ")";
    }
    bytes += w.key().size() + w.value().size();
  }
  if (bytes > kReplicateBytesMax)
    return "replicate carries " + std::to_string(bytes) + " bytes, more than " + std::to_string(kReplicateBytesMax);
  return {};
}

KvReplica::KvReplica(Runtime& rt, KvReplicaConfig config)
    : rt_(rt), config_(std::move(config)), endpoint_(rt, config_.server) {
  if (config_.self_index >= config_.members.size()) throw std::invalid_argument("KvReplicaConfig::self_index");
  for (size_t i = 0; i < config_.members.size(); ++i) {
    peer_queues_.emplace_back();
    peer_signals_.push_back(std::make_unique<Channel<bool>>(rt_, 1));
  }
}

KvReplica::~KvReplica() = default;

void KvReplica::open_storage(paxos::HardState& hs, std::vector<paxos::Entry>& log) {
  sqlite::Database& db = rt_.disk().db();
  db.exec(kSchema);
  {
    sqlite::Statement q = db.prepare("SELECT COUNT(*) FROM kv_group");
    initialized_ = q.step() && q.column_int64(0) > 0;
  }
  {
    sqlite::Statement q = db.prepare("SELECT round, replica, commit_index FROM paxos_hard WHERE id = 1");
    if (q.step()) {
      hs.promised.round = to_u64(q.column_int64(0));
      hs.promised.replica = static_cast<paxos::ReplicaId>(q.column_int64(1));
      hs.commit_index = to_u64(q.column_int64(2));
    }
  }
  {
    sqlite::Statement q = db.prepare("SELECT idx, round, replica, command FROM paxos_log ORDER BY idx");
    while (q.step()) {
      paxos::Entry e;
      e.index = to_u64(q.column_int64(0));
      e.ballot.round = to_u64(q.column_int64(1));
      e.ballot.replica = static_cast<paxos::ReplicaId>(q.column_int64(2));
      e.command = q.column_blob(3);
      log.push_back(std::move(e));
    }
  }
  {
    sqlite::Statement q = db.prepare("SELECT idx FROM kv_applied WHERE id = 1");
    if (q.step()) applied_index_ = to_u64(q.column_int64(0));
  }
  {
    sqlite::Statement q = db.prepare("SELECT floor FROM kv_changes_floor WHERE id = 1");
    if (q.step()) change_floor_ = to_u64(q.column_int64(0));
  }
}

void KvReplica::start() {
  paxos::HardState hs;
  std::vector<paxos::Entry> log;
  open_storage(hs, log);
  paxos::Config pc = config_.paxos;
  pc.self = static_cast<paxos::ReplicaId>(config_.self_index + 1);
  pc.members.clear();
  for (size_t i = 0; i < config_.members.size(); ++i) pc.members.push_back(static_cast<paxos::ReplicaId>(i + 1));
  pc.applied_index = applied_index_;
  if (!initialized_) {
    if (config_.bootstrap) {
      // A member of a brand-new group: mark the disk as belonging to it.
      rt_.disk().db().exec("INSERT OR IGNORE INTO kv_group (id) VALUES (1)");
      initialized_ = true;
    } else {
      // The group exists but this disk holds nothing of it: it was lost.
      // The marker is written once recovery has finished (persist_and_apply).
      pc.recovering = true;
      rt_.warn("kv: no group marker on disk and not bootstrapping: recovering from peers");
    }
  }
  replica_ = std::make_unique<paxos::Replica>(pc, hs, std::move(log), rt_.rng().next_u64());

  endpoint_.register_method<StepRequest, StepReply>(
      kStepMethod,
      [this](rpc::CallContext, StepRequest req) -> Task<rpc::Result<StepReply>> { return serve_step(std::move(req)); });
  endpoint_.register_method<WriteRequest, WriteReply>(
      kPutMethod, [this](rpc::CallContext ctx, WriteRequest req) -> Task<rpc::Result<WriteReply>> {
        return serve_write(std::move(ctx), std::move(req), Command::PUT);
      });
  endpoint_.register_method<WriteRequest, WriteReply>(
      kCasMethod, [this](rpc::CallContext ctx, WriteRequest req) -> Task<rpc::Result<WriteReply>> {
        return serve_write(std::move(ctx), std::move(req), Command::CAS);
      });
  endpoint_.register_method<WriteRequest, TxnReply>(
      kTxnMethod, [this](rpc::CallContext ctx, WriteRequest req) -> Task<rpc::Result<TxnReply>> {
        return serve_txn(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<WriteRequest, WriteReply>(
      kReplicateMethod, [this](rpc::CallContext ctx, WriteRequest req) -> Task<rpc::Result<WriteReply>> {
        return serve_replicate(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<ChangesRequest, ChangesReply>(
      kChangesMethod,
      [this](rpc::CallContext, ChangesRequest req) -> Task<rpc::Result<ChangesReply>> {
        return serve_changes(std::move(req));
      });
  endpoint_.register_method<GetRequest, GetReply>(
      kGetMethod, [this](rpc::CallContext ctx, GetRequest req) -> Task<rpc::Result<GetReply>> {
        return serve_get(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<ScanRequest, ScanReply>(
      kScanMethod, [this](rpc::CallContext ctx, ScanRequest req) -> Task<rpc::Result<ScanReply>> {
        return serve_scan(std::move(ctx), std::move(req));
      });
  endpoint_.start();
  for (size_t i = 0; i < config_.members.size(); ++i) {
    if (i != config_.self_index) rt_.spawn(send_loop(i), "kv.send");
  }
  rt_.spawn(tick_loop(), "kv.tick");
  pump();
}

// --- the Ready loop -----------------------------------------------------------

void KvReplica::pump() {
  while (replica_->has_ready()) {
    paxos::Ready rd = replica_->ready();
    persist_and_apply(rd);  // 1. durable (and 3. applied) in one transaction ...
    for (const paxos::Message& m : rd.messages) send(m);  // 2. ... before anything is sent
    for (const paxos::ReadState& rs : rd.reads) {
      auto it = pending_reads_.find(rs.request_id);
      if (it == pending_reads_.end()) continue;  // its handler gave up
      if (!rs.ok) {
        (void)it->second->wake->push(Wake{RETRY, 0, {}});
        pending_reads_.erase(it);
        continue;
      }
      it->second->index = rs.index;
      it->second->have_index = true;
    }
    replica_->advance();
    serve_reads();
  }
  bool leader = replica_->is_leader();
  if (was_leader_ && !leader) on_leadership_lost();
  was_leader_ = leader;
}

void KvReplica::notify_persisted(const std::vector<paxos::Entry>& entries) {
  std::vector<std::string> keys;
  for (const paxos::Entry& e : entries) {
    if (e.is_noop()) continue;
    Command cmd;
    if (!cmd.ParseFromString(e.command)) continue;
    if (cmd.kind() == Command::TXN) {
      for (const auto& w : cmd.writes()) keys.push_back(w.key());
    } else if (cmd.kind() == Command::REPLICATE) {
      for (const auto& w : cmd.replicated()) keys.push_back(w.key());
      if (!cmd.cursor_key().empty()) keys.push_back(cmd.cursor_key());
    } else {
      keys.push_back(cmd.key());
    }
  }
  if (!keys.empty()) config_.persisted_observer(rt_.node_id(), keys);
}

void KvReplica::persist_and_apply(const paxos::Ready& rd) {
  bool finish_marker = !initialized_ && !replica_->recovering();
  if (!rd.hard_state && rd.entries_to_persist.empty() && rd.committed.empty() && !finish_marker) return;
  sqlite::Database& db = rt_.disk().db();
  db.exec("BEGIN IMMEDIATE");
  try {
    if (rd.hard_state) {
      db.prepare("INSERT OR REPLACE INTO paxos_hard (id, round, replica, commit_index) VALUES (1, ?, ?, ?)")
          .bind(1, to_i64(rd.hard_state->promised.round))
          .bind(2, static_cast<int64_t>(rd.hard_state->promised.replica))
          .bind(3, to_i64(rd.hard_state->commit_index))
          .run();
    }
    if (!rd.entries_to_persist.empty()) {
      sqlite::Statement ins =
          db.prepare("INSERT OR REPLACE INTO paxos_log (idx, round, replica, command) VALUES (?, ?, ?, ?)");
      for (const paxos::Entry& e : rd.entries_to_persist) {
        ins.bind(1, to_i64(e.index)).bind(2, to_i64(e.ballot.round));
        ins.bind(3, static_cast<int64_t>(e.ballot.replica)).bind_blob(4, e.command);
        ins.run();
        ins.reset();
      }
    }
    if (finish_marker) db.exec("INSERT OR IGNORE INTO kv_group (id) VALUES (1)");
    std::vector<std::pair<Command, Wake>> results;
    for (const paxos::Entry& e : rd.committed) {
      assert(e.index == applied_index_ + 1);
      applied_index_ = e.index;
      if (e.is_noop()) continue;
      Command cmd;
      if (!cmd.ParseFromString(e.command)) {
        rt_.error("kv: committed entry {} does not parse; skipped", e.index);
        continue;
      }
      entry_changes_.clear();
      Wake w = apply_command(cmd);
      if (!entry_changes_.empty() && config_.change_retention > 0) {
        sqlite::Statement ins = db.prepare(
            "INSERT OR REPLACE INTO kv_changes (idx, pos, key, value, version, at_ns) VALUES (?, ?, ?, ?, ?, ?)");
        for (size_t pos = 0; pos < entry_changes_.size(); ++pos) {
          const VersionedWrite& c = entry_changes_[pos];
          ins.bind(1, to_i64(e.index)).bind(2, static_cast<int64_t>(pos)).bind_blob(3, c.key());
          ins.bind_blob(4, c.value()).bind(5, to_i64(c.version())).bind(6, rt_.now().ns());
          ins.run();
          ins.reset();
        }
      }
      entry_changes_.clear();
      results.emplace_back(std::move(cmd), w);
    }
    if (!rd.committed.empty()) {
      db.prepare("INSERT OR REPLACE INTO kv_applied (id, idx) VALUES (1, ?)").bind(1, to_i64(applied_index_)).run();
      trim_changes();
    }
    db.exec("COMMIT");
    if (finish_marker) initialized_ = true;
    if (config_.persisted_observer && !rd.entries_to_persist.empty()) notify_persisted(rd.entries_to_persist);
    // Answer the writers waiting on this replica.
    for (const auto& [cmd, w] : results) {
      auto [lo, hi] = pending_writes_.equal_range(cmd.client_id());
      for (auto it = lo; it != hi; ++it) {
        if (it->second->seq != cmd.seq()) continue;
        (void)it->second->wake->push(w);
        it->second->index = 0;
      }
    }
    // A proposal whose slot was applied with another command lost it.
    for (auto& [client, pw] : pending_writes_) {
      if (pw->index != 0 && pw->index <= applied_index_) {
        (void)pw->wake->push(Wake{RETRY, 0, {}});
        pw->index = 0;
      }
    }
  } catch (...) {
    db.exec("ROLLBACK");
    throw;
  }
}

KvReplica::Wake KvReplica::apply_command(const Command& cmd) {
  sqlite::Database& db = rt_.disk().db();
  {
    sqlite::Statement q = db.prepare("SELECT seq, code, version FROM kv_sessions WHERE client_id = ?");
    q.bind(1, to_i64(cmd.client_id()));
    if (q.step()) {
      uint64_t seq = to_u64(q.column_int64(0));
      if (cmd.seq() == seq) {
        Wake w{static_cast<Code>(q.column_int64(1)), to_u64(q.column_int64(2)), {}};
        if (cmd.kind() == Command::TXN) {
          sqlite::Statement t = db.prepare("SELECT outcome FROM kv_txn_results WHERE client_id = ? AND seq = ?");
          t.bind(1, to_i64(cmd.client_id())).bind(2, to_i64(cmd.seq()));
          if (t.step()) w.txn = t.column_blob(0);
          t.reset();
        }
        return w;
      }
      if (cmd.seq() < seq) return Wake{STALE, 0, {}};
    }
  }
  Wake w;
  if (cmd.kind() == Command::TXN) {
    w = apply_txn(cmd);
  } else if (cmd.kind() == Command::REPLICATE) {
    w = apply_replicate(cmd);
  } else if (cmd.kind() != Command::PUT && cmd.kind() != Command::CAS) {
    // A foreign entry of a kind this version does not know: refuse it.
    rt_.warn("kv: command of unknown kind {} refused", static_cast<int>(cmd.kind()));
    w = Wake{INVALID, 0, {}};
  } else {
    const uint64_t current = version_of(db, cmd.key());
    if (cmd.kind() == Command::CAS && cmd.expected_version() != current) {
      w = Wake{CAS_FAILED, current, {}};
    } else {
      w = Wake{OK, current + 1, {}};
      write_key(db, cmd.key(), cmd.value(), w.version);
      VersionedWrite& c = entry_changes_.emplace_back();
      c.set_key(cmd.key());
      c.set_value(cmd.value());
      c.set_version(w.version);
    }
  }
  db.prepare("INSERT OR REPLACE INTO kv_sessions (client_id, seq, code, version) VALUES (?, ?, ?, ?)")
      .bind(1, to_i64(cmd.client_id()))
      .bind(2, to_i64(cmd.seq()))
      .bind(3, static_cast<int64_t>(w.code))
      .bind(4, to_i64(w.version))
      .run();
  if (cmd.kind() == Command::TXN) {
    db.prepare("INSERT OR REPLACE INTO kv_txn_results (client_id, seq, outcome) VALUES (?, ?, ?)")
        .bind(1, to_i64(cmd.client_id()))
        .bind(2, to_i64(cmd.seq()))
        .bind_blob(3, w.txn)
        .run();
  }
  return w;
}

// Inside the Ready's SQLite transaction: every condition is read first, and
// only if all hold are the writes made, so a crash (rollback) or a failed
// condition leaves no write behind.
KvReplica::Wake KvReplica::apply_txn(const Command& cmd) {
  if (std::string err = validate_txn(cmd); !err.empty()) {
    // The leader validates before proposing, so only a foreign or corrupted
    // entry gets here: refuse it like the leader would.
    rt_.warn("kv: invalid txn of client {} seq {} refused: {}", cmd.client_id(), cmd.seq(), err);
    return Wake{INVALID, 0, {}};
  }
  sqlite::Database& db = rt_.disk().db();
  TxnOutcome out;
  for (int i = 0; i < cmd.conditions_size(); ++i) {
    const TxnCondition& c = cmd.conditions(i);
    const uint64_t v = version_of(db, c.key());
    out.add_condition_versions(v);
    if (v != c.expected_version()) out.add_failed_conditions(static_cast<uint32_t>(i));
  }
  if (out.failed_conditions_size() > 0) return Wake{TXN_FAILED, 0, out.SerializeAsString()};
  for (const TxnWrite& wr : cmd.writes()) {
    const uint64_t v = version_of(db, wr.key()) + 1;
    write_key(db, wr.key(), wr.value(), v);
    out.add_write_versions(v);
    VersionedWrite& c = entry_changes_.emplace_back();
    c.set_key(wr.key());
    c.set_value(wr.value());
    c.set_version(v);
  }
  return Wake{OK, out.write_versions(0), out.SerializeAsString()};
}

// Inside the Ready's transaction. Each write is stored with its source
// version only if that is newer than the local copy, so replays, duplicates
// and pages arriving out of order are no-ops; the cursor only grows. Nothing
// goes to the change stream (not of local origin: a copy of another
// datacenter's records is never shipped back). Wake::version: how many
// writes took effect.
KvReplica::Wake KvReplica::apply_replicate(const Command& cmd) {
  if (std::string err = validate_replicate(cmd); !err.empty()) {
    rt_.warn("kv: invalid replicate of client {} seq {} refused: {}", cmd.client_id(), cmd.seq(), err);
    return Wake{INVALID, 0, {}};
  }
  sqlite::Database& db = rt_.disk().db();
  uint64_t applied = 0;
  for (const VersionedWrite& wr : cmd.replicated()) {
    if (wr.version() <= version_of(db, wr.key())) continue;
    write_key(db, wr.key(), wr.value(), wr.version());
    ++applied;
  }
  if (!cmd.cursor_key().empty()) {
    sqlite::Statement q = db.prepare("SELECT value, version FROM kv_data WHERE key = ?");
    q.bind_blob(1, cmd.cursor_key());
    uint64_t current = 0;
    uint64_t version = 0;
    bool found = false;
    if (q.step()) {
      found = true;
      const std::string text = q.column_blob(0);
      version = to_u64(q.column_int64(1));
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), current);
      if (ec != std::errc() || p != text.data() + text.size()) current = 0;  // not a cursor: overwrite
    }
    q.reset();
    if (!found || cmd.cursor_index() > current) {
      write_key(db, cmd.cursor_key(), std::to_string(std::max(current, cmd.cursor_index())), version + 1);
    }
  }
  return Wake{OK, applied, {}};
}

void KvReplica::trim_changes() {
  const uint64_t retention = config_.change_retention;
  const uint64_t target = applied_index_ > retention ? applied_index_ - retention : 0;
  const uint64_t step = std::clamp<uint64_t>(retention / 8, 1, kChangeTrimStepMax);
  if (target < change_floor_ + step) return;
  sqlite::Database& db = rt_.disk().db();
  db.prepare("DELETE FROM kv_changes WHERE idx <= ?").bind(1, to_i64(target)).run();
  db.prepare("INSERT OR REPLACE INTO kv_changes_floor (id, floor) VALUES (1, ?)").bind(1, to_i64(target)).run();
  change_floor_ = target;  // a rollback throws out of the Ready: the node restarts and reloads it
}

void KvReplica::on_leadership_lost() {
  for (auto& [client, pw] : pending_writes_) {
    if (pw->index != 0) (void)pw->wake->push(Wake{RETRY, 0, {}});
    pw->index = 0;
  }
  // Pending read-index requests are answered !ok by the core itself.
}

void KvReplica::serve_reads() {
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    PendingRead* pr = it->second;
    if (pr->have_index && pr->index <= applied_index_) {
      (void)pr->wake->push(Wake{OK, 0, {}});
      it = pending_reads_.erase(it);
    } else {
      ++it;
    }
  }
}

uint32_t KvReplica::leader_hint() const {
  std::optional<paxos::ReplicaId> h = replica_->leader_hint();
  return h ? *h : 0;
}

// --- Paxos transport ----------------------------------------------------------

void KvReplica::send(const paxos::Message& m) {
  size_t peer = m.to - 1;
  if (peer >= peer_queues_.size() || peer == config_.self_index) return;
  std::deque<std::string>& q = peer_queues_[peer];
  if (q.size() >= kPeerQueueMessagesMax) {
    q.pop_front();  // Paxos repairs lost messages
    ++dropped_messages_;
  }
  q.push_back(paxos::encode_message(m));
  (void)peer_signals_[peer]->push(true);
}

Task<void> KvReplica::send_loop(size_t peer_index) {
  for (;;) {
    if (peer_queues_[peer_index].empty()) (void)co_await peer_signals_[peer_index]->pop();
    std::deque<std::string>& q = peer_queues_[peer_index];
    if (q.empty()) continue;
    StepRequest req;
    while (!q.empty() && static_cast<size_t>(req.messages_size()) < kStepBatchMessagesMax) {
      req.add_messages(std::move(q.front()));
      q.pop_front();
    }
    rpc::CallOptions opts;
    opts.timeout = config_.step_call_timeout;
    rpc::Result<std::string> r =
        co_await endpoint_.call_raw(config_.members[peer_index], kStepMethod, req.SerializeAsString(), opts);
    (void)r;  // the reply carries nothing; a lost batch is repaired by Paxos
  }
}

Task<rpc::Result<StepReply>> KvReplica::serve_step(StepRequest req) {
  for (const std::string& bytes : req.messages()) {
    paxos::DecodeResult d = paxos::decode_message(bytes);
    if (!d.ok()) {
      rt_.warn("kv: malformed paxos message dropped: {}", d.error);
      continue;
    }
    replica_->step(*d.message);
  }
  pump();
  co_return StepReply{};
}

Task<void> KvReplica::tick_loop() {
  for (;;) {
    co_await rt_.sleep(config_.tick_interval);
    replica_->tick();
    last_tick_at_ = rt_.now();
    pump();
  }
}

// --- client-facing handlers -----------------------------------------------------

Task<KvReplica::Wake> KvReplica::wait_for(Channel<Wake>* ch, TimePoint deadline) {
  // The timer answers RETRY if nothing else did by the deadline.
  struct TimerGuard {
    Runtime& rt;
    TimerId id;
    ~TimerGuard() { rt.cancel(id); }
  } guard{rt_, rt_.call_at(deadline, [ch] { (void)ch->push(Wake{RETRY, 0, {}}); })};
  Wake w = co_await ch->pop();
  co_return w;
}

Task<KvReplica::Wake> KvReplica::propose_and_wait(rpc::CallContext ctx, Command cmd, uint32_t* hint) {
  if (!replica_->is_leader()) {
    *hint = leader_hint();
    co_return Wake{NOT_LEADER, 0, {}};
  }
  if (pending_writes_.size() >= kPendingWritesMax) co_return Wake{RETRY, 0, {}};
  Channel<Wake> ch(rt_, 2);
  PendingWrite pw{cmd.seq(), 0, &ch};
  auto it = pending_writes_.emplace(cmd.client_id(), &pw);
  EraseGuard<decltype(pending_writes_), decltype(it)> erase{pending_writes_, it};
  paxos::ProposeResult pr = replica_->propose(cmd.SerializeAsString());
  if (!pr.ok()) {
    *hint = pr.leader_hint;
    co_return Wake{pr.status == paxos::ProposeStatus::not_leader ? NOT_LEADER : RETRY, 0, {}};
  }
  pw.index = pr.index;
  pump();
  TimePoint deadline = std::min(ctx.deadline, rt_.now() + config_.wait_max);
  Wake w = co_await wait_for(&ch, deadline);
  if (w.code == RETRY) *hint = leader_hint();
  co_return w;
}

Task<rpc::Result<WriteReply>> KvReplica::serve_write(rpc::CallContext ctx, WriteRequest req, Command::Kind kind) {
  WriteReply reply;
  Command cmd = req.command();
  cmd.set_kind(kind);
  cmd.clear_conditions();  // txn fields mean nothing to a put or cas
  cmd.clear_writes();
  if (cmd.key().empty() || cmd.key().size() > kKeyBytesMax || cmd.seq() == 0) {
    co_return rpc::Status{rpc::StatusCode::invalid_argument, "bad key or request id"};
  }
  uint32_t hint = 0;
  Wake w = co_await propose_and_wait(std::move(ctx), std::move(cmd), &hint);
  reply.set_code(w.code);
  reply.set_version(w.version);
  reply.set_leader_hint(hint);
  co_return reply;
}

Task<rpc::Result<TxnReply>> KvReplica::serve_txn(rpc::CallContext ctx, WriteRequest req) {
  TxnReply reply;
  Command cmd = req.command();
  cmd.set_kind(Command::TXN);
  cmd.clear_key();  // put/cas fields mean nothing to a txn
  cmd.clear_value();
  cmd.clear_expected_version();
  std::string err = cmd.seq() == 0 ? std::string("zero request seq") : validate_txn(cmd);
  if (!err.empty()) {
    reply.set_code(INVALID);
    reply.set_error(std::move(err));
    co_return reply;
  }
  uint32_t hint = 0;
  Wake w = co_await propose_and_wait(std::move(ctx), std::move(cmd), &hint);
  reply.set_code(w.code);
  reply.set_leader_hint(hint);
  if (!w.txn.empty() && !reply.mutable_outcome()->ParseFromString(w.txn)) reply.clear_outcome();
  co_return reply;
}

Task<rpc::Result<WriteReply>> KvReplica::serve_replicate(rpc::CallContext ctx, WriteRequest req) {
  WriteReply reply;
  Command cmd = req.command();
  cmd.set_kind(Command::REPLICATE);
  cmd.clear_key();  // other kinds' fields mean nothing to a replicate
  cmd.clear_value();
  cmd.clear_expected_version();
  cmd.clear_conditions();
  cmd.clear_writes();
  std::string err = cmd.seq() == 0 ? std::string("zero request seq") : validate_replicate(cmd);
  if (!err.empty()) {
    reply.set_code(INVALID);
    co_return reply;
  }
  uint32_t hint = 0;
  Wake w = co_await propose_and_wait(std::move(ctx), std::move(cmd), &hint);
  reply.set_code(w.code);
  reply.set_version(w.version);
  reply.set_leader_hint(hint);
  co_return reply;
}

// From this replica's applied state, leader or not: the rows of kv_changes
// are complete for every idx in (floor, applied].
Task<rpc::Result<ChangesReply>> KvReplica::serve_changes(ChangesRequest req) {
  ChangesReply reply;
  if (replica_->recovering() || !initialized_) {
    reply.set_code(RETRY);  // rebuilding from peers: nothing to vouch for yet
    co_return reply;
  }
  reply.set_high(applied_index_);
  reply.set_floor(change_floor_);
  if (req.after() < change_floor_) {
    reply.set_code(TRUNCATED);
    co_return reply;
  }
  reply.set_code(OK);
  const uint32_t limit = req.max_entries() == 0 ? kChangesEntriesMax : std::min(req.max_entries(), kChangesEntriesMax);
  sqlite::Statement q = rt_.disk().db().prepare(
      "SELECT idx, key, value, version, at_ns FROM kv_changes WHERE idx > ? ORDER BY idx, pos");
  q.bind(1, to_i64(req.after()));
  size_t bytes = 0;
  ChangeEntry* cur = nullptr;
  while (q.step()) {
    const uint64_t idx = to_u64(q.column_int64(0));
    if (cur == nullptr || cur->idx() != idx) {
      if (static_cast<uint32_t>(reply.entries_size()) >= limit || (cur != nullptr && bytes >= kChangesBytesMax)) {
        reply.set_more(true);
        break;
      }
      cur = reply.add_entries();
      cur->set_idx(idx);
      cur->set_at_ns(q.column_int64(4));
    }
    VersionedWrite* w = cur->add_writes();
    w->set_key(q.column_blob(1));
    w->set_value(q.column_blob(2));
    w->set_version(to_u64(q.column_int64(3)));
    bytes += w->key().size() + w->value().size();
  }
  q.reset();
  co_return reply;
}

Task<KvReplica::Wake> KvReplica::read_barrier(rpc::CallContext ctx) {
  // A leader holding its lease (paxos::Replica::lease_read: a majority
  // acknowledged a round less than lease_ticks ago, so no other leader can
  // have been elected) reads its applied state without a round, once it has
  // applied everything committed so far. Otherwise: a read-index round.
  // The lease is counted in ticks: if this node's tick loop is behind (its
  // process stalled and the timers have not caught up), ticks are missing
  // and the lease may have run out in real time: no lease read then.
  if (config_.lease_reads && rt_.now() - last_tick_at_ < config_.tick_interval * 2) {
    const paxos::ReadResult lease = replica_->lease_read();
    if (lease.status == paxos::ReadStatus::ok && applied_index_ >= lease.index) {
      ++lease_reads_;
      co_return Wake{OK, 0, {}};
    }
  }
  if (pending_reads_.size() >= kPendingReadsMax) co_return Wake{RETRY, 0, {}};
  Channel<Wake> ch(rt_, 2);
  PendingRead pr{0, false, &ch};
  uint64_t id = next_read_id_++;
  pending_reads_.emplace(id, &pr);
  // Removes the entry however the frame ends (no-op if already answered).
  struct ReadGuard {
    std::map<uint64_t, PendingRead*>& map;
    uint64_t id;
    ~ReadGuard() { map.erase(id); }
  } guard{pending_reads_, id};
  paxos::ReadResult rr = replica_->read_index(id);
  if (rr.status != paxos::ReadStatus::pending) {
    co_return Wake{rr.status == paxos::ReadStatus::not_leader ? NOT_LEADER : RETRY, 0, {}};
  }
  pump();
  TimePoint deadline = std::min(ctx.deadline, rt_.now() + config_.wait_max);
  Wake w = co_await wait_for(&ch, deadline);
  co_return w;
}

Task<rpc::Result<GetReply>> KvReplica::serve_get(rpc::CallContext ctx, GetRequest req) {
  GetReply reply;
  if (!replica_->is_leader()) {
    reply.set_code(NOT_LEADER);
    reply.set_leader_hint(leader_hint());
    co_return reply;
  }
  Wake w = co_await read_barrier(ctx);
  if (w.code != OK) {
    reply.set_code(w.code);
    reply.set_leader_hint(leader_hint());
    co_return reply;
  }
  sqlite::Statement q = rt_.disk().db().prepare("SELECT value, version FROM kv_data WHERE key = ?");
  q.bind_blob(1, req.key());
  reply.set_code(OK);
  if (q.step()) {
    reply.set_found(true);
    reply.set_value(q.column_blob(0));
    reply.set_version(to_u64(q.column_int64(1)));
  }
  q.reset();
  co_return reply;
}

Task<rpc::Result<ScanReply>> KvReplica::serve_scan(rpc::CallContext ctx, ScanRequest req) {
  ScanReply reply;
  if (!replica_->is_leader()) {
    reply.set_code(NOT_LEADER);
    reply.set_leader_hint(leader_hint());
    co_return reply;
  }
  Wake w = co_await read_barrier(ctx);
  if (w.code != OK) {
    reply.set_code(w.code);
    reply.set_leader_hint(leader_hint());
    co_return reply;
  }
  uint32_t limit = req.limit() == 0 ? kScanItemsMax : std::min(req.limit(), kScanItemsMax);
  std::string from = req.prefix().empty() ? req.from() : req.prefix();
  sqlite::Statement q =
      rt_.disk().db().prepare("SELECT key, value, version FROM kv_data WHERE key >= ? ORDER BY key");
  q.bind_blob(1, from);
  reply.set_code(OK);
  while (q.step()) {
    std::string key = q.column_blob(0);
    if (!req.prefix().empty() && key.compare(0, req.prefix().size(), req.prefix()) != 0) break;
    if (req.prefix().empty() && !req.to().empty() && key >= req.to()) break;
    if (static_cast<uint32_t>(reply.items_size()) >= limit) break;
    Item* item = reply.add_items();
    item->set_key(std::move(key));
    item->set_value(q.column_blob(1));
    item->set_version(to_u64(q.column_int64(2)));
  }
  q.reset();
  co_return reply;
}

std::vector<Item> KvReplica::dump() const {
  std::vector<Item> out;
  sqlite::Statement q = rt_.disk().db().prepare("SELECT key, value, version FROM kv_data ORDER BY key");
  while (q.step()) {
    Item item;
    item.set_key(q.column_blob(0));
    item.set_value(q.column_blob(1));
    item.set_version(to_u64(q.column_int64(2)));
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace wx::kv
