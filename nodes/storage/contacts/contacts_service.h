// ContactsService: the data-access service of the contact list, over the
// sharded KV store (nodes/storage/shard/). docs/storage.md, "Sharding and
// data-access services", has the protocol.
//
// A stateless RPC node (no disk). All keys of a user live in the user's home
// shard (ShardMap::group_of):
//   c/<uid>/<contact_uid>  ContactItem (contacts.proto); a removal leaves a
//                          tombstone; written only by CAS, and only forward
//                          (a higher change_version replaces a lower one);
//   cv/<uid>               ContactsVersion: the per-user version, bumped by
//                          one by a CAS on every change, plus that change.
// A change commits with the CAS of cv/<uid>; the item write is rolled forward
// afterwards — by the writer, by the next change (before its own CAS), and
// overlaid by ListContacts — so at most the last change is not yet in its
// item, and a crash between the two steps loses nothing.
//
// Methods (all idempotent: a change is a set operation, re-adding a present
// contact or removing an absent one changes nothing):
//   contacts.AddContact     (uid, contact_uid) → version, changed;
//   contacts.RemoveContact  (uid, contact_uid) → version, changed;
//   contacts.ListContacts   (uid) → version, contact uids (a snapshot: the
//                           version key read unchanged before and after the
//                           scan);
//   contacts.Changes        (uid, after_version, limit) → the changes (adds
//                           and tombstones) with change_version >
//                           after_version in increasing change_version order,
//                           the version they reach, `more` (the same snapshot
//                           as a list). The sync of the "contacts" type.
//
// Tickets (docs/tickets.md, "Every hop"): with keys in the config, every
// method first checks that the ticket (CallContext::ticket) is valid for
// `uid` — the user whose contacts are read or changed — and answers
// CONTACTS_UNAUTHENTICATED, touching nothing, if not. Without keys nothing is
// checked (storage-only tests and deployments).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "nodes/rpc/endpoint.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/contacts/contacts.pb.h"
#include "nodes/storage/shard/shard_map.h"

namespace wx::contacts {

inline const rpc::MethodSpec kAddContactMethod{"contacts.AddContact", rpc::Idempotent::yes,
                                               Duration::zero()};
inline const rpc::MethodSpec kRemoveContactMethod{"contacts.RemoveContact", rpc::Idempotent::yes,
                                                  Duration::zero()};
inline const rpc::MethodSpec kListContactsMethod{"contacts.ListContacts", rpc::Idempotent::yes,
                                                 Duration::zero()};

inline const rpc::MethodSpec kChangesMethod{"contacts.Changes", rpc::Idempotent::yes, Duration::zero()};
// contacts.Changes: changes per reply at most.
inline constexpr uint32_t kChangesMax = 1000;

inline constexpr std::string_view kContactItemKeyPrefix = "c/";
inline constexpr std::string_view kContactsVersionKeyPrefix = "cv/";

// "c/<uid>/" — the scan prefix of a user's items.
std::string contact_items_prefix(uint64_t uid);
std::string contact_item_key(uint64_t uid, uint64_t contact_uid);
std::string contacts_version_key(uint64_t uid);

using ContactsServiceConfig = shard::DataServiceConfig;

struct ContactsServiceStats {
  uint64_t changes = 0, no_ops = 0, unknown = 0, invalid = 0;
  uint64_t version_cas_retries = 0;  // version CAS lost or unknown
  uint64_t rolled_forward = 0;       // item writes done for a committed change
  uint64_t list_retries = 0;         // version moved during a list
  uint64_t unauthenticated = 0;      // refused: the ticket check failed
};

class ContactsService final : public Node {
 public:
  ContactsService(Runtime& rt, ContactsServiceConfig config);
  ~ContactsService() override;
  void start() override;
  std::string_view kind() const override { return "contacts"; }

  rpc::RpcEndpoint& endpoint() { return endpoint_; }
  const ContactsServiceStats& stats() const { return stats_; }

 private:
  TimePoint deadline_for(const rpc::CallContext& ctx) const;
  // True when the service checks no tickets or `ctx` carries a valid ticket
  // of `uid`; else counts and logs the refusal (never the ticket's bytes).
  bool ticket_ok(const rpc::CallContext& ctx, uint64_t uid, std::string_view method);
  Task<void> pause();
  // Reads cv/<uid>: nullopt at the deadline; else the record (version 0 if
  // absent) and the key's KV version in *kv_version.
  Task<std::optional<ContactsVersion>> read_version(kv::KvClient* kv, uint64_t uid,
                                                    TimePoint deadline, uint64_t* kv_version);
  // Makes the item of `rec`'s change reflect it (CAS, forward only); false at
  // the deadline.
  Task<bool> roll_forward(kv::KvClient* kv, uint64_t uid, ContactsVersion rec, TimePoint deadline);

  Task<rpc::Result<ChangeContactReply>> serve_change(rpc::CallContext ctx, ChangeContactRequest req,
                                                     bool remove);
  Task<rpc::Result<ListContactsReply>> serve_list(rpc::CallContext ctx, ListContactsRequest req);
  Task<rpc::Result<ChangesReply>> serve_changes(rpc::CallContext ctx, ChangesRequest req);
  // A snapshot of uid's items (contact → item, the last change overlaid) and
  // its version record; nullopt at the deadline.
  struct Snapshot {
    ContactsVersion rec;
    std::map<uint64_t, ContactItem> items;
  };
  Task<std::optional<Snapshot>> snapshot(kv::KvClient* kv, uint64_t uid, TimePoint deadline);
  // What ListContacts and Changes do first: check the ticket, find the
  // user's shard, read a snapshot. nullopt with *code set (UNAUTHENTICATED,
  // INVALID or UNKNOWN) when one of them fails.
  Task<std::optional<Snapshot>> checked_snapshot(const rpc::CallContext& ctx, uint64_t uid, std::string_view method,
                                                 ContactsCode* code);

  Runtime& rt_;
  ContactsServiceConfig config_;
  std::optional<ticket::KeyRing> keys_;  // none: tickets are not checked
  rpc::RpcEndpoint endpoint_;
  shard::ShardedKvClient kv_;
  ContactsServiceStats stats_;
};

}  // namespace wx::contacts
