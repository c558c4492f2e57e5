#include "nodes/storage/account/account_service.h"

#include <algorithm>
#include <charconv>
#include <utility>

namespace wx::account {

namespace {

bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

bool valid_account_id(std::string_view id) {
  if (id.size() < kAccountIdCharsMin || id.size() > kAccountIdCharsMax) return false;
  if (!is_letter(id[0])) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return is_letter(c) || is_digit(c) || c == '_' || c == '-'; });
}

std::string account_key(std::string_view account_id) {
  std::string k(kAccountKeyPrefix);
  k += account_id;
  return k;
}

std::string uid_index_key(uint64_t uid) {
  std::string k(kUidIndexKeyPrefix);
  k += std::to_string(uid);
  return k;
}

std::string profile_key(uint64_t uid) {
  std::string k(kProfileKeyPrefix);
  k += std::to_string(uid);
  return k;
}

class AccountService::Lease {
 public:
  explicit Lease(AccountService& s, bool probe = false) : s_(s), probe_(probe), c_(s.take_client(probe)) {}
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { s_.return_client(std::move(c_), probe_); }
  kv::KvClient* get() { return c_.get(); }

 private:
  AccountService& s_;
  bool probe_;
  std::unique_ptr<kv::KvClient> c_;
};

AccountService::AccountService(Runtime& rt, AccountServiceConfig config)
    : rt_(rt),
      config_(std::move(config)),
      keys_(config_.keys.keys.empty() ? std::nullopt : std::make_optional<ticket::KeyRing>(config_.keys)),
      endpoint_(rt, config_.server) {}

AccountService::~AccountService() = default;

void AccountService::start() {
  endpoint_.register_method<RegisterRequest, RegisterReply>(
      kRegisterMethod, [this](rpc::CallContext ctx, RegisterRequest req) -> Task<rpc::Result<RegisterReply>> {
        return serve_register(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<GetAccountRequest, AccountReply>(
      kGetAccountMethod, [this](rpc::CallContext ctx, GetAccountRequest req) -> Task<rpc::Result<AccountReply>> {
        return serve_get_account(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<GetByUidRequest, AccountReply>(
      kGetByUidMethod, [this](rpc::CallContext ctx, GetByUidRequest req) -> Task<rpc::Result<AccountReply>> {
        return serve_get_by_uid(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<GetCredentialRequest, CredentialReply>(
      kGetCredentialMethod,
      [this](rpc::CallContext ctx, GetCredentialRequest req) -> Task<rpc::Result<CredentialReply>> {
        return serve_get_credential(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<GetProfileRequest, ProfileReply>(
      kGetProfileMethod, [this](rpc::CallContext ctx, GetProfileRequest req) -> Task<rpc::Result<ProfileReply>> {
        return serve_get_profile(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<SetProfileRequest, ProfileReply>(
      kSetProfileMethod, [this](rpc::CallContext ctx, SetProfileRequest req) -> Task<rpc::Result<ProfileReply>> {
        return serve_set_profile(std::move(ctx), std::move(req));
      });
  endpoint_.start();
}

std::unique_ptr<kv::KvClient> AccountService::take_client(bool probe) {
  std::vector<std::unique_ptr<kv::KvClient>>& pool = probe ? idle_probe_clients_ : idle_clients_;
  if (!pool.empty()) {
    std::unique_ptr<kv::KvClient> c = std::move(pool.back());
    pool.pop_back();
    return c;
  }
  kv::KvClientConfig cc;
  cc.replicas = config_.kv_replicas;
  cc.call_timeout = config_.kv_call_timeout;
  cc.attempt_timeout = config_.kv_attempt_timeout;
  cc.retry_backoff = config_.kv_retry_backoff;
  if (probe) {
    cc.call_timeout = std::min(cc.call_timeout, config_.quorum_check_budget);
    cc.attempt_timeout = std::min(cc.attempt_timeout, cc.call_timeout);
  }
  return std::make_unique<kv::KvClient>(rt_, endpoint_, cc);
}

void AccountService::return_client(std::unique_ptr<kv::KvClient> c, bool probe) {
  std::vector<std::unique_ptr<kv::KvClient>>& pool = probe ? idle_probe_clients_ : idle_clients_;
  if (c && pool.size() < kIdleKvClientsMax) pool.push_back(std::move(c));
}

TimePoint AccountService::deadline_for(const rpc::CallContext& ctx) const {
  TimePoint d = rt_.now() + config_.request_budget;
  if (ctx.deadline - config_.reply_margin < d) d = ctx.deadline - config_.reply_margin;
  return d;
}

Task<std::optional<uint64_t>> AccountService::allocate_uid(kv::KvClient* kv, TimePoint deadline) {
  while (rt_.now() < deadline) {
    kv::KvResult g = co_await kv->get(std::string(kUidCounterKey));
    if (g.code != kv::KvResultCode::ok) {
      co_await rt_.sleep(config_.retry_pause);
      continue;
    }
    uint64_t last = 0;
    if (g.found) {
      std::optional<uint64_t> n = parse_u64(g.value);
      if (!n) {
        rt_.error("account: uid counter holds a non-number");
        co_return std::nullopt;
      }
      last = *n;
    }
    kv::KvResult c = co_await kv->cas(std::string(kUidCounterKey), g.version, std::to_string(last + 1));
    // Only the CAS from the version that held `last` can install last + 1,
    // and the counter only grows, so an acknowledged CAS makes last + 1 ours
    // alone. A lost or unknown CAS abandons last + 1 (at worst a gap).
    if (c.code == kv::KvResultCode::ok) co_return last + 1;
    ++stats_.uid_cas_retries;
    // Jittered pause: allocators in several zones race on one key.
    int64_t pause_ns = config_.retry_pause.ns();
    co_await rt_.sleep(nanoseconds(static_cast<int64_t>(rt_.rng().next_u64() % static_cast<uint64_t>(pause_ns + 1))));
  }
  co_return std::nullopt;
}

Task<std::optional<AccountRecord>> AccountService::read_account(kv::KvClient* kv, std::string account_id,
                                                                TimePoint deadline, bool* corrupt) {
  std::string key = account_key(account_id);
  while (rt_.now() < deadline) {
    kv::KvResult g = co_await kv->get(key);
    if (g.code != kv::KvResultCode::ok) {
      co_await rt_.sleep(config_.retry_pause);
      continue;
    }
    AccountRecord rec;
    if (!g.found) co_return rec;  // uid 0: absent
    if (!rec.ParseFromString(g.value) || rec.uid() == 0) {
      rt_.error("account: record of {} does not parse", account_id);
      if (corrupt != nullptr) *corrupt = true;
      co_return std::nullopt;
    }
    co_return rec;
  }
  co_return std::nullopt;
}

Task<rpc::Result<RegisterReply>> AccountService::serve_register(rpc::CallContext ctx, RegisterRequest req) {
  RegisterReply reply;
  if (!valid_account_id(req.account_id()) || req.nonce() == 0 ||
      req.profile().nickname().size() > kProfileFieldBytesMax || req.profile().region().size() > kProfileFieldBytesMax ||
      req.credential().salt().size() > kCredentialBytesMax || req.credential().verifier().size() > kCredentialBytesMax) {
    ++stats_.invalid;
    reply.set_code(REGISTER_INVALID);
    co_return reply;
  }
  const TimePoint deadline = deadline_for(ctx);
  const uint64_t nonce = req.nonce();
  const std::string key = account_key(req.account_id());
  Lease lease(*this);
  kv::KvClient* kv = lease.get();

  auto decide = [&](const AccountRecord& rec) {
    if (rec.claim_nonce() == nonce) {
      ++stats_.registered;
      reply.set_code(REGISTER_OK);
      reply.set_uid(rec.uid());
    } else {
      ++stats_.taken;
      reply.set_code(REGISTER_TAKEN);
    }
  };
  auto unresolved = [&] {
    ++stats_.unresolved;
    reply.set_code(config_.unsafe_unavailable_after_write ? REGISTER_UNAVAILABLE : REGISTER_UNKNOWN);
  };

  // 1. Already claimed (by someone else, or by an earlier attempt of this
  // registration)? The claim never changes once made, so a hit is final.
  // This read is also the quorum check: no answer within
  // quorum_check_budget → REGISTER_UNAVAILABLE, definite, because this
  // attempt has sent nothing but reads (which change nothing). Every later
  // step may have sent a write, so from here on the inconclusive answer is
  // REGISTER_UNKNOWN.
  {
    Lease probe(*this, /*probe=*/true);
    const TimePoint check_deadline = std::min(deadline, rt_.now() + config_.quorum_check_budget);
    bool corrupt = false;
    std::optional<AccountRecord> cur = co_await read_account(probe.get(), req.account_id(), check_deadline, &corrupt);
    if (!cur) {
      if (corrupt) {
        unresolved();
      } else {
        ++stats_.unavailable;
        reply.set_code(REGISTER_UNAVAILABLE);
      }
      co_return reply;
    }
    if (cur->uid() != 0) {
      decide(*cur);
      co_return reply;
    }
  }

  // 2. A fresh uid.
  std::optional<uint64_t> uid = co_await allocate_uid(kv, deadline);
  if (!uid) {
    unresolved();
    co_return reply;
  }

  // 3. The uid index, before the claim: readers check it against the claim.
  // The uid is ours alone, so a plain put retried until acknowledged is safe.
  bool indexed = false;
  while (!indexed && rt_.now() < deadline) {
    kv::KvResult r = co_await kv->put(uid_index_key(*uid), req.account_id());
    if (r.code == kv::KvResultCode::ok) indexed = true;
    else co_await rt_.sleep(config_.retry_pause);
  }
  if (!indexed) {  // nothing claimed yet: the caller retries
    unresolved();
    co_return reply;
  }

  // 4. The claim: CAS from version 0 (absent).
  AccountRecord mine;
  mine.set_account_id(req.account_id());
  mine.set_uid(*uid);
  mine.set_claim_nonce(nonce);
  *mine.mutable_profile() = req.profile();
  if (req.has_credential()) *mine.mutable_credential() = req.credential();
  const std::string value = mine.SerializeAsString();
  kv::KvResult c = co_await kv->cas(key, 0, value);
  bool after_unknown = false;
  while (c.code == kv::KvResultCode::unknown) {
    // Maybe applied, maybe never, maybe later. Re-issue the same CAS from the
    // same KvClient: its newer request id fences the unknown one (the state
    // machine never applies an older request of a client after a newer one),
    // so once this one has a definite answer the key's fate is settled.
    if (config_.unsafe_unknown_claim_is_won) {
      decide(mine);
      co_return reply;
    }
    if (!after_unknown) ++stats_.claim_unknown;
    after_unknown = true;
    if (rt_.now() >= deadline) {
      unresolved();
      co_return reply;
    }
    co_await rt_.sleep(config_.retry_pause);
    ++stats_.claim_fenced;
    c = co_await kv->cas(key, 0, value);
  }
  if (c.code == kv::KvResultCode::ok) {
    decide(mine);
    co_return reply;
  }
  // cas_failed: the key exists and never changes again — read whose it is.
  std::optional<AccountRecord> cur = co_await read_account(kv, req.account_id(), deadline);
  if (!cur || cur->uid() == 0) {
    unresolved();
    co_return reply;
  }
  if (cur->claim_nonce() == nonce) ++stats_.won_by_readback;
  decide(*cur);
  co_return reply;
}

namespace {
// A lookup's answer: nullopt (no definite read) is UNKNOWN, uid 0 (no such
// account) NOT_FOUND; a found record goes out without its claim nonce and
// its password verifier (only account.GetCredential returns that).
AccountReply lookup_reply(std::optional<AccountRecord> rec) {
  AccountReply reply;
  if (!rec) {
    reply.set_code(LOOKUP_UNKNOWN);
  } else if (rec->uid() == 0) {
    reply.set_code(LOOKUP_NOT_FOUND);
  } else {
    rec->set_claim_nonce(0);
    rec->clear_credential();
    reply.set_code(LOOKUP_FOUND);
    *reply.mutable_account() = std::move(*rec);
  }
  return reply;
}
}  // namespace

Task<rpc::Result<AccountReply>> AccountService::serve_get_account(rpc::CallContext ctx, GetAccountRequest req) {
  if (!valid_account_id(req.account_id())) {
    AccountReply reply;
    reply.set_code(LOOKUP_NOT_FOUND);
    co_return reply;
  }
  Lease lease(*this);
  std::optional<AccountRecord> rec = co_await read_account(lease.get(), req.account_id(), deadline_for(ctx));
  co_return lookup_reply(std::move(rec));
}

Task<std::optional<AccountRecord>> AccountService::read_by_uid(kv::KvClient* kv, uint64_t uid,
                                                               TimePoint deadline) {
  std::optional<std::string> account_id;
  while (!account_id && rt_.now() < deadline) {
    kv::KvResult g = co_await kv->get(uid_index_key(uid));
    if (g.code != kv::KvResultCode::ok) {
      co_await rt_.sleep(config_.retry_pause);
      continue;
    }
    if (!g.found) co_return AccountRecord{};
    account_id = g.value;
  }
  if (!account_id) co_return std::nullopt;
  std::optional<AccountRecord> rec = co_await read_account(kv, *account_id, deadline);
  // The registration that allocated this uid lost its claim (or has not made
  // it yet): the uid names no account.
  if (rec && rec->uid() != uid) co_return AccountRecord{};
  co_return rec;
}

Task<rpc::Result<AccountReply>> AccountService::serve_get_by_uid(rpc::CallContext ctx, GetByUidRequest req) {
  Lease lease(*this);
  std::optional<AccountRecord> rec = co_await read_by_uid(lease.get(), req.uid(), deadline_for(ctx));
  co_return lookup_reply(std::move(rec));
}

Task<rpc::Result<CredentialReply>> AccountService::serve_get_credential(rpc::CallContext ctx,
                                                                        GetCredentialRequest req) {
  CredentialReply reply;
  if (!valid_account_id(req.account_id())) {
    reply.set_code(LOOKUP_NOT_FOUND);
    co_return reply;
  }
  Lease lease(*this);
  std::optional<AccountRecord> rec = co_await read_account(lease.get(), req.account_id(), deadline_for(ctx));
  if (!rec) {
    reply.set_code(LOOKUP_UNKNOWN);
  } else if (rec->uid() == 0) {
    reply.set_code(LOOKUP_NOT_FOUND);
  } else {
    reply.set_code(LOOKUP_FOUND);
    reply.set_uid(rec->uid());
    if (rec->has_credential()) *reply.mutable_credential() = rec->credential();
  }
  co_return reply;
}

bool AccountService::ticket_ok(const rpc::CallContext& ctx, uint64_t uid) {
  if (!keys_) return true;
  const ticket::TicketCheck c = keys_->verify_for_user(ctx.ticket, rt_.now(), uid);
  if (c.ok()) return true;
  ++stats_.profile_unauthenticated;
  rt_.debug("account: profile of uid {} refused: ticket {}", uid, ticket::to_string(c.status));
  return false;
}

Task<ProfileReply> AccountService::read_profile(kv::KvClient* kv, uint64_t uid, TimePoint deadline,
                                                uint64_t* kv_version) {
  ProfileReply out;
  out.set_code(PROFILE_UNKNOWN);
  while (rt_.now() < deadline) {
    kv::KvResult g = co_await kv->get(profile_key(uid));
    if (g.code != kv::KvResultCode::ok) {
      co_await rt_.sleep(config_.retry_pause);
      continue;
    }
    *kv_version = g.version;
    if (g.found) {
      ProfileRecord rec;
      if (!rec.ParseFromString(g.value) || rec.version() < 2) {
        rt_.error("account: profile record of {} does not parse", uid);
        co_return out;
      }
      out.set_code(PROFILE_OK);
      out.set_version(rec.version());
      *out.mutable_profile() = rec.profile();
      co_return out;
    }
    // Never changed: the registration's profile, version 1.
    std::optional<AccountRecord> acct = co_await read_by_uid(kv, uid, deadline);
    if (!acct) co_return out;
    if (acct->uid() == 0) {
      out.set_code(PROFILE_NOT_FOUND);
      co_return out;
    }
    out.set_code(PROFILE_OK);
    out.set_version(1);
    *out.mutable_profile() = acct->profile();
    co_return out;
  }
  co_return out;
}

Task<rpc::Result<ProfileReply>> AccountService::serve_get_profile(rpc::CallContext ctx, GetProfileRequest req) {
  ProfileReply reply;
  if (req.uid() == 0) {
    reply.set_code(PROFILE_INVALID);
    co_return reply;
  }
  if (!ticket_ok(ctx, req.uid())) {
    reply.set_code(PROFILE_UNAUTHENTICATED);
    co_return reply;
  }
  Lease lease(*this);
  uint64_t kv_version = 0;
  co_return co_await read_profile(lease.get(), req.uid(), deadline_for(ctx), &kv_version);
}

Task<rpc::Result<ProfileReply>> AccountService::serve_set_profile(rpc::CallContext ctx, SetProfileRequest req) {
  ProfileReply reply;
  if (req.uid() == 0 || req.profile().nickname().size() > kProfileFieldBytesMax ||
      req.profile().region().size() > kProfileFieldBytesMax) {
    reply.set_code(PROFILE_INVALID);
    co_return reply;
  }
  if (!ticket_ok(ctx, req.uid())) {
    reply.set_code(PROFILE_UNAUTHENTICATED);
    co_return reply;
  }
  const TimePoint deadline = deadline_for(ctx);
  Lease lease(*this);
  kv::KvClient* kv = lease.get();
  const std::string want = req.profile().SerializeAsString();
  while (rt_.now() < deadline) {
    uint64_t kv_version = 0;
    ProfileReply cur = co_await read_profile(kv, req.uid(), deadline, &kv_version);
    if (cur.code() != PROFILE_OK) co_return cur;
    if (cur.profile().SerializeAsString() == want) {  // already so (or our unknown CAS applied)
      cur.set_changed(false);
      co_return cur;
    }
    ProfileRecord next;
    next.set_version(cur.version() + 1);
    *next.mutable_profile() = req.profile();
    // The version read is the condition: a concurrent change (or our own
    // earlier unknown CAS, fenced by this newer request of the same client)
    // makes it fail, and the next round reads again.
    kv::KvResult c = co_await kv->cas(profile_key(req.uid()), kv_version, next.SerializeAsString());
    if (c.code == kv::KvResultCode::ok) {
      ++stats_.profile_changes;
      reply.set_code(PROFILE_OK);
      reply.set_version(next.version());
      *reply.mutable_profile() = req.profile();
      reply.set_changed(true);
      co_return reply;
    }
    co_await rt_.sleep(config_.retry_pause);
  }
  reply.set_code(PROFILE_UNKNOWN);
  co_return reply;
}

}  // namespace wx::account
