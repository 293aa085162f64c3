// Energy of the NPU's events: event counts times the energy table
// (sim/config/npu_config.h, values and sources in sim/configs/edge-npu.yaml).
// Pure functions; the blocks call them per command and the tests call them
// from layer shapes alone.
#pragma once

#include <cstdint>

#include "models/accumulator/gemm.h"
#include "models/quantizer/quantizer.h"
#include "sim/config/npu_config.h"
#include "sim/cost/dataflow.h"

namespace hdq::npu {

// Width of the tile accumulator's adds: W, except `exact`, which narrows
// nothing and so needs the outer accumulator's width. (`clamp_tile` is the
// authors' emulation of a W-bit accumulator and is charged as one.)
inline int tile_add_bits(const AccumulatorConfig& acc) { return acc.mode == AccMode::exact ? acc.outer_bits : acc.acc_bits; }

// MAC array, per PE event (widths: operands a and b bits, tile accumulator
// W = tile_add_bits, outer accumulator Wo):
//   every MAC: an a x b-bit multiply, a W-bit add and its W-bit register write;
//     output stationary: the operand pipeline registers, a + b bits (A moves
//     right, B moves down);
//     weight stationary: A's a bits move right and the (tile, outer) pair
//     moves down, W + Wo bits;
//   every tile result: a Wo-bit add; output stationary also writes the Wo-bit
//     register (in ws the pair moving down is that register, counted above);
//   weight stationary: each weight latched once, b bits (`weights_loaded`).
// So the accumulator widths move energy through adders and registers both.
inline double mac_array_energy_pj(Dataflow d, std::uint64_t macs, std::uint64_t tile_results,
                                  std::uint64_t weights_loaded, int a_bits, int b_bits, const AccumulatorConfig& acc,
                                  const EnergyTable& e) {
  const int w = tile_add_bits(acc), wo = acc.outer_bits;
  const bool os = d == Dataflow::output_stationary;
  const double per_mac = e.mul_pj(a_bits, b_bits) + e.add_pj(w) + e.reg_pj(w) + e.reg_pj(os ? a_bits + b_bits : a_bits + w + wo);
  const double per_tile = e.add_pj(wo) + (os ? e.reg_pj(wo) : 0.0);
  return double(macs) * per_mac + double(tile_results) * per_tile +
         (os ? 0.0 : double(weights_loaded) * e.reg_pj(b_bits));
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
