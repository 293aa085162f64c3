// The portable fast path: the column kernel compiled for the baseline ISA.
#include "models/accumulator/gemm_columns.h"

namespace hdq::detail {

GemmStats gemm_portable_rows(GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                             std::span<std::int32_t> c, int row_begin, int row_end) {
  return column_kernel(s, a, b, cfg, c, row_begin, row_end);
}

}  // namespace hdq::detail
