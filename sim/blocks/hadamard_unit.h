// Hadamard unit: a fixed-size FWHT (hadamard_unit.points inputs, log2(points)
// pipelined butterfly stages) on f32 data, which also carries the exact
// integer transforms of quantized operands (|values| < 2^24 are exact in f32).
// Blocks larger than the unit take more passes, stage by stage, so every f32
// result is the contract's (docs/contract.md §4: one rounding per stage).
//
// Opcodes (descriptor: src, dst, record, rows, cols, padded, block, bits):
//   kHadamardRows    f32 rows x cols -> rows x padded (zeros appended), each
//                    row transformed in blocks: G' = G H_O
//   kHadamardColsT   f32 rows x cols -> cols x padded, transposed then
//                    transformed along its rows: G'' = (G^T) H_B for a block
//                    of G's columns, or for a slice of G's rows starting on
//                    a block (columns of G'' from that position; `padded`
//                    the slice's length)
//   kHadamardColsInt packed int-k rows x cols (signedness from `record`) ->
//                    f32 padded x cols, transformed exactly along the rows
//                    dimension: W' = H_O Wq and X' = H_B Xq for a block of
//                    columns, or for a slice of rows starting on a block;
//                    a result beyond 2^24 is an error
// Cost: hadamard_cycles(output elements, block, points); energy
// hadamard_adds x energy.hadamard_add_pj.
#pragma once

#include <deque>
#include <vector>

#include "sim/blocks/block_module.h"

namespace hdq::npu {

inline constexpr std::uint32_t kHadamardRows = 1, kHadamardColsT = 2, kHadamardColsInt = 3;

struct HadamardDescriptor {
  std::uint32_t src = 0, dst = 0;
  std::uint32_t record = 0;  // kHadamardColsInt: the operand's QuantRecord
  std::uint32_t rows = 0, cols = 0;
  std::uint32_t padded = 0;  // the transformed dimension after padding
  std::uint32_t block = 1;   // b, a power of two dividing `padded`
  std::uint8_t bits = 4;     // kHadamardColsInt: operand bits

  std::uint64_t output_elements(std::uint32_t opcode) const;
  void accesses(std::uint32_t opcode, Footprint& f) const;
};

// A simulation shortcut, not hardware: a two-pass Hadamard + quantize
// transforms every column block twice (once for the max-reduce, again to
// round), so the core keeps its recent kHadamardColsInt results with a copy
// of the packed input they came from (up to kRecentBytes), and copies a
// result out again when a command has the same input bytes, shape, bits and
// signedness (compared byte for byte). The SRAM traffic charged is the same.
class HadamardCore {
 public:
  // Returns the number of output elements (for cost).
  std::uint64_t run(std::uint32_t opcode, const HadamardDescriptor& d, MemoryPort& sram);

  static constexpr std::size_t kRecentBytes = std::size_t(16) << 20;

 private:
  std::vector<std::int32_t> t_;
  struct Recent {
    std::uint32_t rows = 0, cols = 0, padded = 0, block = 0;
    std::uint8_t bits = 0;
    bool is_unsigned = false;
    std::vector<std::uint8_t> packed;
    std::vector<float> out;
  };
  std::deque<Recent> recent_;  // oldest first
  std::size_t recent_bytes_ = 0;
};

class HadamardUnit final : public BlockModule {
 public:
  HadamardUnit(const sc_core::sc_module_name& name, const Context& ctx) : BlockModule(name, Unit::hadamard, ctx) {}

 private:
  std::uint64_t execute(const Command& c) override;
  HadamardCore core_;
};

}  // namespace hdq::npu
