// The AVX2 path (this file is compiled with -mavx2 and only called when the
// CPU has AVX2). It picks a specialised kernel from the operands' actual value
// ranges and the accumulator config; every other case runs the column kernel,
// compiled here for AVX2. All kernels vectorize across output columns and walk
// k in ascending order inside a tile, so they equal gemm_reference bit for bit.
//
//   gemm_avx2_bytes.h  saturate / wrap, W <= 8, products fitting int8 (e.g.
//                      4-bit x 4-bit): int8 lanes, per-step product tables
//   gemm_avx2_pairs.h  exact / clamp_tile with 8-bit-representable operands:
//                      vpmaddubsw over k-pairs, int16 -> int32 tile sums
#include "models/accumulator/gemm_avx2_bytes.h"
#include "models/accumulator/gemm_avx2_pairs.h"
#include "models/accumulator/gemm_columns.h"

namespace hdq::detail {

GemmStats gemm_avx2_rows(GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                         std::span<std::int32_t> c, int row_begin, int row_end) {
  if (row_end <= row_begin || s.n == 0 || s.k == 0) return column_kernel(s, a, b, cfg, c, row_begin, row_end);
  const ValueRange ra =
      value_range(a.values.data() + std::size_t(row_begin) * s.k, std::size_t(row_end - row_begin) * s.k);
  const ValueRange rb = value_range(b.values.data(), b.values.size());
  if (BytePlan plan; make_byte_plan(s, cfg, ra, rb, plan))
    return ByteKernel(s, a, b, cfg, plan, row_begin, row_end).run(c);
  if (PairPlan plan; make_pair_plan(s, cfg, ra, rb, plan))
    return PairKernel(s, a, b, cfg, plan, row_begin, row_end).run(c);
  return column_kernel(s, a, b, cfg, c, row_begin, row_end);
}

}  // namespace hdq::detail
