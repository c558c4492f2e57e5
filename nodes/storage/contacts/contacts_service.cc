#include "nodes/storage/contacts/contacts_service.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

namespace wx::contacts {

std::string contact_items_prefix(uint64_t uid) {
  std::string k(kContactItemKeyPrefix);
  k += std::to_string(uid);
  k += '/';
  return k;
}

std::string contact_item_key(uint64_t uid, uint64_t contact_uid) {
  return contact_items_prefix(uid) + std::to_string(contact_uid);
}

std::string contacts_version_key(uint64_t uid) {
  std::string k(kContactsVersionKeyPrefix);
  k += std::to_string(uid);
  return k;
}

ContactsService::ContactsService(Runtime& rt, ContactsServiceConfig config)
    : rt_(rt),
      config_(std::move(config)),
      keys_(config_.keys.keys.empty() ? std::nullopt : std::make_optional<ticket::KeyRing>(config_.keys)),
      endpoint_(rt, config_.server),
      kv_(rt, endpoint_, config_.shards, config_.kv) {}

ContactsService::~ContactsService() = default;

void ContactsService::start() {
  endpoint_.register_method<ChangeContactRequest, ChangeContactReply>(
      kAddContactMethod,
      [this](rpc::CallContext ctx,
             ChangeContactRequest req) -> Task<rpc::Result<ChangeContactReply>> {
        return serve_change(std::move(ctx), std::move(req), false);
      });
  endpoint_.register_method<ChangeContactRequest, ChangeContactReply>(
      kRemoveContactMethod,
      [this](rpc::CallContext ctx,
             ChangeContactRequest req) -> Task<rpc::Result<ChangeContactReply>> {
        return serve_change(std::move(ctx), std::move(req), true);
      });
  endpoint_.register_method<ListContactsRequest, ListContactsReply>(
      kListContactsMethod,
      [this](rpc::CallContext ctx,
             ListContactsRequest req) -> Task<rpc::Result<ListContactsReply>> {
        return serve_list(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<ChangesRequest, ChangesReply>(
      kChangesMethod, [this](rpc::CallContext ctx, ChangesRequest req) -> Task<rpc::Result<ChangesReply>> {
        return serve_changes(std::move(ctx), std::move(req));
      });
  endpoint_.start();
}

TimePoint ContactsService::deadline_for(const rpc::CallContext& ctx) const {
  TimePoint d = rt_.now() + config_.request_budget;
  if (ctx.deadline - config_.reply_margin < d) d = ctx.deadline - config_.reply_margin;
  return d;
}

bool ContactsService::ticket_ok(const rpc::CallContext& ctx, uint64_t uid, std::string_view method) {
  if (!keys_) return true;
  const ticket::TicketCheck c = keys_->verify_for_user(ctx.ticket, rt_.now(), uid);
  if (c.ok()) return true;
  ++stats_.unauthenticated;
  rt_.debug("contacts: {} for uid {} refused: ticket {} (ticket uid {})", method, uid,
            ticket::to_string(c.status), c.user_id);
  return false;
}

Task<void> ContactsService::pause() {
  int64_t pause_ns = config_.retry_pause.ns();
  co_await rt_.sleep(nanoseconds(
      pause_ns / 2 +
      static_cast<int64_t>(rt_.rng().next_u64() % static_cast<uint64_t>(pause_ns + 1))));
}

Task<std::optional<ContactsVersion>> ContactsService::read_version(kv::KvClient* kv, uint64_t uid,
                                                                   TimePoint deadline,
                                                                   uint64_t* kv_version) {
  const std::string key = contacts_version_key(uid);
  while (rt_.now() < deadline) {
    kv::KvResult g = co_await kv->get(key);
    if (g.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    ContactsVersion rec;
    if (g.found && !rec.ParseFromString(g.value)) {
      rt_.error("contacts: version record of {} does not parse", uid);
      co_return std::nullopt;
    }
    *kv_version = g.version;
    co_return rec;
  }
  co_return std::nullopt;
}

Task<bool> ContactsService::roll_forward(kv::KvClient* kv, uint64_t uid, ContactsVersion rec,
                                         TimePoint deadline) {
  if (rec.version() == 0) co_return true;  // no change yet
  const std::string key = contact_item_key(uid, rec.last_contact_uid());
  ContactItem want;
  want.set_contact_uid(rec.last_contact_uid());
  want.set_change_version(rec.version());
  want.set_removed(rec.last_removed());
  const std::string value = want.SerializeAsString();
  while (rt_.now() < deadline) {
    kv::KvResult g = co_await kv->get(key);
    if (g.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    if (g.found) {
      ContactItem cur;
      if (!cur.ParseFromString(g.value)) {
        rt_.error("contacts: item {} does not parse", key);
        co_return false;
      }
      // Forward only: a later change already wrote this item (or this one did).
      if (cur.change_version() >= rec.version()) co_return true;
    }
    kv::KvResult c = co_await kv->cas(key, g.version, value);
    if (c.code == kv::KvResultCode::ok) {
      ++stats_.rolled_forward;
      co_return true;
    }
    // cas_failed: someone else wrote it (maybe this very change); unknown:
    // maybe applied. Either way read again.
    co_await pause();
  }
  co_return false;
}

Task<rpc::Result<ChangeContactReply>> ContactsService::serve_change(rpc::CallContext ctx,
                                                                    ChangeContactRequest req,
                                                                    bool remove) {
  ChangeContactReply reply;
  if (!ticket_ok(ctx, req.uid(), remove ? "remove" : "add")) {
    reply.set_code(CONTACTS_UNAUTHENTICATED);
    co_return reply;
  }
  const uint64_t uid = req.uid();
  const uint64_t contact = req.contact_uid();
  std::optional<shard::ShardedKvClient::Lease> lease;
  if (uid != 0 && contact != 0 && uid != contact) lease = kv_.lease_for_user(uid);
  if (!lease) {
    ++stats_.invalid;
    reply.set_code(CONTACTS_INVALID);
    co_return reply;
  }
  kv::KvClient* kv = lease->get();
  const TimePoint deadline = deadline_for(ctx);
  const std::string item_key = contact_item_key(uid, contact);
  while (rt_.now() < deadline) {
    uint64_t version_kv = 0;
    std::optional<ContactsVersion> rec = co_await read_version(kv, uid, deadline, &version_kv);
    if (!rec) break;
    // The last committed change first: every change before it is in its item
    // already, so afterwards the items are the whole truth.
    if (!co_await roll_forward(kv, uid, *rec, deadline)) break;
    kv::KvResult it = co_await kv->get(item_key);
    if (it.code != kv::KvResultCode::ok) {
      co_await pause();
      continue;
    }
    bool present = false;
    if (it.found) {
      ContactItem cur;
      if (!cur.ParseFromString(it.value)) {
        rt_.error("contacts: item {} does not parse", item_key);
        break;
      }
      present = !cur.removed();
    }
    if (present != remove) {  // nothing to change
      ++stats_.no_ops;
      reply.set_code(CONTACTS_OK);
      reply.set_version(rec->version());
      reply.set_changed(false);
      co_return reply;
    }
    ContactsVersion next;
    next.set_version(rec->version() + 1);
    next.set_last_contact_uid(contact);
    next.set_last_removed(remove);
    // The commit point. Lost to a concurrent change (cas_failed) or unknown:
    // start over. An unknown CAS is harmless: it expects the version we read,
    // so it fails if anything else commits first, and our next write from
    // this same client fences it (a newer request id of a client makes the
    // store refuse its older ones); if it did apply, the next round finds the
    // contact already changed.
    kv::KvResult c =
        co_await kv->cas(contacts_version_key(uid), version_kv, next.SerializeAsString());
    if (c.code != kv::KvResultCode::ok) {
      ++stats_.version_cas_retries;
      co_await pause();
      continue;
    }
    // Committed. Best effort: the next change or list completes it otherwise.
    co_await roll_forward(kv, uid, next, deadline);
    ++stats_.changes;
    reply.set_code(CONTACTS_OK);
    reply.set_version(next.version());
    reply.set_changed(true);
    co_return reply;
  }
  ++stats_.unknown;
  reply.set_code(CONTACTS_UNKNOWN);
  co_return reply;
}

Task<std::optional<ContactsService::Snapshot>> ContactsService::snapshot(kv::KvClient* kv, uint64_t uid,
                                                                          TimePoint deadline) {
  const std::string prefix = contact_items_prefix(uid);
  std::string prefix_end = prefix;
  prefix_end.back() =
      static_cast<char>(prefix_end.back() + 1);  // '/' + 1: just past every "c/<uid>/..." key
  while (rt_.now() < deadline) {
    uint64_t before_kv = 0;
    std::optional<ContactsVersion> rec = co_await read_version(kv, uid, deadline, &before_kv);
    if (!rec) break;
    Snapshot snap;
    std::string from = prefix;
    bool complete = false, failed = false;
    while (!complete && !failed) {
      kv::KvScanResult s = co_await kv->scan("", from, prefix_end, kv::kScanItemsMax);
      if (s.code != kv::KvResultCode::ok) {
        failed = true;
        break;
      }
      for (const kv::Item& item : s.items) {
        ContactItem ci;
        if (!ci.ParseFromString(item.value())) {
          rt_.error("contacts: item {} does not parse", item.key());
          continue;
        }
        snap.items[ci.contact_uid()] = ci;
      }
      if (s.items.size() < kv::kScanItemsMax) {
        complete = true;
      } else {
        from = s.items.back().key();
        from.push_back('\0');  // just past the last key
      }
    }
    if (failed) {
      co_await pause();
      continue;
    }
    uint64_t after_kv = 0;
    std::optional<ContactsVersion> again = co_await read_version(kv, uid, deadline, &after_kv);
    if (!again) break;
    if (after_kv != before_kv) {  // a change committed meanwhile: not a snapshot
      ++stats_.list_retries;
      continue;
    }
    // Overlay the last change if its item is not written yet.
    if (rec->version() > 0) {
      ContactItem& last = snap.items[rec->last_contact_uid()];
      if (last.change_version() < rec->version()) {
        last.set_contact_uid(rec->last_contact_uid());
        last.set_change_version(rec->version());
        last.set_removed(rec->last_removed());
      }
    }
    snap.rec = *rec;
    co_return snap;
  }
  co_return std::nullopt;
}

Task<std::optional<ContactsService::Snapshot>> ContactsService::checked_snapshot(const rpc::CallContext& ctx,
                                                                               uint64_t uid, std::string_view method,
                                                                               ContactsCode* code) {
  if (!ticket_ok(ctx, uid, method)) {
    *code = CONTACTS_UNAUTHENTICATED;
    co_return std::nullopt;
  }
  std::optional<shard::ShardedKvClient::Lease> lease;
  if (uid != 0) lease = kv_.lease_for_user(uid);
  if (!lease) {
    ++stats_.invalid;
    *code = CONTACTS_INVALID;
    co_return std::nullopt;
  }
  std::optional<Snapshot> snap = co_await snapshot(lease->get(), uid, deadline_for(ctx));
  if (!snap) {
    ++stats_.unknown;
    *code = CONTACTS_UNKNOWN;
  }
  co_return snap;
}

Task<rpc::Result<ListContactsReply>> ContactsService::serve_list(rpc::CallContext ctx,
                                                                 ListContactsRequest req) {
  ListContactsReply reply;
  ContactsCode code = CONTACTS_OK;
  const std::optional<Snapshot> snap = co_await checked_snapshot(ctx, req.uid(), "list", &code);
  if (!snap) {
    reply.set_code(code);
    co_return reply;
  }
  reply.set_code(CONTACTS_OK);
  reply.set_version(snap->rec.version());
  for (const auto& [contact, item] : snap->items) {
    if (!item.removed()) reply.add_contact_uids(contact);
  }
  co_return reply;
}

Task<rpc::Result<ChangesReply>> ContactsService::serve_changes(rpc::CallContext ctx, ChangesRequest req) {
  ChangesReply reply;
  ContactsCode code = CONTACTS_OK;
  const std::optional<Snapshot> snap = co_await checked_snapshot(ctx, req.uid(), "changes", &code);
  if (!snap) {
    reply.set_code(code);
    co_return reply;
  }
  const uint32_t limit = req.limit() == 0 || req.limit() > kChangesMax ? kChangesMax : req.limit();
  // change_version → item: each change version names at most one item (a
  // change writes one item; a later change of that contact moves it higher).
  std::map<uint64_t, const ContactItem*> by_version;
  for (const auto& [contact, item] : snap->items) {
    if (item.change_version() > req.after_version()) by_version[item.change_version()] = &item;
  }
  uint64_t reached = std::max(req.after_version(), snap->rec.version());
  for (const auto& [v, item] : by_version) {
    if (static_cast<uint32_t>(reply.changes_size()) == limit) {
      reply.set_more(true);
      break;
    }
    *reply.add_changes() = *item;
  }
  if (reply.more()) reached = reply.changes(reply.changes_size() - 1).change_version();
  reply.set_code(CONTACTS_OK);
  reply.set_version(reached);
  co_return reply;
}

}  // namespace wx::contacts
