// Energy of the NPU's events: event counts times the energy table
// (sim/config/npu_config.h, values and sources in sim/configs/edge-npu.yaml).
// Pure functions; the blocks call them per command and the tests call them
// from layer shapes alone.
#pragma once

#include <cstdint>

#include "models/accumulator/gemm.h"
#include "models/quantizer/quantizer.h"
#include "sim/config/npu_config.h"

namespace hdq::npu {

// Width of the tile accumulator's adds: W, except `exact`, which narrows
// nothing and so needs the outer accumulator's width. (`clamp_tile` is the
// authors' emulation of a W-bit accumulator and is charged as one.)
inline int tile_add_bits(const AccumulatorConfig& acc) { return acc.mode == AccMode::exact ? acc.outer_bits : acc.acc_bits; }

// MAC array: one a x b-bit multiply and one tile-accumulator add per MAC, one
// Wo-bit outer add per tile result.
inline double mac_array_energy_pj(std::uint64_t macs, std::uint64_t tile_results, int a_bits, int b_bits,
                                  const AccumulatorConfig& acc, const EnergyTable& e) {
  return double(macs) * (e.mul_pj(a_bits, b_bits) + e.add_pj(tile_add_bits(acc))) +
         double(tile_results) * e.add_pj(acc.outer_bits);
}

// f32 operations per element of the quantizer unit (docs/contract.md §1-§2),
// compares and the floor counted as adds, the division as a multiply:
//   max-reduce: |x| compare with the running max and x with the running min
//   nearest: clamp (2 compares), divide, round
//   stochastic: clamp (2), divide, floor, subtract, floor of the scaled
//     fraction (the * 2^r is an exponent add), compare with R; plus r random bits
struct F32Ops {
  std::uint64_t adds = 0, muls = 0;
  std::uint64_t total() const { return adds + muls; }
};
inline F32Ops quantizer_reduce_ops(std::uint64_t elements) { return {2 * elements, 0}; }
inline F32Ops quantizer_round_ops(std::uint64_t elements, Rounding rounding) {
  return rounding == Rounding::nearest ? F32Ops{3 * elements, elements} : F32Ops{6 * elements, elements};
}
inline std::uint64_t quantizer_random_bits(std::uint64_t elements, const QuantConfig& q) {
  return q.rounding == Rounding::stochastic ? elements * std::uint64_t(q.sr_bits) : 0;
}

inline double f32_energy_pj(F32Ops ops, const EnergyTable& e) {
  return double(ops.adds) * e.f32_add() + double(ops.muls) * e.f32_mul();
}

// exp and log in the vector unit: range reduction and a degree-4 polynomial,
// counted as 4 adds and 4 multiplies (an assumption; they are a few per row).
inline constexpr F32Ops kTranscendentalOps{4, 4};

}  // namespace hdq::npu
