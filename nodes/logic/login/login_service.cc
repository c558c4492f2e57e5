// LoginService: login.Register and login.Login (see login_service.h).
#include "nodes/logic/login/login_service.h"

#include <utility>

#include "nodes/logic/login/password.h"
#include "nodes/logic/ticket/hmac.h"
#include "nodes/storage/account/account_service.h"

namespace wx::login {

namespace {
// The salt an unknown account id is hashed with (so a miss costs the same
// PBKDF2 as a hit): fixed, public, never stored.
constexpr std::string_view kDecoySalt = "wxsim-login-decoy";
}  // namespace

std::string LoginService::validate(const LoginServiceConfig& config) {
  if (std::string err = ticket::KeyRing::validate(config.keys); !err.empty()) return "keys: " + err;
  if (config.pbkdf2_iterations < kIterationsMin || config.pbkdf2_iterations > kIterationsMax) {
    return "pbkdf2_iterations: expected " + std::to_string(kIterationsMin) + " to " + std::to_string(kIterationsMax) +
           ", got " + std::to_string(config.pbkdf2_iterations);
  }
  if (config.ticket_ttl <= Duration::zero() || config.ticket_ttl > config.keys.ttl_max) {
    return "ticket_ttl: expected more than 0 and at most keys.ttl_max";
  }
  return "";
}

LoginService::LoginService(Runtime& rt, LoginServiceConfig config)
    : rt_(rt),
      config_(std::move(config)),
      keys_(config_.keys),
      endpoint_(rt, config_.server),
      router_(rt, endpoint_, config_.directory, config_.locality, config_.router),
      register_router_(rt, endpoint_, config_.directory, config_.locality, [this] {
        rpc::RouterConfig c = config_.router;
        c.attempts_max = 1;
        return c;
      }()) {}

LoginService::~LoginService() = default;

void LoginService::start() {
  endpoint_.register_method<RegisterRequest, RegisterReply>(
      kRegisterMethod, [this](rpc::CallContext ctx, RegisterRequest req) -> Task<rpc::Result<RegisterReply>> {
        return serve_register(std::move(ctx), std::move(req));
      });
  endpoint_.register_method<LoginRequest, LoginReply>(
      kLoginMethod, [this](rpc::CallContext ctx, LoginRequest req) -> Task<rpc::Result<LoginReply>> {
        return serve_login(std::move(ctx), std::move(req));
      });
  endpoint_.start();
}

TimePoint LoginService::deadline_for(const rpc::CallContext& ctx) const {
  TimePoint d = rt_.now() + config_.request_budget;
  if (ctx.deadline - config_.reply_margin < d) d = ctx.deadline - config_.reply_margin;
  return d;
}

Task<void> LoginService::pause() {
  const int64_t pause_ns = config_.retry_pause.ns();
  co_await rt_.sleep(nanoseconds(pause_ns / 2 + static_cast<int64_t>(rt_.rng().uniform(
                                                    static_cast<uint64_t>(pause_ns) + 1))));
}

Task<rpc::Result<RegisterReply>> LoginService::serve_register(rpc::CallContext ctx, RegisterRequest req) {
  RegisterReply reply;
  ++stats_.registers;
  if (!account::valid_account_id(req.account_id()) || req.password().size() < kPasswordBytesMin ||
      req.password().size() > kPasswordBytesMax || req.nonce() == 0 ||
      req.profile().nickname().size() > account::kProfileFieldBytesMax ||
      req.profile().region().size() > account::kProfileFieldBytesMax) {
    ++stats_.invalid;
    reply.set_code(LOGIN_INVALID);
    reply.set_error("invalid registration: account id (6-20 of [A-Za-z0-9_-], a letter first), password (" +
                    std::to_string(kPasswordBytesMin) + "-" + std::to_string(kPasswordBytesMax) +
                    " bytes), profile or nonce");
    co_return reply;
  }
  std::string salt;
  while (salt.size() < kSaltBytes) {
    const uint64_t r = rt_.rng().next_u64();
    for (int i = 0; i < 8 && salt.size() < kSaltBytes; ++i) salt.push_back(static_cast<char>((r >> (8 * i)) & 0xff));
  }
  std::optional<std::string> verifier = pbkdf2_sha256(req.password(), salt, config_.pbkdf2_iterations);
  if (!verifier) {
    ++stats_.internal;
    reply.set_code(LOGIN_INTERNAL);
    reply.set_error("password hashing failed");
    co_return reply;
  }
  account::RegisterRequest ar;
  ar.set_account_id(req.account_id());
  ar.set_nonce(req.nonce());
  *ar.mutable_profile() = req.profile();
  ar.mutable_credential()->set_salt(salt);
  ar.mutable_credential()->set_verifier(*verifier);
  ar.mutable_credential()->set_iterations(config_.pbkdf2_iterations);
  ticket::wipe(verifier->data(), verifier->size());
  const TimePoint deadline = deadline_for(ctx);
  // An account call of this request failed or answered UNKNOWN: its claim
  // may still land, so a later UNAVAILABLE no longer means "nothing written".
  bool maybe_written = false;
  while (rt_.now() < deadline) {
    rpc::CallOptions o;
    o.timeout = config_.account_call_timeout;
    o.deadline = deadline;
    rpc::Result<account::RegisterReply> r = co_await register_router_.call<account::RegisterReply>(
        std::string(kAccountServiceName), account::kRegisterMethod, ar, o);
    if (!r.ok() || r->code() == account::REGISTER_UNKNOWN) {
      maybe_written = true;
      co_await pause();
      continue;  // the same nonce again: idempotent
    }
    if (r->code() == account::REGISTER_UNAVAILABLE) {
      if (!maybe_written) {
        ++stats_.register_unavailable;
        reply.set_code(LOGIN_UNAVAILABLE);
        reply.set_error("the account store has no quorum reachable from here; nothing was written; retry later");
        co_return reply;
      }
      co_await pause();
      continue;  // an earlier attempt is unresolved: keep trying it
    }
    switch (r->code()) {
      case account::REGISTER_OK:
        ++stats_.registered;
        reply.set_code(LOGIN_OK);
        reply.set_uid(r->uid());
        co_return reply;
      case account::REGISTER_TAKEN:
        ++stats_.taken;
        reply.set_code(LOGIN_TAKEN);
        reply.set_error("the account id is taken");
        co_return reply;
      default:
        ++stats_.invalid;
        reply.set_code(LOGIN_INVALID);
        reply.set_error("the account store refused the registration");
        co_return reply;
    }
  }
  ++stats_.register_unknown;
  reply.set_code(LOGIN_UNKNOWN);
  reply.set_error("no definite answer within the request budget; retry with the same nonce");
  co_return reply;
}

Task<rpc::Result<LoginReply>> LoginService::serve_login(rpc::CallContext ctx, LoginRequest req) {
  LoginReply reply;
  ++stats_.logins;
  if (req.password().size() > kPasswordBytesMax) {
    ++stats_.invalid;
    reply.set_code(LOGIN_INVALID);
    reply.set_error("password too long");
    co_return reply;
  }
  auto deny = [&] {
    ++stats_.denied;
    reply.set_code(LOGIN_DENIED);
    reply.set_error("unknown account or wrong password");
  };
  const TimePoint deadline = deadline_for(ctx);
  std::optional<account::CredentialReply> cred;
  if (account::valid_account_id(req.account_id())) {
    account::GetCredentialRequest gr;
    gr.set_account_id(req.account_id());
    while (!cred && rt_.now() < deadline) {
      rpc::CallOptions o;
      o.timeout = config_.account_call_timeout;
      o.deadline = deadline;
      rpc::Result<account::CredentialReply> r = co_await router_.call<account::CredentialReply>(
          std::string(kAccountServiceName), account::kGetCredentialMethod, gr, o);
      if (!r.ok() || r->code() == account::LOOKUP_UNKNOWN) {
        co_await pause();
        continue;
      }
      cred = std::move(r.value());
    }
    if (!cred) {
      ++stats_.login_unknown;
      reply.set_code(LOGIN_UNKNOWN);
      reply.set_error("the account store did not answer within the request budget");
      co_return reply;
    }
  }
  const bool usable = cred && cred->code() == account::LOOKUP_FOUND && cred->uid() != 0 &&
                      cred->credential().verifier().size() == kVerifierBytes &&
                      cred->credential().iterations() >= kIterationsMin &&
                      cred->credential().iterations() <= kIterationsMax;
  if (!usable) {
    // The same work as a real check, then the same answer as a wrong password.
    std::optional<std::string> decoy = pbkdf2_sha256(req.password(), kDecoySalt, config_.pbkdf2_iterations);
    if (decoy) ticket::wipe(decoy->data(), decoy->size());
    deny();
    co_return reply;
  }
  std::optional<std::string> computed =
      pbkdf2_sha256(req.password(), cred->credential().salt(), cred->credential().iterations());
  if (!computed) {
    ++stats_.internal;
    reply.set_code(LOGIN_INTERNAL);
    reply.set_error("password hashing failed");
    co_return reply;
  }
  const bool match = ticket::equal_constant_time(*computed, cred->credential().verifier());
  ticket::wipe(computed->data(), computed->size());
  if (!match) {
    deny();
    co_return reply;
  }
  const TimePoint now = rt_.now();
  std::optional<std::string> t = keys_.issue(cred->uid(), now, config_.ticket_ttl);
  if (!t) {
    ++stats_.internal;
    reply.set_code(LOGIN_INTERNAL);
    reply.set_error("the ticket could not be issued");
    co_return reply;
  }
  ++stats_.logins_ok;
  reply.set_code(LOGIN_OK);
  reply.set_uid(cred->uid());
  reply.set_ticket(std::move(*t));
  reply.set_expires_at_ns((now + config_.ticket_ttl).ns());
  co_return reply;
}

}  // namespace wx::login
