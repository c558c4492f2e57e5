// LoginService: the stateless login logic service (role `login`, one or more
// per zone; docs/messaging.md "Login"). Requests carry NO ticket: this is
// where a user gets one.
//
//   login.Register (account id, password, profile, nonce) → uid
//     A fresh random salt (kSaltBytes from Runtime::rng()), the verifier
//     PBKDF2-HMAC-SHA256(password, salt, pbkdf2_iterations), then
//     account.Register (unique IDs by CAS in the account store) with the
//     credential {salt, verifier, iterations} inside the claim — written
//     atomically with the account id, never the password. Idempotent per
//     (account id, nonce): the client keeps the nonce across retries; a
//     retry's fresh salt is simply not stored (the first claim's is).
//     LOGIN_TAKEN when another registration owns the id. LOGIN_UNAVAILABLE
//     when the account store answered REGISTER_UNAVAILABLE (no quorum for
//     the first step) and no earlier account call of this request was
//     inconclusive — nothing was written. account.Register goes through
//     `register_router_`, one instance per call (no silent fail-over): a
//     fail-over inside the router would hide an attempt that timed out and
//     may still write, and turn a later UNAVAILABLE into a false "nothing
//     written"; this service retries itself and remembers such attempts.
//   login.Login (account id, password) → ticket
//     account.GetCredential, PBKDF2 with the stored salt and iterations, and
//     a constant-time comparison (CRYPTO_memcmp). Unknown account id, an
//     account without a credential and a wrong password all answer
//     LOGIN_DENIED (and an unknown id still costs one PBKDF2 over a fixed
//     salt, so timing tells little either). OK: a ticket for the uid issued
//     by the deployment's KeyRing under its CURRENT key, lifetime ticket_ttl.
//
// Both are Idempotent::yes (the router may fail them over between zones).
// Every step is bounded by the request budget; no definite answer → LOGIN_UNKNOWN.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "nodes/logic/login/login.pb.h"
#include "nodes/logic/ticket/ticket.h"
#include "nodes/rpc/endpoint.h"
#include "nodes/rpc/router.h"
#include "nodes/runtime/node.h"

namespace wx::login {

// PBKDF2 is real CPU work: the simulated cost of one call (~1,000 iterations).
inline const rpc::MethodSpec kRegisterMethod{"login.Register", rpc::Idempotent::yes, microseconds(500)};
inline const rpc::MethodSpec kLoginMethod{"login.Login", rpc::Idempotent::yes, microseconds(500)};

inline constexpr std::string_view kServiceName = "login";
inline constexpr std::string_view kAccountServiceName = "account";
inline constexpr size_t kPasswordBytesMin = 1;
inline constexpr size_t kPasswordBytesMax = 128;

struct LoginServiceConfig {
  rpc::ServiceDirectory directory;  // filled by make_node (account instances)
  rpc::Locality locality;           // filled by make_node
  ticket::KeyRingConfig keys;       // the ring that signs tickets (templates.login.keys)
  rpc::ServerConfig server;
  rpc::RouterConfig router;
  // Lifetime of an issued ticket (at most keys.ttl_max).
  Duration ticket_ttl = minutes(12 * 60);
  // PBKDF2 iterations for NEW credentials (each stores its own count, so
  // changing it never locks anyone out). Small by default because the
  // simulator runs thousands of users on one core; a real deployment would
  // use 600,000 (OWASP's figure for PBKDF2-HMAC-SHA256).
  uint32_t pbkdf2_iterations = 1000;
  Duration request_budget = milliseconds(2500);
  Duration reply_margin = milliseconds(50);
  Duration account_call_timeout = milliseconds(1200);
  Duration retry_pause = milliseconds(20);
};

struct LoginServiceStats {
  uint64_t registers = 0, registered = 0, taken = 0, register_unknown = 0, invalid = 0;
  uint64_t register_unavailable = 0;
  uint64_t logins = 0, logins_ok = 0, denied = 0, login_unknown = 0, internal = 0;
};

class LoginService final : public Node {
 public:
  LoginService(Runtime& rt, LoginServiceConfig config);
  ~LoginService() override;
  void start() override;
  std::string_view kind() const override { return "login"; }

  rpc::RpcEndpoint& endpoint() { return endpoint_; }
  const LoginServiceStats& stats() const { return stats_; }
  // The signing ring, for rotation by an operator (tests): rotate() makes a
  // new key current, later tickets are issued under it.
  ticket::KeyRing& keys() { return keys_; }

  // Checks a config: empty when valid, else what is wrong.
  static std::string validate(const LoginServiceConfig& config);

 private:
  TimePoint deadline_for(const rpc::CallContext& ctx) const;
  Task<void> pause();
  Task<rpc::Result<RegisterReply>> serve_register(rpc::CallContext ctx, RegisterRequest req);
  Task<rpc::Result<LoginReply>> serve_login(rpc::CallContext ctx, LoginRequest req);

  Runtime& rt_;
  LoginServiceConfig config_;
  ticket::KeyRing keys_;
  rpc::RpcEndpoint endpoint_;
  rpc::Router router_;
  rpc::Router register_router_;  // config_.router with attempts_max 1 (account.Register)
  LoginServiceStats stats_;
};

}  // namespace wx::login
