// `wxsim demo`: the default outage scenario, built in until YAML scenarios
// exist (`wxsim run`, a later issue): the messaging product through a zone
// power loss, judged by the messaging checker.
//
// The run itself — the deployment, the users (contact graph, groups, churn),
// the outage, the end phase and the checker — is sim::workload::OutageRun
// (sim/workload/outage_run.h, docs/messaging.md "Workload"); this file parses
// the options into its config and prints the report.
//
// The report: set-up, fault timeline, per-phase (before / during / after the
// outage) send availability and latency, ack → held latency, messages sent /
// acknowledged / delivered, the checker's verdict per check, simulation
// speed, trace hash and a reproduce line. Exit 0 when every check passes, 1
// when one fails (or the run could not finish), 2 on bad options.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "checkers/history_json.h"
#include "checkers/messaging.h"
#include "cli/commands.h"
#include "nodes/deploy/deployment.h"
#include "nodes/logic/ticket/ticket.h"
#include "sim/deployment_builder.h"
#include "sim/simulation.h"
#include "sim/workload/outage_run.h"

namespace wx::cli {

namespace {

namespace cm = checkers::messaging;
namespace wl = sim::workload;

constexpr size_t kUsersMax = wl::kOutageUsersMax;
constexpr size_t kGroupsMax = wl::kOutageGroupsMax;
constexpr double kRateMax = wl::kOutageRateMax;  // sends per user per minute
constexpr size_t kViolationsShown = 3;

// Numbers are taken as text and parsed here (std::from_chars: locale-free),
// so that a bad value gets this command's message and exit 2.
struct DemoOptions {
  std::string seed = "42";
  std::string users = "200";
  std::string groups = "10";
  std::string duration = "3m";
  std::string outage_start = "1m";
  std::string outage_for = "1m";
  std::string zone = "b";
  std::string rate = "6";  // sends per user per minute
  std::string churn_online = "0s";   // mean online period; 0s: no churn
  std::string churn_offline = "0s";  // mean offline period
  std::string sync_every = "3s";
  std::string heartbeat_every = "1s";
  std::string trace_out;
  std::string history_out;
  std::string log_level = "warn";
};

std::optional<LogLevel> parse_level(const std::string& s) {
  for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::off}) {
    if (s == to_string(l)) return l;
  }
  return std::nullopt;
}

int bad(const std::string& message) {
  fmt::print(stderr, "wxsim demo: {}\n", message);
  return 2;
}

template <typename T>
std::optional<T> parse_number(const std::string& text) {
  T v{};
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) return std::nullopt;
  return v;
}

Duration percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return Duration::zero();
  std::sort(v.begin(), v.end());
  const size_t idx = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return nanoseconds(v[idx]);
}

// --- what the history says, per phase ------------------------------------------------

struct PhaseStats {
  uint64_t attempted = 0, ok = 0;
  std::vector<int64_t> send_ns;  // first attempt's invoke → ok completion
  std::vector<int64_t> held_ns;  // server ack → recipient holds it (1:1) / every member's inbox has it (group)
};

struct Analysis {
  PhaseStats one[3], group[3];
  uint64_t copies_in_server_inboxes = 0;  // (message, recipient) pairs, sender's own copies excluded
  uint64_t held_by_clients = 0;           // (message, recipient) pairs in the recipients' client final states
};

// A logical message: every attempt of one (process, client message id).
struct SendTrack {
  int64_t first_invoke = -1;
  int64_t ok_at = -1;
  std::string message_id;
  cm::Conversation to;
  uint64_t sender = 0;
};

Analysis analyse(const cm::History& h, int64_t outage_start, int64_t outage_end,
                 const std::map<std::string, TimePoint>& group_completed) {
  auto phase_of = [&](int64_t t) { return t < outage_start ? 0 : t < outage_end ? 1 : 2; };
  std::map<std::pair<std::string, uint64_t>, std::string> op_cmid;  // (process, op) → cmid
  std::map<std::pair<std::string, std::string>, SendTrack> sends;    // (process, cmid)
  std::map<std::string, int64_t> acked_at;                           // message id → first ack
  std::map<std::pair<std::string, uint64_t>, int64_t> held_at;       // (message id, recipient) → first sync
  Analysis a;
  for (const cm::Event& e : h) {
    if (const auto* inv = std::get_if<cm::Invoke>(&e.body)) {
      if (const auto* s = std::get_if<cm::SendRequest>(&inv->request)) {
        op_cmid[{e.process, inv->op_id}] = s->client_msg_id;
        SendTrack& t = sends[{e.process, s->client_msg_id}];
        if (t.first_invoke < 0) t.first_invoke = e.t_ns;
        t.to = s->to;
        t.sender = s->user;
      }
    } else if (const auto* c = std::get_if<cm::Completion>(&e.body)) {
      if (c->op == cm::OpKind::send && c->outcome == cm::Outcome::ok && c->result) {
        auto it = op_cmid.find({e.process, c->op_id});
        if (it == op_cmid.end()) continue;
        SendTrack& t = sends[{e.process, it->second}];
        if (t.ok_at < 0) {
          t.ok_at = e.t_ns;
          if (const auto* r = std::get_if<cm::SendResult>(&*c->result)) t.message_id = r->message_id;
        }
      } else if (c->op == cm::OpKind::sync && c->outcome == cm::Outcome::ok && c->result) {
        if (const auto* r = std::get_if<cm::SyncResult>(&*c->result)) {
          for (const cm::MessageCopy& m : r->messages) held_at.try_emplace({m.message_id, m.recipient}, e.t_ns);
        }
      }
    } else if (const auto* ack = std::get_if<cm::SendAck>(&e.body)) {
      acked_at.try_emplace(ack->message_id, e.t_ns);
    } else if (const auto* sf = std::get_if<cm::ServerFinal>(&e.body)) {
      for (const cm::MessageCopy& m : sf->inbox) {
        if (m.sender != m.recipient) ++a.copies_in_server_inboxes;
      }
    } else if (const auto* cf = std::get_if<cm::ClientFinal>(&e.body)) {
      for (const cm::MessageCopy& m : cf->messages) {
        if (m.sender != m.recipient) ++a.held_by_clients;
      }
    }
  }
  for (const auto& [key, t] : sends) {
    if (t.first_invoke < 0) continue;
    const bool group = t.to.kind == cm::ConversationKind::group;
    PhaseStats& p = (group ? a.group : a.one)[phase_of(t.first_invoke)];
    ++p.attempted;
    if (t.ok_at < 0) continue;
    ++p.ok;
    p.send_ns.push_back(t.ok_at - t.first_invoke);
    auto ack = acked_at.find(t.message_id);
    const int64_t from = ack != acked_at.end() ? ack->second : t.ok_at;
    if (group) {
      auto done = group_completed.find(t.message_id);
      if (done != group_completed.end()) p.held_ns.push_back(std::max<int64_t>(0, done->second.ns() - from));
    } else {
      auto held = held_at.find({t.message_id, t.to.id});
      if (held != held_at.end()) p.held_ns.push_back(std::max<int64_t>(0, held->second - from));
    }
  }
  return a;
}

std::string ratio(uint64_t ok, uint64_t all) {
  if (all == 0) return "-";
  return fmt::format("{:.4f}", static_cast<double>(ok) / static_cast<double>(all));
}

std::string pct(const std::vector<int64_t>& v, double p) {
  return v.empty() ? std::string("-") : to_string(percentile(v, p));
}

int run_demo(const DemoOptions& text) {
  // --- validation: every option, before anything runs --------------------------------
  struct {
    uint64_t seed = 0;
    size_t users = 0, groups = 0;
    double rate = 0;
    std::string duration, outage_start, outage_for, zone, trace_out, history_out, log_level;
  } opt;
  const auto seed = parse_number<uint64_t>(text.seed);
  const auto users = parse_number<size_t>(text.users);
  const auto groups_n = parse_number<size_t>(text.groups);
  const auto rate = parse_number<double>(text.rate);
  if (!seed) return bad(fmt::format("--seed '{}': expected an unsigned 64-bit integer", text.seed));
  if (!users || *users < 2 || *users > kUsersMax) {
    return bad(fmt::format("--users '{}': expected 2 to {} simulated users", text.users, kUsersMax));
  }
  if (!groups_n || *groups_n > kGroupsMax) {
    return bad(fmt::format("--groups '{}': expected 0 to {} group chats", text.groups, kGroupsMax));
  }
  if (!rate || !(*rate > 0 && *rate <= kRateMax)) {
    return bad(fmt::format("--rate '{}': expected sends per user per minute, a number in (0, {}]", text.rate,
                           kRateMax));
  }
  opt.seed = *seed;
  opt.users = *users;
  opt.groups = *groups_n;
  opt.rate = *rate;
  opt.duration = text.duration;
  opt.outage_start = text.outage_start;
  opt.outage_for = text.outage_for;
  opt.zone = text.zone;
  opt.trace_out = text.trace_out;
  opt.history_out = text.history_out;
  opt.log_level = text.log_level;
  const auto level = parse_level(opt.log_level);
  const auto duration = parse_duration(opt.duration);
  const auto outage_start = parse_duration(opt.outage_start);
  const auto outage_for = parse_duration(opt.outage_for);
  if (!duration || *duration < seconds(10) || *duration > minutes(60)) {
    return bad(fmt::format("--duration '{}': expected a duration from 10s to 1h, such as 3m or 90s", opt.duration));
  }
  if (!outage_start || *outage_start < Duration::zero() || *outage_start >= *duration) {
    return bad(fmt::format("--outage-start '{}': expected a duration before the end of the traffic (--duration {}), "
                           "such as 1m",
                           opt.outage_start, opt.duration));
  }
  if (!outage_for || *outage_for < seconds(1) || *outage_start + *outage_for > *duration) {
    return bad(fmt::format("--outage-for '{}': expected a duration of at least 1s that ends by --duration {} "
                           "(outage starts at {})",
                           opt.outage_for, opt.duration, opt.outage_start));
  }
  if (opt.zone != "a" && opt.zone != "b" && opt.zone != "c") {
    return bad(fmt::format("--zone '{}': expected a, b or c (the zone that loses power)", opt.zone));
  }
  if (!level) return bad(fmt::format("--log-level '{}': expected debug, info, warn, error or off", opt.log_level));
  const auto churn_online = parse_duration(text.churn_online);
  const auto churn_offline = parse_duration(text.churn_offline);
  if (!churn_online || *churn_online < Duration::zero()) {
    return bad(fmt::format("--churn-online '{}': expected a duration (mean online period, 0s: no churn), such as 1m",
                           text.churn_online));
  }
  if (!churn_offline || *churn_offline < Duration::zero() ||
      (*churn_offline > Duration::zero()) != (*churn_online > Duration::zero())) {
    return bad(fmt::format("--churn-offline '{}': expected a duration (mean offline period), more than 0s exactly "
                           "when --churn-online is, such as 20s",
                           text.churn_offline));
  }
  wl::ChurnConfig churn{*churn_online, *churn_offline};
  std::ofstream trace_file, history_file;
  if (!opt.trace_out.empty()) {
    trace_file.open(opt.trace_out);
    if (!trace_file) return bad(fmt::format("--trace-out '{}': cannot open for writing", opt.trace_out));
  }
  if (!opt.history_out.empty()) {
    history_file.open(opt.history_out);
    if (!history_file) return bad(fmt::format("--history-out '{}': cannot open for writing", opt.history_out));
  }

  std::string reproduce = fmt::format(
      "wxsim demo --seed {} --users {} --groups {} --duration {} --outage-start {} --outage-for {} --zone {} --rate {}",
      opt.seed, opt.users, opt.groups, opt.duration, opt.outage_start, opt.outage_for, opt.zone, opt.rate);
  if (churn.enabled()) {
    reproduce += fmt::format(" --churn-online {} --churn-offline {}", text.churn_online, text.churn_offline);
  }
  reproduce += fmt::format(" --sync-every {} --heartbeat-every {}", text.sync_every, text.heartbeat_every);
  const auto sync_every = parse_duration(text.sync_every);
  const auto heartbeat_every = parse_duration(text.heartbeat_every);
  if (!sync_every) return bad(fmt::format("--sync-every '{}': expected a duration such as 3s or 1m", text.sync_every));
  if (!heartbeat_every) {
    return bad(fmt::format("--heartbeat-every '{}': expected a duration such as 1s or 30s", text.heartbeat_every));
  }
  wl::OutageRunConfig rc;
  rc.seed = opt.seed;
  rc.users = opt.users;
  rc.groups = opt.groups;
  rc.duration = *duration;
  rc.outage_start = *outage_start;
  rc.outage_for = *outage_for;
  rc.zone = opt.zone;
  rc.rate_per_min = opt.rate;
  rc.churn = churn;
  rc.sync_interval = *sync_every;
  rc.heartbeat_interval = *heartbeat_every;
  rc.log_level = *level;
  rc.trace_records_max = opt.trace_out.empty() ? 0 : size_t{1} << 22;
  if (std::string why = wl::validate(rc); !why.empty()) return bad(why);

  const auto wall0 = std::chrono::steady_clock::now();
  wl::OutageRun run(rc);
  sim::Simulation& sim = run.sim();
  if (std::string why; !run.run(&why)) {
    fmt::print(stderr, "wxsim demo: the run did not finish at {}: {}\nreproduce: {}\n", to_string(sim.now()), why,
               reproduce);
    return 1;
  }
  const auto wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  const cm::MessagingVerdict& verdict = run.verdict();
  const Analysis an = analyse(run.history(), (run.outage_started() - TimePoint::zero()).ns(),
                              (run.outage_ended() - TimePoint::zero()).ns(), run.group_completed_at());
  const client::MessagingClient::Stats totals = run.client_totals();
  const wl::ChurnStats churned = run.churn_totals();
  const bool with_groups = opt.groups > 0;

  // --- report ----------------------------------------------------------------------------
  fmt::print("wxsim demo: messaging through a zone outage (1 datacenter, 3 zones, every service in every zone)\n");
  fmt::print("seed {}, {} users chatting 1:1 over access long connections ({:.1f} contacts each on average, "
             "symmetric), {} group chats of {}-{} members ({} of the users are members)\n",
             opt.seed, opt.users, run.mean_contacts(), opt.groups, rc.group_size.min, rc.group_size.max,
             run.group_members());
  if (churn.enabled()) {
    fmt::print("churn: online ~{}, offline ~{} (exponential means): {} offline periods, {} returns, {} offline in "
               "all, {} sends after a return\n",
               text.churn_online, text.churn_offline, churned.offline_periods, churned.returns,
               to_string(churned.offline_time), churned.sends_after_return);
  }
  fmt::print("traffic {} simulated, {} sends per user per minute; zone {} dark from {} to {}\n", to_string(*duration),
             opt.rate, opt.zone, to_string(*outage_start), to_string(*outage_start + *outage_for));
  fmt::print("deployment: {} server nodes (kv x3, seqsvr, account, contacts, inbox, msg, access, group, fanout per "
             "zone)\n\n",
             run.deployment().nodes().size());

  fmt::print("timeline:\n");
  for (const wl::OutageRun::Mark& m : run.timeline()) fmt::print("  {:>11}  {}\n", to_string(m.at), m.what);

  const char* names[3] = {"before", "during", "after"};
  const std::string windows[3] = {
      fmt::format("0s-{}", to_string(*outage_start)),
      fmt::format("{}-{}", to_string(*outage_start), to_string(*outage_start + *outage_for)),
      fmt::format("{}-{}", to_string(*outage_start + *outage_for), to_string(*duration))};
  auto table = [&](const char* title, const PhaseStats* ps, const char* held_label) {
    fmt::print("\n{} (by the time of a message's first attempt; latency from first attempt to OK):\n", title);
    fmt::print("  {:<7} {:<12} {:>13} {:>8} {:>9} {:>9}   {:>9} {:>9}\n", "phase", "window", "ok/attempted",
               "avail", "send p50", "send p99", "held p50", "held p99");
    for (int i = 0; i < 3; ++i) {
      const PhaseStats& p = ps[i];
      fmt::print("  {:<7} {:<12} {:>13} {:>8} {:>9} {:>9}   {:>9} {:>9}\n", names[i], windows[i],
                 fmt::format("{}/{}", p.ok, p.attempted), ratio(p.ok, p.attempted), pct(p.send_ns, 0.5),
                 pct(p.send_ns, 0.99), pct(p.held_ns, 0.5), pct(p.held_ns, 0.99));
    }
    fmt::print("  held: {}\n", held_label);
  };
  table("1:1 sends", an.one, "from the server's ack to the recipient's client holding it (push -> notify-driven sync)");
  if (with_groups) table("group sends", an.group, "from the server's ack to the last member's inbox holding it (fan-out)");

  fmt::print("\nmessages: {} sent, {} acknowledged, {} (message, recipient) deliveries required, {} copies in the "
             "recipients' server inboxes, {} held by the recipients' clients at the end\n",
             verdict.stats.messages, verdict.stats.messages_acknowledged, verdict.stats.deliveries_required,
             an.copies_in_server_inboxes, an.held_by_clients);
  fmt::print("1:1 clients: {} sends ({} ok, {} failed, {} unknown) in {} attempts; {} notifies ({} stale) -> {} "
             "notify-driven syncs; {} syncs\n",
             totals.sends, totals.sends_ok, totals.sends_failed, totals.sends_unknown, totals.send_attempts,
             totals.notifies, totals.notifies_stale, totals.notify_syncs, totals.syncs);

  fmt::print("\nchecker (checkers::messaging over {} recorded events): {}\n", verdict.stats.events,
             verdict.ok() ? "PASS" : "FAIL");
  for (cm::Check c : {cm::Check::lost, cm::Check::duplicated, cm::Check::order, cm::Check::convergence,
                      cm::Check::origin, cm::Check::history}) {
    const size_t n = verdict.violations_per_check[static_cast<size_t>(c)];
    fmt::print("  {:<12} {}\n", to_string(c), n == 0 ? std::string("pass") : fmt::format("FAIL ({} violations)", n));
    size_t shown = 0;
    for (const cm::Violation* v : verdict.of(c)) {
      if (shown++ == kViolationsShown) break;
      fmt::print("      {}\n", cm::format_violation(*v, verdict.context));
    }
  }

  const double sim_s = static_cast<double>(sim.now().ns()) / 1e9;
  fmt::print("\nsimulated {:.1f}s in {:.2f}s wall: {:.1f} simulated s per wall s, {} events\n", sim_s, wall_s,
             wall_s > 0 ? sim_s / wall_s : 0.0, sim.kernel().events_executed());
  fmt::print("trace hash: {:016x}\n", sim.trace_hash());
  fmt::print("reproduce:  {}\n", reproduce);

  if (!opt.trace_out.empty()) {
    sim.kernel().trace().write_text(trace_file);
    fmt::print("trace:      {} records written to {}\n", sim.kernel().trace().records().size(), opt.trace_out);
  }
  if (!opt.history_out.empty()) {
    try {
      cm::write_history_jsonl(history_file, run.history());
      history_file.flush();
      if (!history_file) throw std::runtime_error("write failed");
    } catch (const std::exception& e) {
      fmt::print(stderr, "wxsim demo: --history-out '{}': {}\n", opt.history_out, e.what());
      return 1;
    }
    fmt::print("history:    {} events written to {} (JSON lines)\n", run.history().size(), opt.history_out);
  }
  return verdict.ok() ? 0 : 1;
}

}  // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto opt = std::make_shared<DemoOptions>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Run the default outage scenario in simulation (messaging through a zone outage) and print its report");
  cmd->add_option("--seed", opt->seed, "Root seed of the run")->capture_default_str();
  cmd->add_option("--users", opt->users, "Simulated users chatting 1:1 (2 to 10000)")->capture_default_str();
  cmd->add_option("--groups", opt->groups, "Group chats of 3-30 members (0 to 1000)")->capture_default_str();
  cmd->add_option("--duration", opt->duration, "Simulated time of traffic (10s to 1h, e.g. 3m, 90s)")
      ->capture_default_str();
  cmd->add_option("--outage-start", opt->outage_start, "When the zone loses power (before --duration)")
      ->capture_default_str();
  cmd->add_option("--outage-for", opt->outage_for, "How long the zone stays dark (ends by --duration)")
      ->capture_default_str();
  cmd->add_option("--zone", opt->zone, "The zone that loses power: a, b or c")->capture_default_str();
  cmd->add_option("--rate", opt->rate, "Sends per user per minute (Poisson; group senders too)")->capture_default_str();
  cmd->add_option("--churn-online", opt->churn_online, "Mean online period of a user (exponential; 0s: no churn)")
      ->capture_default_str();
  cmd->add_option("--churn-offline", opt->churn_offline, "Mean offline period of a user (exponential)")
      ->capture_default_str();
  cmd->add_option("--sync-every", opt->sync_every, "Each client's periodic sync (besides notify-driven ones)")
      ->capture_default_str();
  cmd->add_option("--heartbeat-every", opt->heartbeat_every,
                  "Each long connection's heartbeat (3 missed: the client moves to another access node)")
      ->capture_default_str();
  cmd->add_option("--trace-out", opt->trace_out, "Write the event trace (text) to this file");
  cmd->add_option("--history-out", opt->history_out,
                  "Write the recorded messaging history (JSON lines, docs/messaging-history.md) to this file");
  cmd->add_option("--log-level", opt->log_level, "debug, info, warn, error or off")->capture_default_str();
  cmd->callback([opt, &exit_code] { exit_code = run_demo(*opt); });
}

}  // namespace wx::cli
