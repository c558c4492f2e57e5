#include "cli/sweep_plan.h"

#include <charconv>

#include <fmt/format.h>

namespace wx::cli::sweep {

std::string to_string(SeedRange range) {
  if (range.first == range.last) return fmt::format("{}", range.first);
  return fmt::format("{}..{}", range.first, range.last);
}

std::string count_text(u128 count) {
  if (count == 0) return "0";
  std::string digits;
  for (; count > 0; count /= 10) digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(count % 10)));
  return digits;
}

std::string to_string(Shard shard) { return fmt::format("{}/{}", shard.index, shard.count); }

Parsed<uint64_t> parse_seed(std::string_view text) {
  if (text.empty()) return {std::nullopt, "expected a seed (an unsigned 64-bit integer), got nothing"};
  for (char c : text) {
    if (c < '0' || c > '9') {
      return {std::nullopt, fmt::format("'{}' is not an unsigned decimal integer", text)};
    }
  }
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec == std::errc::result_out_of_range) {
    return {std::nullopt, fmt::format("'{}' is larger than 18446744073709551615 (2^64 - 1)", text)};
  }
  if (ec != std::errc() || p != end) {
    return {std::nullopt, fmt::format("'{}' is not an unsigned decimal integer", text)};
  }
  return {v, {}};
}

Parsed<SeedRange> parse_seed_range(std::string_view text) {
  const size_t dots = text.find("..");
  if (dots == std::string_view::npos) {
    Parsed<uint64_t> one = parse_seed(text);
    if (!one) return {std::nullopt, fmt::format("expected A..B (inclusive) or one seed N: {}", one.error)};
    return {SeedRange{*one, *one}, {}};
  }
  const std::string_view a = text.substr(0, dots), b = text.substr(dots + 2);
  Parsed<uint64_t> first = parse_seed(a);
  if (!first) return {std::nullopt, fmt::format("expected A..B (inclusive); the first seed: {}", first.error)};
  Parsed<uint64_t> last = parse_seed(b);
  if (!last) return {std::nullopt, fmt::format("expected A..B (inclusive); the last seed: {}", last.error)};
  if (*first > *last) {
    return {std::nullopt, fmt::format("the first seed {} is after the last {} (expected A..B with A <= B)", *first,
                                      *last)};
  }
  return {SeedRange{*first, *last}, {}};
}

Parsed<Shard> parse_shard(std::string_view text) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    return {std::nullopt, "expected I/N: shard I (0-based) of N, such as 0/4"};
  }
  Parsed<uint64_t> index = parse_seed(text.substr(0, slash));
  if (!index) return {std::nullopt, fmt::format("expected I/N; the shard index I: {}", index.error)};
  Parsed<uint64_t> count = parse_seed(text.substr(slash + 1));
  if (!count) return {std::nullopt, fmt::format("expected I/N; the shard count N: {}", count.error)};
  if (*count == 0) return {std::nullopt, "expected I/N with N >= 1 shards"};
  if (*index >= *count) {
    return {std::nullopt, fmt::format("shard index {} is not below the shard count {} (shards are 0-based: 0/{} to "
                                      "{}/{})",
                                      *index, *count, *count, *count - 1, *count)};
  }
  return {Shard{*index, *count}, {}};
}

std::optional<SeedRange> shard_slice(SeedRange seeds, Shard shard) {
  const u128 count = seeds.size();  // <= 2^64
  // index < shard.count <= 2^64 - 1 and count <= 2^64: the products fit in 128 bits.
  const u128 lo = static_cast<u128>(shard.index) * count / shard.count;
  const u128 hi = static_cast<u128>(shard.index + 1) * count / shard.count;  // index + 1 <= count: no wrap
  if (lo == hi) return std::nullopt;
  // lo < hi <= count, so first + hi - 1 <= last: no overflow.
  return SeedRange{seeds.first + static_cast<uint64_t>(lo), seeds.first + static_cast<uint64_t>(hi - 1)};
}

std::string shell_quote(std::string_view text) {
  auto plain = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c == '/' || c == ':' || c == '=' || c == '@' || c == '%' || c == '+' || c == ',';
  };
  bool all_plain = !text.empty();
  for (char c : text) all_plain = all_plain && plain(c);
  if (all_plain) return std::string(text);
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string reproduce_line(std::string_view program, std::string_view file, uint64_t seed, bool swarm) {
  return fmt::format("{} run {} --seed {}{}", shell_quote(program), shell_quote(file), seed, swarm ? " --swarm" : "");
}

}  // namespace wx::cli::sweep
