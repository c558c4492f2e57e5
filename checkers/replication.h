// "Every acknowledged write is on at least N zones": judged from recorded
// facts only, like every checker here.
//
// Input: the messaging history (its SendAck facts: message m acknowledged to
// recipient u at seq s at time t) and StoredCopy facts: replica r in zone z
// durably persisted (its log entry committed to its disk) the write of
// recipient u's inbox record at seq s at time t. The simulator records the
// latter from each KV replica's persist hook (KvReplicaConfig::
// persisted_observer); a real cluster can record them from its replicas'
// logs. Verdict: for every acknowledged (message, recipient, seq), the zones
// holding that inbox record no later than the acknowledgement number at least
// `zones_min` — so losing any one zone right after an ack cannot lose it.
//
// (A record persisted and later overwritten by a new leader's different entry
// at the same log index still counts here; the inbox writes each (recipient,
// seq) key once, so this does not arise for inbox records.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "checkers/history.h"

namespace wx::checkers::messaging {

struct StoredCopy {
  int64_t t_ns = 0;
  std::string zone;
  std::string replica;  // the replica's name, for the report
  UserId user = 0;
  Seq seq = 0;
};

struct ReplicationVerdict {
  size_t zones_min = 2;
  size_t acks_checked = 0;  // (message, recipient, seq) acknowledgements judged
  size_t violations = 0;
  std::vector<std::string> examples;  // the first few, one sentence each
  bool ok() const { return violations == 0; }
};

ReplicationVerdict check_acks_on_zones(const History& history, const std::vector<StoredCopy>& copies,
                                       size_t zones_min = 2, size_t examples_max = 5);

}  // namespace wx::checkers::messaging
