// The accepted log of one acceptor: slots 1..last_index, each either a hole
// or the value accepted there with its ballot.
//
// Paxos lets slots be accepted out of order (a pipelined leader, a network
// that reorders), so a follower's log may have holes; a leader's never does.
// The whole log is kept in memory (no compaction yet, docs/storage.md). This
// class only stores; the rules of what may be written live in Replica.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nodes/storage/paxos/types.h"

namespace wx::paxos {

class PaxosLog {
 public:
  struct Slot {
    bool present = false;
    Ballot ballot;
    std::string command;
  };

  // Highest index ever written (holes below it are possible); 0 if empty.
  uint64_t last_index() const { return slots_.size(); }
  bool contains(uint64_t index) const;
  // The slot at `index`, which must be in 1..last_index().
  const Slot& at(uint64_t index) const;
  // A copy of the entry at `index`, which must be present.
  Entry entry(uint64_t index) const;
  // Stores (overwrites) the entry at entry.index >= 1.
  void put(const Entry& entry);
  void put(uint64_t index, Ballot ballot, std::string command);

 private:
  std::vector<Slot> slots_;  // slots_[i - 1] holds index i
};

}  // namespace wx::paxos
