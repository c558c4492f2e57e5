// The messaging outage at scale (sim/workload/outage_run.h), judged by the
// messaging checker (checkers/messaging.h) over the recorded history only:
//
//   * ThousandUsers…: 1,000 users chatting 1:1 with their contacts and in 100
//     group chats (3–30 members from the same users) on a three-zone
//     deployment with every service in every zone, 10 simulated minutes of
//     traffic, zone b dark from 4m to 6m; after quiescence every acknowledged
//     message (1:1 and group) is in every recipient's synced client state
//     exactly once, in per-recipient order, and every client's sync state
//     equals the server's. WX_SEEDS seeds (default 3).
//   (The 100-user sweep that was here is now the scenario sweep of
//   scenarios/zone-outage.yaml, tests/scale/scenario_run_test.cc.)
//   * AckBeforeInboxCommit…: the test-only fault (the msg service
//     acknowledges before the inbox commit) in the same scenario makes the
//     no-loss check fail, naming the message, the recipient and the seed.
//
// The workload rate is a heavy user's: 1 send per user per minute (about 30
// times WeChat's published daily average), a periodic sync every 30 s on top
// of notify-driven syncs, a heartbeat every second.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <variant>

#include "checkers/messaging.h"
#include "sim/workload/outage_run.h"
#include "tests/support/seeds.h"

namespace wx::sim::workload {
namespace {

namespace cm = checkers::messaging;

OutageRunConfig scenario(uint64_t seed, size_t users, size_t groups) {
  OutageRunConfig c;
  c.seed = seed;
  c.users = users;
  c.groups = groups;
  c.duration = minutes(10);
  c.outage_start = minutes(4);
  c.outage_for = minutes(2);
  c.zone = "b";
  c.rate_per_min = 1;
  c.sync_interval = seconds(30);
  c.heartbeat_interval = seconds(1);
  return c;
}

struct Tally {
  size_t acked_during_outage = 0;  // send acks (1:1 and group) while the zone was dark
  size_t group_acks = 0;
};

Tally tally(const OutageRun& run) {
  Tally t;
  const int64_t down = (run.outage_started() - TimePoint::zero()).ns();
  const int64_t up = (run.outage_ended() - TimePoint::zero()).ns();
  for (const cm::Event& e : run.history()) {
    const auto* ack = std::get_if<cm::SendAck>(&e.body);
    if (ack == nullptr) continue;
    if (e.t_ns >= down && e.t_ns < up) ++t.acked_during_outage;
    if (ack->to.kind == cm::ConversationKind::group) ++t.group_acks;
  }
  return t;
}

std::string first_violations(const cm::MessagingVerdict& v, size_t n) {
  std::string out;
  for (size_t i = 0; i < v.violations.size() && i < n; ++i) {
    out += "\n  " + cm::format_violation(v.violations[i], v.context);
  }
  return out;
}

// Runs one seed and judges it; the run must be non-trivial: the zone went
// dark, messages were acknowledged while it was, group messages fanned out.
void run_seed(const OutageRunConfig& config) {
  OutageRun run(config);
  std::string why;
  ASSERT_TRUE(run.run(&why)) << "seed " << config.seed << ": the run did not finish: " << why;
  const cm::MessagingVerdict& v = run.verdict();
  EXPECT_TRUE(v.ok()) << "seed " << config.seed << ": " << v.violations.size() << " violations"
                      << first_violations(v, 5);
  ASSERT_GE(run.timeline().size(), 2u);
  EXPECT_EQ(run.zone_nodes(), 9u) << "every service has one instance in the dark zone";
  const Tally t = tally(run);
  EXPECT_GT(t.acked_during_outage, config.users / 10) << "seed " << config.seed;
  if (config.groups > 0) {
    EXPECT_GT(t.group_acks, config.groups) << "seed " << config.seed;
    EXPECT_GT(v.stats.deliveries_required, v.stats.messages_acknowledged) << "groups fan out to many";
  }
  EXPECT_GE(v.stats.messages_acknowledged, config.users * 8) << "about 10 sends per user over 10 minutes";
  if (testing::verbose() || config.seed == 1) {
    std::printf("seed %llu: %zu messages acknowledged (%zu during the outage), %zu deliveries, %zu events, "
                "%.1f simulated s, %llu kernel events\n",
                static_cast<unsigned long long>(config.seed), v.stats.messages_acknowledged, t.acked_during_outage,
                v.stats.deliveries_required, v.stats.events, static_cast<double>(run.sim().now().ns()) / 1e9,
                static_cast<unsigned long long>(run.sim().kernel().events_executed()));
  }
}

TEST(OutageRun, ThousandUsersTenMinutesZoneDarkForTwoMinutesLosesNothing) {
  const testing::SeedRange seeds = testing::seed_range(3);
  for (uint64_t seed = seeds.first; seed < seeds.end(); ++seed) {
    run_seed(scenario(seed, 1000, 100));
    if (HasFatalFailure()) return;
  }
}

TEST(OutageRun, AckBeforeInboxCommitIsCaughtNamingMessageRecipientAndSeed) {
  // The fault loses a message only when a send's background append fails
  // after its ack; a zone outage makes that likely within a few seeds.
  const testing::SeedRange seeds = testing::seed_range(10);
  bool caught = false;
  for (uint64_t seed = seeds.first; seed < seeds.end() && !caught; ++seed) {
    OutageRunConfig c = scenario(seed, 100, 0);
    c.unsafe_ack_before_inbox_commit = true;
    OutageRun run(c);
    std::string why;
    ASSERT_TRUE(run.run(&why)) << "seed " << seed << ": " << why;
    const cm::MessagingVerdict& v = run.verdict();
    for (const cm::Violation* lost : v.of(cm::Check::lost)) {
      ASSERT_FALSE(lost->message_id.empty());
      ASSERT_TRUE(lost->recipient.has_value());
      const std::string text = cm::format_violation(*lost, v.context);
      EXPECT_NE(text.find(lost->message_id), std::string::npos) << text;
      EXPECT_NE(text.find(std::to_string(*lost->recipient)), std::string::npos) << text;
      EXPECT_NE(text.find("seed " + std::to_string(seed)), std::string::npos) << text;
      std::printf("caught at seed %llu: %s\n", static_cast<unsigned long long>(seed), text.c_str());
      caught = true;
      break;
    }
  }
  EXPECT_TRUE(caught) << "no lost message in " << seeds.count << " seeds with the fault on";
}

}  // namespace
}  // namespace wx::sim::workload
