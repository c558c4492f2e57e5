// The trace: every event the kernel runs, folded into a rolling 64-bit hash,
// and optionally kept as records.
//
// The hash covers, for each executed event and each lifecycle note, its time,
// sequence number, kind, node and a kind-specific detail (e.g. a hash of a
// delivered frame's bytes). It never covers pointers, wall-clock time or hash
// order of pointer keys. Same seed, same binary: same hash. The hash is the
// cheapest exact test of determinism; the records (bounded by
// `records_max`) are for reading a run.
#pragma once

#include "sim/sim_only.h"

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/runtime/time.h"

namespace wx::sim {

enum class TraceKind : uint8_t {
  callback = 0,  // a kernel-owned callback (scripted action, benchmark, test)
  timer,         // a node timer or coroutine wake-up
  deliver,       // a frame arrives at a node
  reset,         // a connection reset reaches a node
  start,         // node incarnation starts
  crash,         // node incarnation destroyed
  wipe,          // node disk lost
  buggify,       // a buggify site fired
  fault,         // a network/topology fault was applied
  failure,       // a node task threw: the run fails
};
std::string_view to_string(TraceKind k);

// What the kernel hashes and records for one event.
struct TraceTag {
  TraceKind kind = TraceKind::callback;
  uint32_t node = 0;    // NodeId value, 0 for none
  uint64_t detail = 0;  // kind-specific, must be deterministic
};

struct TraceRecord {
  TimePoint at;
  uint64_t seq;
  TraceTag tag;
};

class Trace {
 public:
  explicit Trace(size_t records_max = 0) : records_max_(records_max) {}

  void add(TimePoint at, uint64_t seq, const TraceTag& tag) {
    uint64_t h = hash_;
    h = step(h, static_cast<uint64_t>(at.ns()));
    h = step(h, seq);
    h = step(h, (static_cast<uint64_t>(tag.kind) << 32) | tag.node);
    h = step(h, tag.detail);
    hash_ = h;
    ++count_;
    if (records_.size() < records_max_) records_.push_back(TraceRecord{at, seq, tag});
  }

  uint64_t hash() const { return hash_; }
  uint64_t count() const { return count_; }
  const std::vector<TraceRecord>& records() const { return records_; }
  size_t records_max() const { return records_max_; }
  // One line per record: "  12.000345s #123 deliver n3 detail=…".
  void write_text(std::ostream& out) const;

 private:
  static uint64_t step(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 32);
  }
  uint64_t hash_ = 0x6a09e667f3bcc908ULL;
  uint64_t count_ = 0;
  size_t records_max_;
  std::vector<TraceRecord> records_;
};

}  // namespace wx::sim
