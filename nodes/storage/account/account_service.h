// AccountService: the data-access service of the account type — unique
// account-id registration with strong consistency, over the replicated KV
// store (nodes/storage/kv/). docs/accounts.md has the full protocol.
//
// A stateless RPC node (no disk); one instance per zone, all sharing one KV
// group. Keys it owns in the store:
//   acct/<account_id>   AccountRecord (account.proto), created by a CAS from
//                       version 0 — the claim — and never changed afterwards;
//   acct_uid/<uid>      the account id the uid was allocated for, written
//                       BEFORE the claim; a reader verifies it against the
//                       claim (a registration that lost leaves a dangling
//                       entry, which readers ignore);
//   acct_seq/uid        the uid counter (decimal text), advanced by CAS.
//
// Methods:
//   account.Register    claim an account id (idempotent per nonce);
//   account.GetAccount  the record of an account id;
//   account.GetByUid    the record of a uid.
//   account.GetCredential  the uid and password verifier of an account id
//                       (for the login service; GetAccount/GetByUid never
//                       return the verifier);
//   account.GetProfile / account.SetProfile (uid): the profile and the
//                       account version ("acct_prof/<uid>", ProfileRecord:
//                       1 = the registration's profile, +1 per change, by
//                       CAS). With keys these two check that the ticket is
//                       uid's (docs/tickets.md "Every hop"); Register and the
//                       lookups stay open (registration precedes any ticket).
//
// Unknown KV outcomes are resolved before answering: after a claim CAS whose
// outcome is unknown, the service issues the same CAS again from the SAME
// KvClient (a newer request id fences the older one: the state machine will
// never apply it afterwards), and on cas_failed reads the key back and
// compares the claim nonce. If the deadline passes first the caller gets
// REGISTER_UNKNOWN and retries with the same nonce, at any instance.
//
// Availability (docs/accounts.md "Across datacenters"): the first step of a
// Register, the read of acct/<id>, must be answered by the KV group (its
// leader, which holds a quorum's lease or runs a read round) within
// quorum_check_budget; otherwise the caller gets REGISTER_UNAVAILABLE at
// once — definite, as nothing was sent but a read. A side of a partition
// without a quorum of the group thus refuses registrations promptly. Once a
// write may have been sent the answer is never UNAVAILABLE (a CAS that was
// sent and not answered may still commit): it is REGISTER_UNKNOWN.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/logic/ticket/ticket.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/account/account.pb.h"
#include "nodes/storage/kv/kv_client.h"

namespace wx::account {

// Register is idempotent thanks to the nonce; retrying it is safe.
inline const rpc::MethodSpec kRegisterMethod{"account.Register", rpc::Idempotent::yes, Duration::zero()};
inline const rpc::MethodSpec kGetAccountMethod{"account.GetAccount", rpc::Idempotent::yes, Duration::zero()};
inline const rpc::MethodSpec kGetByUidMethod{"account.GetByUid", rpc::Idempotent::yes, Duration::zero()};
inline const rpc::MethodSpec kGetCredentialMethod{"account.GetCredential", rpc::Idempotent::yes, Duration::zero()};
inline const rpc::MethodSpec kGetProfileMethod{"account.GetProfile", rpc::Idempotent::yes, Duration::zero()};
// Idempotent: setting the profile it already has changes nothing.
inline const rpc::MethodSpec kSetProfileMethod{"account.SetProfile", rpc::Idempotent::yes, Duration::zero()};

// Key layout.
inline constexpr std::string_view kAccountKeyPrefix = "acct/";
inline constexpr std::string_view kUidIndexKeyPrefix = "acct_uid/";
inline constexpr std::string_view kUidCounterKey = "acct_seq/uid";
inline constexpr std::string_view kProfileKeyPrefix = "acct_prof/";
// Credential limits (the login service fills it).
inline constexpr size_t kCredentialBytesMax = 64;

// WeChat-ID rules: 6–20 characters, a letter first, then letters, digits,
// '_' or '-'.
inline constexpr size_t kAccountIdCharsMin = 6;
inline constexpr size_t kAccountIdCharsMax = 20;
inline constexpr size_t kProfileFieldBytesMax = 256;
// Idle KvClients kept for reuse (each in-flight request holds its own).
inline constexpr size_t kIdleKvClientsMax = 64;

bool valid_account_id(std::string_view id);
std::string account_key(std::string_view account_id);
std::string uid_index_key(uint64_t uid);
std::string profile_key(uint64_t uid);

struct AccountServiceConfig {
  std::vector<NodeId> kv_replicas;  // the KV group, in replica-id order
  std::string zone;                 // for logs
  rpc::ServerConfig server;
  // Ticket keys for GetProfile / SetProfile (filled by make_node from the
  // logic layer's keys, like contacts'); empty: no check.
  ticket::KeyRingConfig keys;
  // Longest a Register or lookup works before answering (further capped by
  // the caller's deadline minus reply_margin).
  Duration request_budget = seconds(3);
  Duration reply_margin = milliseconds(50);
  // Per KV call (KvClient retries within it).
  Duration kv_call_timeout = milliseconds(800);
  Duration kv_attempt_timeout = milliseconds(250);
  Duration kv_retry_backoff = milliseconds(20);
  // Longest the first step of a Register (reading acct/<id>) waits for an
  // answer from the KV group's quorum before answering REGISTER_UNAVAILABLE
  // (also capped by the request's deadline). Its KV calls use a client whose
  // call timeout is at most this. Short, so that a partitioned side refuses
  // quickly, but long enough to ride out a leader election (150–300 ms plus
  // a cross-datacenter round trip).
  Duration quorum_check_budget = milliseconds(800);
  // Pause between rounds of an unresolved step (uid CAS lost, claim unknown).
  Duration retry_pause = milliseconds(20);
  // TEST ONLY, UNSAFE: answer REGISTER_OK when the claim CAS's outcome is
  // unknown, without resolving it. Exists so the simulation tests can show
  // they catch the resulting double owners (like paxos::Config's
  // unsafe_ack_before_majority). Never set it elsewhere.
  bool unsafe_unknown_claim_is_won = false;
  // TEST ONLY, UNSAFE: answer REGISTER_UNAVAILABLE ("nothing written")
  // instead of REGISTER_UNKNOWN also after a write may have been sent. Exists
  // so tests/storage/account_multidc_sim_test.cc can show it catches a
  // refused registration that owns its id after all. Never set it elsewhere.
  bool unsafe_unavailable_after_write = false;
};

struct AccountServiceStats {
  uint64_t registered = 0, taken = 0, unresolved = 0, invalid = 0;
  uint64_t unavailable = 0;        // REGISTER_UNAVAILABLE: no quorum answered the first read
  uint64_t claim_unknown = 0;      // claim CAS outcomes that were unknown
  uint64_t claim_fenced = 0;       // re-issued claim CASes after an unknown
  uint64_t won_by_readback = 0;    // resolved as ours by reading the nonce back
  uint64_t uid_cas_retries = 0;    // counter CAS lost to another allocator / unknown
  uint64_t profile_changes = 0, profile_unauthenticated = 0;
};

class AccountService final : public Node {
 public:
  AccountService(Runtime& rt, AccountServiceConfig config);
  ~AccountService() override;
  void start() override;
  std::string_view kind() const override { return "account"; }

  rpc::RpcEndpoint& endpoint() { return endpoint_; }
  const AccountServiceStats& stats() const { return stats_; }

 private:
  // A KvClient for one request (a KvClient serves one call at a time), back
  // to the pool when the lease ends.
  // `probe`: a client for Register's first step, whose call timeout is at
  // most quorum_check_budget (a separate pool).
  class Lease;
  std::unique_ptr<kv::KvClient> take_client(bool probe);
  void return_client(std::unique_ptr<kv::KvClient> c, bool probe);

  TimePoint deadline_for(const rpc::CallContext& ctx) const;
  // Allocates a fresh uid; nullopt at the deadline.
  Task<std::optional<uint64_t>> allocate_uid(kv::KvClient* kv, TimePoint deadline);
  // Reads acct/<id>: nullopt if unreadable before the deadline (or, with
  // *corrupt set, if the stored record does not parse); a record with uid 0
  // if absent.
  Task<std::optional<AccountRecord>> read_account(kv::KvClient* kv, std::string account_id, TimePoint deadline,
                                                  bool* corrupt = nullptr);

  Task<rpc::Result<RegisterReply>> serve_register(rpc::CallContext ctx, RegisterRequest req);
  Task<rpc::Result<AccountReply>> serve_get_account(rpc::CallContext ctx, GetAccountRequest req);
  Task<rpc::Result<AccountReply>> serve_get_by_uid(rpc::CallContext ctx, GetByUidRequest req);
  Task<rpc::Result<CredentialReply>> serve_get_credential(rpc::CallContext ctx, GetCredentialRequest req);
  Task<rpc::Result<ProfileReply>> serve_get_profile(rpc::CallContext ctx, GetProfileRequest req);
  Task<rpc::Result<ProfileReply>> serve_set_profile(rpc::CallContext ctx, SetProfileRequest req);
  // The account of a uid (through acct_uid/<uid>): nullopt at the deadline;
  // a record with uid 0 if the uid names no account.
  Task<std::optional<AccountRecord>> read_by_uid(kv::KvClient* kv, uint64_t uid, TimePoint deadline);
  // The current profile and version of uid (ProfileReply code FOUND/NOT_FOUND
  // /UNKNOWN) and the KV version of acct_prof/<uid> in *kv_version.
  Task<ProfileReply> read_profile(kv::KvClient* kv, uint64_t uid, TimePoint deadline, uint64_t* kv_version);
  bool ticket_ok(const rpc::CallContext& ctx, uint64_t uid);

  Runtime& rt_;
  AccountServiceConfig config_;
  std::optional<ticket::KeyRing> keys_;  // none: tickets are not checked
  rpc::RpcEndpoint endpoint_;
  std::vector<std::unique_ptr<kv::KvClient>> idle_clients_;
  std::vector<std::unique_ptr<kv::KvClient>> idle_probe_clients_;
  AccountServiceStats stats_;
};

}  // namespace wx::account
