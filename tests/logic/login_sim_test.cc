// The login service and the account / contacts sync types in simulation
// (nodes/logic/login/, msg.ContactChange / msg.SetProfile / msg.Sync with the
// "contacts" and "account" types; docs/messaging.md "Login", "Sync of
// account and contacts").
//
//   LoginSim.RegisterLoginSendEndToEnd   two users register and log in (one
//       directly, one through access.Request without a ticket), the login's
//       ticket carries their uid under the current key; one sends, the other
//       syncs the message; the history passes the checker.
//   LoginSim.WrongPasswordAndUnknownAccountDenied   wrong password and unknown
//       account id get the same LOGIN_DENIED (code and text); bad input is
//       LOGIN_INVALID; the verifier is never returned by account lookups.
//   LoginSim.DuplicateAccountIdRefused   a second registration of an id is
//       LOGIN_TAKEN; a retry with the same nonce returns the same uid.
//   LoginSim.RotatedKeyTicketVerifiesUntilRetired   after rotation, login
//       issues under the new key; the old key's ticket works until the key is
//       retired on the verifiers, then is refused.
//   LoginSim.ContactsAndProfileSyncAcrossDevices   a contact added / removed
//       and a profile change on one device are synced by another: versions
//       advance, the removal comes as a tombstone, a newer key acknowledges.
//   LoginSim.ContactChangesPageBeyondOneReply   more changes than one page:
//       two pages in change-version order, `more`, the key of each page.
//   LoginSim.ZoneOutageAllTypesConverge   registered users changing contacts
//       and profiles through a zone outage: every client's contacts, profile and key
//       equal the server's (the checker's convergence, every type).
//   LoginSim.ZoneOutageAllTypesWithChurnConverge   the same with online /
//       offline churn (registration and changes wait while offline).
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "checkers/messaging.h"
#include "nodes/access/access_service.h"
#include "nodes/client/messaging_client.h"
#include "nodes/deploy/deployment.h"
#include "nodes/logic/login/login_service.h"
#include "nodes/logic/msg/msg_service.h"
#include "nodes/logic/ticket/ticket.h"
#include "nodes/storage/account/account_service.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "sim/workload/messaging_workload.h"
#include "tests/support/script_caller.h"
#include "tests/support/seeds.h"

namespace wx::login {
namespace {

using namespace time_literals;
namespace cm = checkers::messaging;
using Caller = wx::testing::ScriptCaller;

constexpr const char* kBinary = "build/tests/logic/login_sim_test";
constexpr Duration kScenarioLimit = seconds(600);

std::string key_secret(uint8_t first) {
  std::string s;
  for (size_t i = 0; i < ticket::kTicketKeyBytes; ++i) s.push_back(static_cast<char>(first + 3 * i));
  return s;
}

// Keys 1 and 2, key 1 current (key 2 is known to every verifier from the
// start: step 1 of a rotation).
ticket::KeyRingConfig two_keys() {
  ticket::KeyRingConfig c;
  c.keys.push_back({1, key_secret(0x21)});
  c.keys.push_back({2, key_secret(0x45)});
  c.current_key_id = 1;
  return c;
}

struct World {
  sim::Simulation sim;
  std::unique_ptr<sim::workload::HistoryLog> log;
  std::unique_ptr<sim::SimDeployment> deployment;
  ticket::KeyRing ring{two_keys()};  // the test's own copy, to inspect tickets

  explicit World(uint64_t seed, bool with_access = true) : sim(config(seed)) {
    log = std::make_unique<sim::workload::HistoryLog>(sim);
    deploy::DeploymentSpec spec = deploy::single_datacenter_spec();
    spec.instances_per_zone[deploy::Role::msg] = 1;
    spec.instances_per_zone[deploy::Role::login] = 1;
    spec.templates.msg.keys = two_keys();
    spec.templates.login.keys = two_keys();
    spec.templates.msg.ack_observer = log->ack_observer();
    if (with_access) {
      spec.instances_per_zone[deploy::Role::access] = 1;
      spec.templates.access.keys = two_keys();
    }
    deployment = std::make_unique<sim::SimDeployment>(sim, std::make_shared<const deploy::Deployment>(spec));
  }
  static sim::SimConfig config(uint64_t seed) {
    sim::SimConfig c;
    c.seed = seed;
    c.log_level = testing::verbose() ? LogLevel::info : LogLevel::off;
    return c;
  }
  const rpc::ServiceDirectory& directory() const { return deployment->deployment().directory(); }
  // The final-state reader over `users` (filled in by the script: uid and
  // ticket); all_types: contacts and profile too. Call before run().
  void add_reader(bool all_types) {
    users = std::make_shared<sim::workload::RegisteredUsers>();
    reader = sim.add_node({"reader", sim::Placement{"dc1", "clients", ""}, [this, all_types](Runtime& rt) {
                             auto r = std::make_unique<sim::workload::InboxReader>(
                                 rt, directory(), rpc::Locality{"dc1", "clients"}, "reader",
                                 std::vector<uint64_t>{}, nullptr, log.get());
                             r->set_all_types(all_types, users);
                             return r;
                           }});
  }
  void known_user(uint64_t uid, std::string ticket) {
    users->uid.push_back(uid);
    users->ticket.push_back(std::move(ticket));
  }
  // Records the server's final states of the known users.
  void read_finals() {
    auto* r = sim.node_as<sim::workload::InboxReader>(reader);
    ASSERT_NE(r, nullptr);
    r->read_all();
    ASSERT_TRUE(sim.run_until([r] { return r->done(); }, sim.now() + kScenarioLimit));
    ASSERT_FALSE(r->failed());
  }
  std::shared_ptr<sim::workload::RegisteredUsers> users;
  NodeId reader{0};
  // Runs `script` on a client node until it finishes.
  void run(std::function<Task<void>(Caller&)> script) {
    bool done = false;
    sim.add_node({"caller", sim::Placement{"dc1", "clients", ""}, [&](Runtime& rt) {
                    return std::make_unique<Caller>(rt, [&](Caller& c) -> Task<void> {
                      co_await c.rt.sleep(3_s);  // leaders elected
                      co_await script(c);
                      done = true;
                    });
                  }});
    deployment->start_all();
    ASSERT_TRUE(sim.run_until([&] { return done; }, sim.now() + kScenarioLimit));
    ASSERT_FALSE(sim.failure()) << *sim.failure();
  }
};

account::Profile profile(std::string nickname, std::string region) {
  account::Profile p;
  p.set_nickname(std::move(nickname));
  p.set_region(std::move(region));
  return p;
}

cm::MessagingVerdict judge(const cm::History& h, uint64_t seed) {
  cm::CheckOptions o;
  o.context = "seed " + std::to_string(seed);
  return cm::check_messaging(h, o);
}

client::MessagingClientConfig client_config(std::string process, client::ClientPath path, bool all_types) {
  client::MessagingClientConfig c;
  c.process = std::move(process);
  c.path = path;
  c.sync_all_types = all_types;
  return c;
}

// --- register, login, send -----------------------------------------------------------

TEST(LoginSim, RegisterLoginSendEndToEnd) {
  World w(1);
  w.add_reader(false);
  client::AccountOutcome alice_reg, bob_reg, alice_login, bob_login;
  client::SendOutcome sent;
  std::vector<msg::MessageRecord> bob_got;
  std::string alice_ticket;
  w.run([&](Caller& c) -> Task<void> {
    rpc::Router router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"});
    rpc::RouterConfig one;
    one.attempts_max = 1;
    rpc::Router short_router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"}, one);
    // Alice straight to the login and msg services; Bob only through access
    // (access.Request: register and login without any ticket).
    client::MessagingClient alice(c.rt, router, client_config("c-alice", client::ClientPath::direct, false),
                                  w.log.get());
    client::MessagingClient bob(c.rt, short_router,
                                client_config("c-bob", client::ClientPath::short_connection, false), w.log.get());
    alice_reg = co_await alice.register_account("alice_01", "correct horse", profile("Alice", "sh"));
    bob_reg = co_await bob.register_account("bob_0002", "battery staple", profile("Bob", "bj"));
    alice_login = co_await alice.login("alice_01", "correct horse");
    bob_login = co_await bob.login("bob_0002", "battery staple");
    alice_ticket = alice.ticket();
    sent = co_await alice.send(bob.uid(), "hello bob");
    (void)co_await bob.sync();
    (void)co_await bob.sync();  // nothing new: the final state
    bob_got = bob.received();
    alice.record_final();
    bob.record_final();
    w.known_user(alice.uid(), alice.ticket());
    w.known_user(bob.uid(), bob.ticket());
  });
  w.read_finals();
  ASSERT_EQ(alice_reg.status, client::AccountStatus::ok) << alice_reg.error;
  ASSERT_EQ(bob_reg.status, client::AccountStatus::ok) << bob_reg.error;
  EXPECT_NE(alice_reg.uid, 0u);
  EXPECT_NE(alice_reg.uid, bob_reg.uid);
  ASSERT_EQ(alice_login.status, client::AccountStatus::ok) << alice_login.error;
  ASSERT_EQ(bob_login.status, client::AccountStatus::ok) << bob_login.error;
  EXPECT_EQ(alice_login.uid, alice_reg.uid);
  EXPECT_EQ(bob_login.uid, bob_reg.uid);
  // The ticket speaks for Alice's uid, under the ring's current key.
  const ticket::TicketCheck tc = w.ring.verify(alice_ticket, w.sim.now());
  ASSERT_TRUE(tc.ok()) << ticket::to_string(tc.status);
  EXPECT_EQ(tc.user_id, alice_reg.uid);
  EXPECT_EQ(tc.key_id, 1u);
  ASSERT_EQ(sent.status, client::SendStatus::ok) << sent.error;
  ASSERT_EQ(bob_got.size(), 1u);
  EXPECT_EQ(bob_got[0].sender, alice_reg.uid);
  EXPECT_EQ(bob_got[0].message_id, sent.message_id);
  // Logins and registrations are in the history, paired; the whole passes.
  size_t logins = 0, registers = 0;
  for (const cm::Event& e : w.log->history()) {
    if (const auto* inv = std::get_if<cm::Invoke>(&e.body)) {
      logins += cm::op_kind(inv->request) == cm::OpKind::login;
      registers += cm::op_kind(inv->request) == cm::OpKind::register_account;
    }
  }
  EXPECT_EQ(logins, 2u);
  EXPECT_EQ(registers, 2u);
  const cm::MessagingVerdict v = judge(w.log->history(), 1);
  EXPECT_TRUE(v.ok()) << cm::format_verdict(v);
}

TEST(LoginSim, WrongPasswordAndUnknownAccountDenied) {
  World w(2);
  std::optional<LoginReply> wrong, unknown, malformed_id, right, too_long;
  std::optional<RegisterReply> empty_password, bad_id, zero_nonce;
  std::optional<account::AccountReply> lookup;
  std::optional<access::ForwardReply> via_access;
  w.run([&](Caller& c) -> Task<void> {
    rpc::Router router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"});
    client::MessagingClient carol(c.rt, router, client_config("c-carol", client::ClientPath::direct, false),
                                  nullptr);
    (void)co_await carol.register_account("carol_3", "pa55word", profile("Carol", "gz"));
    rpc::CallOptions o;
    o.timeout = 3_s;
    auto login = [&](std::string id, std::string pw) -> Task<std::optional<LoginReply>> {
      LoginRequest req;
      req.set_account_id(std::move(id));
      req.set_password(std::move(pw));
      rpc::Result<LoginReply> r = co_await router.call<LoginReply>(std::string(kServiceName), kLoginMethod, req, o);
      if (!r.ok()) co_return std::nullopt;
      co_return r.value();
    };
    wrong = co_await login("carol_3", "pa55worD");
    unknown = co_await login("nobody_9", "pa55word");
    malformed_id = co_await login("", "pa55word");
    too_long = co_await login("carol_3", std::string(kPasswordBytesMax + 1, 'x'));
    right = co_await login("carol_3", "pa55word");
    auto reg = [&](std::string id, std::string pw, uint64_t nonce) -> Task<std::optional<RegisterReply>> {
      RegisterRequest req;
      req.set_account_id(std::move(id));
      req.set_password(std::move(pw));
      req.set_nonce(nonce);
      rpc::Result<RegisterReply> r =
          co_await router.call<RegisterReply>(std::string(kServiceName), kRegisterMethod, req, o);
      if (!r.ok()) co_return std::nullopt;
      co_return r.value();
    };
    empty_password = co_await reg("dave_004", "", 7);
    bad_id = co_await reg("4dave", "pw", 7);
    zero_nonce = co_await reg("dave_004", "pw", 0);
    // The account store's lookups never hand out the verifier.
    account::GetAccountRequest ga;
    ga.set_account_id("carol_3");
    rpc::Result<account::AccountReply> a =
        co_await router.call<account::AccountReply>("account", account::kGetAccountMethod, ga, o);
    if (a.ok()) lookup = a.value();
    // A wrong password through access.Request: the same refusal.
    access::ForwardRequest f;
    f.mutable_login()->set_account_id("carol_3");
    f.mutable_login()->set_password("guess");
    rpc::Result<access::ForwardReply> fr =
        co_await router.call<access::ForwardReply>(std::string(access::kServiceName), access::kRequestMethod, f, o);
    if (fr.ok()) via_access = fr.value();
  });
  ASSERT_TRUE(wrong && unknown && malformed_id && right && too_long);
  EXPECT_EQ(wrong->code(), LOGIN_DENIED);
  EXPECT_EQ(unknown->code(), LOGIN_DENIED);
  EXPECT_EQ(malformed_id->code(), LOGIN_DENIED);
  // No user enumeration: the same code and text, no uid, no ticket.
  EXPECT_EQ(wrong->error(), unknown->error());
  EXPECT_EQ(wrong->uid(), 0u);
  EXPECT_EQ(unknown->uid(), 0u);
  EXPECT_TRUE(wrong->ticket().empty());
  EXPECT_EQ(too_long->code(), LOGIN_INVALID);
  EXPECT_EQ(right->code(), LOGIN_OK);
  EXPECT_FALSE(right->ticket().empty());
  ASSERT_TRUE(empty_password && bad_id && zero_nonce);
  EXPECT_EQ(empty_password->code(), LOGIN_INVALID);
  EXPECT_EQ(bad_id->code(), LOGIN_INVALID);
  EXPECT_EQ(zero_nonce->code(), LOGIN_INVALID);
  ASSERT_TRUE(lookup);
  EXPECT_EQ(lookup->code(), account::LOOKUP_FOUND);
  EXPECT_FALSE(lookup->account().has_credential());
  ASSERT_TRUE(via_access);
  ASSERT_EQ(via_access->code(), access::ACCESS_OK) << via_access->error();
  EXPECT_EQ(via_access->login().code(), LOGIN_DENIED);
}

TEST(LoginSim, DuplicateAccountIdRefused) {
  World w(3, false);
  std::optional<RegisterReply> first, retry, other;
  std::optional<LoginReply> old_password, new_password;
  w.run([&](Caller& c) -> Task<void> {
    rpc::Router router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"});
    rpc::CallOptions o;
    o.timeout = 3_s;
    auto reg = [&](std::string pw, uint64_t nonce) -> Task<std::optional<RegisterReply>> {
      RegisterRequest req;
      req.set_account_id("erin_005");
      req.set_password(std::move(pw));
      req.set_nonce(nonce);
      rpc::Result<RegisterReply> r =
          co_await router.call<RegisterReply>(std::string(kServiceName), kRegisterMethod, req, o);
      if (!r.ok()) co_return std::nullopt;
      co_return r.value();
    };
    first = co_await reg("first password", 1111);
    retry = co_await reg("first password", 1111);  // the same registration again
    other = co_await reg("second password", 2222);  // somebody else wants the id
    auto login = [&](std::string pw) -> Task<std::optional<LoginReply>> {
      LoginRequest req;
      req.set_account_id("erin_005");
      req.set_password(std::move(pw));
      rpc::Result<LoginReply> r = co_await router.call<LoginReply>(std::string(kServiceName), kLoginMethod, req, o);
      if (!r.ok()) co_return std::nullopt;
      co_return r.value();
    };
    old_password = co_await login("first password");
    new_password = co_await login("second password");
  });
  ASSERT_TRUE(first && retry && other);
  ASSERT_EQ(first->code(), LOGIN_OK) << first->error();
  EXPECT_EQ(retry->code(), LOGIN_OK);
  EXPECT_EQ(retry->uid(), first->uid());
  EXPECT_EQ(other->code(), LOGIN_TAKEN);
  EXPECT_EQ(other->uid(), 0u);
  // The refused registration changed nothing: the first password still works.
  ASSERT_TRUE(old_password && new_password);
  EXPECT_EQ(old_password->code(), LOGIN_OK);
  EXPECT_EQ(old_password->uid(), first->uid());
  EXPECT_EQ(new_password->code(), LOGIN_DENIED);
}

TEST(LoginSim, RotatedKeyTicketVerifiesUntilRetired) {
  World w(4, false);
  client::AccountOutcome before, after;
  std::string old_ticket, new_ticket;
  client::SyncStatus old_ok = client::SyncStatus::busy, new_ok = client::SyncStatus::busy;
  client::SyncStatus old_retired = client::SyncStatus::busy, new_retired = client::SyncStatus::busy;
  size_t retired = 0;
  w.run([&](Caller& c) -> Task<void> {
    rpc::Router router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"});
    client::MessagingClient frank(c.rt, router, client_config("c-frank", client::ClientPath::direct, false),
                                  nullptr);
    (void)co_await frank.register_account("frank_06", "pw-frank", profile("Frank", "sz"));
    before = co_await frank.login("frank_06", "pw-frank");
    old_ticket = frank.ticket();
    // Step 2 of the rotation: key 2 (already known to every verifier)
    // becomes current on the issuers.
    for (NodeId id : w.deployment->nodes_of(deploy::Role::login)) {
      if (auto* s = w.deployment->node_as<LoginService>(id)) (void)s->keys().make_current(2);
    }
    after = co_await frank.login("frank_06", "pw-frank");
    new_ticket = frank.ticket();
    frank.set_ticket(old_ticket);
    old_ok = co_await frank.sync();
    frank.set_ticket(new_ticket);
    new_ok = co_await frank.sync();
    // Step 3: key 1 retired on the verifiers.
    // (A ring always has a signing key: the verifiers move to key 2 first.)
    for (NodeId id : w.deployment->nodes_of(deploy::Role::msg)) {
      if (auto* s = w.deployment->node_as<msg::MsgService>(id)) {
        retired += s->keys().make_current(2) && s->keys().retire(1);
      }
    }
    frank.set_ticket(old_ticket);
    old_retired = co_await frank.sync();
    frank.set_ticket(new_ticket);
    new_retired = co_await frank.sync();
  });
  ASSERT_EQ(before.status, client::AccountStatus::ok) << before.error;
  ASSERT_EQ(after.status, client::AccountStatus::ok) << after.error;
  const ticket::TicketCheck a = w.ring.verify(old_ticket, w.sim.now());
  const ticket::TicketCheck b = w.ring.verify(new_ticket, w.sim.now());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a.key_id, 1u);
  EXPECT_EQ(b.key_id, 2u);  // issued under the new current key
  EXPECT_EQ(retired, 3u);  // every msg node
  EXPECT_EQ(old_ok, client::SyncStatus::ok);  // the old key still verifies
  EXPECT_EQ(new_ok, client::SyncStatus::ok);
  EXPECT_EQ(old_retired, client::SyncStatus::failed);  // MSG_UNAUTHENTICATED, definite
  EXPECT_EQ(new_retired, client::SyncStatus::ok);
}

// --- contacts and profile --------------------------------------------------------------

TEST(LoginSim, ContactsAndProfileSyncAcrossDevices) {
  World w(5);
  w.add_reader(true);
  uint64_t grace = 0, heidi = 0, ivan = 0;
  client::AccountOutcome add_heidi, add_ivan, add_again, remove_heidi, set_prof, bad_self, forged;
  std::set<uint64_t> after_adds, after_remove;
  uint64_t version_after_adds = 0, version_after_remove = 0, account_after = 0;
  std::optional<client::ProfileFields> tablet_profile_before, tablet_profile_after;
  std::optional<msg::SyncReply> tombstone, acknowledged;
  w.run([&](Caller& c) -> Task<void> {
    rpc::Router router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"});
    rpc::RouterConfig one;
    one.attempts_max = 1;
    rpc::Router short_router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"}, one);
    client::MessagingClient phone(c.rt, short_router,
                                  client_config("c-grace-phone", client::ClientPath::short_connection, true),
                                  w.log.get());
    client::MessagingClient tablet(c.rt, router, client_config("c-grace-tablet", client::ClientPath::direct, true),
                                   w.log.get());
    client::MessagingClient other(c.rt, router, client_config("c-other", client::ClientPath::direct, true),
                                  nullptr);
    grace = (co_await phone.register_account("grace_07", "pw-grace", profile("Grace", "sh"))).uid;
    heidi = (co_await other.register_account("heidi_08", "pw-heidi", profile("Heidi", "bj"))).uid;
    client::MessagingClient other2(c.rt, router, client_config("c-other2", client::ClientPath::direct, true),
                                   nullptr);
    ivan = (co_await other2.register_account("ivan_009", "pw-ivan", profile("Ivan", "gz"))).uid;
    (void)co_await phone.login("grace_07", "pw-grace");
    (void)co_await tablet.login("grace_07", "pw-grace");  // the same user, a second device
    (void)co_await tablet.sync();
    tablet_profile_before = tablet.profile();
    add_heidi = co_await phone.change_contact(heidi, false);
    add_ivan = co_await phone.change_contact(ivan, false);
    add_again = co_await phone.change_contact(ivan, false);  // already there: no change
    (void)co_await tablet.sync();
    after_adds = tablet.contacts();
    version_after_adds = tablet.key().at("contacts");
    remove_heidi = co_await phone.change_contact(heidi, true);
    set_prof = co_await phone.set_profile(profile("Grace H.", "hz"));
    // What a sync from the adds' key returns: exactly the removal, as a tombstone.
    rpc::CallOptions o;
    o.timeout = 3_s;
    o.ticket = tablet.ticket();
    msg::SyncRequest req;
    auto set_key = [&](uint64_t contacts_v, uint64_t account_v) {
      req.clear_key();
      msg::SyncKeyEntry* e = req.add_key();
      e->set_type("account");
      e->set_version(account_v);
      e = req.add_key();
      e->set_type("contacts");
      e->set_version(contacts_v);
      e = req.add_key();
      e->set_type("messages");
      e->set_version(0);
    };
    set_key(version_after_adds, 1);
    rpc::Result<msg::SyncReply> r =
        co_await router.call<msg::SyncReply>(std::string(msg::kServiceName), msg::kSyncMethod, req, o);
    if (r.ok()) tombstone = r.value();
    (void)co_await tablet.sync();
    after_remove = tablet.contacts();
    version_after_remove = tablet.key().at("contacts");
    account_after = tablet.key().at("account");
    tablet_profile_after = tablet.profile();
    // Presenting the newer key acknowledges the batch: nothing comes again.
    set_key(version_after_remove, account_after);
    r = co_await router.call<msg::SyncReply>(std::string(msg::kServiceName), msg::kSyncMethod, req, o);
    if (r.ok()) acknowledged = r.value();
    bad_self = co_await phone.change_contact(grace, false);
    phone.set_ticket("not a ticket");
    forged = co_await phone.change_contact(ivan, true);
    phone.set_ticket(tablet.ticket());
    (void)co_await phone.sync();
    phone.record_final();
    tablet.record_final();
    w.known_user(grace, tablet.ticket());
  });
  w.read_finals();
  ASSERT_NE(grace, 0u);
  ASSERT_EQ(add_heidi.status, client::AccountStatus::ok) << add_heidi.error;
  ASSERT_EQ(add_ivan.status, client::AccountStatus::ok) << add_ivan.error;
  EXPECT_TRUE(add_heidi.changed);
  EXPECT_EQ(add_heidi.version, 1u);
  EXPECT_EQ(add_ivan.version, 2u);
  EXPECT_EQ(add_again.status, client::AccountStatus::ok);
  EXPECT_FALSE(add_again.changed);
  EXPECT_EQ(add_again.version, 2u);
  // The registration's profile arrived with account version 1.
  ASSERT_TRUE(tablet_profile_before);
  EXPECT_EQ(tablet_profile_before->at("nickname"), "Grace");
  EXPECT_EQ(after_adds, (std::set<uint64_t>{heidi, ivan}));
  EXPECT_EQ(version_after_adds, 2u);
  ASSERT_EQ(remove_heidi.status, client::AccountStatus::ok);
  EXPECT_TRUE(remove_heidi.changed);
  EXPECT_EQ(remove_heidi.version, 3u);
  ASSERT_EQ(set_prof.status, client::AccountStatus::ok) << set_prof.error;
  EXPECT_EQ(set_prof.version, 2u);
  ASSERT_TRUE(tombstone);
  ASSERT_EQ(tombstone->code(), msg::MSG_OK) << tombstone->error();
  ASSERT_EQ(tombstone->contacts_size(), 1);
  EXPECT_EQ(tombstone->contacts(0).contact_uid(), heidi);
  EXPECT_TRUE(tombstone->contacts(0).removed());
  EXPECT_EQ(tombstone->contacts(0).change_version(), 3u);
  ASSERT_TRUE(tombstone->has_profile());
  EXPECT_EQ(tombstone->profile().nickname(), "Grace H.");
  EXPECT_EQ(after_remove, (std::set<uint64_t>{ivan}));
  EXPECT_EQ(version_after_remove, 3u);
  EXPECT_EQ(account_after, 2u);
  ASSERT_TRUE(tablet_profile_after);
  EXPECT_EQ(tablet_profile_after->at("nickname"), "Grace H.");
  EXPECT_EQ(tablet_profile_after->at("region"), "hz");
  ASSERT_TRUE(acknowledged);
  EXPECT_EQ(acknowledged->code(), msg::MSG_OK);
  EXPECT_EQ(acknowledged->contacts_size(), 0);
  EXPECT_FALSE(acknowledged->has_profile());
  EXPECT_EQ(bad_self.status, client::AccountStatus::failed);  // oneself: MSG_INVALID
  EXPECT_EQ(forged.status, client::AccountStatus::failed);    // no valid ticket: refused
  // Both devices' final states (contacts, profile, every version) equal the
  // server's (the reader's server_final): the checker's convergence.
  size_t finals_with_contacts = 0;
  for (const cm::Event& e : w.log->history()) {
    if (const auto* f = std::get_if<cm::ClientFinal>(&e.body)) {
      finals_with_contacts += f->contacts == std::vector<uint64_t>{ivan};
    }
  }
  EXPECT_EQ(finals_with_contacts, 2u);
  const cm::MessagingVerdict v = judge(w.log->history(), 5);
  EXPECT_TRUE(v.ok()) << cm::format_verdict(v);
}

TEST(LoginSim, ContactChangesPageBeyondOneReply) {
  World w(6, false);
  constexpr uint64_t kAdds = msg::kSyncPageMax + 5;
  std::vector<msg::SyncReply> pages;
  std::set<uint64_t> synced;
  uint64_t me = 0;
  w.run([&](Caller& c) -> Task<void> {
    rpc::Router router(c.rt, c.endpoint, w.directory(), rpc::Locality{"dc1", "clients"});
    client::MessagingClient judy(c.rt, router, client_config("c-judy", client::ClientPath::direct, true), nullptr);
    me = (co_await judy.register_account("judy_010", "pw-judy", profile("Judy", "sh"))).uid;
    (void)co_await judy.login("judy_010", "pw-judy");
    for (uint64_t i = 0; i < kAdds; ++i) (void)co_await judy.change_contact(100'000 + i, false);
    rpc::CallOptions o;
    o.timeout = 3_s;
    o.ticket = judy.ticket();
    uint64_t after = 0;
    for (int page = 0; page < 4; ++page) {
      msg::SyncRequest req;
      msg::SyncKeyEntry* e = req.add_key();
      e->set_type("contacts");
      e->set_version(after);
      rpc::Result<msg::SyncReply> r =
          co_await router.call<msg::SyncReply>(std::string(msg::kServiceName), msg::kSyncMethod, req, o);
      if (!r.ok()) break;
      pages.push_back(r.value());
      for (const msg::SyncKeyEntry& k : r->key()) {
        if (k.type() == "contacts") after = k.version();
      }
      if (!r->more()) break;
    }
    (void)co_await judy.sync();  // the client pages by itself
    synced = judy.contacts();
  });
  ASSERT_NE(me, 0u);
  ASSERT_EQ(pages.size(), 2u);
  ASSERT_EQ(pages[0].code(), msg::MSG_OK);
  EXPECT_EQ(pages[0].contacts_size(), static_cast<int>(msg::kSyncPageMax));
  EXPECT_TRUE(pages[0].more());
  EXPECT_EQ(pages[0].contacts(0).change_version(), 1u);  // increasing change versions
  EXPECT_EQ(pages[0].contacts(msg::kSyncPageMax - 1).change_version(), msg::kSyncPageMax);
  // The key: contacts at the last change; messages (always served) at 0;
  // account not presented, so neither served nor listed.
  ASSERT_EQ(pages[1].key_size(), 2);
  EXPECT_EQ(pages[1].key(0).type(), "contacts");
  EXPECT_EQ(pages[1].key(0).version(), kAdds);
  EXPECT_EQ(pages[1].key(1).type(), "messages");
  EXPECT_EQ(pages[1].key(1).version(), 0u);
  EXPECT_EQ(pages[1].contacts_size(), 5);
  EXPECT_FALSE(pages[1].more());
  EXPECT_FALSE(pages[1].has_profile());
  EXPECT_EQ(synced.size(), kAdds);
}

// --- through a zone outage -----------------------------------------------------------------

struct OutageResult {
  bool finished = false;
  std::string why;
  cm::MessagingVerdict verdict;
  size_t contact_changes_ok = 0, registered = 0, server_finals_with_contacts = 0, client_finals_with_contacts = 0;
  size_t nonempty_contacts = 0, changed_profiles = 0;
  uint64_t offline_periods = 0, returns = 0;
  uint64_t trace_hash = 0;
};

OutageResult run_outage(uint64_t seed, bool churn = false) {
  World w(seed);
  sim::workload::MessagingWorkloadConfig wc;
  wc.users = 30;
  wc.contacts = sim::workload::ContactGraphConfig::fixed(3);
  wc.send_interval_mean = seconds(5);
  wc.sync_interval = seconds(3);
  wc.register_users = true;
  wc.sync_all_types = true;
  wc.contact_change_interval_mean = seconds(6);
  wc.profile_change_interval_mean = seconds(20);
  if (churn) {
    wc.churn.online_mean = seconds(15);
    wc.churn.offline_mean = seconds(5);
  }
  sim::workload::MessagingWorkload load(w.sim, *w.deployment, wc, *w.log);
  w.deployment->start_all();
  w.sim.at(TimePoint::zero() + 20_s, [&w] { w.sim.faults().kill_zone("b"); });
  w.sim.at(TimePoint::zero() + 50_s, [&w] { (void)w.sim.faults().restore_zone("b"); });
  w.sim.run_until(TimePoint::zero() + 80_s);
  OutageResult res;
  res.finished = load.finish(seconds(5), w.sim.now() + kScenarioLimit, &res.why);
  if (w.sim.failure()) {
    res.finished = false;
    res.why = "simulation failed: " + *w.sim.failure();
  }
  for (uint64_t uid : load.uids()) res.registered += uid != 0;
  res.offline_periods = load.churn_totals().offline_periods;
  res.returns = load.churn_totals().returns;
  std::map<std::pair<std::string, uint64_t>, cm::OpKind> kinds;
  for (const cm::Event& e : w.log->history()) {
    if (const auto* inv = std::get_if<cm::Invoke>(&e.body)) {
      kinds[{e.process, inv->op_id}] = cm::op_kind(inv->request);
    } else if (const auto* c = std::get_if<cm::Completion>(&e.body)) {
      if (c->outcome == cm::Outcome::ok && c->op == cm::OpKind::contacts) ++res.contact_changes_ok;
    } else if (const auto* s = std::get_if<cm::ServerFinal>(&e.body)) {
      res.server_finals_with_contacts += s->contacts.has_value() && s->profile.has_value();
      res.nonempty_contacts += s->contacts && !s->contacts->empty();
      res.changed_profiles += s->versions.count("account") != 0 && s->versions.at("account") > 1;
    } else if (const auto* f = std::get_if<cm::ClientFinal>(&e.body)) {
      res.client_finals_with_contacts += f->contacts.has_value() && f->profile.has_value();
    }
  }
  res.verdict = judge(w.log->history(), seed);
  res.trace_hash = w.sim.trace_hash();
  return res;
}

TEST(LoginSim, ZoneOutageAllTypesConverge) {
  const testing::SeedRange seeds = testing::seed_range(2);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    const OutageResult r = run_outage(seed);
    const std::string rerun = testing::rerun_hint(seed, kBinary, "LoginSim.ZoneOutageAllTypesConverge");
    ASSERT_TRUE(r.finished) << "seed " << seed << ": " << r.why << "\n" << rerun;
    EXPECT_EQ(r.registered, 30u) << rerun;
    EXPECT_EQ(r.server_finals_with_contacts, 30u) << rerun;
    EXPECT_EQ(r.client_finals_with_contacts, 30u) << rerun;
    // Not vacuous: contacts changed and are held at the end.
    EXPECT_GT(r.contact_changes_ok, 100u) << rerun;
    EXPECT_GT(r.nonempty_contacts, 10u) << rerun;
    EXPECT_GT(r.changed_profiles, 10u) << rerun;
    EXPECT_TRUE(r.verdict.ok()) << cm::format_verdict(r.verdict) << "\n" << rerun;
  }
}

TEST(LoginSim, ZoneOutageAllTypesWithChurnConverge) {
  const testing::SeedRange seeds = testing::seed_range(2);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    const OutageResult r = run_outage(seed, true);
    const std::string rerun = testing::rerun_hint(seed, kBinary, "LoginSim.ZoneOutageAllTypesWithChurnConverge");
    ASSERT_TRUE(r.finished) << "seed " << seed << ": " << r.why << "\n" << rerun;
    EXPECT_EQ(r.registered, 30u) << rerun;
    EXPECT_EQ(r.server_finals_with_contacts, 30u) << rerun;
    EXPECT_EQ(r.client_finals_with_contacts, 30u) << rerun;
    EXPECT_GT(r.offline_periods, 30u) << rerun;  // churn happened
    EXPECT_GT(r.returns, 10u) << rerun;
    EXPECT_GT(r.contact_changes_ok, 50u) << rerun;
    EXPECT_TRUE(r.verdict.ok()) << cm::format_verdict(r.verdict) << "\n" << rerun;
  }
}

TEST(LoginSim, OutageRunIsDeterministic) {
  const OutageResult a = run_outage(7);
  const OutageResult b = run_outage(7);
  ASSERT_TRUE(a.finished) << a.why;
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.contact_changes_ok, b.contact_changes_ok);
}

}  // namespace
}  // namespace wx::login
