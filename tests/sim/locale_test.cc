// The trace hash and the human-readable strings that feed it must not depend
// on the process locale: a host program (a Python notebook, say) may set a
// comma-decimal LC_NUMERIC, and the same seed must still give the same hash.
//
// The test needs a comma-decimal locale. The build generates de_DE.UTF-8 with
// localedef into its own folder (tests/sim/CMakeLists.txt) and runs this test
// with LOCPATH pointing there, so it does not depend on the machine's locales.
#include <gtest/gtest.h>

#include <clocale>
#include <cstdio>
#include <string>

#include "nodes/echo/echo_node.h"
#include "nodes/runtime/time.h"
#include "sim/simulation.h"

namespace wx::sim {
namespace {

using namespace time_literals;

constexpr const char* kCommaLocale = "de_DE.UTF-8";

// Sets LC_ALL for the scope of one run, restoring "C" afterwards.
class ScopedLocale {
 public:
  explicit ScopedLocale(const char* name) : ok_(std::setlocale(LC_ALL, name) != nullptr) {}
  ~ScopedLocale() { std::setlocale(LC_ALL, "C"); }
  bool ok() const { return ok_; }

 private:
  bool ok_;
};

// A run whose fault descriptions carry fractions: a loss probability, a
// sub-millisecond delay, a clog of 1.5 ms.
uint64_t run_with_fractional_faults() {
  SimConfig cfg;
  cfg.seed = 11;
  cfg.log_level = LogLevel::off;
  Simulation s(cfg);
  std::vector<NodeId> echoes;
  for (const char* z : {"a", "b"}) {
    echoes.push_back(s.add_node({std::string("echo-") + z, Placement{"dc", z, ""},
                                 [](Runtime& rt) { return std::make_unique<echo::EchoServer>(rt); }}));
  }
  echo::PingerConfig pc;
  pc.targets = echoes;
  pc.interval = 3_ms;
  pc.count_max = 200;
  NodeId pinger = s.add_node(
      {"ping", Placement{"dc", "a", ""}, [pc](Runtime& rt) { return std::make_unique<echo::Pinger>(rt, pc); }});
  for (NodeId n : echoes) s.start(n);
  s.start(pinger);
  s.faults().set_loss(Selector::of(pinger), Selector::of(echoes[1]), 0.125);
  s.faults().add_delay(Selector::of(pinger), Selector::of(echoes[0]), microseconds(1'250));
  s.at(TimePoint::zero() + 100_ms, [&s, e = echoes[0]] { s.faults().clog(e, microseconds(1'500)); });
  EXPECT_TRUE(s.run_for(2_s)) << s.failure().value_or("");
  return s.trace_hash();
}

TEST(Locale, TraceHashIsTheSameUnderACommaDecimalLocale) {
  const uint64_t in_c = run_with_fractional_faults();
  uint64_t in_comma = 0;
  {
    ScopedLocale loc(kCommaLocale);
    ASSERT_TRUE(loc.ok()) << kCommaLocale << " could not be loaded (LOCPATH=" << (std::getenv("LOCPATH") ?: "")
                          << "); the build generates it with localedef";
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.1f", 0.5);
    ASSERT_STREQ(buf, "0,5") << "the locale must really format decimals with a comma";
    in_comma = run_with_fractional_faults();
  }
  EXPECT_EQ(in_c, in_comma) << "the same seed gave another trace hash under " << kCommaLocale;
}

TEST(Locale, DurationsFormatWithADotUnderACommaDecimalLocale) {
  ScopedLocale loc(kCommaLocale);
  ASSERT_TRUE(loc.ok()) << kCommaLocale << " could not be loaded";
  EXPECT_EQ(to_string(microseconds(1'500)), "1.5ms");
  EXPECT_EQ(to_string(nanoseconds(456'526)), "456.526us");
  EXPECT_EQ(parse_duration("1.5s"), milliseconds(1'500));
}

}  // namespace
}  // namespace wx::sim
