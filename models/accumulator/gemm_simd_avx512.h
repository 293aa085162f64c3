// The AVX-512 width of the SIMD GEMM kernels (gemm_simd.h): 512-bit vectors,
// 64 byte lanes. Include only from gemm_avx512.cpp (compiled with -mavx2
// -mavx512f -mavx512bw -mavx512vl).
//
// What is AVX-512's own: a compare gives a mask register, so lanes are
// counted by popcounts of masks, and the byte step adds 1 under the mask of
// the changed lanes to a counter that starts at 0; column tails are masked
// loads.
#pragma once

#include "models/accumulator/gemm_simd_bytes.h"

namespace hdq::detail {
namespace {

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

struct Avx512 {
  using V = __m512i;
  static constexpr int kLanes = 64;  // byte lanes: output columns per byte vector
  using ByteMask = __mmask64;        // one bit per byte lane
  static constexpr ByteMask kAllBytes = ~ByteMask{0};
  // No prefetch of the next row group's outer sums: 2% slower on the 256^3
  // saturate benchmark at this width (interleaved A/B runs on this project's AMD EPYC machine).
  static constexpr bool kPrefetchOuter = false;

  static V load(const void* p) { return _mm512_load_si512(p); }
  static void store(void* p, V v) { _mm512_store_si512(p, v); }
  static V zero() { return _mm512_setzero_si512(); }
  static V set1_8(int x) { return _mm512_set1_epi8(static_cast<char>(x)); }
  static V set1_16(int x) { return _mm512_set1_epi16(static_cast<std::int16_t>(x)); }
  static V set1_32(int x) { return _mm512_set1_epi32(x); }

  static V add8(V a, V b) { return _mm512_add_epi8(a, b); }
  static V sub8(V a, V b) { return _mm512_sub_epi8(a, b); }
  static V add16(V a, V b) { return _mm512_add_epi16(a, b); }
  static V add32(V a, V b) { return _mm512_add_epi32(a, b); }
  static V add64(V a, V b) { return _mm512_add_epi64(a, b); }
  static V adds_u8(V a, V b) { return _mm512_adds_epu8(a, b); }
  static V and_(V a, V b) { return _mm512_and_si512(a, b); }
  static V or_(V a, V b) { return _mm512_or_si512(a, b); }
  static V shl16(V a, int n) { return _mm512_slli_epi16(a, unsigned(n)); }
  static V sra16(V a, int n) { return _mm512_srai_epi16(a, unsigned(n)); }
  static V shr32(V a, int n) { return _mm512_srli_epi32(a, unsigned(n)); }
  static V sra32(V a, int n) { return _mm512_srai_epi32(a, unsigned(n)); }
  static V mullo32(V a, V b) { return _mm512_mullo_epi32(a, b); }
  static V maddubs(V a_u8, V b_i8) { return _mm512_maddubs_epi16(a_u8, b_i8); }
  static V sad_u8(V a) { return _mm512_sad_epu8(a, _mm512_setzero_si512()); }  // sums of 8 bytes, 64-bit lanes

  static V max_u8(V a, V b) { return _mm512_max_epu8(a, b); }
  static V max_u16(V a, V b) { return _mm512_max_epu16(a, b); }
  static V min16(V a, V b) { return _mm512_min_epi16(a, b); }
  static V max16(V a, V b) { return _mm512_max_epi16(a, b); }
  static V max_u32(V a, V b) { return _mm512_max_epu32(a, b); }
  static V min32(V a, V b) { return _mm512_min_epi32(a, b); }
  static V max32(V a, V b) { return _mm512_max_epi32(a, b); }
  static V abs16(V a) { return _mm512_abs_epi16(a); }
  static V abs32(V a) { return _mm512_abs_epi32(a); }

  // Lanes widened in column order: int8 -> 2 x int16, int8 -> 4 x int32, int16 -> 2 x int32.
  static void widen8_16(V s, V out[2]) {
    out[0] = _mm512_cvtepi8_epi16(_mm512_castsi512_si256(s));
    out[1] = _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(s, 1));
  }
  static void widen8_32(V s, V out[4]) {
    const __m256i l = _mm512_castsi512_si256(s), h = _mm512_extracti64x4_epi64(s, 1);
    out[0] = _mm512_cvtepi8_epi32(_mm256_castsi256_si128(l));
    out[1] = _mm512_cvtepi8_epi32(_mm256_extracti128_si256(l, 1));
    out[2] = _mm512_cvtepi8_epi32(_mm256_castsi256_si128(h));
    out[3] = _mm512_cvtepi8_epi32(_mm256_extracti128_si256(h, 1));
  }
  static void widen16_32(V s, V out[2]) {
    out[0] = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(s));
    out[1] = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(s, 1));
  }
  // Narrowed in column order (vpmovdw, vpmovwb truncate): the low 16 bits of
  // the int32 lanes of lo, hi; the low bytes of the int16 lanes of lo, hi.
  static V low16_of_32(V lo, V hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi32_epi16(lo)), _mm512_cvtepi32_epi16(hi), 1);
  }
  static V low_bytes(V lo, V hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi16_epi8(lo)), _mm512_cvtepi16_epi8(hi), 1);
  }

  // The lanes first .. first + 31 of a vector that hold one of its nj real columns.
  static __mmask32 column_mask32(int nj, int first) {
    const int n = std::clamp(nj - first, 0, 32);
    return n == 32 ? ~__mmask32{0} : (__mmask32{1} << n) - 1;
  }
  // The 64 int16 values row[0 .. 63] as two vectors, 0 past the first nj.
  static void load_columns16(const std::int16_t* row, int nj, V out[2]) {
    out[0] = _mm512_maskz_loadu_epi16(column_mask32(nj, 0), row);
    out[1] = nj > 32 ? _mm512_maskz_loadu_epi16(column_mask32(nj, 32), row + 32) : _mm512_setzero_si512();
  }

  // The byte kernel's table offsets of n <= 32 A values: (a - amin) * 8
  // (a slot is 64 bytes: the offset / 8, for scale-8 addressing).
  static void table_offsets(const std::int16_t* src, int n, int amin, std::uint8_t* dst) {
    const __mmask32 m = column_mask32(n, 0);
    const V x = _mm512_slli_epi16(_mm512_sub_epi16(_mm512_maskz_loadu_epi16(m, src), set1_16(amin)), 3);
    _mm256_mask_storeu_epi8(dst, m, _mm512_cvtepi16_epi8(x));
  }

  static std::uint64_t hsum64(V v) { return std::uint64_t(_mm512_reduce_add_epi64(v)); }
  static std::uint32_t hmax_u32(V v) { return _mm512_reduce_max_epu32(v); }

  // Lanes that differ: int32 lanes of a[g], b[g] (g < 4); int16 lanes of (a0, b0), (a1, b1).
  static std::uint64_t count_ne32(const V a[4], const V b[4]) {
    return count_lanes(_mm512_cmpneq_epi32_mask(a[0], b[0]), _mm512_cmpneq_epi32_mask(a[1], b[1]),
                       _mm512_cmpneq_epi32_mask(a[2], b[2]), _mm512_cmpneq_epi32_mask(a[3], b[3]));
  }
  static std::uint64_t count_ne16(V a0, V b0, V a1, V b1) {
    return count_lanes(_mm512_cmpneq_epi16_mask(a0, b0), _mm512_cmpneq_epi16_mask(a1, b1));
  }
  // Some uint16 lane of a above b's.
  static bool any_gt_u16(V a, V b) { return _mm512_cmpgt_epu16_mask(a, b) != 0; }
  // The byte lanes where a <= b (uint8).
  static ByteMask le_u8(V a, V b) { return _mm512_cmple_epu8_mask(a, b); }
  // |s| (int8) in the lanes where n is 0, else 0.
  static V abs8_where_zero(V s, V n) { return _mm512_maskz_abs_epi8(_mm512_testn_epi8_mask(n, n), s); }

  // One accumulate step of the byte kernel for one row: s = rule(s + p), p
  // the 64 products at `pp`, loaded once; the rules of Avx2::ByteStepOp on
  // zmm registers (inline asm for the same reason), except the count: a zmm
  // compare yields a mask, so c += 1 in the changed lanes (vpcmpneqb, then a
  // masked subtract of -1) and c starts at 0.
  template <ByteStep kStep>
  struct ByteStepOp {
    V lo, h, m;  // constants: biased bottom rail; wrap_general 2^(W-1) and 2^W - 1
    V minus_one = _mm512_set1_epi8(-1);
    static V count_start(int) { return _mm512_setzero_si512(); }
    [[gnu::always_inline]] inline void operator()(V& s, V& c, const V* pp) const {
      const V p = _mm512_load_si512(pp);
      V x;
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
};

}  // namespace
}  // namespace hdq::detail
