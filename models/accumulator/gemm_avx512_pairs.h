// The AVX-512 pair kernel for `exact` and `clamp_tile` (docs/contract.md section
// 5): the algorithm and plan of gemm_avx2_pairs.h (vpmaddubsw over k-pairs,
// biased A, int16 or int32 exact tile sums, tile clamp, outer accumulator) on
// 64 output columns per register, with clamps counted from mask compares.
// Include only from gemm_avx512.cpp.
#pragma once

#include "models/accumulator/gemm_avx2_pairs.h"
#include "models/accumulator/gemm_avx512_common.h"

namespace hdq::detail {
namespace {
namespace avx512 {

// Packs B on up to `threads` threads (vectors split between them).
inline void pack_pair_shared(GemmShape s, IntOperand b, const AccumulatorConfig& cfg, const PairPlan& plan,
                             PackedBPairs& out, int threads) {
  const Tiling tl(s.k, cfg.tile);
  init_b_pairs(s, tl, out);
  const int parts = std::clamp(threads, 1, std::max(1, out.nvec));
  parallel_for(parts, [&](int part) {
    for (int v = out.nvec * part / parts; v < out.nvec * (part + 1) / parts; ++v)
      pack_b_pairs(s, b.values.data(), tl, plan.amin, v, out);
  });
}

class PairKernel {
 public:
  // bpairs: B packed by pack_pair_shared (once per GEMM, shared by the row blocks).
  PairKernel(GemmShape s, IntOperand a, const AccumulatorConfig& cfg, const PairPlan& plan, const PackedBPairs& bpairs,
             int r0, int r1)
      : s_(s), a_(a), cfg_(cfg), plan_(plan), tl_(s.k, cfg.tile), r0_(r0), r1_(r1), rows_(r1 - r0), bpairs_(bpairs) {}

  GemmStats run(std::span<std::int32_t> c) {
    const bool clamp_outer = !outer_cannot_overflow(tl_.ntiles, plan_.max_p, cfg_.outer_bits);
    if (cfg_.mode == AccMode::clamp_tile) return clamp_outer ? run_mode<true, true>(c) : run_mode<true, false>(c);
    return clamp_outer ? run_mode<false, true>(c) : run_mode<false, false>(c);
  }

 private:
  static constexpr int kRows = 4;

  // Tile end of one row in int32 lanes: headroom, tile clamp, outer sum.
  template <bool kClampTile, bool kClampOuter>
  [[gnu::always_inline]] inline void finish32(std::int32_t* o, __m512i e[4]) {
    __mmask16 changed[4];
    for (int g = 0; g < 4; ++g) {
      maxabs_ = _mm512_max_epu32(maxabs_, _mm512_abs_epi32(e[g]));
      if constexpr (kClampTile) {
        const __m512i p = _mm512_min_epi32(_mm512_max_epi32(e[g], tlo_), thi_);
        changed[g] = _mm512_cmpneq_epi32_mask(p, e[g]);
        e[g] = p;
      }
    }
    if constexpr (kClampTile) clamped_ += count_lanes(changed[0], changed[1], changed[2], changed[3]);
    outer_add32<kClampOuter>(o, e, olo_, ohi_, overflows_);
  }

  // The same from int16 tile sums (the exact16 plan).
  template <bool kClampTile, bool kClampOuter>
  [[gnu::always_inline]] inline void finish16(std::int32_t* o, __m512i e0, __m512i e1) {
    maxabs16_ = _mm512_max_epu16(maxabs16_, _mm512_max_epu16(_mm512_abs_epi16(e0), _mm512_abs_epi16(e1)));
    if constexpr (kClampTile) {
      if (clamp16_) {
        const __m512i p0 = _mm512_min_epi16(_mm512_max_epi16(e0, tlo16_), thi16_);
        const __m512i p1 = _mm512_min_epi16(_mm512_max_epi16(e1, tlo16_), thi16_);
        clamped_ += count_lanes(_mm512_cmpneq_epi16_mask(p0, e0), _mm512_cmpneq_epi16_mask(p1, e1));
        e0 = p0, e1 = p1;
      }
    }
    __m512i p[4] = {
        _mm512_cvtepi16_epi32(_mm512_castsi512_si256(e0)), _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(e0, 1)),
        _mm512_cvtepi16_epi32(_mm512_castsi512_si256(e1)), _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(e1, 1))};
    outer_add32<kClampOuter>(o, p, olo_, ohi_, overflows_);
  }

  template <bool kClampTile, bool kClampOuter, int R>
  void run_rows(int li0, std::span<std::int32_t> c) {
    const int nvec = (s_.n + kLanes - 1) / kLanes;
    alignas(64) std::int32_t o[R][kLanes];
    for (int v = 0; v < nvec; ++v) {
      std::memset(o, 0, sizeof(o));
      for (int tau = 0; tau < tl_.ntiles; ++tau) {
        const int pb = tl_.pair_base(tau), np = tl_.pairs(tau);
        const std::int8_t* bp = bpairs_.pair(v, pb);
        if (plan_.exact16) {
          const __m512i* pc16 = bpairs_.c16(v, tau);
          const __m512i c16[2] = {_mm512_load_si512(pc16), _mm512_load_si512(pc16 + 1)};
          const std::uint32_t* ap[R];
          for (int r = 0; r < R; ++r) ap[r] = apairs_.data() + std::size_t(li0 + r) * tl_.total_pairs + pb;
          __m512i e[R][2];
          exact_tile_sums16<R>(ap, bp, np, c16, e);
          for (int r = 0; r < R; ++r) finish16<kClampTile, kClampOuter>(o[r], e[r][0], e[r][1]);
        } else {
          const __m512i* pc32 = bpairs_.c32(v, tau);
          const __m512i c32[4] = {_mm512_load_si512(pc32), _mm512_load_si512(pc32 + 1), _mm512_load_si512(pc32 + 2),
                                  _mm512_load_si512(pc32 + 3)};
          for (int r = 0; r < R; ++r) {
            __m512i e[4];
            exact_tile_sums32(apairs_.data() + std::size_t(li0 + r) * tl_.total_pairs + pb, bp, np, plan_.block, c32,
                              e);
            finish32<kClampTile, kClampOuter>(o[r], e);
          }
        }
      }
      const int nj = std::min(kLanes, s_.n - v * kLanes);
      for (int r = 0; r < R; ++r)
        store_row_segment(c.data() + std::size_t(r0_ + li0 + r) * s_.n + std::size_t(v) * kLanes, o[r], nj);
    }
  }

  template <bool kClampTile, bool kClampOuter>
  GemmStats run_mode(std::span<std::int32_t> c) {
    pack_a_pairs(s_, a_.values.data(), plan_.amin, tl_, r0_, r1_, apairs_);
    const AccLimits inner = acc_limits(cfg_.acc_bits, cfg_.range);
    const AccLimits outer = acc_limits(cfg_.outer_bits, AccRange::full);
    // Tile results stay below 2^30 in magnitude, so a 32-bit inner range
    // clamps nothing and may be narrowed to int32 safely; likewise int16.
    tlo_ = _mm512_set1_epi32(static_cast<std::int32_t>(std::max<std::int64_t>(inner.lo, INT32_MIN)));
    thi_ = _mm512_set1_epi32(static_cast<std::int32_t>(std::min<std::int64_t>(inner.hi, INT32_MAX)));
    clamp16_ = cfg_.acc_bits <= 16;
    tlo16_ = _mm512_set1_epi16(static_cast<std::int16_t>(std::max<std::int64_t>(inner.lo, INT16_MIN)));
    thi16_ = _mm512_set1_epi16(static_cast<std::int16_t>(std::min<std::int64_t>(inner.hi, INT16_MAX)));
    olo_ = _mm512_set1_epi32(static_cast<std::int32_t>(outer.lo));
    ohi_ = _mm512_set1_epi32(static_cast<std::int32_t>(outer.hi));
    maxabs_ = maxabs16_ = _mm512_setzero_si512();
    int li = 0;
    for (; li + kRows <= rows_; li += kRows) run_rows<kClampTile, kClampOuter, kRows>(li, c);
    for (; li < rows_; ++li) run_rows<kClampTile, kClampOuter, 1>(li, c);
    GemmStats st;
    st.products = std::uint64_t(rows_) * std::uint64_t(s_.n) * std::uint64_t(s_.k);
    st.clamped_tiles = clamped_;
    st.outer_overflows = overflows_;
    st.max_abs_tile_sum = std::max(_mm512_reduce_max_epu32(maxabs_), hmax_epu16(maxabs16_));
    return st;
  }

  GemmShape s_;
  IntOperand a_;
  const AccumulatorConfig& cfg_;
  PairPlan plan_;
  Tiling tl_;
  int r0_, r1_, rows_;
  bool clamp16_ = false;
  struct Scratch {
    AlignedBuffer<std::uint32_t> apairs;
  };
  static WorkspacePool<Scratch>& pool() {
    static WorkspacePool<Scratch> p;
    return p;
  }
  Scratch& ws_ = pool().current();
  AlignedBuffer<std::uint32_t>& apairs_ = ws_.apairs;
  const PackedBPairs& bpairs_;
  __m512i maxabs_{}, maxabs16_{}, tlo_{}, thi_{}, tlo16_{}, thi16_{}, olo_{}, ohi_{};
  std::uint64_t clamped_ = 0, overflows_ = 0;
};

}  // namespace avx512
}  // namespace
}  // namespace hdq::detail
