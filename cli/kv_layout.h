// The layout of `wxsim node --role kv` processes: which node id and which TCP
// port each replica of each group has, when one process hosts the replicas of
// G groups (one replica per group, each its own AsioRuntime on one io_context).
//
// A process is started with its member id M (`--id`, 1..kKvMemberIdMax), a
// base address HOST:PORT (`--listen`) and the base address of every other
// member (`--peer ID=HOST:PORT`). Then, for group g in [0, G):
//   * the replica of member M in group g has node id  M + g * kKvGroupNodeIdStride;
//   * it listens on                                   HOST:(PORT + g);
//   * members are ordered by member id (replica id = rank + 1), the same in
//     every process, so every process derives the same group membership.
// With G = 1 the node ids are the member ids and the ports the given ones.
// Node ids at or above kKvGroupNodeIdStride * kKvGroupsMax are free for
// clients (kKvClientNodeIdMin).
#pragma once

#include <cstdint>

#include "nodes/runtime/node.h"

namespace wx::cli {

inline constexpr uint32_t kKvGroupNodeIdStride = 1000;
inline constexpr uint32_t kKvMemberIdMax = kKvGroupNodeIdStride - 1;
inline constexpr uint32_t kKvGroupsMax = 1000;
inline constexpr uint32_t kKvClientNodeIdMin = kKvGroupNodeIdStride * kKvGroupsMax;

inline NodeId kv_node_id(uint32_t member_id, uint32_t group) {
  return NodeId{member_id + group * kKvGroupNodeIdStride};
}

inline uint16_t kv_port(uint16_t base_port, uint32_t group) {
  return static_cast<uint16_t>(base_port + group);
}

}  // namespace wx::cli
