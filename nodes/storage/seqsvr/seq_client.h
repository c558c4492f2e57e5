// SeqClient: the client library of seqsvr (alloc_server.h, docs/seqsvr.md).
//
// Keeps a copy of the section -> AllocSvr routing map with its version (the
// sum of the sections' epochs), sends each allocation to the allocator it
// believes serves the user's section (the section's preferred allocator while
// it knows none), and sends its map version along. Replies carry the
// allocator's map when the caller's is older or the allocator does not own the
// section (NOT_OWNER): the client merges it (per section, the higher epoch
// wins) and goes to the new holder. On NOT_READY it retries the same
// allocator after a backoff; on timeout / unavailable / overloaded it tries
// the next allocator; on any other error (invalid_argument: a uid outside
// every section) it gives up at once. Retrying an allocation is safe: a lost reply only leaves
// a gap. Gives up at the call's deadline.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "nodes/rpc/endpoint.h"
#include "nodes/storage/seqsvr/alloc_server.h"
#include "nodes/storage/seqsvr/seqsvr.pb.h"

namespace wx::seqsvr {

struct SeqClientConfig {
  std::vector<NodeId> allocators;  // same order as AllocSvrConfig::allocators
  uint64_t section_size = kDefaultSectionSize;
  Duration call_timeout = seconds(5);       // whole allocation
  Duration attempt_timeout = milliseconds(300);
  Duration retry_backoff = milliseconds(20);
};

struct SeqResult {
  bool ok = false;
  uint64_t seq = 0;
  int attempts = 0;
};

class SeqClient {
 public:
  SeqClient(Runtime& rt, rpc::RpcEndpoint& endpoint, SeqClientConfig config);

  // The next sequence number of `uid`. Concurrent calls are allowed.
  Task<SeqResult> alloc(uint64_t uid);

  uint64_t map_version() const { return map_version_; }
  uint64_t redirects() const { return redirects_; }

 private:
  void merge(const AllocReply& reply);

  Runtime& rt_;
  rpc::RpcEndpoint& endpoint_;
  SeqClientConfig config_;
  std::map<uint64_t, MapEntry> map_;
  uint64_t map_version_ = 0;
  uint64_t redirects_ = 0;
};

}  // namespace wx::seqsvr
