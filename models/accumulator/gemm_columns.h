// The column-vectorized GEMM kernel: for one row of A and a block of output
// columns, walk k in ascending order inside each tile and apply the register
// rule to every column at once. Vectorizing across columns (never across k)
// keeps the order-dependent saturate/wrap semantics exact.
//
// Included by gemm_portable.cpp (baseline ISA) and gemm_avx2.cpp (compiled
// with -mavx2, for the cases its specialised kernels do not cover); the
// anonymous namespace keeps the two instantiations apart.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "models/accumulator/gemm.h"

namespace hdq {
namespace {

// Lane: the register, product and step-counter lanes; Wide: the exact tile
// sums (Lane, or int32 when int16 registers would overflow on them).
template <AccMode Mode, typename Lane, typename Wide = Lane>
GemmStats column_kernel_rows(GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                             std::span<std::int32_t> c, int row_begin, int row_end) {
  constexpr int kBlock = 64;
  using ULane = std::make_unsigned_t<Lane>;
  const int tile = tile_length(cfg, s.k);
  const AccLimits inner = acc_limits(cfg.acc_bits, cfg.range);
  const AccLimits outer = acc_limits(cfg.outer_bits, AccRange::full);
  const Lane lo = static_cast<Lane>(inner.lo), hi = static_cast<Lane>(inner.hi);
  const int wrap_shift = int(sizeof(Lane)) * 8 - cfg.acc_bits;

  GemmStats st;
  alignas(64) Lane acc[kBlock], unchanged[kBlock];
  alignas(64) Wide exact[kBlock];
  std::int64_t o[kBlock];
  for (int i = row_begin; i < row_end; ++i) {
    const std::int16_t* arow = a.values.data() + std::size_t(i) * s.k;
    for (int j0 = 0; j0 < s.n; j0 += kBlock) {
      const int nb = std::min(kBlock, s.n - j0);
      std::fill_n(o, nb, 0);
      for (int k0 = 0; k0 < s.k; k0 += tile) {
        const int k1 = std::min(k0 + tile, s.k);
        std::fill_n(acc, kBlock, 0);
        std::fill_n(exact, kBlock, 0);
        std::fill_n(unchanged, kBlock, 0);
        for (int k = k0; k < k1; ++k) {
          const Lane av = arow[k];
          const std::int16_t* brow = b.values.data() + std::size_t(k) * s.n + j0;
          for (int j = 0; j < nb; ++j) {
            const Lane p = Lane(av * Lane(brow[j]));
            exact[j] += Wide(p);
            if constexpr (Mode == AccMode::saturate || Mode == AccMode::wrap) {
              const Lane sum = Lane(acc[j] + p);
              Lane next;
              if constexpr (Mode == AccMode::saturate)
                next = std::min(std::max(sum, lo), hi);
              else
                next = Lane(ULane(sum) << wrap_shift) >> wrap_shift;  // sign-extend the low W bits
              unchanged[j] = Lane(unchanged[j] + Lane(next == sum));
              acc[j] = next;
            }
          }
        }
        for (int j = 0; j < nb; ++j) {
          const std::int64_t e = exact[j];
          st.max_abs_tile_sum = std::max(st.max_abs_tile_sum, std::int64_t(std::llabs(e)));
          std::int64_t result = e;
          if constexpr (Mode == AccMode::clamp_tile) {
            result = clamp_to(e, inner);
            st.clamped_tiles += result != e;
          } else if constexpr (Mode == AccMode::saturate || Mode == AccMode::wrap) {
            result = acc[j];
            st.changed_steps += std::uint64_t(k1 - k0) - std::uint64_t(unchanged[j]);
          }
          const std::int64_t sum = o[j] + result;
          o[j] = clamp_to(sum, outer);
          st.outer_overflows += o[j] != sum;
        }
      }
      for (int j = 0; j < nb; ++j) c[std::size_t(i) * s.n + j0 + j] = static_cast<std::int32_t>(o[j]);
    }
    st.products += std::uint64_t(s.n) * std::uint64_t(s.k);
  }
  return st;
}

template <typename Lane, typename Wide = Lane>
GemmStats column_kernel_rows_for_mode(GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                                      std::span<std::int32_t> c, int r0, int r1) {
  switch (cfg.mode) {
    case AccMode::exact: return column_kernel_rows<AccMode::exact, Lane, Wide>(s, a, b, cfg, c, r0, r1);
    case AccMode::clamp_tile: return column_kernel_rows<AccMode::clamp_tile, Lane, Wide>(s, a, b, cfg, c, r0, r1);
    case AccMode::saturate: return column_kernel_rows<AccMode::saturate, Lane, Wide>(s, a, b, cfg, c, r0, r1);
    case AccMode::wrap: return column_kernel_rows<AccMode::wrap, Lane, Wide>(s, a, b, cfg, c, r0, r1);
  }
  return {};
}

// int16 register lanes (int32 exact sums) for saturate / wrap when a register
// value plus any product fits int16 and a tile's step count does too (twice
// the lanes of int32 per vector: operands of 5-8 bits with W <= 14); else
// int32 lanes when neither acc + product (W <= 31) nor an exact tile sum can
// leave int32; int64 lanes otherwise.
inline GemmStats column_kernel(GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                               std::span<std::int32_t> c, int r0, int r1) {
  const std::int64_t tile = tile_length(cfg, s.k);
  const std::int64_t max_product = operand_max_abs(a) * operand_max_abs(b);
  const bool fits32 = cfg.acc_bits <= 31 && tile * max_product <= std::numeric_limits<std::int32_t>::max() / 2;
  const bool register_mode = cfg.mode == AccMode::saturate || cfg.mode == AccMode::wrap;
  constexpr std::int64_t i16max = std::numeric_limits<std::int16_t>::max();
  const bool fits16 = register_mode && fits32 && cfg.acc_bits <= 15 && tile <= i16max &&
                      (std::int64_t{1} << (cfg.acc_bits - 1)) + max_product <= i16max;
  if (fits16) return column_kernel_rows_for_mode<std::int16_t, std::int32_t>(s, a, b, cfg, c, r0, r1);
  return fits32 ? column_kernel_rows_for_mode<std::int32_t>(s, a, b, cfg, c, r0, r1)
                : column_kernel_rows_for_mode<std::int64_t>(s, a, b, cfg, c, r0, r1);
}

}  // namespace
}  // namespace hdq
