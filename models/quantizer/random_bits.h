// Counter-based random bits (docs/contract.md §3).
//
//   mix(z):  z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27;
//            z *= 0x94d049bb133111eb; z ^= z >> 31          (64-bit wrap-around)
//   key   = mix(seed ^ mix(stream ^ mix(step)))
//   R_i   = mix(key + (i + 1) * 0x9e3779b97f4a7c15) >> (64 - r)
//
// stream = 8 * layer_index + role; step = global optimizer step from 0;
// i = flat row-major index of the element in the tensor being rounded.
// R_i depends on nothing else, so tiling, lanes and threads cannot change it.
#pragma once

#include <cstdint>

#include "models/common/splitmix64.h"  // mix64

namespace hdq {

// Identifies one rounded tensor: whose random bits these are.
struct RandomStream {
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;  // 8 * layer_index + role
  std::uint64_t step = 0;    // global optimizer step, from 0

  constexpr std::uint64_t key() const { return mix64(seed ^ mix64(stream ^ mix64(step))); }
};

// The r-bit random integer (1 <= r <= 23 in use; any 1..64 is well defined)
// of flat element index i under `key`.
constexpr std::uint32_t element_random_bits(std::uint64_t key, std::uint64_t i, int r) {
  return static_cast<std::uint32_t>(mix64(key + (i + 1) * 0x9e3779b97f4a7c15ULL) >> (64 - r));
}

}  // namespace hdq
