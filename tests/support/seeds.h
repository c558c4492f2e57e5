// One convention for every seeded sweep in the test suite.
//
//   WX_SEEDS=N        run N seeds (each test has its own default, sized for CI)
//   WX_SEED_FIRST=S   start at seed S (default 1)
//   WX_SEED=S         run only seed S (overrides both)
//
// So a deeper sweep of the same test runs outside CI without editing code:
//   WX_SEEDS=5000 WX_SEED_FIRST=1001 build/tests/storage/paxos_sim_test
// and a failing seed is re-run alone with WX_SEED=S. WX_VERBOSE=1 asks a
// sweep for one line per seed. A malformed value is an
// error naming the variable, never a silent default.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace wx::testing {

struct SeedRange {
  uint64_t first = 1;
  uint64_t count = 0;
  uint64_t end() const { return first + count; }  // one past the last seed
};

// Reads an unsigned decimal from the environment; `fallback` when unset.
inline uint64_t env_seed_value(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(v, &end, 10);
  if (*v == '-' || errno != 0 || end == v || *end != '\0') {
    throw std::invalid_argument(std::string(name) + "='" + v +
                                "': expected an unsigned decimal number");
  }
  return x;
}

// The seeds this run covers; `default_count` when WX_SEEDS is unset.
inline SeedRange seed_range(uint64_t default_count) {
  if (std::getenv("WX_SEED") != nullptr && *std::getenv("WX_SEED") != '\0') {
    return {env_seed_value("WX_SEED", 1), 1};
  }
  return {env_seed_value("WX_SEED_FIRST", 1), env_seed_value("WX_SEEDS", default_count)};
}

// WX_VERBOSE set (and not "0"): print per-seed detail.
inline bool verbose() {
  const char* v = std::getenv("WX_VERBOSE");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

// The line that re-runs one seed of one test.
inline std::string rerun_hint(uint64_t seed, const std::string& binary,
                              const std::string& gtest_filter) {
  return "reproduce: WX_SEED=" + std::to_string(seed) + " " + binary +
         " --gtest_filter=" + gtest_filter;
}

}  // namespace wx::testing
