// Replicator: pulls other datacenters' change streams into the local groups
// (see replicator.h).
#include "nodes/storage/repl/replicator.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <stdexcept>

namespace wx::repl {

namespace {

// Strict decimal; nullopt if `text` is anything else.
std::optional<uint64_t> parse_u64(std::string_view text) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

// The lease record: "holder incarnation epoch renewals" in decimal.
struct LeaseRecord {
  uint64_t holder = 0;
  uint64_t incarnation = 0;
  uint64_t epoch = 0;
  uint64_t renewals = 0;

  std::string encode() const {
    return std::to_string(holder) + " " + std::to_string(incarnation) + " " + std::to_string(epoch) + " " +
           std::to_string(renewals);
  }
  // nullopt if `text` is not a record (then it is treated as someone else's).
  static std::optional<LeaseRecord> decode(std::string_view text) {
    LeaseRecord r;
    uint64_t* fields[] = {&r.holder, &r.incarnation, &r.epoch, &r.renewals};
    for (size_t i = 0; i < 4; ++i) {
      const size_t sp = i < 3 ? text.find(' ') : text.size();
      if (sp == std::string_view::npos) return std::nullopt;
      std::optional<uint64_t> v = parse_u64(text.substr(0, sp));
      if (!v) return std::nullopt;
      *fields[i] = *v;
      text = i < 3 ? text.substr(sp + 1) : std::string_view{};
    }
    return r;
  }
};

Duration non_negative(Duration d) { return d < Duration::zero() ? Duration::zero() : d; }

}  // namespace

std::string cursor_key(std::string_view source_dc, uint32_t shard) {
  return "repl/cursor/" + std::string(source_dc) + "/" + std::to_string(shard);
}

std::string lease_key(std::string_view source_dc, uint32_t shard) {
  return "repl/lease/" + std::string(source_dc) + "/" + std::to_string(shard);
}

struct Replicator::Stream {
  StreamSpec spec;
  std::string cursor_key;
  std::string lease_key;
  // One KvClient per concurrent caller (a KvClient issues one call at a time).
  std::unique_ptr<kv::KvClient> lease_kv;   // local group: the lease loop
  std::unique_ptr<kv::KvClient> local_kv;   // local group: cursor reads, REPLICATE
  std::unique_ptr<kv::KvClient> source_kv;  // source group: full-copy scans
  // Lease.
  bool held = false;
  TimePoint valid_until;
  uint64_t epoch = 0;
  uint64_t seen_version = ~0ULL;
  TimePoint seen_since;
  // Pull.
  bool cursor_known = false;
  uint64_t cursor_epoch = 0;  // lease epoch the cursor was read under
  uint64_t cursor = 0;        // in memory
  uint64_t persisted = 0;     // last cursor written (or read)
  TimePoint persisted_at;
  size_t source = 0;  // index into spec.source_replicas
  std::optional<uint64_t> copy_h0;  // a full copy to do, to this index
  std::string copy_from;            // its next scan key
};

Replicator::Replicator(Runtime& rt, ReplicatorConfig config)
    : rt_(rt), config_(std::move(config)), endpoint_(rt) {
  if (!config_.shards) throw std::invalid_argument("ReplicatorConfig::shards");
  if (config_.consumers == 0) config_.consumers = 1;
  if (config_.page_entries == 0) config_.page_entries = 1;
  config_.page_entries = std::min(config_.page_entries, kv::kScanItemsMax);
  incarnation_ = rt_.rng().next_u64() | 1;
  for (const StreamSpec& spec : config_.streams) {
    if (spec.source_replicas.empty() || spec.local_replicas.empty())
      throw std::invalid_argument("StreamSpec without replicas for " + spec.source_dc);
    auto st = std::make_unique<Stream>();
    st->spec = spec;
    st->cursor_key = cursor_key(spec.source_dc, spec.shard);
    st->lease_key = lease_key(spec.source_dc, spec.shard);
    kv::KvClientConfig local = config_.kv;
    local.replicas = spec.local_replicas;
    local.client_id = 0;
    kv::KvClientConfig source = local;
    source.replicas = spec.source_replicas;
    st->lease_kv = std::make_unique<kv::KvClient>(rt_, endpoint_, local);
    st->local_kv = std::make_unique<kv::KvClient>(rt_, endpoint_, local);
    st->source_kv = std::make_unique<kv::KvClient>(rt_, endpoint_, source);
    StreamStatus status;
    status.source_dc = spec.source_dc;
    status.shard = spec.shard;
    stats_.streams.push_back(status);
    streams_.push_back(std::move(st));
  }
}

Replicator::~Replicator() = default;

void Replicator::start() {
  endpoint_.start();
  for (size_t s = 0; s < streams_.size(); ++s) {
    rt_.spawn(lease_loop(s), "repl.lease");
    rt_.spawn(stream_loop(s), "repl.stream");
  }
}

bool Replicator::holds(size_t s) const {
  const Stream& st = *streams_.at(s);
  return st.held && rt_.now() < st.valid_until;
}

// --- the lease (the scheme of queue::LeaseKeeper) -------------------------------

Task<void> Replicator::lease_loop(size_t s) {
  for (;;) {
    co_await lease_step(s);
    stats_.streams[s].held = holds(s);
    co_await rt_.sleep(config_.lease.renew_interval);
  }
}

Task<void> Replicator::lease_step(size_t s) {
  Stream& st = *streams_[s];
  const ReplLeaseConfig& lc = config_.lease;
  const TimePoint start = rt_.now();
  kv::KvResult g = co_await st.lease_kv->get(st.lease_key);
  if (g.code != kv::KvResultCode::ok) co_return;  // unreachable: the lease runs out by itself
  std::optional<LeaseRecord> rec = g.found ? LeaseRecord::decode(g.value) : std::nullopt;
  const uint64_t me = rt_.node_id().value;
  const bool mine = rec && rec->holder == me && rec->incarnation == incarnation_;
  if (mine) {
    LeaseRecord next = *rec;
    ++next.renewals;
    kv::KvResult w = co_await st.lease_kv->cas(st.lease_key, g.version, next.encode());
    if (w.code == kv::KvResultCode::ok) {
      ++stats_.lease_renewals;
      st.held = true;
      st.epoch = rec->epoch;
      st.valid_until = start + lc.lease_duration;
    } else if (!holds(s)) {
      st.held = false;
    }
    co_return;
  }
  if (st.held) {
    st.held = false;  // someone else holds it now
    ++stats_.lease_lost;
  }
  if (g.version != st.seen_version) {
    st.seen_version = g.version;
    st.seen_since = rt_.now();
  }
  const bool preferred = s % config_.consumers == config_.index;
  const bool dead_self = rec && rec->holder == me;  // an earlier incarnation of this node
  Duration wait = lc.lease_duration + lc.lease_duration * lc.clock_drift_margin_percent / 100 + lc.takeover_margin;
  if (!preferred) wait += lc.preference_delay;
  const bool claim = (!g.found && preferred) || dead_self || rt_.now() - st.seen_since >= wait;
  if (!claim) co_return;
  LeaseRecord next;
  next.holder = me;
  next.incarnation = incarnation_;
  next.epoch = (rec ? rec->epoch : 0) + 1;
  const TimePoint claim_start = rt_.now();
  kv::KvResult w = co_await st.lease_kv->cas(st.lease_key, g.version, next.encode());
  if (w.code == kv::KvResultCode::ok) {
    if (g.found) ++stats_.lease_takeovers;
    ++stats_.lease_claims;
    st.held = true;
    st.epoch = next.epoch;
    st.valid_until = claim_start + lc.lease_duration;
  }
}

// --- the pull loop ------------------------------------------------------------

Task<void> Replicator::stream_loop(size_t s) {
  Stream& st = *streams_[s];
  for (;;) {
    if (!holds(s)) {
      st.cursor_known = false;  // re-read when held again: another instance may have moved it
      co_await rt_.sleep(config_.lease.renew_interval);
      continue;
    }
    if (!st.cursor_known || st.cursor_epoch != st.epoch) {
      const uint64_t epoch = st.epoch;
      kv::KvResult g = co_await st.local_kv->get(st.cursor_key);
      if (g.code != kv::KvResultCode::ok) {
        co_await rt_.sleep(config_.retry_pause);
        continue;
      }
      const uint64_t c = g.found ? parse_u64(g.value).value_or(0) : 0;
      st.cursor = c;
      st.persisted = c;
      st.persisted_at = rt_.now();
      st.cursor_known = true;
      st.cursor_epoch = epoch;
      stats_.streams[s].cursor = c;
      continue;
    }
    if (st.copy_h0) {
      if (!co_await full_copy(s, *st.copy_h0)) co_await rt_.sleep(config_.retry_pause);
      continue;
    }
    const PullOutcome o = co_await pull(s);
    if (o == PullOutcome::failed) {
      co_await rt_.sleep(config_.retry_pause);
    } else if (o == PullOutcome::caught_up) {
      co_await rt_.sleep(config_.poll_interval);
    }
  }
}

bool Replicator::keep(const Stream& st, const std::string& key) const {
  std::optional<uint64_t> uid = shard::user_of_key(key);
  if (!uid) return false;
  std::optional<std::string> home = config_.shards->home_of(*uid);
  return home && *home == st.spec.source_dc;
}

void Replicator::observe(size_t s, Duration lag, uint64_t entries, uint64_t writes, bool full_copy) {
  stats_.lag_max = std::max(stats_.lag_max, lag);
  if (!full_copy) stats_.streams[s].last_lag = lag;
  if (!config_.lag_observer) return;
  LagSample sample;
  sample.source_dc = streams_[s]->spec.source_dc;
  sample.shard = streams_[s]->spec.shard;
  sample.lag = lag;
  sample.entries = entries;
  sample.writes = writes;
  sample.full_copy = full_copy;
  config_.lag_observer(rt_.node_id(), sample);
}

Task<Replicator::PullOutcome> Replicator::pull(size_t s) {
  Stream& st = *streams_[s];
  const size_t n = st.spec.source_replicas.size();
  kv::ChangesRequest req;
  req.set_after(st.cursor);
  req.set_max_entries(config_.page_entries);
  rpc::CallOptions opts;
  opts.timeout = config_.call_timeout;
  ++stats_.changes_calls;
  rpc::Result<kv::ChangesReply> r =
      co_await endpoint_.call<kv::ChangesReply>(st.spec.source_replicas[st.source % n], kv::kChangesMethod, req, opts);
  if (!holds(s) || st.copy_h0 || !st.cursor_known) co_return PullOutcome::failed;
  if (!r.ok() || (r->code() != kv::OK && r->code() != kv::TRUNCATED)) {
    ++stats_.changes_failures;
    st.source = (st.source + 1) % n;  // unreachable, recovering or overloaded: another replica
    co_return PullOutcome::failed;
  }
  const kv::ChangesReply& rep = r.value();
  if (rep.code() == kv::TRUNCATED) {
    if (rep.floor() <= st.cursor) {  // not truncated for us after all: a confused replica
      ++stats_.changes_failures;
      st.source = (st.source + 1) % n;
      co_return PullOutcome::failed;
    }
    ++stats_.truncated;
    rt_.info("repl: stream {}/{} truncated (cursor {}, floor {}): full copy to {}", st.spec.source_dc,
             st.spec.shard, st.cursor, rep.floor(), rep.high());
    st.copy_h0 = rep.high();
    st.copy_from.clear();
    co_return PullOutcome::more;
  }
  // Filter the page; the last write of a key in the page wins (the stream is
  // in log order, so it carries the highest version).
  uint64_t last = st.cursor;
  std::vector<kv::VersionedWrite> writes;
  std::map<std::string, size_t> at;
  uint64_t filtered = 0;
  for (const kv::ChangeEntry& e : rep.entries()) {
    if (e.idx() <= last) {  // out of order or repeated: do not trust the page
      ++stats_.changes_failures;
      st.source = (st.source + 1) % n;
      co_return PullOutcome::failed;
    }
    last = e.idx();
    for (const kv::VersionedWrite& w : e.writes()) {
      if (!keep(st, w.key()) || w.version() == 0) {
        ++filtered;
        continue;
      }
      auto [it, fresh] = at.emplace(w.key(), writes.size());
      if (fresh) {
        writes.push_back(w);
      } else if (w.version() > writes[it->second].version()) {
        writes[it->second] = w;
      }
    }
  }
  const TimePoint now = rt_.now();
  StreamStatus& status = stats_.streams[s];
  if (rep.entries_size() > 0) status.behind = non_negative(now - TimePoint::from_ns(rep.entries(0).at_ns()));
  const uint64_t next = rep.more() ? last : std::max(last, rep.high());
  if (next <= st.cursor) {
    // Nothing new here; a replica behind us gets no more calls for now.
    if (rep.high() < st.cursor) st.source = (st.source + 1) % n;
    status.behind = Duration::zero();
    co_return PullOutcome::caught_up;
  }
  const bool persist =
      !writes.empty() || (now - st.persisted_at >= config_.cursor_persist_interval && next > st.persisted);
  if (persist) {
    const size_t nw = writes.size();
    if (!co_await apply(s, std::move(writes), true, next)) {
      ++stats_.replicate_failures;
      st.cursor_known = false;  // unknown: re-read (REPLICATE is idempotent)
      co_return PullOutcome::failed;
    }
    if (nw == 0) ++stats_.cursor_writes;
    st.persisted = next;
    st.persisted_at = rt_.now();
    stats_.writes_applied += nw;
    if (rep.entries_size() > 0) {
      observe(s, non_negative(rt_.now() - TimePoint::from_ns(rep.entries(0).at_ns())),
              static_cast<uint64_t>(rep.entries_size()), nw, false);
    }
  }
  stats_.writes_filtered += filtered;
  ++stats_.pages_applied;
  stats_.entries_applied += static_cast<uint64_t>(rep.entries_size());
  st.cursor = next;
  status.cursor = next;
  if (!rep.more()) status.behind = Duration::zero();
  co_return rep.more() ? PullOutcome::more : PullOutcome::caught_up;
}

Task<bool> Replicator::apply(size_t s, std::vector<kv::VersionedWrite> writes, bool with_cursor, uint64_t cursor) {
  Stream& st = *streams_[s];
  const size_t room = kv::kReplicateBytesMax - st.cursor_key.size();
  std::vector<kv::VersionedWrite> batch;
  size_t bytes = 0;
  size_t i = 0;
  for (;;) {
    const bool end = i == writes.size();
    if (!end) {
      const size_t wb = writes[i].key().size() + writes[i].value().size();
      if (wb > room || writes[i].key().size() > kv::kKeyBytesMax) {
        // Cannot travel in one command: skipped, loudly (a put this large
        // has no place in a per-user record).
        ++stats_.writes_too_large;
        rt_.error("repl: write of {} bytes to {} too large to replicate; skipped", wb, writes[i].key());
        ++i;
        continue;
      }
      if (batch.size() < kv::kReplicateWritesMax && bytes + wb <= room) {
        bytes += wb;
        batch.push_back(std::move(writes[i++]));
        continue;
      }
    }
    // Send the batch (the cursor only with the last one).
    if (end && batch.empty() && !with_cursor) co_return true;
    // Named arguments: no temporaries of a conditional inside the co_await
    // expression (GCC destroys those twice in a coroutine).
    std::string key;
    uint64_t index = 0;
    if (end && with_cursor) {
      key = st.cursor_key;
      index = cursor;
    }
    kv::KvReplicateResult r = co_await st.local_kv->replicate(std::move(batch), std::move(key), index);
    if (r.code != kv::KvReplicateCode::ok) {
      if (r.code == kv::KvReplicateCode::invalid) rt_.error("repl: replicate refused: {}", r.error);
      co_return false;
    }
    batch.clear();
    bytes = 0;
    if (end) co_return true;
  }
}

Task<bool> Replicator::full_copy(size_t s, uint64_t h0) {
  Stream& st = *streams_[s];
  for (;;) {
    if (!holds(s)) co_return false;
    kv::KvScanResult r = co_await st.source_kv->scan("", st.copy_from, "", config_.page_entries);
    if (r.code != kv::KvResultCode::ok) co_return false;
    std::vector<kv::VersionedWrite> writes;
    for (const kv::Item& item : r.items) {
      if (!keep(st, item.key()) || item.version() == 0) continue;
      kv::VersionedWrite& w = writes.emplace_back();
      w.set_key(item.key());
      w.set_value(item.value());
      w.set_version(item.version());
    }
    const size_t nw = writes.size();
    if (nw > 0) {
      if (!holds(s)) co_return false;
      if (!co_await apply(s, std::move(writes), false, 0)) {
        ++stats_.replicate_failures;
        co_return false;
      }
      stats_.writes_applied += nw;
      stats_.full_copy_writes += nw;
      observe(s, Duration::zero(), 0, nw, true);
    }
    if (r.items.size() < config_.page_entries) break;
    st.copy_from = r.items.back().key();
    st.copy_from.push_back('\0');  // just past the last key
  }
  if (!holds(s)) co_return false;
  if (!co_await apply(s, {}, true, h0)) {
    ++stats_.replicate_failures;
    co_return false;
  }
  ++stats_.full_copies;
  rt_.info("repl: stream {}/{} full copy done at {}", st.spec.source_dc, st.spec.shard, h0);
  st.cursor = std::max(st.cursor, h0);
  st.persisted = st.cursor;
  st.persisted_at = rt_.now();
  stats_.streams[s].cursor = st.cursor;
  st.copy_h0.reset();
  st.copy_from.clear();
  co_return true;
}

}  // namespace wx::repl
