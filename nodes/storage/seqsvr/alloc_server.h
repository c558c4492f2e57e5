// AllocSvr: the allocation node of seqsvr — per-user strictly increasing
// 64-bit sequence numbers (docs/seqsvr.md).
//
// Users are grouped into sections (section = uid / section_size). Each
// section has one max_seq persisted in the replicated KV store
// ("seq/max/<section>") and a lease ("seq/lease/<section>", LeaseRecord)
// naming the one AllocSvr that serves it; the lease records together are the
// section -> AllocSvr routing map, and its version is the sum of their epochs.
//
// Serving: cur_seq per user lives in memory. An allocation that would pass the
// section's max_seq FIRST persists max_seq += step with a KV cas on the
// section's key (so two allocators can never both advance from one version)
// and only replies once the cas is acknowledged. On taking a section (first
// start, restart, takeover) its users' cur_seq all start at the persisted
// max_seq: numbers are never reused, gaps are allowed. A cas that fails
// (somebody else wrote the key) drops the section.
//
// Leases (all durations in this node's local clock): every `renew_interval`
// the lease loop scans the lease records and renews the sections it holds
// (a cas that bumps `renewals`). A renewal started at local time t that
// succeeds makes the section servable until t + lease_duration; an allocation
// is answered only while now < that bound, so an allocator that cannot renew
// for lease_duration stops serving. A section is taken over (cas on its lease
// record, epoch + 1) only when its lease record has been observed unchanged
// (same KV version) for takeover_wait = lease_duration * (1 + drift margin)
// + an absolute margin of the taker's local clock: the old holder's last
// successful renewal started before that observation began, so its validity
// ended before the takeover even if its clock runs up to the drift margin
// slower. Sections never assigned are claimed at once by their preferred
// allocator (section % allocators) and after takeover_wait + a preference
// delay by the others; a record held by an earlier incarnation of this very
// node is reclaimed at once (that incarnation is dead).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodes/rpc/endpoint.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/kv/kv_client.h"
#include "nodes/storage/seqsvr/seqsvr.pb.h"

namespace wx::seqsvr {

inline const rpc::MethodSpec kAllocMethod{"seqsvr.Alloc", rpc::Idempotent::no, Duration::zero()};

inline constexpr uint64_t kDefaultSectionSize = 100'000;
inline constexpr uint64_t kDefaultStep = 10'000;
inline constexpr uint64_t kDefaultSections = 16;
inline constexpr const char* kLeasePrefix = "seq/lease/";
inline constexpr const char* kMaxPrefix = "seq/max/";

std::string lease_key(uint64_t section);
std::string max_key(uint64_t section);

struct AllocSvrConfig {
  std::vector<NodeId> kv_replicas;  // the KV group, replica-id order
  std::vector<NodeId> allocators;   // every AllocSvr, in preference order (section % size)
  uint64_t section_size = kDefaultSectionSize;
  uint64_t sections = kDefaultSections;  // sections 0..sections-1 exist
  uint64_t step = kDefaultStep;
  Duration lease_duration = seconds(2);
  Duration renew_interval = milliseconds(400);
  // Clock rate difference tolerated between two allocators, in percent.
  int64_t clock_drift_margin_percent = 10;
  Duration takeover_margin = milliseconds(200);
  // Extra wait of a non-preferred allocator before claiming a section.
  Duration preference_delay = seconds(1);
  Duration cost = microseconds(20);  // service cost of seqsvr.Alloc
  // Test-only mutations (the tests' teeth), both unsafe:
  //   unsafe_skip_persist: advance max_seq in memory only (reply before, in
  //     fact without, persisting it) — numbers are reused after a restart;
  //   unsafe_no_takeover_wait: take over a section held by another allocator
  //     at once, without waiting for its lease to lapse — two allocators
  //     serve one section at the same time.
  bool unsafe_skip_persist = false;
  bool unsafe_no_takeover_wait = false;
  rpc::ServerConfig server;
};

class AllocSvr final : public Node {
 public:
  AllocSvr(Runtime& rt, AllocSvrConfig config);
  void start() override;
  std::string_view kind() const override { return "seqsvr-alloc"; }

  struct Stats {
    uint64_t allocations = 0;
    uint64_t max_seq_writes = 0;  // successful cas of a max_seq key
    uint64_t takeovers = 0;       // lease records written with a new epoch
    uint64_t sections_lost = 0;
    uint64_t not_owner = 0, not_ready = 0;
  };
  const Stats& stats() const { return stats_; }
  // Sections this allocator may serve now.
  std::vector<uint64_t> serving() const;
  rpc::RpcEndpoint& endpoint() { return endpoint_; }

 private:
  struct Section {
    uint64_t term = 0;          // changes whenever the section is (re)acquired or dropped
    bool held = false;          // our lease record is the current one
    uint64_t lease_version = 0;
    LeaseRecord lease;
    TimePoint valid_until;      // local
    bool loaded = false;        // base/max read from the store this term
    uint64_t max_seq = 0;
    uint64_t max_version = 0;
    uint64_t base = 0;          // cur_seq of users not in `cur`
    std::map<uint64_t, uint64_t> cur;
  };
  struct Observed {
    uint64_t version = 0;
    TimePoint since;  // local time the version was first seen
  };

  Task<void> lease_loop();
  Task<void> lease_round();
  Task<rpc::Result<AllocReply>> serve_alloc(AllocRequest req);
  // Makes sure section `s` (term `term`) has max_seq >= `need`; false if the
  // section cannot be served (lost, store unreachable).
  Task<bool> ensure_max(uint64_t s, uint64_t term, uint64_t need);
  Task<bool> write_max(uint64_t s, uint64_t term, uint64_t expected_version, uint64_t new_max);
  void drop(uint64_t s);
  bool servable(uint64_t s, uint64_t term) const;
  void fill_map(AllocReply& reply) const;

  Runtime& rt_;
  AllocSvrConfig config_;
  rpc::RpcEndpoint endpoint_;
  kv::KvClient lease_kv_;  // the lease loop's calls
  kv::KvClient data_kv_;   // max_seq calls, one at a time (data_busy_)
  bool data_busy_ = false;
  uint64_t incarnation_ = 0;
  uint64_t next_token_ = 1;
  uint64_t next_term_ = 1;
  std::map<uint64_t, Section> sections_;
  std::map<uint64_t, Observed> observed_;   // lease record versions seen
  std::map<uint64_t, MapEntry> map_;        // from the last scan
  uint64_t map_version_ = 0;
  Stats stats_;
};

}  // namespace wx::seqsvr
