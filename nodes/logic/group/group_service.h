// GroupService: group membership (docs/messaging.md "Group chat"), a
// stateless logic service deployed in every zone (role `group`).
//
//   group.Create(group_id, creator, members)   ticket must be `creator`'s;
//       the creator must be listed. The record "group/<gid>" (GroupRecord,
//       version 1) is claimed by a CAS from KV version 0 in the group's KV
//       group (KvPool::group_for_id: the first datacenter's shards by id).
//       A retry finding the same record answers OK; another record → EXISTS.
//   group.Join(group_id, uid) / group.Leave(group_id, uid)   ticket must be
//       uid's (a user joins or leaves only itself); read, change, CAS from
//       the KV version read (a lost race reads again); membership version +1
//       per change; already so → OK, changed = false. Join is refused with
//       GROUP_FULL at kGroupMembersMax members.
//   group.Members(group_id, uid)   ticket must be uid's and uid a member.
//
// read_group() is what msg.GroupSend uses to fix the member list at send time.
// Every method is idempotent (Idempotent::yes): retries re-read the record.
// Bounded: members ≤ kGroupMembersMax, rounds ≤ kGroupRoundsMax, the request
// budget. Node code.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "nodes/logic/group/group.pb.h"
#include "nodes/logic/queue/kv_pool.h"
#include "nodes/logic/ticket/ticket.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/shard/shard_map.h"

namespace wx::group {

inline const rpc::MethodSpec kCreateMethod{"group.Create", rpc::Idempotent::yes, microseconds(100)};
inline const rpc::MethodSpec kJoinMethod{"group.Join", rpc::Idempotent::yes, microseconds(100)};
inline const rpc::MethodSpec kLeaveMethod{"group.Leave", rpc::Idempotent::yes, microseconds(100)};
inline const rpc::MethodSpec kMembersMethod{"group.Members", rpc::Idempotent::yes, microseconds(100)};
inline constexpr std::string_view kServiceName = "group";

inline constexpr size_t kGroupMembersMax = 512;
inline constexpr int kGroupRoundsMax = 32;

std::string group_key(uint64_t group_id);

struct GroupRead {
  bool ok = false;      // a definite read
  bool found = false;
  GroupRecord record;
  uint64_t kv_version = 0;
};
// Reads "group/<gid>" until a definite answer or the deadline.
Task<GroupRead> read_group(Runtime& rt, queue::KvPool& pool, uint64_t group_id, TimePoint deadline);

struct GroupServiceConfig {
  std::shared_ptr<const shard::ShardMap> shards;  // filled by make_node
  ticket::KeyRingConfig keys;
  rpc::ServerConfig server;
  shard::ShardedKvClientConfig kv;
  Duration request_budget = milliseconds(2500);
  Duration reply_margin = milliseconds(50);
  Duration retry_pause = milliseconds(20);
};

struct GroupServiceStats {
  uint64_t requests = 0, ok = 0, unauthenticated = 0, refused = 0, unknown = 0, cas_races = 0;
};

class GroupService final : public Node {
 public:
  GroupService(Runtime& rt, GroupServiceConfig config);
  void start() override;
  std::string_view kind() const override { return "group"; }
  rpc::RpcEndpoint& endpoint() { return endpoint_; }
  const GroupServiceStats& stats() const { return stats_; }

 private:
  TimePoint deadline_for(const rpc::CallContext& ctx) const;
  bool check_ticket(const rpc::CallContext& ctx, uint64_t uid, GroupReply* reply);
  Task<rpc::Result<GroupReply>> serve_create(rpc::CallContext ctx, CreateRequest req);
  Task<rpc::Result<GroupReply>> serve_change(rpc::CallContext ctx, MembershipRequest req, bool join);
  Task<rpc::Result<GroupReply>> serve_members(rpc::CallContext ctx, MembersRequest req);
  Task<void> pause();

  Runtime& rt_;
  GroupServiceConfig config_;
  ticket::KeyRing keys_;
  rpc::RpcEndpoint endpoint_;
  queue::KvPool pool_;
  GroupServiceStats stats_;
};

}  // namespace wx::group
