#include "nodes/storage/paxos/log.h"

#include <cassert>
#include <utility>

namespace wx::paxos {

bool PaxosLog::contains(uint64_t index) const {
  return index >= 1 && index <= slots_.size() && slots_[index - 1].present;
}

const PaxosLog::Slot& PaxosLog::at(uint64_t index) const {
  assert(index >= 1 && index <= slots_.size());
  return slots_[index - 1];
}

Entry PaxosLog::entry(uint64_t index) const {
  const Slot& slot = at(index);
  assert(slot.present);
  return Entry{index, slot.ballot, slot.command};
}

void PaxosLog::put(const Entry& entry) {
  put(entry.index, entry.ballot, entry.command);
}

void PaxosLog::put(uint64_t index, Ballot ballot, std::string command) {
  assert(index >= 1);
  assert(!ballot.is_zero());
  if (index > slots_.size()) slots_.resize(index);
  Slot& slot = slots_[index - 1];
  slot.present = true;
  slot.ballot = ballot;
  slot.command = std::move(command);
}

}  // namespace wx::paxos
