// The definition of the tiled GEMM: one output at a time, one product at a
// time, int64 throughout, every rule from accumulator.h applied literally.
// With `o0` the outer accumulators start from o0 (m x n) instead of 0: the
// same sum continued (gemm_continue_reference, gemm.h).
#include <cstdlib>

#include "models/accumulator/gemm.h"

namespace hdq::detail {

GemmStats gemm_reference_rows(GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                              std::span<std::int32_t> c, int row_begin, int row_end,
                              std::span<const std::int32_t> o0) {
  const int tile = tile_length(cfg, s.k);
  const AccLimits inner = acc_limits(cfg.acc_bits, cfg.range);
  const AccLimits outer = acc_limits(cfg.outer_bits, AccRange::full);
  GemmStats st;
  for (int i = row_begin; i < row_end; ++i)
    for (int j = 0; j < s.n; ++j) {
      std::int64_t o = o0.empty() ? 0 : o0[std::size_t(i) * s.n + j];
      for (int k0 = 0; k0 < s.k; k0 += tile) {
        const int k1 = std::min(k0 + tile, s.k);
        std::int64_t exact = 0;
        std::int64_t acc = 0;
        for (int k = k0; k < k1; ++k) {
          const std::int64_t p = std::int64_t{a.values[std::size_t(i) * s.k + k]} * b.values[std::size_t(k) * s.n + j];
          exact += p;
          std::int64_t next = acc + p;
          if (cfg.mode == AccMode::saturate) next = clamp_to(next, inner);
          if (cfg.mode == AccMode::wrap) next = wrap_to_bits(next, cfg.acc_bits);
          if (next != acc + p) ++st.changed_steps;
          acc = next;
        }
        st.max_abs_tile_sum = std::max(st.max_abs_tile_sum, std::int64_t(std::llabs(exact)));
        std::int64_t tile_result = exact;
        if (cfg.mode == AccMode::clamp_tile) {
          tile_result = clamp_to(exact, inner);
          if (tile_result != exact) ++st.clamped_tiles;
        } else if (cfg.mode == AccMode::saturate || cfg.mode == AccMode::wrap) {
          tile_result = acc;
        }
        const std::int64_t sum = o + tile_result;
        o = clamp_to(sum, outer);
        if (o != sum) ++st.outer_overflows;
      }
      c[std::size_t(i) * s.n + j] = static_cast<std::int32_t>(o);
      st.products += static_cast<std::uint64_t>(s.k);
    }
  return st;
}

}  // namespace hdq::detail
