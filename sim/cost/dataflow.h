// Systolic dataflows of the MAC array: fold geometry, compute cycles and the
// utilization figures, as closed forms equal to SCALE-Sim v2's compute model
// (A. Samajdar et al., "A Systematic Methodology for Characterizing
// Scalability of DNN Accelerators using SCALE-Sim", ISPASS 2020; the
// simulator scalesim/compute/systolic_compute_{os,ws}.py). Pure functions of
// the GEMM shape and the array: the MAC array block, the step planner and
// `hdqsim estimate --topology` all call these.
//
// A GEMM C (M x N) = A (M x K) B (K x N) on an R x C array. SCALE-Sim's GEMM
// topology line "M, N, K" is a 1 x K filter over an M x K input with N
// filters, so its operand matrices are A (M x K, "ifmap") and B (K x N,
// "filter"); the same names are used here.
//
// Output stationary (os): PE (r, c) owns output (i, j) of a fold of R rows of
// C and C columns; A's rows enter from the left and B's columns from the top,
// each skewed by its index. Folds: ceil(M/R) * ceil(N/C). SCALE-Sim's demand
// matrix of one fold has K + (C - 1) lines (K operands, then C - 1 lines for
// the outputs to drain) skewed over R rows: K + R + C - 2 cycles per fold,
// folds back to back.
//
// Weight stationary (ws): PE (r, c) holds B[k][j] for a fold of R values of K
// and C columns; A's rows stream through (one per cycle, M of them) and
// partial sums flow down the columns. Folds: ceil(K/R) * ceil(N/C). Per fold
// SCALE-Sim's demand matrix has R lines to load the weights, M lines of A and
// C - 1 drain lines, skewed over R rows: 2R + C + M - 2 cycles per fold.
//
// Both count cycles without memory stalls (SCALE-Sim's Total Cycles minus
// Stall Cycles, with stalls only from its SRAM model), and like SCALE-Sim one
// less than the demand lines (FoldGeometry::cycles()). Partial folds at the
// edges cost a whole fold (the formulas use R and C). Any of M, N, K = 0 is
// no work and 0 cycles (SCALE-Sim has no such layer).
//
// Numerics do not depend on the dataflow: every output is the contract's
// tiled sum over its row of A and column of B (docs/contract.md §5). A ws PE
// passes down its column the pair (tile accumulator, outer accumulator) and
// adds its product into the tile accumulator with the W-bit rule; the PE at
// the last k of a tile adds the tile result into the outer accumulator and
// passes a zero tile accumulator on. Between folds of K the pair waits in the
// accumulator buffer (ws_partial_sum_bytes below), so a tile may span folds.
#pragma once

#include <cstdint>
#include <string_view>

namespace hdq::npu {

enum class Dataflow : std::uint8_t { output_stationary = 0, weight_stationary = 1 };

// "os" / "ws" (SCALE-Sim's spelling) and the config's long names.
std::string_view short_name(Dataflow d);
std::string_view long_name(Dataflow d);

struct FoldGeometry {
  std::uint64_t row_folds = 0;  // folds along the array's rows: ceil(M/R) (os) or ceil(K/R) (ws)
  std::uint64_t col_folds = 0;  // folds along the array's columns: ceil(N/C)
  std::uint64_t cycles_per_fold = 0;
  std::uint64_t folds() const { return row_folds * col_folds; }
  // SCALE-Sim issues the folds' L = folds x cycles_per_fold demand lines at
  // cycles 0 .. L - 1 and reports L - 1 cycles (from the first line to the
  // last); we count the same, so the two tools diff to zero.
  std::uint64_t cycles() const { return folds() ? folds() * cycles_per_fold - 1 : 0; }
};

inline std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

inline FoldGeometry fold_geometry(Dataflow d, std::uint64_t m, std::uint64_t n, std::uint64_t k, int rows, int cols) {
  if (m == 0 || n == 0 || k == 0) return {};
  const std::uint64_t R = std::uint64_t(rows), C = std::uint64_t(cols);
  if (d == Dataflow::output_stationary) return {ceil_div(m, R), ceil_div(n, C), k + R + C - 2};
  return {ceil_div(k, R), ceil_div(n, C), 2 * R + C + m - 2};
}

inline std::uint64_t compute_cycles(Dataflow d, std::uint64_t m, std::uint64_t n, std::uint64_t k, int rows,
                                    int cols) {
  return fold_geometry(d, m, n, k, rows, cols).cycles();
}

// SCALE-Sim's COMPUTE_REPORT figures (fractions here, percent there), without stalls:
//   overall utilization: M N K / (cycles R C);
//   mapping efficiency: the mean over folds of the PEs a fold uses / (R C);
//   compute utilization: the mean over folds of (PEs used x T) / (R C x the
//     fold's cycle count as SCALE-Sim takes it), T = K (os) or M (ws). For os
//     that count is the fold's cycles; for ws SCALE-Sim takes its filter
//     demand matrix's lines + columns - 1 = 2R + 2C + M - 3, one C - 1 more
//     than the fold's cycles. We follow it, so the columns can be diffed.
struct Utilization {
  double overall = 0, mapping_efficiency = 0, compute = 0;
};
Utilization utilization(Dataflow d, std::uint64_t m, std::uint64_t n, std::uint64_t k, int rows, int cols);

// The dataflow a GEMM runs with, from the config's mac_array.dataflow:
// output_stationary, weight_stationary, or auto = the one with fewer compute
// cycles for this shape, output_stationary on a tie.
Dataflow choose_dataflow(std::string_view configured, std::uint64_t m, std::uint64_t n, std::uint64_t k, int rows,
                         int cols);

// Bytes of one output's partial sums that a ws fold leaves in the accumulator
// buffer for the next fold of K: the tile accumulator (W bits) and the outer
// accumulator (Wo bits), each rounded up to whole bytes.
inline std::uint64_t ws_partial_sum_bytes(int acc_bits, int outer_bits) {
  return std::uint64_t((acc_bits + 7) / 8 + (outer_bits + 7) / 8);
}

// SRAM bytes the array streams for a GEMM whose operands are packed:
// `a_row_bytes` one row of A (K operands), `b_bytes_of(j0, j1)` columns
// [j0, j1) of B over all K. os: every fold reads its R rows of A and its C
// columns of B and writes its outputs once (int32). ws: B is read once in
// total (its folds partition it), A's rows once per column fold, and every
// fold of K but the last writes, and every fold but the first reads, its
// outputs' partial sums; the last writes C (int32). `accumulate` (a K-chunk
// continuing C, mac_array.h): C's int32 outer accumulators are read once
// before (os: preloaded into each fold's PEs; ws: the first fold of K starts
// from them instead of 0; a chunk starts on a tile boundary, so there is no
// tile accumulator to carry), c_in_bytes = M N 4.
struct ArrayTraffic {
  std::uint64_t a_bytes = 0, b_bytes = 0, c_bytes = 0, partial_bytes = 0, c_in_bytes = 0;
  std::uint64_t total() const { return a_bytes + b_bytes + c_bytes + partial_bytes + c_in_bytes; }
};
template <typename BBytes>
ArrayTraffic array_traffic(Dataflow d, std::uint64_t m, std::uint64_t n, std::uint64_t k, std::uint64_t a_row_bytes,
                           int rows, int cols, int acc_bits, int outer_bits, bool accumulate, BBytes b_bytes_of) {
  ArrayTraffic t;
  if (m == 0 || n == 0 || k == 0) return t;
  if (accumulate) t.c_in_bytes = m * n * 4;
  const FoldGeometry g = fold_geometry(d, m, n, k, rows, cols);
  for (std::uint64_t j0 = 0; j0 < n; j0 += std::uint64_t(cols)) {
    const std::uint64_t j1 = j0 + std::uint64_t(cols) < n ? j0 + std::uint64_t(cols) : n;
    if (d == Dataflow::output_stationary) {
      t.b_bytes += g.row_folds * b_bytes_of(j0, j1);  // B's columns once per row fold
    } else {
      t.b_bytes += b_bytes_of(j0, j1);  // each weight loaded once
      if (g.row_folds > 1) t.partial_bytes += 2 * (g.row_folds - 1) * m * (j1 - j0) * ws_partial_sum_bytes(acc_bits, outer_bits);
    }
    t.a_bytes += m * a_row_bytes;  // all of A once per column fold
  }
  t.c_bytes = m * n * 4;
  return t;
}

}  // namespace hdq::npu
