// Cycle counts of the NPU blocks: closed forms, pure functions of a command's
// shape and the config. Every block's delay comes from here, so a block can be
// asked for its delay without running it.
#pragma once

#include <cstdint>

#include "sim/config/npu_config.h"

namespace hdq::npu {

inline std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

// Output-stationary GEMM C (m x n) = A (m x k) B (k x n) on an R x C array.
// Folds: ceil(m / R) * ceil(n / C) output tiles, one after the other; each PE
// keeps its output's accumulators for the whole k. Per fold (SCALE-Sim's
// analytical model, A. Samajdar et al., "A Systematic Methodology for
// Characterizing Scalability of DNN Accelerators using SCALE-Sim", ISPASS 2020,
// section IV, with S_R = m, S_C = n, T = k for the OS dataflow):
//   cycles per fold = 2R + C + T - 2
// = (R + C - 2) skewed fill until the farthest PE gets its first operands
// + T cycles of streaming + R cycles to shift the R x C results out of the rows.
// Partial folds at the edges cost a full fold (the formula uses R and C).
inline std::uint64_t os_folds(std::uint64_t m, std::uint64_t n, int rows, int cols) {
  return ceil_div(m, std::uint64_t(rows)) * ceil_div(n, std::uint64_t(cols));
}
inline std::uint64_t os_gemm_cycles(std::uint64_t m, std::uint64_t n, std::uint64_t k, int rows, int cols) {
  if (m == 0 || n == 0 || k == 0) return 0;
  return os_folds(m, n, rows, cols) * (2 * std::uint64_t(rows) + std::uint64_t(cols) + k - 2);
}

// SRAM bytes the array streams for that GEMM: every fold reads its R rows of A
// (i <= R rows of `a_row_bytes`) and its C columns of B (k rows of the column
// slice) and writes its outputs as int32.
struct OsTraffic {
  std::uint64_t a_bytes = 0, b_bytes = 0, c_bytes = 0;
  std::uint64_t total() const { return a_bytes + b_bytes + c_bytes; }
};
// a_row_bytes: one packed row of A (k operands); b_col_bytes(j0, j1): bytes of
// columns [j0, j1) of B over all k rows; the caller's layout decides them.
template <typename BColBytes>
OsTraffic os_traffic(std::uint64_t m, std::uint64_t n, std::uint64_t a_row_bytes, int rows, int cols,
                     BColBytes b_col_bytes) {
  OsTraffic t;
  const std::uint64_t row_folds = ceil_div(m, std::uint64_t(rows));
  for (std::uint64_t j0 = 0; j0 < n; j0 += std::uint64_t(cols)) {
    const std::uint64_t j1 = j0 + cols < n ? j0 + cols : n;
    t.b_bytes += row_folds * b_col_bytes(j0, j1);  // B's columns once per row fold
    t.a_bytes += m * a_row_bytes;                  // all of A once per column fold
  }
  t.c_bytes = m * n * 4;
  return t;
}

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
