// Seeded random streams and the distributions we sample from.
//
// Determinism rules (STYLE.md): one root seed per run; every stream is derived
// from it by label and index (`Rng::derive`), never from the wall clock or
// the OS entropy device; the distributions are written here rather than taken from
// <random>, whose distributions differ between standard libraries. The
// generator is xoshiro256** seeded through splitmix64.
//
// Floating-point distributions use std::log/std::sqrt/std::cos; they give the
// same bits on the same libm, which is all a seed promises (same binary, same
// machine kind).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "nodes/runtime/time.h"

namespace wx {

// splitmix64 finaliser: a cheap, well-mixed 64-bit hash step.
constexpr uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a over bytes; stable across runs and platforms (unlike std::hash).
constexpr uint64_t fnv1a64(std::string_view s, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed);

  // A child stream for (label, index), independent of how much this stream or
  // any sibling has been used: derivation reads only `seed`, never the state.
  static Rng derive(uint64_t seed, std::string_view label, uint64_t index = 0);
  static uint64_t derive_seed(uint64_t seed, std::string_view label, uint64_t index = 0);

  uint64_t next_u64();
  // Uniform in [0, n); n > 0. Unbiased (Lemire's method).
  uint64_t uniform(uint64_t n);
  // Uniform in [lo, hi]; lo <= hi.
  int64_t uniform_int(int64_t lo, int64_t hi);
  // Uniform in [0, 1), 53 bits.
  double uniform01();
  double uniform_real(double lo, double hi);
  bool bernoulli(double p);
  // Exponential with the given mean (> 0).
  double exponential(double mean);
  Duration exponential(Duration mean);
  // Normal by Box-Muller (both values of a pair are used).
  double normal(double mean, double stddev);
  // exp(Normal(mu, sigma)).
  double lognormal(double mu, double sigma);
  // Uniform duration in [lo, hi].
  Duration uniform(Duration lo, Duration hi);

 private:
  uint64_t s_[4];
  bool has_spare_normal_ = false;
  double spare_normal_ = 0;
};

// Zipf over {1..n} with exponent s > 0: P(k) ∝ k^-s. Rejection-inversion
// (Hörmann & Derflinger 1996): O(1) per sample and no table, so n may be huge.
class Zipf {
 public:
  Zipf(uint64_t n, double s);
  uint64_t sample(Rng& rng) const;
  uint64_t n() const { return n_; }
  double exponent() const { return s_; }

 private:
  double h(double x) const;
  double h_inv(double x) const;
  uint64_t n_;
  double s_;
  double h_x1_, h_n_, threshold_;
};

}  // namespace wx
