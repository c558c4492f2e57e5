// The linearizability checker on hand-written histories (each a classic
// correct or incorrect behaviour), on randomized histories generated from a
// sequential register (must pass) with one injected corruption (must be
// caught), and on a 10,000-op history (must finish).
#include "checkers/linearizability.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "nodes/runtime/random.h"

namespace wx::checkers {
namespace {

// --- building histories (times in microseconds) ----------------------------

TimePoint us(int64_t n) {
  return TimePoint::zero() + microseconds(n);
}

KvOp base(KvOpKind kind, const std::string& key, int64_t t0_us, std::optional<int64_t> t1_us) {
  KvOp op;
  op.kind = kind;
  op.key = key;
  op.invoke_time = us(t0_us);
  if (t1_us) op.complete_time = us(*t1_us);
  op.outcome = t1_us ? KvOutcome::ok : KvOutcome::unknown;
  return op;
}

// get -> version 0 means "not found".
KvOp Get(const std::string& key, int64_t t0, int64_t t1, uint64_t version,
         const std::string& value = "") {
  KvOp op = base(KvOpKind::get, key, t0, t1);
  op.read_found = version > 0;
  op.read_value = version > 0 ? value : "";
  op.version = version;
  return op;
}
KvOp GetUnknown(const std::string& key, int64_t t0) {
  return base(KvOpKind::get, key, t0, std::nullopt);
}
KvOp Put(const std::string& key, const std::string& value, int64_t t0, int64_t t1,
         uint64_t version) {
  KvOp op = base(KvOpKind::put, key, t0, t1);
  op.write_value = value;
  op.version = version;
  return op;
}
KvOp PutUnknown(const std::string& key, const std::string& value, int64_t t0) {
  KvOp op = base(KvOpKind::put, key, t0, std::nullopt);
  op.write_value = value;
  return op;
}
KvOp Cas(const std::string& key, uint64_t expected, const std::string& value, int64_t t0,
         int64_t t1, uint64_t version) {
  KvOp op = base(KvOpKind::cas, key, t0, t1);
  op.expected_version = expected;
  op.write_value = value;
  op.version = version;
  return op;
}
KvOp CasFailed(const std::string& key, uint64_t expected, const std::string& value, int64_t t0,
               int64_t t1, uint64_t current) {
  KvOp op = Cas(key, expected, value, t0, t1, current);
  op.outcome = KvOutcome::cas_failed;
  return op;
}
KvOp CasUnknown(const std::string& key, uint64_t expected, const std::string& value, int64_t t0) {
  KvOp op = base(KvOpKind::cas, key, t0, std::nullopt);
  op.expected_version = expected;
  op.write_value = value;
  return op;
}
KvOp Remove(const std::string& key, int64_t t0, int64_t t1) {
  return base(KvOpKind::remove, key, t0, t1);
}

KeyVerdict verdict(const KvHistory& h, const std::string& key = "k",
                   const LinearizabilityOptions& options = {}) {
  const LinearizabilityReport report = check_linearizability(h, options);
  const KeyResult* r = report.find(key);
  EXPECT_NE(r, nullptr) << "no key " << key;
  return r ? r->verdict : KeyVerdict::malformed;
}

std::string report_text(const KvHistory& h) {
  return format_report(h, check_linearizability(h));
}

// --- linearizable histories --------------------------------------------------

TEST(Linearizability, SequentialHistoryIsAccepted) {
  // clang-format off
  const KvHistory h = {
      Get("k", 0, 1, 0),
      Put("k", "a", 2, 3, 1),
      Get("k", 4, 5, 1, "a"),
      Put("k", "b", 6, 7, 2),
      Cas("k", 2, "c", 8, 9, 3),
      CasFailed("k", 2, "d", 10, 11, 3),
      Get("k", 12, 13, 3, "c"),
      Cas("k", 3, "c", 14, 15, 4),  // the same value again makes a new version all the same
      Get("k", 16, 17, 4, "c"),
  };
  // clang-format on
  const LinearizabilityReport r = check_linearizability(h);
  EXPECT_TRUE(r.linearizable()) << format_report(h, r);
  EXPECT_FALSE(r.failed());
  ASSERT_EQ(r.keys.size(), 1u);
  EXPECT_EQ(r.keys[0].op_count, h.size());
}

TEST(Linearizability, OverlappingPutsWithAReadThatSeesEither) {
  // a and b overlap each other and the first read; either order is possible.
  for (const bool a_first : {true, false}) {
    const uint64_t va = a_first ? 1 : 2;
    const uint64_t vb = a_first ? 2 : 1;
    for (const bool read_sees_a : {true, false}) {
      const KvHistory h = {
          Put("k", "a", 0, 10, va),
          Put("k", "b", 1, 11, vb),
          read_sees_a ? Get("k", 5, 6, va, "a") : Get("k", 5, 6, vb, "b"),
      };
      EXPECT_EQ(verdict(h), KeyVerdict::linearizable)
          << "a_first=" << a_first << " read_sees_a=" << read_sees_a << "\n"
          << report_text(h);
    }
  }
  // After both completed, only the one that went second can be seen.
  const KvHistory after = {Put("k", "a", 0, 10, 1), Put("k", "b", 1, 11, 2),
                           Get("k", 20, 21, 2, "b")};
  EXPECT_EQ(verdict(after), KeyVerdict::linearizable);
  const KvHistory stale = {Put("k", "a", 0, 10, 1), Put("k", "b", 1, 11, 2),
                           Get("k", 20, 21, 1, "a")};
  EXPECT_EQ(verdict(stale), KeyVerdict::violation);
}

TEST(Linearizability, CasRaceWhereExactlyOneWins) {
  for (const bool first_wins : {true, false}) {
    KvHistory h = {Put("k", "x", 0, 1, 1)};
    if (first_wins) {
      h.push_back(Cas("k", 1, "a", 2, 10, 2));
      h.push_back(CasFailed("k", 1, "b", 3, 9, 2));
      h.push_back(Get("k", 11, 12, 2, "a"));
    } else {
      h.push_back(CasFailed("k", 1, "a", 2, 10, 2));
      h.push_back(Cas("k", 1, "b", 3, 9, 2));
      h.push_back(Get("k", 11, 12, 2, "b"));
    }
    EXPECT_EQ(verdict(h), KeyVerdict::linearizable) << report_text(h);
  }
  // Creating a key with cas from version 0.
  const KvHistory create = {Cas("k", 0, "a", 0, 5, 1), CasFailed("k", 0, "b", 1, 6, 1),
                            Get("k", 7, 8, 1, "a")};
  EXPECT_EQ(verdict(create), KeyVerdict::linearizable) << report_text(create);
}

TEST(Linearizability, TouchingIntervalsCountAsConcurrent) {
  // The read is invoked at the instant the put completes: either order.
  const KvHistory touching = {Put("k", "a", 0, 10, 1), Get("k", 10, 20, 0)};
  EXPECT_EQ(verdict(touching), KeyVerdict::linearizable);
  const KvHistory after = {Put("k", "a", 0, 10, 1), Get("k", 11, 20, 0)};
  EXPECT_EQ(verdict(after), KeyVerdict::violation);
}

TEST(Linearizability, RemoveMakesTheKeyAbsentAndVersionsRestart) {
  // clang-format off
  const KvHistory ok = {
      Put("k", "a", 0, 1, 1),  Put("k", "b", 2, 3, 2), Remove("k", 4, 5),
      Get("k", 6, 7, 0),       Put("k", "c", 8, 9, 1), Get("k", 10, 11, 1, "c"),
      Cas("k", 1, "d", 12, 13, 2),
  };
  // clang-format on
  EXPECT_EQ(verdict(ok), KeyVerdict::linearizable) << report_text(ok);
  KvHistory bad = ok;
  bad[4].version = 3;  // as if versions continued across the remove
  EXPECT_EQ(verdict(bad), KeyVerdict::violation);
  const KvHistory read_after_remove = {Put("k", "a", 0, 1, 1), Remove("k", 2, 3),
                                       Get("k", 4, 5, 1, "a")};
  EXPECT_EQ(verdict(read_after_remove), KeyVerdict::violation);
}

// --- classic violations ------------------------------------------------------

TEST(Linearizability, StaleReadAfterACompletedWriteIsCaught) {
  const KvHistory h = {Put("k", "a", 0, 1, 1), Put("k", "b", 2, 3, 2), Get("k", 4, 5, 1, "a")};
  const LinearizabilityReport r = check_linearizability(h);
  ASSERT_EQ(r.keys.size(), 1u);
  const KeyResult& k = r.keys[0];
  ASSERT_EQ(k.verdict, KeyVerdict::violation);
  // Without put b the read is fine; put a may be taken as unknown (it can still
  // supply v1): the core is put b and the read.
  EXPECT_EQ(k.core_ops, (std::vector<size_t>{1, 2}));
  EXPECT_TRUE(k.core_is_minimal);
  EXPECT_EQ(k.stuck.blocking_op, 2u);
  EXPECT_EQ(k.stuck.prefix_ops, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(k.stuck.state_after_prefix.version, 2u);
  EXPECT_EQ(k.stuck.state_after_prefix.value, "b");
}

TEST(Linearizability, ReadOfAValueNeverWrittenIsCaught) {
  const KvHistory h = {Put("k", "a", 0, 1, 1), Get("k", 2, 3, 1, "zzz")};
  const LinearizabilityReport r = check_linearizability(h);
  ASSERT_EQ(r.keys[0].verdict, KeyVerdict::violation);
  EXPECT_EQ(r.keys[0].core_ops, (std::vector<size_t>{1}));
  // A read of a key nobody wrote.
  EXPECT_EQ(verdict({Get("k", 0, 1, 1, "a")}), KeyVerdict::violation);
}

TEST(Linearizability, TwoSuccessfulCasFromTheSameExpectedVersionAreCaught) {
  const KvHistory h = {Put("k", "x", 0, 1, 1), Cas("k", 1, "a", 2, 10, 2),
                       Cas("k", 1, "b", 3, 9, 2)};
  const LinearizabilityReport r = check_linearizability(h);
  ASSERT_EQ(r.keys[0].verdict, KeyVerdict::violation) << format_report(h, r);
  EXPECT_EQ(r.keys[0].core_ops, (std::vector<size_t>{1, 2}));
  // Even if the second one reports a later version, it expected v1.
  const KvHistory h2 = {Put("k", "x", 0, 1, 1), Cas("k", 1, "a", 2, 10, 2),
                        Cas("k", 1, "b", 3, 9, 3)};
  EXPECT_EQ(verdict(h2), KeyVerdict::violation);
}

TEST(Linearizability, VersionNumbersGoingBackwardsAreCaught) {
  const KvHistory puts = {Put("k", "a", 0, 1, 1), Put("k", "b", 2, 3, 2), Put("k", "c", 4, 5, 2)};
  EXPECT_EQ(verdict(puts), KeyVerdict::violation);
  const KvHistory read = {Put("k", "a", 0, 1, 1), Put("k", "b", 2, 3, 2),
                          Get("k", 4, 5, 3, "b")};  // right value, version from nowhere
  EXPECT_EQ(verdict(read), KeyVerdict::violation);
  const KvHistory skipped = {Put("k", "a", 0, 1, 1), Put("k", "b", 2, 3, 3)};
  EXPECT_EQ(verdict(skipped), KeyVerdict::violation) << "a version skipped with no writer";
  const KvHistory failed_cas = {Put("k", "a", 0, 1, 1), Put("k", "b", 2, 3, 2),
                                CasFailed("k", 0, "c", 4, 5, 1)};
  EXPECT_EQ(verdict(failed_cas), KeyVerdict::violation) << "failed cas reports an old version";
  const KvHistory own_expected = {Put("k", "a", 0, 1, 1), CasFailed("k", 1, "c", 2, 3, 1)};
  EXPECT_EQ(verdict(own_expected), KeyVerdict::violation)
      << "a cas that finds its expected version cannot fail";
}

TEST(Linearizability, NonMonotonicReadsAreCaught) {
  // The put overlaps both reads; once one read saw it, a later read must too.
  const KvHistory h = {Put("k", "a", 0, 100, 1), Get("k", 10, 20, 1, "a"), Get("k", 30, 40, 0)};
  const LinearizabilityReport r = check_linearizability(h);
  ASSERT_EQ(r.keys[0].verdict, KeyVerdict::violation) << format_report(h, r);
  EXPECT_EQ(r.keys[0].core_ops, (std::vector<size_t>{1, 2}));
  // The other order is fine: old, then new.
  const KvHistory fine = {Put("k", "a", 0, 100, 1), Get("k", 10, 20, 0), Get("k", 30, 40, 1, "a")};
  EXPECT_EQ(verdict(fine), KeyVerdict::linearizable);
}

// --- unknown outcomes --------------------------------------------------------

TEST(Linearizability, UnknownPutMayExplainALaterRead) {
  const KvHistory h = {PutUnknown("k", "x", 0), Get("k", 10, 11, 1, "x")};
  EXPECT_EQ(verdict(h), KeyVerdict::linearizable);
  // ... and may take effect late: after a read that missed it.
  const KvHistory late = {PutUnknown("k", "x", 0), Get("k", 10, 11, 0), Get("k", 20, 21, 1, "x")};
  EXPECT_EQ(verdict(late), KeyVerdict::linearizable);
  // ... and a later acknowledged put may count it.
  const KvHistory counted = {PutUnknown("k", "x", 0), Put("k", "y", 10, 11, 2)};
  EXPECT_EQ(verdict(counted), KeyVerdict::linearizable);
}

TEST(Linearizability, UnknownPutNeverObservedIsFine) {
  const KvHistory h = {PutUnknown("k", "x", 0), Get("k", 10, 11, 0), Put("k", "y", 20, 21, 1),
                       Get("k", 30, 31, 1, "y")};
  EXPECT_EQ(verdict(h), KeyVerdict::linearizable) << report_text(h);
  const KvHistory alone = {PutUnknown("k", "x", 0), CasUnknown("k", 7, "z", 1), GetUnknown("k", 2)};
  EXPECT_EQ(verdict(alone), KeyVerdict::linearizable);
}

TEST(Linearizability, UnknownPutCannotExplainAReadBeforeItsInvocation) {
  const KvHistory h = {Get("k", 0, 5, 1, "x"), PutUnknown("k", "x", 10)};
  const LinearizabilityReport r = check_linearizability(h);
  ASSERT_EQ(r.keys[0].verdict, KeyVerdict::violation);
  EXPECT_EQ(r.keys[0].core_ops, (std::vector<size_t>{0}));
  // Overlapping the read, it can.
  const KvHistory overlap = {Get("k", 0, 5, 1, "x"), PutUnknown("k", "x", 4)};
  EXPECT_EQ(verdict(overlap), KeyVerdict::linearizable);
}

TEST(Linearizability, UnknownPutOnceObservedCannotBeUnseen) {
  const KvHistory h = {PutUnknown("k", "x", 0), Get("k", 10, 11, 1, "x"), Get("k", 20, 21, 0)};
  EXPECT_EQ(verdict(h), KeyVerdict::violation);
  // Nor take effect twice.
  const KvHistory twice = {PutUnknown("k", "x", 0), Get("k", 10, 11, 1, "x"),
                           Get("k", 20, 21, 2, "x")};
  EXPECT_EQ(verdict(twice), KeyVerdict::violation);
}

TEST(Linearizability, UnknownCasTakesEffectOnlyFromItsExpectedVersion) {
  const KvHistory wrong = {Put("k", "a", 0, 1, 1), CasUnknown("k", 5, "z", 2),
                           Get("k", 10, 11, 2, "z")};
  EXPECT_EQ(verdict(wrong), KeyVerdict::violation);
  const KvHistory right = {Put("k", "a", 0, 1, 1), CasUnknown("k", 1, "z", 2),
                           Get("k", 10, 11, 2, "z")};
  EXPECT_EQ(verdict(right), KeyVerdict::linearizable);
}

TEST(Linearizability, UnknownGetsAreIgnored) {
  const KvHistory h = {Put("k", "a", 0, 1, 1), GetUnknown("k", 2), Get("k", 3, 4, 1, "a")};
  EXPECT_EQ(verdict(h), KeyVerdict::linearizable);
}

TEST(Linearizability, ManyConcurrentUnknownPutsStayCheap) {
  // 100 puts that all timed out, one of which ("u37") a read saw as v50: the
  // interchangeable unread ones are tried in one canonical order, so this is
  // quick instead of 2^100.
  KvHistory h;
  for (int i = 0; i < 100; ++i) h.push_back(PutUnknown("k", "u" + std::to_string(i), i));
  h.push_back(Get("k", 1000, 1001, 50, "u37"));
  h.push_back(Put("k", "after", 2000, 2001, 51));
  h.push_back(Get("k", 3000, 3001, 51, "after"));
  LinearizabilityOptions tight;
  tight.search_steps_per_key_max = 200'000;
  EXPECT_EQ(verdict(h, "k", tight), KeyVerdict::linearizable) << report_text(h);
  // More versions than there were writes: caught, not left unknown.
  KvHistory too_many = h;
  too_many.push_back(Get("k", 4000, 4001, 200, "u1"));
  EXPECT_EQ(verdict(too_many, "k", tight), KeyVerdict::violation);
}

// --- keys, format, budget ----------------------------------------------------

TEST(Linearizability, KeysAreJudgedIndependently) {
  // clang-format off
  const KvHistory h = {
      Put("b", "x", 0, 1, 1),      // a fine key
      Put("a", "y", 2, 3, 1),      // a stale read on key a
      Put("a", "z", 4, 5, 2),
      Get("a", 6, 7, 1, "y"),
      Get("b", 8, 9, 1, "x"),      // would be stale if keys were mixed up
      Get("c", 10, 11, 0),         // a key nobody wrote
  };
  // clang-format on
  const LinearizabilityReport r = check_linearizability(h);
  ASSERT_EQ(r.keys.size(), 3u);
  EXPECT_EQ(r.keys[0].key, "a");
  EXPECT_EQ(r.keys[1].key, "b");
  EXPECT_EQ(r.keys[2].key, "c");
  EXPECT_EQ(r.find("a")->verdict, KeyVerdict::violation);
  EXPECT_EQ(r.find("b")->verdict, KeyVerdict::linearizable);
  EXPECT_EQ(r.find("c")->verdict, KeyVerdict::linearizable);
  EXPECT_EQ(r.find("d"), nullptr);
  EXPECT_EQ(r.count(KeyVerdict::violation), 1u);
  EXPECT_TRUE(r.failed());
  EXPECT_FALSE(r.linearizable());
  // Ops in any order: the same verdicts.
  KvHistory reversed(h.rbegin(), h.rend());
  const LinearizabilityReport rr = check_linearizability(reversed);
  EXPECT_EQ(rr.find("a")->verdict, KeyVerdict::violation);
  EXPECT_EQ(rr.find("b")->verdict, KeyVerdict::linearizable);
}

TEST(Linearizability, MalformedOpsMakeOnlyTheirKeyMalformed) {
  KvHistory h = {Put("ok", "a", 0, 1, 1), Put("k", "a", 5, 4, 1)};  // completes before invoked
  LinearizabilityReport r = check_linearizability(h);
  EXPECT_EQ(r.find("k")->verdict, KeyVerdict::malformed);
  EXPECT_NE(r.find("k")->malformed_reason.find("#1"), std::string::npos);
  EXPECT_EQ(r.find("ok")->verdict, KeyVerdict::linearizable);
  EXPECT_TRUE(r.failed());

  KvOp unknown_with_completion = PutUnknown("k", "a", 0);
  unknown_with_completion.complete_time = us(3);
  EXPECT_EQ(verdict({unknown_with_completion}), KeyVerdict::malformed);
  KvOp known_without_completion = Put("k", "a", 0, 1, 1);
  known_without_completion.complete_time.reset();
  EXPECT_EQ(verdict({known_without_completion}), KeyVerdict::malformed);
  KvOp failed_put = Put("k", "a", 0, 1, 1);
  failed_put.outcome = KvOutcome::cas_failed;
  EXPECT_EQ(verdict({failed_put}), KeyVerdict::malformed);
}

TEST(Linearizability, ViolationReportNamesTheKeyTheOpsAndWhy) {
  const KvHistory h = {Put("k", "a", 0, 1, 1), Put("k", "b", 2, 3, 2), Get("k", 4, 5, 1, "a"),
                       Put("other", "x", 0, 1, 1)};
  const std::string text = report_text(h);
  EXPECT_NE(text.find("2 keys, 4 ops: 1 linearizable, 1 violation"), std::string::npos) << text;
  EXPECT_NE(text.find("key \"k\": violation"), std::string::npos) << text;
  EXPECT_EQ(text.find("key \"other\""), std::string::npos) << "linearizable keys are not listed";
  EXPECT_NE(text.find("#1 c0 put \"b\" -> ok v2  [0.000002000s .. 0.000003000s]"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("#2: reads v1 \"a\", but the register holds v2 \"b\""), std::string::npos)
      << text;
  EXPECT_NE(text.find("not in core: taken as unknown"), std::string::npos) << text;
  EXPECT_EQ(text, report_text(h)) << "deterministic";
  // Values are escaped and cut.
  const KvHistory odd = {Get("k", 0, 1, 1, std::string("a\"\n\x01") + std::string(100, 'z'))};
  const std::string odd_text = report_text(odd);
  EXPECT_NE(odd_text.find("\"a\\\"\\x0a\\x01zzz"), std::string::npos) << odd_text;
  EXPECT_NE(odd_text.find("...(104 bytes)"), std::string::npos) << odd_text;
}

// --- randomized: a sequential register with random overlapping intervals ----

struct GenConfig {
  int keys = 4;
  int ops_per_key = 40;
  int64_t spacing_ns = 1'000;      // between consecutive linearization points of a key
  int64_t reach_ns = 3'000;        // how far invocation/completion may be from the point
  int unknown_write_percent = 10;  // applied writes whose outcome is lost
  int phantom_write_percent = 5;   // unknown writes that never took effect
  int unknown_get_percent = 3;
  bool removes = false;
};

struct Generated {
  KvHistory history;
  // key -> version -> value (the register's history; without removes a
  // version names one value).
  std::map<std::string, std::map<uint64_t, std::string>> value_at;
};

// Every op takes effect at its own instant (its linearization point), inside
// a random interval around it; unknown ops took effect at that instant or (the
// phantoms) never. So the result is linearizable by construction.
Generated generate(uint64_t seed, const GenConfig& cfg) {
  Rng rng = Rng::derive(seed, "linearizability-gen");
  Generated g;
  for (int k = 0; k < cfg.keys; ++k) {
    const std::string key = "key" + std::to_string(k);
    uint64_t version = 0;
    std::string value;
    for (int i = 0; i < cfg.ops_per_key; ++i) {
      const int64_t t = 1'000'000 + i * cfg.spacing_ns + k * 7;
      auto around = [&](KvOp& op) {
        op.invoke_time =
            TimePoint::from_ns(t - static_cast<int64_t>(rng.uniform(cfg.reach_ns + 1)));
        op.complete_time =
            TimePoint::from_ns(t + static_cast<int64_t>(rng.uniform(cfg.reach_ns + 1)));
        op.client_id = rng.uniform(10);
        op.key = key;
        op.outcome = KvOutcome::ok;
      };
      auto lose_outcome = [&](KvOp& op) {
        op.outcome = KvOutcome::unknown;
        op.complete_time.reset();
      };
      KvOp op;
      const uint64_t dice = rng.uniform(100);
      const std::string fresh = rng.uniform(10) == 0 ? "dup" : key + "-" + std::to_string(i);
      if (dice < 40) {
        op.kind = KvOpKind::get;
        around(op);
        op.read_found = version > 0;
        op.read_value = version > 0 ? value : "";
        op.version = version;
        if (rng.uniform(100) < static_cast<uint64_t>(cfg.unknown_get_percent)) lose_outcome(op);
      } else {
        if (dice < 70 || (dice >= 95 && !cfg.removes)) {
          op.kind = KvOpKind::put;
          around(op);
          op.write_value = fresh;
          version += 1;
          value = fresh;
          op.version = version;
        } else if (dice < 95) {
          op.kind = KvOpKind::cas;
          around(op);
          op.write_value = fresh;
          if (rng.uniform(100) < 60) {
            op.expected_version = version;
          } else {
            op.expected_version = version + 1 + rng.uniform(3);
            if (version > 0 && rng.uniform(2) == 0) op.expected_version = version - 1;
          }
          if (op.expected_version == version) {
            version += 1;
            value = fresh;
            op.version = version;
          } else {
            op.outcome = KvOutcome::cas_failed;
            op.version = version;
          }
        } else {
          op.kind = KvOpKind::remove;
          around(op);
          version = 0;
          value.clear();
        }
        if (rng.uniform(100) < static_cast<uint64_t>(cfg.unknown_write_percent)) lose_outcome(op);
      }
      if (version > 0) g.value_at[key][version] = value;
      g.history.push_back(std::move(op));
      if (rng.uniform(100) < static_cast<uint64_t>(cfg.phantom_write_percent)) {
        KvOp ghost;
        ghost.key = key;
        ghost.client_id = rng.uniform(10);
        ghost.kind = KvOpKind::put;
        ghost.write_value = "ghost-" + key + "-" + std::to_string(i);
        ghost.invoke_time =
            TimePoint::from_ns(t - static_cast<int64_t>(rng.uniform(cfg.reach_ns + 1)));
        g.history.push_back(std::move(ghost));
      }
    }
  }
  // Order of the vector must not matter.
  for (size_t i = g.history.size(); i > 1; --i)
    std::swap(g.history[i - 1], g.history[rng.uniform(i)]);
  return g;
}

bool known(const KvOp& op) {
  return op.outcome != KvOutcome::unknown;
}
bool known_write_ok(const KvOp& op) {
  return op.outcome == KvOutcome::ok && (op.kind == KvOpKind::put || op.kind == KvOpKind::cas);
}
bool before(const KvOp& a, const KvOp& b) {
  return a.complete_time && *a.complete_time < b.invoke_time;
}

struct Corruption {
  size_t op = 0;
  std::string what;
};

// Changes one op of `key` so that no linearization can exist (every kind is
// a proof by versions alone; the history has no removes). Returns nullopt if
// no kind applies to this key.
std::optional<Corruption> corrupt(Generated& g, const std::string& key, Rng& rng) {
  KvHistory& h = g.history;
  std::vector<size_t> gets, writes, failed_cas, ok_cas;
  for (size_t i = 0; i < h.size(); ++i) {
    if (h[i].key != key || !known(h[i])) continue;
    if (h[i].kind == KvOpKind::get) gets.push_back(i);
    if (known_write_ok(h[i])) writes.push_back(i);
    if (h[i].outcome == KvOutcome::cas_failed) failed_cas.push_back(i);
    if (h[i].kind == KvOpKind::cas && h[i].outcome == KvOutcome::ok) ok_cas.push_back(i);
  }
  auto pick = [&](const std::vector<size_t>& v) { return v[rng.uniform(v.size())]; };
  auto observe = [&](KvOp& get, uint64_t version) {
    get.version = version;
    get.read_found = version > 0;
    get.read_value = version > 0 ? g.value_at[key].at(version) : "";
  };
  for (int attempt = 0; attempt < 50; ++attempt) {
    switch (rng.uniform(6)) {
      case 0:  // a read of a value never written
        if (gets.empty()) break;
        {
          const size_t i = pick(gets);
          h[i].read_found = true;
          h[i].read_value = "never-written";
          if (h[i].version == 0) h[i].version = 1;
          return Corruption{i, "read of a value never written"};
        }
      case 1:  // a stale read: older than a write that completed before it began
        for (int tries = 0; tries < 20 && !gets.empty() && !writes.empty(); ++tries) {
          const size_t gi = pick(gets);
          const size_t wi = pick(writes);
          if (!before(h[wi], h[gi])) continue;
          observe(h[gi], h[wi].version - 1);
          return Corruption{gi, "stale read"};
        }
        break;
      case 2:  // two writes acknowledged with the same version
        if (writes.size() < 2) break;
        {
          const size_t a = pick(writes);
          const size_t b = pick(writes);
          if (a == b) break;
          h[b].version = h[a].version;
          return Corruption{b, "duplicate version"};
        }
      case 3:  // non-monotonic reads
        for (int tries = 0; tries < 20 && gets.size() >= 2; ++tries) {
          const size_t a = pick(gets);
          const size_t b = pick(gets);
          if (!before(h[a], h[b]) || h[a].version == 0) continue;
          observe(h[b], h[a].version - 1);
          return Corruption{b, "non-monotonic read"};
        }
        break;
      case 4:  // a failed cas turned into a second winner from one expected version
        if (ok_cas.empty() || failed_cas.empty()) break;
        {
          const size_t winner = pick(ok_cas);
          const size_t loser = pick(failed_cas);
          h[loser].outcome = KvOutcome::ok;
          h[loser].expected_version = h[winner].expected_version;
          h[loser].version = h[winner].version;
          return Corruption{loser, "two cas won from one version"};
        }
      case 5:  // a failed cas that reports the version it expected
        if (failed_cas.empty()) break;
        {
          const size_t i = pick(failed_cas);
          h[i].version = h[i].expected_version;
          return Corruption{i, "failed cas at its expected version"};
        }
    }
  }
  return std::nullopt;
}

// The history the core claims is contradictory: core ops as recorded, the
// key's other writes outcome-unknown, its other reads gone. `also` is
// weakened the same way (to test that each core op is needed).
KvHistory weakened_to_core(const KvHistory& h, const std::string& key,
                           const std::vector<size_t>& core, std::optional<size_t> also) {
  KvHistory out;
  for (size_t i = 0; i < h.size(); ++i) {
    if (h[i].key != key) continue;
    const bool in_core = std::find(core.begin(), core.end(), i) != core.end() && also != i;
    KvOp op = h[i];
    if (!in_core) {
      if (op.kind == KvOpKind::get || op.outcome == KvOutcome::cas_failed) continue;
      op.outcome = KvOutcome::unknown;
      op.complete_time.reset();
    }
    out.push_back(std::move(op));
  }
  return out;
}

constexpr uint64_t kRandomSeeds = 300;

TEST(LinearizabilityRandom, CorrectHistoriesAlwaysPass) {
  for (uint64_t seed = 1; seed <= kRandomSeeds; ++seed) {
    GenConfig cfg;
    cfg.removes = seed % 2 == 0;
    const Generated g = generate(seed, cfg);
    const LinearizabilityReport r = check_linearizability(g.history);
    ASSERT_TRUE(r.linearizable()) << "seed " << seed << "\n" << format_report(g.history, r);
  }
}

TEST(LinearizabilityRandom, HistoriesWithOneCorruptionAreCaught) {
  std::map<std::string, int> kinds;
  for (uint64_t seed = 1; seed <= kRandomSeeds; ++seed) {
    Generated g = generate(seed, GenConfig{});
    Rng rng = Rng::derive(seed, "corrupt");
    const std::string key = "key" + std::to_string(rng.uniform(4));
    const std::optional<Corruption> c = corrupt(g, key, rng);
    ASSERT_TRUE(c.has_value()) << "seed " << seed;
    kinds[c->what] += 1;
    const LinearizabilityReport r = check_linearizability(g.history);
    for (const KeyResult& k : r.keys) {
      if (k.key == key) {
        ASSERT_EQ(k.verdict, KeyVerdict::violation)
            << "seed " << seed << ": " << c->what << " at #" << c->op << " not caught\n"
            << format_report(g.history, r);
        // Without the changed op the history was linearizable, so a core
        // that proves the violation must contain it.
        ASSERT_FALSE(k.core_ops.empty());
        EXPECT_TRUE(k.core_is_minimal) << "seed " << seed;
        EXPECT_NE(std::find(k.core_ops.begin(), k.core_ops.end(), c->op), k.core_ops.end())
            << "seed " << seed << ": " << c->what << "\n"
            << format_report(g.history, r);
      } else {
        ASSERT_EQ(k.verdict, KeyVerdict::linearizable) << "seed " << seed << " key " << k.key;
      }
    }
  }
  // Every kind of corruption was exercised.
  EXPECT_EQ(kinds.size(), 6u);
  for (const auto& [what, n] : kinds) EXPECT_GT(n, 5) << what;
}

TEST(LinearizabilityRandom, CoresAreContradictoryAndEachOpIsNeeded) {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    GenConfig cfg;
    cfg.keys = 1;
    Generated g = generate(seed, cfg);
    Rng rng = Rng::derive(seed, "corrupt");
    ASSERT_TRUE(corrupt(g, "key0", rng).has_value());
    const LinearizabilityReport r = check_linearizability(g.history);
    const KeyResult& k = *r.find("key0");
    ASSERT_EQ(k.verdict, KeyVerdict::violation);
    ASSERT_TRUE(k.core_is_minimal);
    EXPECT_EQ(verdict(weakened_to_core(g.history, "key0", k.core_ops, std::nullopt), "key0"),
              KeyVerdict::violation)
        << "seed " << seed;
    for (size_t i : k.core_ops) {
      EXPECT_EQ(verdict(weakened_to_core(g.history, "key0", k.core_ops, i), "key0"),
                KeyVerdict::linearizable)
          << "seed " << seed << ": core op #" << i << " is not needed";
    }
  }
}

TEST(LinearizabilityRandom, VersionPruningAgreesWithThePlainSearch) {
  constexpr uint64_t seeds = 200;
  // Small keys with many unknown writes, so that the plain search finishes too.
  LinearizabilityOptions plain;
  plain.version_pruning = false;
  plain.minimize_violations = false;
  LinearizabilityOptions pruned = plain;
  pruned.version_pruning = true;
  int violations = 0;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    GenConfig cfg;
    cfg.keys = 2;
    cfg.ops_per_key = 16;
    cfg.unknown_write_percent = 30;
    cfg.phantom_write_percent = 20;
    cfg.removes = seed % 4 == 1;  // uncorrupted seeds only: the corruptions assume no removes
    Generated g = generate(seed, cfg);
    Rng rng = Rng::derive(seed, "corrupt");
    if (seed % 2 == 0) {
      ASSERT_TRUE(corrupt(g, "key0", rng).has_value());
    }
    for (const std::string key : {"key0", "key1"}) {
      const KeyVerdict a = verdict(g.history, key, plain);
      const KeyVerdict b = verdict(g.history, key, pruned);
      ASSERT_EQ(a, b) << "seed " << seed << " " << key;
      violations += a == KeyVerdict::violation;
    }
  }
  EXPECT_GE(violations, static_cast<int>(seeds / 2)) << "every corrupted key is a violation";
}

// An independent oracle for tiny histories: try every subset of the
// unknown-outcome writes and every order of the chosen ops.
bool brute_force_linearizable(const KvHistory& h) {
  std::vector<size_t> known_ops, unknown_writes;
  for (size_t i = 0; i < h.size(); ++i) {
    if (known(h[i])) {
      known_ops.push_back(i);
    } else if (h[i].kind != KvOpKind::get) {
      unknown_writes.push_back(i);
    }
  }
  auto legal = [&](const std::vector<size_t>& order) {
    for (size_t a = 0; a < order.size(); ++a)
      for (size_t b = a + 1; b < order.size(); ++b)
        if (before(h[order[b]], h[order[a]])) return false;  // real-time order broken
    uint64_t version = 0;
    std::string value;
    for (size_t i : order) {
      const KvOp& op = h[i];
      const bool k = known(op);
      switch (op.kind) {
        case KvOpKind::get:
          if (op.read_found != (version > 0) || op.version != version) return false;
          if (op.read_found && op.read_value != value) return false;
          break;
        case KvOpKind::put:
          version += 1;
          value = op.write_value;
          if (k && op.version != version) return false;
          break;
        case KvOpKind::cas:
          if (op.outcome == KvOutcome::cas_failed) {
            if (op.version != version || version == op.expected_version) return false;
            break;
          }
          if (version != op.expected_version) return false;
          version += 1;
          value = op.write_value;
          if (k && op.version != version) return false;
          break;
        case KvOpKind::remove:
          version = 0;
          value.clear();
          break;
      }
    }
    return true;
  };
  for (uint64_t subset = 0; subset < (uint64_t{1} << unknown_writes.size()); ++subset) {
    std::vector<size_t> chosen = known_ops;
    for (size_t b = 0; b < unknown_writes.size(); ++b)
      if (subset >> b & 1) chosen.push_back(unknown_writes[b]);
    std::sort(chosen.begin(), chosen.end());
    do {
      if (legal(chosen)) return true;
    } while (std::next_permutation(chosen.begin(), chosen.end()));
  }
  return false;
}

TEST(LinearizabilityRandom, AgreesWithABruteForceOracleOnTinyHistories) {
  int violations = 0;
  int linearizable = 0;
  for (uint64_t seed = 1; seed <= 3000; ++seed) {
    GenConfig cfg;
    cfg.keys = 1;
    cfg.ops_per_key = 6;
    cfg.reach_ns = 2'500;
    cfg.unknown_write_percent = 25;
    cfg.phantom_write_percent = 15;
    cfg.removes = seed % 3 == 0;
    Generated g = generate(seed, cfg);
    if (g.history.size() > 8) g.history.resize(8);
    // Blind tweaks: often, but not always, a violation.
    Rng rng = Rng::derive(seed, "tweak");
    const uint64_t tweaks = rng.uniform(3);
    for (uint64_t t = 0; t < tweaks; ++t) {
      KvOp& op = g.history[rng.uniform(g.history.size())];
      switch (rng.uniform(5)) {
        case 0:
          op.version = op.version + 1;
          break;
        case 1:
          op.version = op.version > 0 ? op.version - 1 : 0;
          op.read_found = op.read_found && op.version > 0;
          if (!op.read_found) op.read_value.clear();
          break;
        case 2:
          op.invoke_time = op.invoke_time + nanoseconds(static_cast<int64_t>(rng.uniform(3'000)));
          if (op.complete_time && *op.complete_time < op.invoke_time)
            op.complete_time = op.invoke_time;
          break;
        case 3:
          if (op.kind == KvOpKind::get && op.read_found)
            op.read_value = g.history[rng.uniform(g.history.size())].write_value;
          break;
        case 4:
          if (op.outcome != KvOutcome::unknown) {
            op.outcome = KvOutcome::unknown;
            op.complete_time.reset();
          }
          break;
      }
      if (op.kind == KvOpKind::get && op.read_found && op.version == 0) op.version = 1;
    }
    const bool expected = brute_force_linearizable(g.history);
    for (const bool pruning : {true, false}) {
      LinearizabilityOptions options;
      options.version_pruning = pruning;
      const LinearizabilityReport r = check_linearizability(g.history, options);
      ASSERT_EQ(r.keys.size(), 1u);
      ASSERT_EQ(r.keys[0].verdict, expected ? KeyVerdict::linearizable : KeyVerdict::violation)
          << "seed " << seed << " pruning " << pruning << "\n"
          << format_report(g.history, r);
    }
    (expected ? linearizable : violations) += 1;
  }
  // Both answers are common, so the comparison means something.
  EXPECT_GT(linearizable, 500);
  EXPECT_GT(violations, 500);
}

// --- budget and size ---------------------------------------------------------

TEST(Linearizability, AnExhaustedBudgetIsUnknownNeverAVerdict) {
  GenConfig cfg;
  cfg.keys = 1;
  cfg.ops_per_key = 60;
  const Generated g = generate(7, cfg);
  LinearizabilityOptions steps;
  steps.search_steps_per_key_max = 10;
  const LinearizabilityReport r = check_linearizability(g.history, steps);
  EXPECT_EQ(r.keys[0].verdict, KeyVerdict::unknown_budget);
  EXPECT_FALSE(r.failed());
  EXPECT_FALSE(r.linearizable());
  EXPECT_NE(format_report(g.history, r).find("no verdict"), std::string::npos);
  LinearizabilityOptions memory;
  memory.memo_bytes_per_key_max = 1024;
  EXPECT_EQ(verdict(g.history, "key0", memory), KeyVerdict::unknown_budget);
  EXPECT_EQ(verdict(g.history, "key0"), KeyVerdict::linearizable);
}

TEST(Linearizability, TenThousandOpsOverAHundredKeysFinish) {
  GenConfig cfg;
  cfg.keys = 100;
  cfg.ops_per_key = 100;
  cfg.unknown_write_percent = 3;
  cfg.phantom_write_percent = 2;
  cfg.removes = true;
  Generated g = generate(2024, cfg);
  ASSERT_GE(g.history.size(), 10'000u);
  const LinearizabilityReport r = check_linearizability(g.history);
  EXPECT_TRUE(r.linearizable()) << format_report(g.history, r);

  // And one corruption in it, shrunk to a core.
  GenConfig no_removes = cfg;
  no_removes.removes = false;
  Generated bad = generate(2025, no_removes);
  Rng rng = Rng::derive(2025, "corrupt");
  ASSERT_TRUE(corrupt(bad, "key42", rng).has_value());
  const LinearizabilityReport rb = check_linearizability(bad.history);
  EXPECT_EQ(rb.count(KeyVerdict::violation), 1u);
  EXPECT_EQ(rb.count(KeyVerdict::linearizable), 99u);
  EXPECT_EQ(rb.find("key42")->verdict, KeyVerdict::violation);
}

}  // namespace
}  // namespace wx::checkers
