// The pair kernel for `exact` and `clamp_tile` (docs/contract.md §5), over a
// vector-width type T (gemm_simd.h). Include only from gemm_avx2.cpp and
// gemm_avx512.cpp, after the width's traits.
//
// Both modes need only the exact tile sums, whose value does not depend on the
// order of the k inside a tile, so k is taken two at a time: vpmaddubsw
// multiplies (a[k] - amin, a[k+1] - amin) as uint8 with (b[k][j], b[k+1][j])
// as int8 and adds the two products into an int16 lane per column j; int16
// partial sums are widened to int32 before they could overflow, and
// amin * (column sum of the tile) undoes the bias of A. The tile sums then go
// through the tile clamp (clamp_tile) and the Wo-bit outer accumulator.
#pragma once

#include "models/accumulator/gemm_simd.h"

namespace hdq::detail {
namespace {

struct PairPlan {
  int amin = 0;
  bool exact16 = false;    // tile sums fit int16
  int block = 1;           // k-pairs summed in int16 before widening
  std::int64_t max_p = 0;  // bound on |tile result|
};

inline bool make_pair_plan(GemmShape s, const AccumulatorConfig& cfg, ValueRange ra, ValueRange rb, PairPlan& plan) {
  if (cfg.mode != AccMode::exact && cfg.mode != AccMode::clamp_tile) return false;
  if (rb.lo < -128 || rb.hi > 127) return false;
  const int arange = ra.hi - ra.lo;
  if (arange > 255) return false;
  const int bmax = std::max(std::abs(rb.lo), std::abs(rb.hi));
  const int per_pair = 2 * arange * bmax;  // bound on one vpmaddubsw lane
  if (per_pair > 32767) return false;
  // Exact tile sums and every int32 intermediate stay below 2^30.
  const Tiling tl(s.k, cfg);
  const ValueRange pr = product_range(ra, rb);
  const std::int64_t pmax = std::max(std::abs(pr.lo), std::abs(pr.hi));
  const std::int64_t biased = std::int64_t(arange) * bmax + std::int64_t(std::abs(ra.lo)) * bmax;
  if (std::int64_t(tl.t) * std::max(pmax, biased) >= (std::int64_t{1} << 30)) return false;
  // The clamped outer sum in int32 must not wrap: either no clamp is needed or
  // Wo <= 31 and a tile result stays below 2^30 (checked above).
  const std::int64_t max_p =
      cfg.mode == AccMode::clamp_tile
          ? std::min<std::int64_t>(std::int64_t(tl.t) * pmax, std::int64_t{1} << (cfg.acc_bits - 1))
          : std::int64_t(tl.t) * pmax;
  if (cfg.outer_bits == 32 && !outer_cannot_overflow(tl.ntiles, max_p, 32)) return false;
  plan.amin = ra.lo;
  plan.max_p = max_p;
  // int16 lanes wrap, so only every vpmaddubsw lane and the tile sum itself must fit.
  plan.exact16 = std::int64_t(tl.t) * pmax <= 32767;
  plan.block = per_pair == 0 ? std::max(1, tl.pairs_per_tile) : std::max(1, 32767 / per_pair);
  return true;
}

// Packs B on up to `threads` threads of the pool (vectors split between them):
// with `repack` its bytes and tile column sums anew, else only the
// corrections for A's minimum when the packed ones were made for another.
template <class T>
inline void pack_pair_shared(ThreadPool& pool, GemmShape s, IntOperand b, const AccumulatorConfig& cfg,
                             const PairPlan& plan, PackedBPairs<T>& out, int threads, bool repack) {
  if (!repack && out.amin == plan.amin) return;
  const Tiling tl(s.k, cfg);
  if (repack) init_b_pairs(s, tl, out);
  const int parts = std::clamp(threads, 1, std::max(1, out.nvec));
  pool.run(parts, [&](int part) {
    for (int v = out.nvec * part / parts; v < out.nvec * (part + 1) / parts; ++v) {
      if (repack) pack_b_pair_bytes(s, b.values.data(), tl, v, out);
      set_b_pair_corrections(tl, plan.amin, v, out);
    }
  });
  out.amin = plan.amin;
}

// The buffers a pair kernel keeps per row block in its GemmContext.
struct PairScratch {
  AlignedBuffer<std::uint32_t> apairs;  // A in the pair layout (pack_a_pairs)
};

template <class T>
class PairKernel {
  using V = typename T::V;
  static constexpr int kLanes = T::kLanes;

 public:
  // ws: the row block's scratch; bpairs: B packed by pack_pair_shared (once
  // per GEMM, shared by the row blocks).
  PairKernel(PairScratch& ws, GemmShape s, IntOperand a, const AccumulatorConfig& cfg, const PairPlan& plan,
             const PackedBPairs<T>& bpairs, int r0, int r1)
      : s_(s), a_(a), cfg_(cfg), plan_(plan), tl_(s.k, cfg), r0_(r0), r1_(r1), rows_(r1 - r0),
        apairs_(ws.apairs), bpairs_(bpairs) {}

  GemmStats run(std::span<std::int32_t> c) {
    const bool clamp_outer = !outer_cannot_overflow(tl_.ntiles, plan_.max_p, cfg_.outer_bits);
    if (cfg_.mode == AccMode::clamp_tile) return clamp_outer ? run_mode<true, true>(c) : run_mode<true, false>(c);
    return clamp_outer ? run_mode<false, true>(c) : run_mode<false, false>(c);
  }

 private:
  static constexpr int kRows = 4;

  // Tile end of one row in int32 lanes: headroom, tile clamp, outer sum.
  template <bool kClampTile, bool kClampOuter>
  [[gnu::always_inline]] inline void finish32(std::int32_t* o, V e[4]) {
    V p[4];
    for (int g = 0; g < 4; ++g) {
      maxabs_ = T::max_u32(maxabs_, T::abs32(e[g]));
      if constexpr (kClampTile) p[g] = T::min32(T::max32(e[g], tlo_), thi_);
    }
    if constexpr (kClampTile) {
      clamped_ += T::count_ne32(p, e);
      for (int g = 0; g < 4; ++g) e[g] = p[g];
    }
    outer_add32<T, kClampOuter>(o, e, olo_, ohi_, overflows_);
  }

  // The same from int16 tile sums (the exact16 plan).
  template <bool kClampTile, bool kClampOuter>
  [[gnu::always_inline]] inline void finish16(std::int32_t* o, V e0, V e1) {
    maxabs16_ = T::max_u16(maxabs16_, T::max_u16(T::abs16(e0), T::abs16(e1)));
    if constexpr (kClampTile) {
      if (clamp16_) {
        const V p0 = T::min16(T::max16(e0, tlo16_), thi16_);
        const V p1 = T::min16(T::max16(e1, tlo16_), thi16_);
        clamped_ += T::count_ne16(p0, e0, p1, e1);
        e0 = p0, e1 = p1;
      }
    }
    V p[4];
    T::widen16_32(e0, p);
    T::widen16_32(e1, p + 2);
    outer_add32<T, kClampOuter>(o, p, olo_, ohi_, overflows_);
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
          const V* pc16 = bpairs_.c16(v, tau);
          const V c16[2] = {T::load(pc16), T::load(pc16 + 1)};
          const std::uint32_t* ap[R];
          for (int r = 0; r < R; ++r) ap[r] = apairs_.data() + std::size_t(li0 + r) * tl_.total_pairs + pb;
          V e[R][2];
          exact_tile_sums16<T, R>(ap, bp, np, c16, e);
          for (int r = 0; r < R; ++r) finish16<kClampTile, kClampOuter>(o[r], e[r][0], e[r][1]);
        } else {
          const V* pc32 = bpairs_.c32(v, tau);
          const V c32[4] = {T::load(pc32), T::load(pc32 + 1), T::load(pc32 + 2), T::load(pc32 + 3)};
          for (int r = 0; r < R; ++r) {
            V e[4];
            exact_tile_sums32<T>(apairs_.data() + std::size_t(li0 + r) * tl_.total_pairs + pb, bp, np, plan_.block,
                                 c32, e);
            finish32<kClampTile, kClampOuter>(o[r], e);
          }
        }
      }
      const int nj = std::min(kLanes, s_.n - v * kLanes);
      for (int r = 0; r < R; ++r)
        store_row_segment<T>(c.data() + std::size_t(r0_ + li0 + r) * s_.n + std::size_t(v) * kLanes, o[r], nj);
    }
  }

  template <bool kClampTile, bool kClampOuter>
  GemmStats run_mode(std::span<std::int32_t> c) {
    pack_a_pairs(s_, a_.values.data(), plan_.amin, tl_, r0_, r1_, apairs_);
    const AccLimits inner = acc_limits(cfg_.acc_bits, cfg_.range);
    const AccLimits outer = acc_limits(cfg_.outer_bits, AccRange::full);
    // Tile results stay below 2^30 in magnitude, so a 32-bit inner range
    // clamps nothing and may be narrowed to int32 safely; likewise int16.
    tlo_ = T::set1_32(static_cast<std::int32_t>(std::max<std::int64_t>(inner.lo, INT32_MIN)));
    thi_ = T::set1_32(static_cast<std::int32_t>(std::min<std::int64_t>(inner.hi, INT32_MAX)));
    clamp16_ = cfg_.acc_bits <= 16;
    tlo16_ = T::set1_16(static_cast<std::int16_t>(std::max<std::int64_t>(inner.lo, INT16_MIN)));
    thi16_ = T::set1_16(static_cast<std::int16_t>(std::min<std::int64_t>(inner.hi, INT16_MAX)));
    olo_ = T::set1_32(static_cast<std::int32_t>(outer.lo));
    ohi_ = T::set1_32(static_cast<std::int32_t>(outer.hi));
    maxabs_ = maxabs16_ = T::zero();
    int li = 0;
    for (; li + kRows <= rows_; li += kRows) run_rows<kClampTile, kClampOuter, kRows>(li, c);
    for (; li < rows_; ++li) run_rows<kClampTile, kClampOuter, 1>(li, c);
    GemmStats st;
    st.products = std::uint64_t(rows_) * std::uint64_t(s_.n) * std::uint64_t(s_.k);
    st.clamped_tiles = clamped_;
    st.outer_overflows = overflows_;
    st.max_abs_tile_sum = std::max(T::hmax_u32(maxabs_), hmax_u16<T>(maxabs16_));
    return st;
  }

  GemmShape s_;
  IntOperand a_;
  const AccumulatorConfig& cfg_;
  PairPlan plan_;
  Tiling tl_;
  int r0_, r1_, rows_;
  bool clamp16_ = false;
  AlignedBuffer<std::uint32_t>& apairs_;
  const PackedBPairs<T>& bpairs_;
  V maxabs_{}, maxabs16_{}, tlo_{}, thi_{}, tlo16_{}, thi16_{}, olo_{}, ohi_{};
  std::uint64_t clamped_ = 0, overflows_ = 0;
};

}  // namespace
}  // namespace hdq::detail
