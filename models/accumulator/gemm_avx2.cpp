// The AVX2 path (this file is compiled with -mavx2 and only called when the
// CPU has AVX2). Cases without a specialised kernel use the column kernel,
// compiled here for AVX2.
#include "models/accumulator/gemm_columns.h"

namespace hdq::detail {

GemmStats gemm_avx2_rows(GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                         std::span<std::int32_t> c, int row_begin, int row_end) {
  return column_kernel(s, a, b, cfg, c, row_begin, row_end);
}

}  // namespace hdq::detail
