// The pure parts of `wxsim sweep` (cli/sweep_cmd.cc, docs/sweeps.md): which
// seeds a sweep runs and how they split into shards, the text of the flags
// that say so, and the reproduction line printed for a failing seed. No
// processes, no files: the unit tests (tests/cli/sweep_plan_test.cc) call
// these directly.
//
// Seeds are unsigned 64-bit integers and a range is inclusive on both ends,
// so 0..18446744073709551615 (2^64 seeds) is a valid range; sizes are
// therefore `unsigned __int128`, never a uint64_t that would wrap.
//
// Sharding: `--shard I/N` (0-based, 0 <= I < N) runs the contiguous slice
//   [first + floor(I*count/N), first + floor((I+1)*count/N))
// of the range's `count` seeds. The N slices are disjoint, in order, and
// together cover the range exactly once; their sizes differ by at most one,
// and when N > count some slices are empty.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wx::cli::sweep {

using u128 = unsigned __int128;

// The seeds one `wxsim sweep` invocation runs (its shard's slice) at most:
// its results are held in memory and written to one sweep.json. A larger
// sweep is split with --shard.
inline constexpr uint64_t kSeedsPerInvocationMax = 10'000'000;
// --jobs at most (child processes at once).
inline constexpr uint64_t kJobsMax = 1024;

// An inclusive range of seeds; first <= last always holds for a parsed one.
struct SeedRange {
  uint64_t first = 0;
  uint64_t last = 0;

  u128 size() const { return static_cast<u128>(last - first) + 1; }
  bool contains(uint64_t seed) const { return first <= seed && seed <= last; }
  friend bool operator==(const SeedRange&, const SeedRange&) = default;
};
// "A..B", or "A" when the range holds one seed.
std::string to_string(SeedRange range);

// A seed count in decimal (up to 2^64).
std::string count_text(u128 count);

// Shard `index` of `count` (0 <= index < count, count >= 1).
struct Shard {
  uint64_t index = 0;
  uint64_t count = 1;
  friend bool operator==(const Shard&, const Shard&) = default;
};
// "I/N".
std::string to_string(Shard shard);

// A parsed value, or the reason the text is not one (`error`, for a message
// such as "--seeds '5..3': <error>").
template <typename T>
struct Parsed {
  std::optional<T> value;
  std::string error;

  explicit operator bool() const { return value.has_value(); }
  const T& operator*() const { return *value; }
  const T* operator->() const { return &*value; }
};

// A seed: decimal digits only (no sign, space or prefix), at most 2^64 - 1.
Parsed<uint64_t> parse_seed(std::string_view text);
// `A..B` (inclusive, A <= B) or a single seed `N` (the range N..N).
Parsed<SeedRange> parse_seed_range(std::string_view text);
// `I/N`: decimal, 0 <= I < N.
Parsed<Shard> parse_shard(std::string_view text);

// The seeds shard `shard` runs of `seeds` (see the top of this file), or
// nullopt when its slice is empty (more shards than seeds).
std::optional<SeedRange> shard_slice(SeedRange seeds, Shard shard);

// `text` as one POSIX shell word: unchanged when it holds only characters no
// shell treats specially, else in single quotes (a ' inside as '\'').
std::string shell_quote(std::string_view text);

// The command that reproduces one seed of a sweep:
//   <program> run <file> --seed <seed> [--swarm]
// with `program` and `file` as given on the sweep's command line, each
// shell-quoted, so the line can be pasted into a shell in the same directory.
std::string reproduce_line(std::string_view program, std::string_view file, uint64_t seed, bool swarm);

}  // namespace wx::cli::sweep
