// Shared pieces of the AVX-512 GEMM kernels (docs/contract.md §5): the
// 64-column forms of the packed B pairs, exact tile sums and the outer
// (Wo-bit) accumulator. The width-independent pieces (buffers, ranges,
// tiling, the A pair packing) come from gemm_avx2_common.h.
//
// Include only from gemm_avx512.cpp: everything here is compiled with
// -mavx512f -mavx512bw -mavx512vl and lives in an anonymous namespace of that
// one translation unit (namespace avx512 keeps the 64-lane names apart from
// the 32-lane ones of the AVX2 headers).
#pragma once

#include "models/accumulator/gemm_avx2_common.h"

namespace hdq::detail {
namespace {
namespace avx512 {

constexpr int kLanes = 64;  // output columns per 512-bit byte vector

// The lanes first .. first + 31 of a vector that hold one of its nj real columns.
inline __mmask32 column_mask32(int nj, int first) {
  const int n = std::clamp(nj - first, 0, 32);
  return n == 32 ? ~__mmask32{0} : (__mmask32{1} << n) - 1;
}

// 64 int16 values of a B row from column j0 (0 past its nj real columns), as two vectors.
inline void load_b_row(const std::int16_t* row, int nj, __m512i& lo, __m512i& hi) {
  lo = _mm512_maskz_loadu_epi16(column_mask32(nj, 0), row);
  hi = nj > 32 ? _mm512_maskz_loadu_epi16(column_mask32(nj, 32), row + 32) : _mm512_setzero_si512();
}

// The low bytes of 64 int16 lanes (lo: columns 0..31, hi: 32..63), in column order.
inline __m512i low_bytes(__m512i lo, __m512i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi16_epi8(lo)), _mm512_cvtepi16_epi8(hi), 1);
}

// ---------------------------------------------------------------- packing
// B for the pair (vpmaddubsw) kernels: per 64-column vector v and k-pair p,
// two 64-byte groups (columns 0..31, 32..63 of the vector); in a group the
// bytes 2j, 2j+1 hold b[k][j], b[k+1][j] as int8 (0 past K-pad or N). Also,
// per tile, amin * (column sums), which undoes the bias of A: in int32 and
// reduced mod 2^16 for int16 lanes.
struct PackedBPairs {
  int nvec = 0, total_pairs = 0, ntiles = 0;
  AlignedBuffer<std::int8_t> bytes;    // [nvec][total_pairs][2][64]
  AlignedBuffer<std::int32_t> corr32;  // [nvec][ntiles][64]
  AlignedBuffer<std::int16_t> corr16;  // [nvec][ntiles][64]
  const std::int8_t* pair(int v, int p) const { return bytes.data() + (std::size_t(v) * total_pairs + p) * 128; }
  const __m512i* c32(int v, int tau) const {
    return reinterpret_cast<const __m512i*>(corr32.data() + (std::size_t(v) * ntiles + tau) * kLanes);
  }
  const __m512i* c16(int v, int tau) const {
    return reinterpret_cast<const __m512i*>(corr16.data() + (std::size_t(v) * ntiles + tau) * kLanes);
  }
};

inline void init_b_pairs(GemmShape s, const Tiling& tl, PackedBPairs& out) {
  out.nvec = (s.n + kLanes - 1) / kLanes;
  out.total_pairs = tl.total_pairs;
  out.ntiles = tl.ntiles;
  out.bytes.resize(std::size_t(out.nvec) * tl.total_pairs * 128);
  out.corr32.resize(std::size_t(out.nvec) * tl.ntiles * kLanes);
  out.corr16.resize(std::size_t(out.nvec) * tl.ntiles * kLanes);
}

// Packs the 64-column vector v (init_b_pairs first). Requires every b to fit int8.
inline void pack_b_pairs(GemmShape s, const std::int16_t* b, const Tiling& tl, int amin, int v, PackedBPairs& out) {
  const int j0 = v * kLanes, nj = std::min(kLanes, s.n - j0);
  const __m512i low_byte = _mm512_set1_epi16(0xff);
  const __m512i am = _mm512_set1_epi32(amin);
  for (int tau = 0; tau < tl.ntiles; ++tau) {
    // Column sums of the tile, int32, columns 16g .. 16g + 15.
    __m512i cs[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
    for (int q = 0; q < tl.pairs(tau); ++q) {
      const int k = tl.begin(tau) + 2 * q;
      const std::int16_t* r0 = b + std::size_t(k) * s.n + j0;
      __m512i x0[2], x1[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
      load_b_row(r0, nj, x0[0], x0[1]);
      if (k + 1 < tl.end(tau)) load_b_row(r0 + s.n, nj, x1[0], x1[1]);
      std::int8_t* dst = out.bytes.data() + (std::size_t(v) * tl.total_pairs + tl.pair_base(tau) + q) * 128;
      for (int g = 0; g < 2; ++g) {
        const __m512i w = _mm512_or_si512(_mm512_and_si512(x0[g], low_byte), _mm512_slli_epi16(x1[g], 8));
        _mm512_store_si512(dst + 64 * g, w);
        const __m512i pair_sum = _mm512_add_epi16(x0[g], x1[g]);  // |.| <= 256
        cs[2 * g] = _mm512_add_epi32(cs[2 * g], _mm512_cvtepi16_epi32(_mm512_castsi512_si256(pair_sum)));
        cs[2 * g + 1] = _mm512_add_epi32(cs[2 * g + 1], _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(pair_sum, 1)));
      }
    }
    __m512i* d32 = reinterpret_cast<__m512i*>(out.corr32.data() + (std::size_t(v) * tl.ntiles + tau) * kLanes);
    __m512i* d16 = reinterpret_cast<__m512i*>(out.corr16.data() + (std::size_t(v) * tl.ntiles + tau) * kLanes);
    __m512i c32[4];
    for (int g = 0; g < 4; ++g) _mm512_store_si512(d32 + g, c32[g] = _mm512_mullo_epi32(cs[g], am));
    // vpmovdw truncates: the low 16 bits of each int32.
    for (int g = 0; g < 2; ++g)
      _mm512_store_si512(d16 + g, _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(c32[2 * g])),
                                                     _mm512_cvtepi32_epi16(c32[2 * g + 1]), 1));
  }
}

// Exact tile sums of R rows x 64 columns over one tile in int16 lanes:
// e[r][g] (g = columns 0..31, 32..63) = sum_k a[k] * b[k][j]. Requires every
// biased partial sum and the result to fit int16 (the caller's plan checks).
// ap: the rows' pair layouts (pack_a_pairs); corr: amin * (tile column sums)
// mod 2^16.
template <int R>
[[gnu::always_inline]] inline void exact_tile_sums16(const std::uint32_t* const* ap, const std::int8_t* bp, int np,
                                                     const __m512i corr[2], __m512i (&e)[R][2]) {
  for (int r = 0; r < R; ++r) e[r][0] = corr[0], e[r][1] = corr[1];
  for (int q = 0; q < np; ++q, bp += 128) {
    const __m512i g0 = _mm512_load_si512(bp), g1 = _mm512_load_si512(bp + 64);
    for (int r = 0; r < R; ++r) {
      const __m512i av = _mm512_set1_epi32(static_cast<int>(ap[r][q]));
      e[r][0] = _mm512_add_epi16(e[r][0], _mm512_maddubs_epi16(av, g0));
      e[r][1] = _mm512_add_epi16(e[r][1], _mm512_maddubs_epi16(av, g1));
    }
  }
}

// The same in int32 lanes (columns 16g .. 16g + 15) for any plan that keeps a
// vpmaddubsw lane exact: int16 partial sums over `block` pairs at a time,
// widened and added.
inline void exact_tile_sums32(const std::uint32_t* ap, const std::int8_t* bp, int np, int block, const __m512i corr[4],
                              __m512i e[4]) {
  for (int g = 0; g < 4; ++g) e[g] = corr[g];
  for (int q0 = 0; q0 < np; q0 += block) {
    __m512i s[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
    const int q1 = std::min(np, q0 + block);
    for (int q = q0; q < q1; ++q) {
      const __m512i av = _mm512_set1_epi32(static_cast<int>(ap[q]));
      for (int g = 0; g < 2; ++g)
        s[g] = _mm512_add_epi16(s[g], _mm512_maddubs_epi16(av, _mm512_load_si512(bp + 128 * q + 64 * g)));
    }
    for (int g = 0; g < 2; ++g) {
      e[2 * g] = _mm512_add_epi32(e[2 * g], _mm512_cvtepi16_epi32(_mm512_castsi512_si256(s[g])));
      e[2 * g + 1] = _mm512_add_epi32(e[2 * g + 1], _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(s[g], 1)));
    }
  }
}

// The largest of 32 uint16 lanes.
inline std::uint32_t hmax_epu16(__m512i v) {
  return _mm512_reduce_max_epu32(
      _mm512_max_epu32(_mm512_and_si512(v, _mm512_set1_epi32(0xffff)), _mm512_srli_epi32(v, 16)));
}

// ---------------------------------------------------------------- masks
// The lanes set in masks of 4 x 16 or 2 x 32 lanes, counted as one 64-bit
// mask. (GCC 12 miscompiles popcounts of separate 16-bit masks: it spills one
// with kmovw, 2 bytes, and reloads it as the 32-bit memory operand of popcnt.)
inline std::uint64_t count_lanes(__mmask16 m0, __mmask16 m1, __mmask16 m2, __mmask16 m3) {
  return std::uint64_t(
      __builtin_popcountll(_cvtmask64_u64(_mm512_kunpackd(_mm512_kunpackw(m3, m2), _mm512_kunpackw(m1, m0)))));
}
inline std::uint64_t count_lanes(__mmask32 m0, __mmask32 m1) {
  return std::uint64_t(__builtin_popcountll(_cvtmask64_u64(_mm512_kunpackd(m1, m0))));
}

// ---------------------------------------------------------------- outer
// The Wo-bit outer accumulator of one output row segment (64 columns), int32
// lanes: O = clamp(O + P, outer range), counting the lanes the clamp changed.
// With kClamp false the caller has proved that no sum can leave the range.
template <bool kClamp>
[[gnu::always_inline]] inline void outer_add32(std::int32_t* o, const __m512i p[4], __m512i lo, __m512i hi,
                                               std::uint64_t& overflows) {
  __mmask16 changed[4];
  for (int g = 0; g < 4; ++g) {
    __m512i* op = reinterpret_cast<__m512i*>(o + 16 * g);
    const __m512i sum = _mm512_add_epi32(_mm512_load_si512(op), p[g]);
    if constexpr (kClamp) {
      const __m512i c = _mm512_min_epi32(_mm512_max_epi32(sum, lo), hi);
      changed[g] = _mm512_cmpneq_epi32_mask(c, sum);
      _mm512_store_si512(op, c);
    } else {
      _mm512_store_si512(op, sum);
    }
  }
  if constexpr (kClamp) overflows += count_lanes(changed[0], changed[1], changed[2], changed[3]);
}

// Copies 64 int32 outer values to C (only the real columns of the vector).
inline void store_row_segment(std::int32_t* dst, const std::int32_t* o, int nj) {
  std::memcpy(dst, o, sizeof(std::int32_t) * std::size_t(std::min(nj, kLanes)));
}

}  // namespace avx512
}  // namespace
}  // namespace hdq::detail
