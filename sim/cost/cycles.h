// Cycle counts of the NPU blocks: closed forms, pure functions of a command's
// shape and the config. Every block's delay comes from here, so a block can be
// asked for its delay without running it.
#pragma once

#include <cstdint>

#include "sim/config/npu_config.h"
#include "sim/cost/dataflow.h"  // ceil_div

namespace hdq::npu {

// The MAC array's cycles and SRAM streams depend on the dataflow:
// sim/cost/dataflow.h.

// One DMA transfer of `bytes`: set-up latency (plus the DRAM's when DRAM is
// an end), then the bytes at the narrower of the DMA and memory bandwidths.
inline std::uint64_t dma_cycles(std::uint64_t bytes, bool touches_dram, const NpuConfig& c) {
  const std::uint64_t sram_bw = std::uint64_t(c.sram.banks) * std::uint64_t(c.sram.bank_width_bytes);
  std::uint64_t bw = std::uint64_t(c.dma.bytes_per_cycle);
  if (touches_dram && std::uint64_t(c.dram.bytes_per_cycle) < bw) bw = std::uint64_t(c.dram.bytes_per_cycle);
  if (sram_bw < bw) bw = sram_bw;
  return std::uint64_t(c.dma.latency_cycles) + (touches_dram ? std::uint64_t(c.dram.latency_cycles) : 0) +
         ceil_div(bytes, bw);
}

// A lane-parallel unit (quantizer, vector unit): `ops` element operations at
// `lanes` per cycle.
inline std::uint64_t lane_cycles(std::uint64_t ops, int lanes) { return ceil_div(ops, std::uint64_t(lanes)); }

// Hadamard unit of `points` inputs: log2(points) pipelined butterfly stages, so
// `points` elements enter per cycle. A block b needs log2(b) stages, i.e.
// ceil(log2 b / log2 points) passes over the data (a larger transform is the
// unit's transform followed by strided passes, stage by stage, so the f32
// rounding sequence is the contract's); b = 1 is one pass (padding/copy).
inline int log2_exact(std::uint64_t v) {
  int l = 0;
  while ((std::uint64_t{1} << l) < v) ++l;
  return l;
}
inline std::uint64_t hadamard_passes(int block, int points) {
  const int stages = log2_exact(std::uint64_t(block)), per_pass = log2_exact(std::uint64_t(points));
  return stages == 0 ? 1 : ceil_div(std::uint64_t(stages), std::uint64_t(per_pass));
}
inline std::uint64_t hadamard_cycles(std::uint64_t elements, int block, int points) {
  return hadamard_passes(block, points) * ceil_div(elements, std::uint64_t(points));
}
// Adds (and subtracts) of an FWHT with block b over `elements` values.
inline std::uint64_t hadamard_adds(std::uint64_t elements, int block) {
  return elements * std::uint64_t(log2_exact(std::uint64_t(block)));
}

}  // namespace hdq::npu
