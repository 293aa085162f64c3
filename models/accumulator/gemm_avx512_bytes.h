// The AVX-512 byte kernel for `saturate` and `wrap` with W <= 8 (docs/contract.md
// section 5): the algorithm of gemm_avx2_bytes.h (plan, product tables, step
// rules, event bounds for the headroom statistic) on 64 output columns per
// register. Include only from gemm_avx512.cpp.
//
// What changes with the width: the product table holds 64-byte vectors (a
// chunk of k is sized for about 32 KB of table), column tails use masked
// loads and stores, and the per-lane tests at a tile end (no events, events
// within the threshold, a new headroom maximum) are mask compares.
#pragma once

#include "models/accumulator/gemm_avx2_bytes.h"
#include "models/accumulator/gemm_avx512_common.h"

namespace hdq::detail {
namespace {
namespace avx512 {

// One accumulate step for one row, as ByteStepOp in gemm_avx2_bytes.h (the
// same rules on zmm registers; inline asm for the same reason), except the
// count: a zmm compare yields a mask, so c += 1 in the changed lanes
// (vpcmpneqb, then a masked subtract of -1) and c starts at 0.
template <ByteStep kStep>
struct ByteStepOp {
  __m512i lo, h, m;  // constants: biased bottom rail; wrap_general 2^(W-1) and 2^W - 1
  __m512i minus_one = _mm512_set1_epi8(-1);
  [[gnu::always_inline]] inline void operator()(__m512i& s, __m512i& c, const __m512i* pp) const {
    const __m512i p = _mm512_load_si512(pp);
    __m512i x;
    __mmask64 changed;
    if constexpr (kStep == ByteStep::sat_full8) {
      asm("vpaddb %[p], %[s], %[x]\n\t"
          "vpaddsb %[p], %[s], %[s]\n\t"
          "vpcmpneqb %[x], %[s], %[k]\n\t"
          "vpsubb %[m1], %[c], %[c]%{%[k]%}"
          : [s] "+v"(s), [c] "+v"(c), [x] "=&v"(x), [k] "=&Yk"(changed)
          : [p] "v"(p), [m1] "v"(minus_one));
    } else if constexpr (kStep == ByteStep::sat_biased) {
      asm("vpaddb %[p], %[s], %[x]\n\t"
          "vpaddsb %[p], %[s], %[s]\n\t"
          "vpmaxsb %[lo], %[s], %[s]\n\t"
          "vpcmpneqb %[x], %[s], %[k]\n\t"
          "vpsubb %[m1], %[c], %[c]%{%[k]%}"
          : [s] "+v"(s), [c] "+v"(c), [x] "=&v"(x), [k] "=&Yk"(changed)
          : [p] "v"(p), [lo] "v"(lo), [m1] "v"(minus_one));
    } else if constexpr (kStep == ByteStep::wrap_scaled) {
      asm("vpaddsb %[p], %[s], %[x]\n\t"
          "vpaddb %[p], %[s], %[s]\n\t"
          "vpcmpneqb %[x], %[s], %[k]\n\t"
          "vpsubb %[m1], %[c], %[c]%{%[k]%}"
          : [s] "+v"(s), [c] "+v"(c), [x] "=&v"(x), [k] "=&Yk"(changed)
          : [p] "v"(p), [m1] "v"(minus_one));
    } else {
      asm("vpaddb %[p], %[s], %[x]\n\t"
          "vpaddb %[h], %[x], %[s]\n\t"
          "vpandq %[m], %[s], %[s]\n\t"
          "vpsubb %[h], %[s], %[s]\n\t"
          "vpcmpneqb %[x], %[s], %[k]\n\t"
          "vpsubb %[m1], %[c], %[c]%{%[k]%}"
          : [s] "+v"(s), [c] "+v"(c), [x] "=&v"(x), [k] "=&Yk"(changed)
          : [p] "v"(p), [h] "v"(h), [m] "v"(m), [m1] "v"(minus_one));
    }
  }
};

// The B operand in the layouts the byte kernel reads, packed once per GEMM
// and shared (read-only) by the threads' row blocks.
struct ByteShared {
  AlignedBuffer<std::int8_t> bbytes;  // b[k][j] mod 256 (scaled by 2^shift for wrap_scaled): [nvec][K][64], 0 past N
  PackedBPairs bpairs;                // for the exact tile sums
};

// Packs B on up to `threads` threads (vectors split between them).
inline void pack_byte_shared(GemmShape s, IntOperand b, const AccumulatorConfig& cfg, const BytePlan& plan,
                             ByteShared& out, int threads) {
  const int nvec = (s.n + kLanes - 1) / kLanes;
  const unsigned sh = plan.step == ByteStep::wrap_scaled ? unsigned(plan.shift) : 0u;
  const Tiling tl(s.k, cfg.tile);
  out.bbytes.resize(std::size_t(nvec) * s.k * kLanes);
  init_b_pairs(s, tl, out.bpairs);
  const int parts = std::clamp(threads, 1, nvec);
  parallel_for(parts, [&](int part) {
    for (int v = nvec * part / parts; v < nvec * (part + 1) / parts; ++v) {
      const int j0 = v * kLanes, nj = std::min(kLanes, s.n - j0);
      for (int k = 0; k < s.k; ++k) {
        __m512i lo, hi;
        load_b_row(b.values.data() + std::size_t(k) * s.n + j0, nj, lo, hi);
        _mm512_store_si512(out.bbytes.data() + (std::size_t(v) * s.k + k) * kLanes,
                           low_bytes(_mm512_slli_epi16(lo, sh), _mm512_slli_epi16(hi, sh)));
      }
      pack_b_pairs(s, b.values.data(), tl, plan.amin, v, out.bpairs);
    }
  });
}

class ByteKernel {
 public:
  ByteKernel(GemmShape s, IntOperand a, const AccumulatorConfig& cfg, const BytePlan& plan, const ByteShared& shared,
             int r0, int r1)
      : s_(s),
        a_(a),
        cfg_(cfg),
        plan_(plan),
        tl_(s.k, cfg.tile),
        r0_(r0),
        r1_(r1),
        rows_(r1 - r0),
        bbytes_(shared.bbytes),
        bpairs_(shared.bpairs) {
    // A chunk's table (nslots 64-byte vectors per k) stays within 32 KB of L1.
    plan_.chunk = std::min(32, 512 / plan_.nslots);
  }

  GemmStats run(std::span<std::int32_t> c) {
    switch (plan_.step) {
      case ByteStep::sat_full8:
        return run_step<ByteStep::sat_full8>(c);
      case ByteStep::sat_biased:
        return run_step<ByteStep::sat_biased>(c);
      case ByteStep::wrap_scaled:
        return run_step<ByteStep::wrap_scaled>(c);
      case ByteStep::wrap_general:
        return run_step<ByteStep::wrap_general>(c);
    }
    return {};
  }

 private:
  static constexpr int kRows = 4;  // rows advanced together (independent chains)

  void pack() {
    plan_byte_chunks(tl_, plan_.chunk, segs_, chunks_);
    // (a - amin) * 8 as bytes: the table offset / 8, used with scale-8
    // addressing; chunk-major (aoff_[chunk][row][k - chunk.k0], rows
    // plan_.chunk bytes apart) so that a pass over the rows reads sequentially.
    const std::size_t ch = std::size_t(plan_.chunk);
    aoff_.resize(chunks_.size() * std::size_t(rows_) * ch + 64);
    const __m512i bias = _mm512_set1_epi16(static_cast<std::int16_t>(plan_.amin));
    for (int i = 0; i < rows_; ++i) {
      const std::int16_t* src = a_.values.data() + std::size_t(r0_ + i) * s_.k;
      for (std::size_t c = 0; c < chunks_.size(); ++c) {
        const int k0 = chunks_[c].k0, n = chunks_[c].k1 - k0;
        const __mmask32 m = column_mask32(n, 0);
        const __m512i x = _mm512_slli_epi16(_mm512_sub_epi16(_mm512_maskz_loadu_epi16(m, src + k0), bias), 3);
        _mm256_mask_storeu_epi8(aoff_.data() + (c * std::size_t(rows_) + std::size_t(i)) * ch, m,
                                _mm512_cvtepi16_epi8(x));
      }
    }
    table_.resize(std::size_t(plan_.nslots) * plan_.chunk * kLanes);
    // Exact tile sums fit int16 (int16 lanes wrap, so biased partial sums may not)?
    exact16_ = std::int64_t(tl_.t) * plan_.max_abs_product <= 32767;
    const int per_pair = 2 * (plan_.nslots - 1) * plan_.max_abs_b;
    block_ = per_pair == 0 ? std::max(1, tl_.pairs_per_tile) : std::max(1, 32767 / per_pair);
  }

  // T[kk][slot][j] = (amin + slot) * b[k][j] mod 256, walked up and down from
  // the slot of a = clamp(0, amin, amax) (see gemm_avx2_bytes.h).
  void build_table(int v, const ByteChunk& ch) {
    const int n = plan_.nslots;
    const int start = std::clamp(-plan_.amin, 0, n - 1);
    const int a0 = plan_.amin + start;
    std::int8_t* t = table_.data();
    for (int k = ch.k0; k < ch.k1; ++k, t += std::size_t(n) * kLanes) {
      const __m512i b = _mm512_load_si512(bbytes_.data() + (std::size_t(v) * s_.k + k) * kLanes);
      __m512i base = _mm512_setzero_si512(), d = b;  // a0 * b by doubling, mod 256
      for (int m = std::abs(a0); m != 0; m >>= 1, d = _mm512_add_epi8(d, d))
        if (m & 1) base = _mm512_add_epi8(base, d);
      if (a0 < 0) base = _mm512_sub_epi8(_mm512_setzero_si512(), base);
      __m512i up = base, down = base;
      _mm512_store_si512(t + std::size_t(start) * kLanes, base);
      for (int i = 1; start + i < n || start - i >= 0; ++i) {
        if (start + i < n) _mm512_store_si512(t + std::size_t(start + i) * kLanes, up = _mm512_add_epi8(up, b));
        if (start - i >= 0) _mm512_store_si512(t + std::size_t(start - i) * kLanes, down = _mm512_sub_epi8(down, b));
      }
    }
  }

  void update_threshold() { nthr_ = _mm512_set1_epi8(static_cast<char>(event_threshold(plan_, max_abs_))); }

  // Exact tile sums of R rows (local indices li0..) for vector v, tile tau:
  // raises max_abs_ to their largest |.|. Inlined (like tile_row and
  // outer_add) into run_rows: as calls they cost spills of the live vector
  // registers at every tile end.
  template <int R>
  [[gnu::always_inline]] inline void exact_rows(int li0, int v, int tau) {
    // The pair layouts are only needed here: packed on first use.
    if (!apacked_) {
      pack_a_pairs(s_, a_.values.data(), plan_.amin, tl_, r0_, r1_, apairs_);
      apacked_ = true;
    }
    const int pb = tl_.pair_base(tau), np = tl_.pairs(tau);
    const std::int8_t* bp = bpairs_.pair(v, pb);
    std::int64_t m = 0;
    if (exact16_) {
      const std::uint32_t* ap[R];
      for (int r = 0; r < R; ++r) ap[r] = apairs_.data() + std::size_t(li0 + r) * tl_.total_pairs + pb;
      __m512i e[R][2];
      const __m512i* c16 = bpairs_.c16(v, tau);
      const __m512i corr[2] = {_mm512_load_si512(c16), _mm512_load_si512(c16 + 1)};
      exact_tile_sums16<R>(ap, bp, np, corr, e);
      __m512i mx = _mm512_max_epu16(_mm512_abs_epi16(e[0][0]), _mm512_abs_epi16(e[0][1]));
      for (int r = 1; r < R; ++r)
        mx = _mm512_max_epu16(mx, _mm512_max_epu16(_mm512_abs_epi16(e[r][0]), _mm512_abs_epi16(e[r][1])));
      // Usually nothing exceeds the running maximum: test that before reducing.
      const __m512i cur = _mm512_set1_epi16(static_cast<std::int16_t>(std::min<std::int64_t>(max_abs_, 0xffff)));
      if (_mm512_cmpgt_epu16_mask(mx, cur) == 0) return;
      m = hmax_epu16(mx);
    } else {
      const __m512i* c32 = bpairs_.c32(v, tau);
      const __m512i corr[4] = {_mm512_load_si512(c32), _mm512_load_si512(c32 + 1), _mm512_load_si512(c32 + 2),
                               _mm512_load_si512(c32 + 3)};
      for (int r = 0; r < R; ++r) {
        __m512i e[4];
        exact_tile_sums32(apairs_.data() + std::size_t(li0 + r) * tl_.total_pairs + pb, bp, np, block_, corr, e);
        __m512i mx = _mm512_abs_epi32(e[0]);
        for (int g = 1; g < 4; ++g) mx = _mm512_max_epu32(mx, _mm512_abs_epi32(e[g]));
        m = std::max<std::int64_t>(m, _mm512_reduce_max_epu32(mx));
      }
    }
    if (m > max_abs_) {
      max_abs_ = m;
      update_threshold();
    }
  }

  // Adds the tile result (register s, already unbiased) of row li to its outer accumulator.
  template <ByteStep kStep, OuterKind kOuter>
  [[gnu::always_inline]] inline void outer_add(int li, __m512i s) {
    const __m256i l = _mm512_castsi512_si256(s), h = _mm512_extracti64x4_epi64(s, 1);
    if constexpr (kOuter == OuterKind::i16) {
      __m512i p0 = _mm512_cvtepi8_epi16(l), p1 = _mm512_cvtepi8_epi16(h);
      if constexpr (kStep == ByteStep::wrap_scaled) {
        p0 = _mm512_srai_epi16(p0, unsigned(plan_.shift));
        p1 = _mm512_srai_epi16(p1, unsigned(plan_.shift));
      }
      __m512i* o = reinterpret_cast<__m512i*>(outer16_.data() + std::size_t(li) * kLanes);
      _mm512_store_si512(o, _mm512_add_epi16(_mm512_load_si512(o), p0));
      _mm512_store_si512(o + 1, _mm512_add_epi16(_mm512_load_si512(o + 1), p1));
    } else {
      __m512i p[4] = {
          _mm512_cvtepi8_epi32(_mm256_castsi256_si128(l)), _mm512_cvtepi8_epi32(_mm256_extracti128_si256(l, 1)),
          _mm512_cvtepi8_epi32(_mm256_castsi256_si128(h)), _mm512_cvtepi8_epi32(_mm256_extracti128_si256(h, 1))};
      if constexpr (kStep == ByteStep::wrap_scaled)
        for (int g = 0; g < 4; ++g) p[g] = _mm512_srai_epi32(p[g], unsigned(plan_.shift));
      outer_add32<kOuter == OuterKind::i32clamp>(outer_.data() + std::size_t(li) * kLanes, p, olo_, ohi_,
                                                 stats_.outer_overflows);
    }
  }

  // State of one row between the segments of a tile longer than a chunk.
  __m512i* row_state(int li) { return reinterpret_cast<__m512i*>(sstate_.data() + std::size_t(li) * 2 * kLanes); }

  // Tile end of one row: the outer sum, and the headroom bookkeeping; returns
  // the lanes whose |exact tile sum| is known to be <= max_abs_ (all ones
  // when no exact recomputation is needed).
  template <ByteStep kStep, OuterKind kOuter>
  [[gnu::always_inline]] inline __mmask64 tile_row(int li, __m512i s, __m512i nsat, __m512i& nochange) {
    if constexpr (kStep == ByteStep::sat_biased)
      s = _mm512_sub_epi8(s, _mm512_set1_epi8(static_cast<char>(plan_.delta)));
    outer_add<kStep, kOuter>(li, s);
    // A lane without events has E = s (in the register's units): |E| <= 2^(W-1),
    // which adds nothing once max_abs_ has reached that.
    if (max_abs_ < half_)
      nochange = _mm512_max_epu8(nochange, _mm512_maskz_abs_epi8(_mm512_testn_epi8_mask(nsat, nsat), s));
    // A lane with n events has |E| <= |s| + n * event_size <= max_abs_ when n <= nthr.
    return _mm512_cmple_epu8_mask(nsat, nthr_);
  }

  // All segments of one chunk for rows li0 .. li0 + R - 1 (R = 4 or 1). The
  // per-row registers are named scalars so that GCC keeps them in registers.
  template <ByteStep kStep, OuterKind kOuter, int R>
  void run_rows(int li0, int v, const ByteChunk& ch, const ByteStepOp<kStep>& op) {
    static_assert(R == 4 || R == 1);
    const std::size_t kstride = std::size_t(plan_.nslots) * kLanes;
    const std::size_t cw = std::size_t(plan_.chunk);
    // Offsets of this chunk's rows, indexed by k - ch.k0.
    const std::uint8_t* a0 = aoff_.data() + (std::size_t(&ch - chunks_.data()) * rows_ + li0) * cw;
    const std::uint8_t* a1 = R == 4 ? a0 + cw : a0;
    const std::uint8_t* a2 = R == 4 ? a0 + 2 * cw : a0;
    const std::uint8_t* a3 = R == 4 ? a0 + 3 * cw : a0;
    const __m512i init =
        kStep == ByteStep::sat_biased ? _mm512_set1_epi8(static_cast<char>(plan_.delta)) : _mm512_setzero_si512();
    const __m512i zero = _mm512_setzero_si512();
    __m512i changed = changed_, nochange = nochange_max_;
    for (int sg = ch.seg0; sg < ch.seg1; ++sg) {
      const ByteSegment& seg = segs_[sg];
      __m512i s0 = init, s1 = init, s2 = init, s3 = init;
      __m512i n0 = zero, n1 = zero, n2 = zero, n3 = zero;
      if (!seg.starts) {
        s0 = row_state(li0)[0], n0 = row_state(li0)[1];
        if constexpr (R == 4) {
          s1 = row_state(li0 + 1)[0], n1 = row_state(li0 + 1)[1];
          s2 = row_state(li0 + 2)[0], n2 = row_state(li0 + 2)[1];
          s3 = row_state(li0 + 3)[0], n3 = row_state(li0 + 3)[1];
        }
      }
      __m512i c0 = zero, c1 = zero, c2 = zero, c3 = zero;
      const char* tb = reinterpret_cast<const char*>(table_.data()) + std::size_t(seg.k0 - ch.k0) * kstride;
      for (int k = seg.k0 - ch.k0; k < seg.k1 - ch.k0; ++k, tb += kstride) {
        op(s0, c0, reinterpret_cast<const __m512i*>(tb + std::size_t(a0[k]) * 8));
        if constexpr (R == 4) {
          op(s1, c1, reinterpret_cast<const __m512i*>(tb + std::size_t(a1[k]) * 8));
          op(s2, c2, reinterpret_cast<const __m512i*>(tb + std::size_t(a2[k]) * 8));
          op(s3, c3, reinterpret_cast<const __m512i*>(tb + std::size_t(a3[k]) * 8));
        }
      }
      // c counts the changed steps of this segment per lane (padding lanes: 0).
      __m512i sad = _mm512_sad_epu8(c0, zero);
      n0 = _mm512_adds_epu8(n0, c0);
      if constexpr (R == 4) {
        sad = _mm512_add_epi64(_mm512_add_epi64(sad, _mm512_sad_epu8(c1, zero)),
                               _mm512_add_epi64(_mm512_sad_epu8(c2, zero), _mm512_sad_epu8(c3, zero)));
        n1 = _mm512_adds_epu8(n1, c1);
        n2 = _mm512_adds_epu8(n2, c2);
        n3 = _mm512_adds_epu8(n3, c3);
      }
      changed = _mm512_add_epi64(changed, sad);
      if (!seg.ends) {
        row_state(li0)[0] = s0, row_state(li0)[1] = n0;
        if constexpr (R == 4) {
          row_state(li0 + 1)[0] = s1, row_state(li0 + 1)[1] = n1;
          row_state(li0 + 2)[0] = s2, row_state(li0 + 2)[1] = n2;
          row_state(li0 + 3)[0] = s3, row_state(li0 + 3)[1] = n3;
        }
        continue;
      }
      __mmask64 known = tile_row<kStep, kOuter>(li0, s0, n0, nochange);
      if constexpr (R == 4) {
        known &= tile_row<kStep, kOuter>(li0 + 1, s1, n1, nochange);
        known &= tile_row<kStep, kOuter>(li0 + 2, s2, n2, nochange);
        known &= tile_row<kStep, kOuter>(li0 + 3, s3, n3, nochange);
      }
      if (known != ~__mmask64{0}) exact_rows<R>(li0, v, seg.tau);  // some event may have pushed |E| past max_abs_
    }
    changed_ = changed, nochange_max_ = nochange;
  }

  template <ByteStep kStep>
  GemmStats run_step(std::span<std::int32_t> c) {
    const std::int64_t half = std::int64_t{1} << (plan_.acc_bits - 1);
    if (!outer_cannot_overflow(tl_.ntiles, half, cfg_.outer_bits)) return run_mode<kStep, OuterKind::i32clamp>(c);
    if (outer_cannot_overflow(tl_.ntiles, half, 16)) return run_mode<kStep, OuterKind::i16>(c);
    return run_mode<kStep, OuterKind::i32>(c);
  }

  // Writes the outer sums of every row for vector v to C.
  template <OuterKind kOuter>
  void store_outer(int v, std::span<std::int32_t> c) {
    const int nj = std::min(kLanes, s_.n - v * kLanes);
    for (int li = 0; li < rows_; ++li) {
      std::int32_t* dst = c.data() + std::size_t(r0_ + li) * s_.n + std::size_t(v) * kLanes;
      if constexpr (kOuter == OuterKind::i16) {
        const __m512i* src = reinterpret_cast<const __m512i*>(outer16_.data() + std::size_t(li) * kLanes);
        for (int g = 0; g < 4; ++g) {
          const __m512i x = _mm512_load_si512(src + g / 2);
          const __m256i half16 = g % 2 ? _mm512_extracti64x4_epi64(x, 1) : _mm512_castsi512_si256(x);
          const int n = std::clamp(nj - 16 * g, 0, 16);
          _mm512_mask_storeu_epi32(dst + 16 * g, __mmask16((1u << n) - 1), _mm512_cvtepi16_epi32(half16));
        }
      } else {
        store_row_segment(dst, outer_.data() + std::size_t(li) * kLanes, nj);
      }
    }
  }

  template <ByteStep kStep, OuterKind kOuter>
  GemmStats run_mode(std::span<std::int32_t> c) {
    pack();
    const AccLimits outer = acc_limits(cfg_.outer_bits, AccRange::full);
    olo_ = _mm512_set1_epi32(static_cast<std::int32_t>(outer.lo));
    ohi_ = _mm512_set1_epi32(static_cast<std::int32_t>(outer.hi));
    if constexpr (kOuter == OuterKind::i16)
      outer16_.resize(std::size_t(rows_) * kLanes);
    else
      outer_.resize(std::size_t(rows_) * kLanes);
    if (tl_.t > plan_.chunk) sstate_.resize(std::size_t(rows_) * 2 * kLanes);
    changed_ = _mm512_setzero_si512();
    nochange_max_ = _mm512_setzero_si512();
    max_abs_ = 0;
    half_ = std::int64_t{1} << (plan_.acc_bits - 1);
    update_threshold();
    ByteStepOp<kStep> op{};
    op.lo = _mm512_set1_epi8(static_cast<char>(plan_.lo_biased));
    op.h = _mm512_set1_epi8(static_cast<char>(1 << (plan_.acc_bits - 1)));
    op.m = _mm512_set1_epi8(static_cast<char>((1 << plan_.acc_bits) - 1));
    const int nvec = (s_.n + kLanes - 1) / kLanes;
    for (int v = 0; v < nvec; ++v) {
      if constexpr (kOuter == OuterKind::i16)
        std::memset(outer16_.data(), 0, outer16_.size() * sizeof(std::int16_t));
      else
        std::memset(outer_.data(), 0, outer_.size() * sizeof(std::int32_t));
      for (const ByteChunk& ch : chunks_) {
        build_table(v, ch);
        int li = 0;
        for (; li + kRows <= rows_; li += kRows) run_rows<kStep, kOuter, kRows>(li, v, ch, op);
        for (; li < rows_; ++li) run_rows<kStep, kOuter, 1>(li, v, ch, op);
      }
      store_outer<kOuter>(v, c);
    }
    stats_.products = std::uint64_t(rows_) * std::uint64_t(s_.n) * std::uint64_t(s_.k);
    stats_.changed_steps = std::uint64_t(_mm512_reduce_add_epi64(changed_));
    alignas(64) std::uint8_t nm[kLanes];
    _mm512_store_si512(nm, nochange_max_);
    std::int64_t m = *std::max_element(nm, nm + kLanes);
    if constexpr (kStep == ByteStep::wrap_scaled) m >>= plan_.shift;
    stats_.max_abs_tile_sum = std::max(max_abs_, m);
    return stats_;
  }

  GemmShape s_;
  IntOperand a_;
  const AccumulatorConfig& cfg_;
  BytePlan plan_;
  Tiling tl_;
  int r0_, r1_, rows_;
  bool exact16_ = false, apacked_ = false;
  int block_ = 1;
  using Scratch = ByteScratch;
  static WorkspacePool<Scratch>& pool() {
    static WorkspacePool<Scratch> p;
    return p;
  }
  Scratch& ws_ = pool().current();
  std::vector<ByteSegment>& segs_ = ws_.segs;
  std::vector<ByteChunk>& chunks_ = ws_.chunks;
  AlignedBuffer<std::uint8_t>& aoff_ = ws_.aoff;
  AlignedBuffer<std::uint32_t>& apairs_ = ws_.apairs;
  const AlignedBuffer<std::int8_t>& bbytes_;
  const PackedBPairs& bpairs_;
  AlignedBuffer<std::int8_t>& table_ = ws_.table;
  AlignedBuffer<std::int32_t>& outer_ = ws_.outer;
  AlignedBuffer<std::int16_t>& outer16_ = ws_.outer16;
  AlignedBuffer<std::int8_t>& sstate_ = ws_.sstate;
  GemmStats stats_;
  __m512i changed_{}, nochange_max_{}, nthr_{}, olo_{}, ohi_{};
  std::int64_t max_abs_ = 0, half_ = 0;
};

}  // namespace avx512
}  // namespace
}  // namespace hdq::detail
