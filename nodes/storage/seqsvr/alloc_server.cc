#include "nodes/storage/seqsvr/alloc_server.h"

#include <algorithm>
#include <string>
#include <utility>

namespace wx::seqsvr {

namespace {

// A request that needs max_seq while another max_seq call is in flight polls
// this often (KvClient takes one call at a time).
constexpr Duration kDataBusyPoll = microseconds(100);
// Attempts of one max_seq cas whose outcome stays unknown.
constexpr int kWriteAttemptsMax = 3;
constexpr int64_t kPercent = 100;

// Clears the flag when the owning coroutine frame ends (normally or destroyed).
struct BusyGuard {
  bool& flag;
  explicit BusyGuard(bool& f) : flag(f) { flag = true; }
  ~BusyGuard() { flag = false; }
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;
};

}  // namespace

std::string lease_key(uint64_t section) { return kLeasePrefix + std::to_string(section); }
std::string max_key(uint64_t section) { return kMaxPrefix + std::to_string(section); }

AllocSvr::AllocSvr(Runtime& rt, AllocSvrConfig config)
    : rt_(rt),
      config_(std::move(config)),
      endpoint_(rt, config_.server),
      lease_kv_(rt, endpoint_, kv::KvClientConfig{config_.kv_replicas}),
      data_kv_(rt, endpoint_, kv::KvClientConfig{config_.kv_replicas}) {}

void AllocSvr::start() {
  incarnation_ = rt_.rng().next_u64() | 1;  // never 0
  rpc::MethodSpec alloc = kAllocMethod;
  alloc.cost = config_.cost;
  endpoint_.register_method<AllocRequest, AllocReply>(
      alloc, [this](rpc::CallContext, AllocRequest req) -> Task<rpc::Result<AllocReply>> {
        return serve_alloc(std::move(req));
      });
  endpoint_.start();
  rt_.spawn(lease_loop(), "seqsvr.lease");
}

std::vector<uint64_t> AllocSvr::serving() const {
  std::vector<uint64_t> out;
  for (const auto& [s, sec] : sections_) {
    if (servable(s, sec.term)) out.push_back(s);
  }
  return out;
}

bool AllocSvr::servable(uint64_t s, uint64_t term) const {
  auto it = sections_.find(s);
  if (it == sections_.end()) return false;
  const Section& sec = it->second;
  return sec.held && sec.term == term && rt_.now() < sec.valid_until;
}

void AllocSvr::drop(uint64_t s) {
  Section& sec = sections_[s];
  if (sec.held) ++stats_.sections_lost;
  sec = Section{};
  sec.term = next_term_++;
}

void AllocSvr::fill_map(AllocReply& reply) const {
  reply.set_map_version(map_version_);
  for (const auto& [s, e] : map_) *reply.add_map() = e;
}

// --- allocation ---------------------------------------------------------------

Task<rpc::Result<AllocReply>> AllocSvr::serve_alloc(AllocRequest req) {
  const uint64_t s = req.uid() / config_.section_size;
  if (s >= config_.sections) co_return rpc::Status{rpc::StatusCode::invalid_argument, "uid outside every section"};
  AllocReply reply;
  if (req.map_version() < map_version_) fill_map(reply);
  auto it = sections_.find(s);
  if (it == sections_.end() || !it->second.held) {
    ++stats_.not_owner;
    reply.set_code(NOT_OWNER);
    if (reply.map_size() == 0) fill_map(reply);
    co_return reply;
  }
  const uint64_t term = it->second.term;
  while (true) {
    if (!servable(s, term)) break;
    Section& sec = sections_[s];
    if (sec.loaded) {
      auto cur_it = sec.cur.find(req.uid());
      uint64_t next = (cur_it == sec.cur.end() ? sec.base : cur_it->second) + 1;
      if (next <= sec.max_seq) {
        sec.cur[req.uid()] = next;
        ++stats_.allocations;
        reply.set_code(OK);
        reply.set_seq(next);
        co_return reply;
      }
      if (!co_await ensure_max(s, term, next)) break;
    } else if (!co_await ensure_max(s, term, 0)) {
      break;
    }
  }
  auto again = sections_.find(s);
  if (again == sections_.end() || !again->second.held) {
    ++stats_.not_owner;
    reply.set_code(NOT_OWNER);
    if (reply.map_size() == 0) fill_map(reply);
  } else {
    ++stats_.not_ready;
    reply.set_code(NOT_READY);
  }
  co_return reply;
}

Task<bool> AllocSvr::ensure_max(uint64_t s, uint64_t term, uint64_t need) {
  while (data_busy_) {
    co_await rt_.sleep(kDataBusyPoll);
    if (!servable(s, term)) co_return false;
  }
  if (!servable(s, term)) co_return false;
  BusyGuard guard(data_busy_);
  if (!sections_[s].loaded) {
    kv::KvResult r = co_await data_kv_.get(max_key(s));
    if (r.code != kv::KvResultCode::ok || !servable(s, term)) co_return false;
    MaxSeqRecord rec;
    if (r.found && !rec.ParseFromString(r.value)) co_return false;
    Section& sec = sections_[s];
    sec.loaded = true;
    sec.base = rec.max_seq();  // every user of the section restarts here
    sec.max_seq = rec.max_seq();
    sec.max_version = r.version;
    sec.cur.clear();
  }
  Section& sec = sections_[s];
  if (need == 0 || sec.max_seq >= need) co_return true;
  uint64_t new_max = sec.max_seq + config_.step;
  while (new_max < need) new_max += config_.step;
  if (config_.unsafe_skip_persist && sec.max_version != 0) {
    sec.max_seq = new_max;
    co_return true;
  }
  co_return co_await write_max(s, term, sec.max_version, new_max);
}

Task<bool> AllocSvr::write_max(uint64_t s, uint64_t term, uint64_t expected_version, uint64_t new_max) {
  MaxSeqRecord rec;
  rec.set_max_seq(new_max);
  rec.set_token(rt_.rng().next_u64());
  const std::string value = rec.SerializeAsString();
  for (int attempt = 0; attempt < kWriteAttemptsMax; ++attempt) {
    kv::KvResult r = co_await data_kv_.cas(max_key(s), expected_version, value);
    if (r.code == kv::KvResultCode::ok) {
      ++stats_.max_seq_writes;
      if (!servable(s, term)) co_return false;
      Section& sec = sections_[s];
      sec.max_seq = new_max;
      sec.max_version = r.version;
      co_return true;
    }
    if (r.code == kv::KvResultCode::cas_failed) {
      // Ours (an earlier attempt applied), or somebody else's: then the
      // section has moved and this term must not serve another number.
      kv::KvResult g = co_await data_kv_.get(max_key(s));
      MaxSeqRecord now;
      if (g.code == kv::KvResultCode::ok && g.found && now.ParseFromString(g.value) &&
          now.token() == rec.token() && g.version == expected_version + 1) {
        ++stats_.max_seq_writes;
        if (!servable(s, term)) co_return false;
        Section& sec = sections_[s];
        sec.max_seq = new_max;
        sec.max_version = g.version;
        co_return true;
      }
      if (g.code == kv::KvResultCode::ok && sections_[s].term == term) {
        rt_.warn("seqsvr: max_seq of section {} written by another allocator; dropping it", s);
        drop(s);
      }
      co_return false;
    }
    if (!servable(s, term)) co_return false;  // unknown: retry the same write
  }
  // Still unknown: this term cannot know its version any more.
  if (sections_[s].term == term) drop(s);
  co_return false;
}

// --- leases -------------------------------------------------------------------

Task<void> AllocSvr::lease_loop() {
  while (true) {
    co_await lease_round();
    co_await rt_.sleep(config_.renew_interval);
  }
}

Task<void> AllocSvr::lease_round() {
  kv::KvScanResult scan = co_await lease_kv_.scan(kLeasePrefix, "", "", 0);
  if (scan.code != kv::KvResultCode::ok) co_return;
  std::map<uint64_t, std::pair<uint64_t, LeaseRecord>> records;
  for (const kv::Item& item : scan.items) {
    const std::string& k = item.key();
    uint64_t s = 0;
    try {
      s = std::stoull(k.substr(std::string(kLeasePrefix).size()));
    } catch (...) {
      continue;
    }
    LeaseRecord rec;
    if (!rec.ParseFromString(item.value())) continue;
    records[s] = {item.version(), rec};
  }
  auto publish = [this](uint64_t s, const LeaseRecord& rec) {
    MapEntry e;
    e.set_section(s);
    e.set_holder(rec.holder());
    e.set_epoch(rec.epoch());
    MapEntry& cur = map_[s];
    if (e.epoch() >= cur.epoch()) cur = e;
    map_version_ = 0;
    for (const auto& [_, m] : map_) map_version_ += m.epoch();
  };
  for (const auto& [s, vr] : records) publish(s, vr.second);

  const Duration takeover_wait =
      config_.lease_duration * (kPercent + config_.clock_drift_margin_percent) / kPercent + config_.takeover_margin;
  const uint32_t me = rt_.node_id().value;
  const size_t n_alloc = std::max<size_t>(1, config_.allocators.size());
  for (uint64_t s = 0; s < config_.sections; ++s) {
    auto rit = records.find(s);
    const bool found = rit != records.end();
    const uint64_t version = found ? rit->second.first : 0;
    LeaseRecord rec = found ? rit->second.second : LeaseRecord{};
    auto oit = observed_.find(s);
    if (oit == observed_.end() || oit->second.version != version) {
      observed_[s] = Observed{version, rt_.now()};
    }
    const Duration unchanged_for = rt_.now() - observed_[s].since;
    const bool preferred = !config_.allocators.empty() && config_.allocators[s % n_alloc].value == me;
    Section& sec = sections_[s];

    const bool mine = found && rec.holder() == me && rec.incarnation() == incarnation_;
    if (mine) {
      LeaseRecord next = rec;
      next.set_renewals(rec.renewals() + 1);
      TimePoint t = rt_.now();
      kv::KvResult r = co_await lease_kv_.cas(lease_key(s), version, next.SerializeAsString());
      Section& sec2 = sections_[s];
      if (r.code == kv::KvResultCode::ok) {
        if (!sec2.held) {
          drop(s);
          sections_[s].held = true;
        }
        sections_[s].lease_version = r.version;
        sections_[s].lease = next;
        sections_[s].valid_until = t + config_.lease_duration;
        observed_[s] = Observed{r.version, rt_.now()};
      } else if (r.code == kv::KvResultCode::cas_failed) {
        drop(s);
      }
      continue;
    }
    if (sec.held) drop(s);  // somebody else's record now
    bool claim = false;
    if (found && rec.holder() == me) {
      claim = true;  // an earlier incarnation of this node: it is dead
    } else if (!found) {
      claim = preferred || unchanged_for >= takeover_wait + config_.preference_delay;
    } else {
      claim = unchanged_for >= (preferred ? takeover_wait : takeover_wait + config_.preference_delay) ||
              config_.unsafe_no_takeover_wait;
    }
    if (!claim) continue;
    LeaseRecord next;
    next.set_holder(me);
    next.set_incarnation(incarnation_);
    next.set_epoch(rec.epoch() + 1);
    next.set_renewals(0);
    TimePoint t = rt_.now();
    kv::KvResult r = co_await lease_kv_.cas(lease_key(s), version, next.SerializeAsString());
    if (r.code != kv::KvResultCode::ok) continue;
    ++stats_.takeovers;
    drop(s);
    Section& mine_sec = sections_[s];
    mine_sec.held = true;
    mine_sec.lease_version = r.version;
    mine_sec.lease = next;
    mine_sec.valid_until = t + config_.lease_duration;
    observed_[s] = Observed{r.version, rt_.now()};
    publish(s, next);
    rt_.info("seqsvr: took section {} (epoch {})", s, next.epoch());
  }
}

}  // namespace wx::seqsvr
