// Silicon area of the NPU's blocks, from the per-part areas of the config
// (NpuConfig::Area, sources in sim/configs/edge-npu.yaml) and the widths the
// PEs are built for. Pure functions; `hdqsim estimate` reports them in
// estimate.json (`area_mm2` and `area_mm2_by_block`) so designs can be
// compared at equal area.
//
// PE (one of R x C): an a x b-bit multiplier, the tile accumulator's W-bit
// adder and register, the outer accumulator's Wo-bit adder and register, and
// the operand pipeline registers (a + b bits: each PE passes A to the right
// and B down). Hadamard unit of `points` lanes: log2(points) stages of
// `points` f32 adders (a butterfly is an add and a subtract) with a 32-bit
// register per lane after each stage. Quantizer: per lane an f32 divider
// (counted as a multiplier), three f32 adders (clamp, floor, compare) and the
// counter-based random bits (two 64 x 64-bit multiplies). Vector unit: per
// lane an f32 adder and multiplier. SRAM: the cells over the array
// efficiency. Not counted: the DMA, the command processor and wiring.
#pragma once

#include "sim/config/npu_config.h"

namespace hdq::npu {

struct PeWidths {
  int a_bits = 4, b_bits = 4;  // operands
  int acc_bits = 8;            // W of the tile accumulator
  int outer_bits = 32;         // Wo
};

inline double mul_um2(const NpuConfig::Area& a, int a_bits, int b_bits) {
  return a.int_mul_8b_um2 * double(a_bits * b_bits) / 64.0;
}
inline double add_um2(const NpuConfig::Area& a, int bits) {
  return a.int_add_8b_um2 + (a.int_add_32b_um2 - a.int_add_8b_um2) * double(bits - 8) / 24.0;
}

inline double pe_um2(const NpuConfig::Area& a, const PeWidths& w) {
  return mul_um2(a, w.a_bits, w.b_bits) + add_um2(a, w.acc_bits) + add_um2(a, w.outer_bits) +
         a.reg_bit_um2 * double(w.acc_bits + w.outer_bits + w.a_bits + w.b_bits);
}

struct BlockAreas {
  double mac_array = 0, hadamard = 0, quantizer = 0, vector = 0, sram = 0;  // um^2
  double total() const { return mac_array + hadamard + quantizer + vector + sram; }
};

inline BlockAreas block_areas(const NpuConfig& c, const PeWidths& w) {
  const NpuConfig::Area& a = c.area;
  int stages = 0;
  while ((1 << stages) < c.hadamard_unit.points) ++stages;
  BlockAreas b;
  b.mac_array = double(c.mac_array.rows) * double(c.mac_array.cols) * pe_um2(a, w);
  b.hadamard = double(c.hadamard_unit.points) * double(stages) * (a.f32_add_um2 + 32 * a.reg_bit_um2);
  b.quantizer = double(c.quantizer_unit.lanes) * (a.f32_mul_um2 + 3 * a.f32_add_um2 + 2 * mul_um2(a, 64, 64));
  b.vector = double(c.vector_unit.lanes) * (a.f32_add_um2 + a.f32_mul_um2);
  b.sram = double(c.sram.size_bytes) * 8.0 * a.sram_bit_um2 / a.sram_array_efficiency;
  return b;
}

}  // namespace hdq::npu
