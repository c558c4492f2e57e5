// GroupService: create, join, leave, members (see group_service.h).
#include "nodes/logic/group/group_service.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace wx::group {

std::string group_key(uint64_t group_id) { return "group/" + std::to_string(group_id); }

Task<GroupRead> read_group(Runtime& rt, queue::KvPool& pool, uint64_t group_id, TimePoint deadline) {
  queue::KvPool::Lease kv = pool.lease(pool.group_for_id(group_id));
  GroupRead out;
  while (rt.now() < deadline) {
    kv::KvResult g = co_await kv->get(group_key(group_id));
    if (g.code != kv::KvResultCode::ok) {
      co_await rt.sleep(milliseconds(20));
      continue;
    }
    out.ok = true;
    out.kv_version = g.version;
    out.found = g.found && out.record.ParseFromString(g.value);
    co_return out;
  }
  co_return out;
}

GroupService::GroupService(Runtime& rt, GroupServiceConfig config)
    : rt_(rt),
      config_(std::move(config)),
      keys_(config_.keys),
      endpoint_(rt, config_.server),
      pool_(rt, endpoint_, config_.shards, config_.kv) {}

void GroupService::start() {
  endpoint_.register_method<CreateRequest, GroupReply>(
      kCreateMethod, [this](rpc::CallContext ctx, CreateRequest req) -> Task<rpc::Result<GroupReply>> {
        return serve_create(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<MembershipRequest, GroupReply>(
      kJoinMethod, [this](rpc::CallContext ctx, MembershipRequest req) -> Task<rpc::Result<GroupReply>> {
        return serve_change(std::move(ctx), std::move(req), true);
      });
  endpoint_.register_method<MembershipRequest, GroupReply>(
      kLeaveMethod, [this](rpc::CallContext ctx, MembershipRequest req) -> Task<rpc::Result<GroupReply>> {
        return serve_change(std::move(ctx), std::move(req), false);
      });
  endpoint_.register_method<MembersRequest, GroupReply>(
      kMembersMethod, [this](rpc::CallContext ctx, MembersRequest req) -> Task<rpc::Result<GroupReply>> {
        return serve_members(std::move(ctx), std::move(req));
      });
  endpoint_.start();
}

TimePoint GroupService::deadline_for(const rpc::CallContext& ctx) const {
  TimePoint d = rt_.now() + config_.request_budget;
  if (ctx.deadline - config_.reply_margin < d) d = ctx.deadline - config_.reply_margin;
  return d;
}

Task<void> GroupService::pause() {
  const int64_t ns = config_.retry_pause.ns();
  co_await rt_.sleep(nanoseconds(ns / 2 + static_cast<int64_t>(rt_.rng().uniform(static_cast<uint64_t>(ns) + 1))));
}

bool GroupService::check_ticket(const rpc::CallContext& ctx, uint64_t uid, GroupReply* reply) {
  ticket::TicketCheck c = keys_.verify_for_user(ctx.ticket, rt_.now(), uid);
  if (c.ok()) return true;
  ++stats_.unauthenticated;
  reply->set_code(GROUP_UNAUTHENTICATED);
  reply->set_error("ticket refused: " + std::string(ticket::to_string(c.status)));
  return false;
}

namespace {
void fill_ok(GroupReply* reply, const GroupRecord& rec) {
  reply->set_code(GROUP_OK);
  for (uint64_t m : rec.members()) reply->add_members(m);
  reply->set_version(rec.version());
}
bool is_member(const GroupRecord& rec, uint64_t uid) {
  return std::binary_search(rec.members().begin(), rec.members().end(), uid);
}
}  // namespace

Task<rpc::Result<GroupReply>> GroupService::serve_create(rpc::CallContext ctx, CreateRequest req) {
  ++stats_.requests;
  GroupReply reply;
  if (!check_ticket(ctx, req.creator(), &reply)) co_return reply;
  std::vector<uint64_t> members(req.members().begin(), req.members().end());
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  if (req.group_id() == 0 || req.creator() == 0 || members.empty() || members.front() == 0 ||
      members.size() > kGroupMembersMax || req.members_size() > static_cast<int>(2 * kGroupMembersMax)) {
    ++stats_.refused;
    reply.set_code(GROUP_INVALID);
    reply.set_error("invalid group: id, creator or members (at most " + std::to_string(kGroupMembersMax) + ")");
    co_return reply;
  }
  if (!std::binary_search(members.begin(), members.end(), req.creator())) {
    ++stats_.refused;
    reply.set_code(GROUP_FORBIDDEN);
    reply.set_error("the creator must be a member");
    co_return reply;
  }
  GroupRecord fresh;
  fresh.set_group_id(req.group_id());
  fresh.set_creator(req.creator());
  for (uint64_t m : members) fresh.add_members(m);
  fresh.set_version(1);
  const std::string bytes = fresh.SerializeAsString();
  const TimePoint deadline = deadline_for(ctx);
  queue::KvPool::Lease kv = pool_.lease(pool_.group_for_id(req.group_id()));
  for (int round = 0; round < kGroupRoundsMax && rt_.now() < deadline; ++round) {
    kv::KvResult g = co_await kv->get(group_key(req.group_id()));
    if (g.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    if (g.found) {
      GroupRecord rec;
      // The same creation (a retry, possibly of our own unknown CAS) → OK.
      if (rec.ParseFromString(g.value) && rec.creator() == fresh.creator() && rec.version() == 1 &&
          rec.SerializeAsString() == bytes) {
        ++stats_.ok;
        fill_ok(&reply, rec);
        co_return reply;
      }
      ++stats_.refused;
      reply.set_code(GROUP_EXISTS);
      reply.set_error("the group id is taken");
      co_return reply;
    }
    kv::KvResult c = co_await kv->cas(group_key(req.group_id()), 0, bytes);
    while (c.code == kv::KvResultCode::unknown && rt_.now() < deadline) {
      co_await pause();
      c = co_await kv->cas(group_key(req.group_id()), 0, bytes);
    }
    if (c.code == kv::KvResultCode::ok) {
      ++stats_.ok;
      fill_ok(&reply, fresh);
      co_return reply;
    }
    if (c.code == kv::KvResultCode::cas_failed) ++stats_.cas_races;
  }
  ++stats_.unknown;
  reply.set_code(GROUP_UNKNOWN);
  reply.set_error("no definite answer within the request budget");
  co_return reply;
}

Task<rpc::Result<GroupReply>> GroupService::serve_change(rpc::CallContext ctx, MembershipRequest req, bool join) {
  ++stats_.requests;
  GroupReply reply;
  if (!check_ticket(ctx, req.uid(), &reply)) co_return reply;
  if (req.group_id() == 0 || req.uid() == 0) {
    ++stats_.refused;
    reply.set_code(GROUP_INVALID);
    reply.set_error("invalid group or user");
    co_return reply;
  }
  const TimePoint deadline = deadline_for(ctx);
  queue::KvPool::Lease kv = pool_.lease(pool_.group_for_id(req.group_id()));
  const std::string key = group_key(req.group_id());
  for (int round = 0; round < kGroupRoundsMax && rt_.now() < deadline; ++round) {
    kv::KvResult g = co_await kv->get(key);
    if (g.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    GroupRecord rec;
    if (!g.found || !rec.ParseFromString(g.value)) {
      ++stats_.refused;
      reply.set_code(GROUP_NOT_FOUND);
      reply.set_error("no such group");
      co_return reply;
    }
    if (is_member(rec, req.uid()) == join) {
      ++stats_.ok;
      fill_ok(&reply, rec);
      reply.set_changed(false);
      co_return reply;
    }
    std::vector<uint64_t> members(rec.members().begin(), rec.members().end());
    if (join) {
      if (members.size() >= kGroupMembersMax) {
        ++stats_.refused;
        reply.set_code(GROUP_FULL);
        reply.set_error("the group is full");
        co_return reply;
      }
      members.insert(std::upper_bound(members.begin(), members.end(), req.uid()), req.uid());
    } else {
      members.erase(std::lower_bound(members.begin(), members.end(), req.uid()));
    }
    GroupRecord next = rec;
    next.clear_members();
    for (uint64_t m : members) next.add_members(m);
    next.set_version(rec.version() + 1);
    const std::string bytes = next.SerializeAsString();
    kv::KvResult c = co_await kv->cas(key, g.version, bytes);
    while (c.code == kv::KvResultCode::unknown && rt_.now() < deadline) {
      co_await pause();
      c = co_await kv->cas(key, g.version, bytes);
    }
    if (c.code == kv::KvResultCode::ok) {
      ++stats_.ok;
      fill_ok(&reply, next);
      reply.set_changed(true);
      co_return reply;
    }
    if (c.code == kv::KvResultCode::cas_failed) {
      ++stats_.cas_races;  // or our own unknown CAS applied: the next read tells
      co_await pause();
    }
  }
  ++stats_.unknown;
  reply.set_code(GROUP_UNKNOWN);
  reply.set_error("no definite answer within the request budget");
  co_return reply;
}

Task<rpc::Result<GroupReply>> GroupService::serve_members(rpc::CallContext ctx, MembersRequest req) {
  ++stats_.requests;
  GroupReply reply;
  if (!check_ticket(ctx, req.uid(), &reply)) co_return reply;
  GroupRead r = co_await read_group(rt_, pool_, req.group_id(), deadline_for(ctx));
  if (!r.ok) {
    ++stats_.unknown;
    reply.set_code(GROUP_UNKNOWN);
    reply.set_error("no definite answer within the request budget");
    co_return reply;
  }
  if (!r.found) {
    reply.set_code(GROUP_NOT_FOUND);
    reply.set_error("no such group");
    co_return reply;
  }
  if (!is_member(r.record, req.uid())) {
    ++stats_.refused;
    reply.set_code(GROUP_FORBIDDEN);
    reply.set_error("only members may list a group");
    co_return reply;
  }
  ++stats_.ok;
  fill_ok(&reply, r.record);
  co_return reply;
}

}  // namespace wx::group
