// The AVX2 word kernel for wider operands (docs/contract.md §5): every mode,
// when a and b fit int8 and every product, and a register value plus any
// product, fit int16 (e.g. 5-8-bit signed operands with W <= 14). Include only
// from gemm_avx2.cpp.
//
// Lanes are 16 output columns of one row as int16; two rows advance together.
// Per k (in ascending order inside a tile, so saturate / wrap are exact):
//   p    = a[i][k] * b[k][j]             vpmullw (fits int16: checked)
//   sum  = s + p                          exact in int16 (checked)
//   s'   = clamp(sum) | wrap(sum)         vpmaxsw + vpminsw | vpsllw + vpsraw
//   c   += (s' == sum)                    unchanged steps (-1 each)
// and per k-pair the exact tile sums E in int32 lanes with vpmaddwd on
// (b[k][j], b[k+1][j]) pairs (the sum order does not matter for E; the
// columns of the two int32 vectors are interleaved, which only feeds the
// maximum |E| and clamp_tile / exact results stored through the same
// interleave). A tile's P (s, or E clamped / not) goes to the Wo-bit outer
// accumulator in int32 lanes.
#pragma once

#include "models/accumulator/gemm_simd_avx2.h"

namespace hdq::detail {
namespace {

constexpr int kLanes = Avx2::kLanes;  // output columns per packed vector of B (two vectors of int16 lanes)

struct WordPlan {
  bool clamp_outer = false;  // some outer sum may leave the Wo range
};

inline bool make_word_plan(GemmShape s, const AccumulatorConfig& cfg, ValueRange ra, ValueRange rb, WordPlan& plan) {
  if (ra.lo < -128 || ra.hi > 127 || rb.lo < -128 || rb.hi > 127) return false;
  const ValueRange pr = product_range(ra, rb);
  const std::int64_t pmax = std::max(std::abs(pr.lo), std::abs(pr.hi));
  const Tiling tl(s.k, cfg);
  if (std::int64_t(tl.t) * std::max<std::int64_t>(pmax, 1) >= (std::int64_t{1} << 30)) return false;
  if (tl.t > 32767) return false;  // int16 step counters
  std::int64_t max_p = 0;           // bound on |tile result|
  switch (cfg.mode) {
    case AccMode::saturate:
    case AccMode::wrap:
      if (cfg.acc_bits > 14 || (std::int64_t{1} << (cfg.acc_bits - 1)) + pmax > 32767) return false;
      max_p = std::int64_t{1} << (cfg.acc_bits - 1);
      break;
    case AccMode::clamp_tile:
      max_p = std::min<std::int64_t>(std::int64_t(tl.t) * pmax, std::int64_t{1} << (cfg.acc_bits - 1));
      break;
    case AccMode::exact: max_p = std::int64_t(tl.t) * pmax; break;
  }
  // The clamped outer sum is formed in int32: with Wo = 32 it must not be needed.
  if (cfg.outer_bits == 32 && !outer_cannot_overflow(tl.ntiles, max_p, 32)) return false;
  plan.clamp_outer = !outer_cannot_overflow(tl.ntiles, max_p, cfg.outer_bits);
  return true;
}

// B as int16 per 32-column vector: [nvec][K][32] (0 past N), and per vector
// and k-pair of each tile the interleaved pairs for vpmaddwd: [nvec][pairs][4]
// vectors (columns 0-15, then 16-31, each as unpacklo / unpackhi).
struct WordShared {
  int nvec = 0, total_pairs = 0;
  AlignedBuffer<std::int16_t> bw;
  AlignedBuffer<std::int16_t> bpairs;
  const std::int16_t* row(int v, int k, int k_total) const { return bw.data() + (std::size_t(v) * k_total + k) * 32; }
  const __m256i* pairs(int v, int p) const {
    return reinterpret_cast<const __m256i*>(bpairs.data() + (std::size_t(v) * total_pairs + p) * 64);
  }
};

inline void pack_word_shared(GemmShape s, IntOperand b, const AccumulatorConfig& cfg, WordShared& out) {
  const Tiling tl(s.k, cfg);
  out.nvec = (s.n + kLanes - 1) / kLanes;
  out.total_pairs = tl.total_pairs;
  out.bw.resize(std::size_t(out.nvec) * s.k * 32);
  out.bpairs.resize(std::size_t(out.nvec) * tl.total_pairs * 64);
  for (int v = 0; v < out.nvec; ++v) {
    const int j0 = v * kLanes, nj = std::min(kLanes, s.n - j0);
    for (int k = 0; k < s.k; ++k) {
      std::int16_t* d = out.bw.data() + (std::size_t(v) * s.k + k) * 32;
      const std::int16_t* src = b.values.data() + std::size_t(k) * s.n + j0;
      std::copy_n(src, nj, d);
      std::fill(d + nj, d + 32, std::int16_t{0});
    }
    for (int tau = 0; tau < tl.ntiles; ++tau)
      for (int q = 0; q < tl.pairs(tau); ++q) {
        const int k = tl.begin(tau) + 2 * q;
        const bool has2 = k + 1 < tl.end(tau);
        __m256i* d = reinterpret_cast<__m256i*>(out.bpairs.data() +
                                                (std::size_t(v) * tl.total_pairs + tl.pair_base(tau) + q) * 64);
        for (int h = 0; h < 2; ++h) {
          const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(out.row(v, k, s.k) + 16 * h));
          const __m256i b1 = has2 ? _mm256_load_si256(reinterpret_cast<const __m256i*>(out.row(v, k + 1, s.k) + 16 * h))
                                  : _mm256_setzero_si256();
          _mm256_store_si256(d + 2 * h, _mm256_unpacklo_epi16(b0, b1));
          _mm256_store_si256(d + 2 * h + 1, _mm256_unpackhi_epi16(b0, b1));
        }
      }
  }
}

// The buffers a word kernel keeps per row block in its GemmContext: A per k
// and per k-pair (see pack_a).
struct WordScratch {
  AlignedBuffer<std::uint32_t> aw, ap;
};

template <AccMode kMode>
class WordKernel {
 public:
  WordKernel(WordScratch& ws, GemmShape s, IntOperand a, const AccumulatorConfig& cfg, const WordPlan& plan,
             const WordShared& shared, int r0, int r1)
      : s_(s), a_(a), cfg_(cfg), plan_(plan), sh_(shared), tl_(s.k, cfg), r0_(r0), r1_(r1), aw_(ws.aw),
        ap_(ws.ap) {}

  GemmStats run(std::span<std::int32_t> c) {
    pack_a();
    const AccLimits inner = acc_limits(cfg_.acc_bits, cfg_.range);
    const AccLimits outer = acc_limits(cfg_.outer_bits, AccRange::full);
    lo16_ = _mm256_set1_epi16(static_cast<std::int16_t>(std::max<std::int64_t>(inner.lo, INT16_MIN)));
    hi16_ = _mm256_set1_epi16(static_cast<std::int16_t>(std::min<std::int64_t>(inner.hi, INT16_MAX)));
    lo32_ = _mm256_set1_epi32(static_cast<std::int32_t>(std::max<std::int64_t>(inner.lo, INT32_MIN)));
    hi32_ = _mm256_set1_epi32(static_cast<std::int32_t>(std::min<std::int64_t>(inner.hi, INT32_MAX)));
    olo_ = _mm256_set1_epi32(static_cast<std::int32_t>(outer.lo));
    ohi_ = _mm256_set1_epi32(static_cast<std::int32_t>(outer.hi));
    shift_ = _mm_cvtsi32_si128(16 - cfg_.acc_bits);
    maxabs_ = _mm256_setzero_si256();
    changed_ = _mm256_setzero_si256();
    int i = r0_;
    for (; i + 2 <= r1_; i += 2) plan_.clamp_outer ? rows<2, true>(i, c) : rows<2, false>(i, c);
    for (; i < r1_; ++i) plan_.clamp_outer ? rows<1, true>(i, c) : rows<1, false>(i, c);
    GemmStats st;
    st.products = std::uint64_t(r1_ - r0_) * std::uint64_t(s_.n) * std::uint64_t(s_.k);
    st.changed_steps = Avx2::hsum64(changed_);
    st.clamped_tiles = clamped_;
    st.outer_overflows = overflows_;
    st.max_abs_tile_sum = Avx2::hmax_u32(maxabs_);
    return st;
  }

 private:
  // A per row: for each k, a as int16 twice in a uint32 (vpbroadcastd gives
  // it in every int16 lane); for each k-pair of a tile, (a[k], a[k+1]) (0 past
  // the tile) for vpmaddwd.
  void pack_a() {
    const int rows = r1_ - r0_;
    aw_.resize(std::size_t(rows) * s_.k + 8);
    ap_.resize(std::size_t(rows) * tl_.total_pairs + 8);
    for (int i = 0; i < rows; ++i) {
      const std::int16_t* src = a_.values.data() + std::size_t(r0_ + i) * s_.k;
      std::uint32_t* w = aw_.data() + std::size_t(i) * s_.k;
      for (int k = 0; k < s_.k; ++k) w[k] = std::uint32_t(std::uint16_t(src[k])) * 0x10001u;
      std::uint32_t* p = ap_.data() + std::size_t(i) * tl_.total_pairs;
      for (int tau = 0; tau < tl_.ntiles; ++tau)
        for (int q = 0; q < tl_.pairs(tau); ++q) {
          const int k = tl_.begin(tau) + 2 * q;
          const std::uint16_t x0 = std::uint16_t(src[k]), x1 = k + 1 < tl_.end(tau) ? std::uint16_t(src[k + 1]) : 0;
          p[tl_.pair_base(tau) + q] = std::uint32_t(x0) | std::uint32_t(x1) << 16;
        }
    }
  }

  static constexpr bool kRegister = kMode == AccMode::saturate || kMode == AccMode::wrap;

  // One register step of one row: s = rule(s + p), c += (unchanged ? -1 : 0).
  inline void step(__m256i& sv, __m256i& cv, __m256i p) const {
    const __m256i sum = _mm256_add_epi16(sv, p);
    __m256i next;
    if constexpr (kMode == AccMode::saturate)
      next = _mm256_min_epi16(_mm256_max_epi16(sum, lo16_), hi16_);
    else
      next = _mm256_sra_epi16(_mm256_sll_epi16(sum, shift_), shift_);
    cv = _mm256_add_epi16(cv, _mm256_cmpeq_epi16(next, sum));
    sv = next;
  }

  // R rows from row i, all 32-column vectors.
  template <int R, bool kClampOuter>
  void rows(int i, std::span<std::int32_t> c) {
    const int li = i - r0_;
    for (int v = 0; v < sh_.nvec; ++v) {
      alignas(32) std::int32_t o[R][kLanes] = {};
      for (int tau = 0; tau < tl_.ntiles; ++tau) {
        const int k0 = tl_.begin(tau), k1 = tl_.end(tau), pb = tl_.pair_base(tau);
        for (int h = 0; h < 2; ++h) {  // columns 16h .. 16h + 15
          __m256i sv[R], cv[R], e0[R], e1[R];
          for (int r = 0; r < R; ++r)
            sv[r] = cv[r] = e0[r] = e1[r] = _mm256_setzero_si256();
          const std::int16_t* bk = sh_.row(v, k0, s_.k) + 16 * h;
          const __m256i* bp = sh_.pairs(v, pb) + 2 * h;
          for (int k = k0; k < k1; k += 2, bk += 64, bp += 4) {
            const bool has2 = k + 1 < k1;
            const __m256i pl = _mm256_load_si256(bp), ph = _mm256_load_si256(bp + 1);
            for (int r = 0; r < R; ++r) {
              const __m256i apair =
                  _mm256_set1_epi32(static_cast<int>(ap_[std::size_t(li + r) * tl_.total_pairs + pb + (k - k0) / 2]));
              e0[r] = _mm256_add_epi32(e0[r], _mm256_madd_epi16(apair, pl));
              e1[r] = _mm256_add_epi32(e1[r], _mm256_madd_epi16(apair, ph));
            }
            if constexpr (kRegister) {
              const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(bk));
              for (int r = 0; r < R; ++r) {
                const std::uint32_t* aw = aw_.data() + std::size_t(li + r) * s_.k;
                step(sv[r], cv[r], _mm256_mullo_epi16(_mm256_set1_epi32(static_cast<int>(aw[k])), b0));
              }
              if (has2) {
                const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(bk + 32));
                for (int r = 0; r < R; ++r) {
                  const std::uint32_t* aw = aw_.data() + std::size_t(li + r) * s_.k;
                  step(sv[r], cv[r], _mm256_mullo_epi16(_mm256_set1_epi32(static_cast<int>(aw[k + 1])), b1));
                }
              }
            }
          }
          for (int r = 0; r < R; ++r) {
            maxabs_ = _mm256_max_epu32(maxabs_, _mm256_max_epu32(_mm256_abs_epi32(e0[r]), _mm256_abs_epi32(e1[r])));
            // P in column order 16h .. 16h + 15 as two int32 vectors.
            __m256i p[2];
            if constexpr (kRegister) {
              // changed = len - unchanged = len + c (c holds -unchanged).
              const __m256i ch = _mm256_add_epi16(cv[r], _mm256_set1_epi16(static_cast<std::int16_t>(k1 - k0)));
              const __m256i ch2 = _mm256_madd_epi16(ch, _mm256_set1_epi16(1));  // pairs of lanes, int32
              changed_ = _mm256_add_epi64(changed_, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(ch2)));
              changed_ = _mm256_add_epi64(changed_, _mm256_cvtepu32_epi64(_mm256_extracti128_si256(ch2, 1)));
              p[0] = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(sv[r]));
              p[1] = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(sv[r], 1));
            } else {
              // e0 holds columns 0-3, 8-11 (by 128-bit lane), e1 4-7, 12-15: restore the order.
              __m256i x0 = e0[r], x1 = e1[r];
              if constexpr (kMode == AccMode::clamp_tile) {
                const __m256i c0 = _mm256_min_epi32(_mm256_max_epi32(x0, lo32_), hi32_);
                const __m256i c1 = _mm256_min_epi32(_mm256_max_epi32(x1, lo32_), hi32_);
                const auto eqmask = [](__m256i u, __m256i w) {
                  return std::uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(u, w))));
                };
                const std::uint32_t eq = eqmask(c0, x0) | eqmask(c1, x1) << 8;
                clamped_ += std::uint64_t(16 - _mm_popcnt_u32(eq));
                x0 = c0, x1 = c1;
              }
              p[0] = _mm256_permute2x128_si256(x0, x1, 0x20);
              p[1] = _mm256_permute2x128_si256(x0, x1, 0x31);
            }
            std::int32_t* orow = o[r] + 16 * h;
            for (int g = 0; g < 2; ++g) {
              __m256i* op = reinterpret_cast<__m256i*>(orow + 8 * g);
              const __m256i sum = _mm256_add_epi32(_mm256_load_si256(op), p[g]);
              if constexpr (kClampOuter) {
                const __m256i cl = _mm256_min_epi32(_mm256_max_epi32(sum, olo_), ohi_);
                const int same = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(cl, sum)));
                overflows_ += std::uint64_t(8 - _mm_popcnt_u32(std::uint32_t(same)));
                _mm256_store_si256(op, cl);
              } else {
                _mm256_store_si256(op, sum);
              }
            }
          }
        }
      }
      const int nj = std::min(kLanes, s_.n - v * kLanes);
      for (int r = 0; r < R; ++r)
        store_row_segment<Avx2>(c.data() + std::size_t(i + r) * s_.n + std::size_t(v) * kLanes, o[r], nj);
    }
  }

  GemmShape s_;
  IntOperand a_;
  const AccumulatorConfig& cfg_;
  WordPlan plan_;
  const WordShared& sh_;
  Tiling tl_;
  int r0_, r1_;
  AlignedBuffer<std::uint32_t>& aw_;
  AlignedBuffer<std::uint32_t>& ap_;
  __m256i lo16_{}, hi16_{}, lo32_{}, hi32_{}, olo_{}, ohi_{}, maxabs_{}, changed_{};
  __m128i shift_{};
  std::uint64_t clamped_ = 0, overflows_ = 0;
};

inline GemmStats run_word_kernel(WordScratch& ws, GemmShape s, IntOperand a, const AccumulatorConfig& cfg,
                                 const WordPlan& plan, const WordShared& shared, int r0, int r1,
                                 std::span<std::int32_t> c) {
  switch (cfg.mode) {
    case AccMode::exact: return WordKernel<AccMode::exact>(ws, s, a, cfg, plan, shared, r0, r1).run(c);
    case AccMode::clamp_tile: return WordKernel<AccMode::clamp_tile>(ws, s, a, cfg, plan, shared, r0, r1).run(c);
    case AccMode::saturate: return WordKernel<AccMode::saturate>(ws, s, a, cfg, plan, shared, r0, r1).run(c);
    case AccMode::wrap: return WordKernel<AccMode::wrap>(ws, s, a, cfg, plan, shared, r0, r1).run(c);
  }
  return {};
}

}  // namespace
}  // namespace hdq::detail
