// SplitMix64 (Steele, Lea, Flood 2014) and the two uniform draws built on it.
//
//   next():  state += 0x9e3779b97f4a7c15; return mix64(state)
//
// with mix64 the SplitMix64 finalizer below, which the numeric contract's
// random bits also use (models/quantizer/random_bits.h). The k-th output (k = 1, 2, ...) is
// mix64(seed + k * 0x9e3779b97f4a7c15 mod 2^64): a counter stream, defined by
// integer arithmetic alone, hence identical on every platform.
#pragma once

#include <cstdint>
#include <limits>

namespace hdq {

// The SplitMix64 finalizer: a bijective 64-bit mix (wrap-around arithmetic).
// It is also the numeric contract's mix(z) (docs/contract.md section 3).
constexpr std::uint64_t mix64(std::uint64_t z) {
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ULL;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return z;
}

struct SplitMix64 {
  std::uint64_t state;
  explicit constexpr SplitMix64(std::uint64_t seed) : state(seed) {}
  constexpr std::uint64_t next() {
    state += 0x9e3779b97f4a7c15ULL;
    return mix64(state);
  }
};

// Uniform integer in [0, n), n >= 1, exactly uniform: limit is the largest
// multiple of n that is <= 2^64 - 1; outputs r >= limit are rejected (at most
// n - 1 of 2^64 values, so a redraw is practically never needed), and r % n is
// uniform over the limit / n full cycles of 0..n-1 below limit.
constexpr std::uint64_t uniform_below(SplitMix64& g, std::uint64_t n) {
  const std::uint64_t limit = (std::numeric_limits<std::uint64_t>::max() / n) * n;
  for (;;) {
    const std::uint64_t r = g.next();
    if (r < limit) return r % n;
  }
}

// Uniform double in [0, 1): the top 53 bits times 2^-53 (exact).
constexpr double uniform_closed_open(SplitMix64& g) { return static_cast<double>(g.next() >> 11) * 0x1p-53; }

// Uniform double in (0, 1]: (top 53 bits + 1) times 2^-53 (exact, never 0).
constexpr double uniform_open_closed(SplitMix64& g) { return static_cast<double>((g.next() >> 11) + 1) * 0x1p-53; }

}  // namespace hdq
