// Narrow accumulator rules (docs/contract.md §5), as small pure functions.
//
// Accumulator bits W (2..32); range
//   symmetric: [-(2^(W-1) - 1), 2^(W-1) - 1]
//   full:      [-2^(W-1),       2^(W-1) - 1]
// The contraction index is cut into tiles of length t; per output and tile:
//   exact:      P = exact tile sum
//   clamp_tile: P = clamp(exact tile sum, range)            (the authors' emulation)
//   saturate:   acc = 0; for k ascending: acc = clamp(acc + a_k * b_k, range); P = acc
//   wrap:       as saturate, but acc + a_k * b_k is reduced modulo 2^W into the
//               full range (a plain W-bit register; acc_range plays no part)
// Tiles are summed in tile order into the outer accumulator:
//   O = clamp(O + P, full Wo-bit range), O starting at 0.
#pragma once

#include <algorithm>
#include <cstdint>

#include "models/common/knobs.h"  // AccMode, AccRange

namespace hdq {

struct AccLimits {
  std::int64_t lo;
  std::int64_t hi;
};

constexpr AccLimits acc_limits(int bits, AccRange range) {
  const std::int64_t half = std::int64_t{1} << (bits - 1);
  return {range == AccRange::full ? -half : -(half - 1), half - 1};
}

constexpr std::int64_t clamp_to(std::int64_t v, AccLimits lim) { return std::clamp(v, lim.lo, lim.hi); }

// v reduced modulo 2^bits into [-2^(bits-1), 2^(bits-1) - 1] (1 <= bits <= 63).
constexpr std::int64_t wrap_to_bits(std::int64_t v, int bits) {
  const std::uint64_t mask = (std::uint64_t{1} << bits) - 1;
  const std::uint64_t low = static_cast<std::uint64_t>(v) & mask;
  const std::uint64_t sign = std::uint64_t{1} << (bits - 1);
  return static_cast<std::int64_t>(low ^ sign) - static_cast<std::int64_t>(sign);
}

}  // namespace hdq
