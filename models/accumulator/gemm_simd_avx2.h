// The AVX2 width of the SIMD GEMM kernels (gemm_simd.h): 256-bit vectors,
// 32 byte lanes. Include only from gemm_avx2.cpp (compiled with -mavx2).
//
// What is AVX2's own: a compare gives a vector of 0 / -1 lanes, so lanes are
// counted from movemask bits, and the byte step counts the unchanged steps as
// -1 from a counter that starts at the segment length; column tails are
// loaded through a zeroed buffer (no 16-bit masked loads).
#pragma once

#include "models/accumulator/gemm_simd_bytes.h"

namespace hdq::detail {
namespace {

struct Avx2 {
  using V = __m256i;
  static constexpr int kLanes = 32;  // byte lanes: output columns per byte vector
  using ByteMask = std::uint32_t;    // one bit per byte lane
  static constexpr ByteMask kAllBytes = ~ByteMask{0};
  // The byte kernel prefetches the next row group's outer sums (a 64-byte
  // line per row in int16 lanes).
  static constexpr bool kPrefetchOuter = true;

  static V load(const void* p) { return _mm256_load_si256(static_cast<const V*>(p)); }
  static void store(void* p, V v) { _mm256_store_si256(static_cast<V*>(p), v); }
  static V zero() { return _mm256_setzero_si256(); }
  static V set1_8(int x) { return _mm256_set1_epi8(static_cast<char>(x)); }
  static V set1_16(int x) { return _mm256_set1_epi16(static_cast<std::int16_t>(x)); }
  static V set1_32(int x) { return _mm256_set1_epi32(x); }

  static V add8(V a, V b) { return _mm256_add_epi8(a, b); }
  static V sub8(V a, V b) { return _mm256_sub_epi8(a, b); }
  static V add16(V a, V b) { return _mm256_add_epi16(a, b); }
  static V add32(V a, V b) { return _mm256_add_epi32(a, b); }
  static V add64(V a, V b) { return _mm256_add_epi64(a, b); }
  static V adds_u8(V a, V b) { return _mm256_adds_epu8(a, b); }
  static V and_(V a, V b) { return _mm256_and_si256(a, b); }
  static V or_(V a, V b) { return _mm256_or_si256(a, b); }
  static V shl16(V a, int n) { return _mm256_slli_epi16(a, n); }
  static V sra16(V a, int n) { return _mm256_srai_epi16(a, n); }
  static V shr32(V a, int n) { return _mm256_srli_epi32(a, n); }
  static V sra32(V a, int n) { return _mm256_srai_epi32(a, n); }
  static V mullo32(V a, V b) { return _mm256_mullo_epi32(a, b); }
  static V maddubs(V a_u8, V b_i8) { return _mm256_maddubs_epi16(a_u8, b_i8); }
  static V sad_u8(V a) { return _mm256_sad_epu8(a, _mm256_setzero_si256()); }  // sums of 8 bytes, 64-bit lanes

  static V max_u8(V a, V b) { return _mm256_max_epu8(a, b); }
  static V max_u16(V a, V b) { return _mm256_max_epu16(a, b); }
  static V min16(V a, V b) { return _mm256_min_epi16(a, b); }
  static V max16(V a, V b) { return _mm256_max_epi16(a, b); }
  static V max_u32(V a, V b) { return _mm256_max_epu32(a, b); }
  static V min32(V a, V b) { return _mm256_min_epi32(a, b); }
  static V max32(V a, V b) { return _mm256_max_epi32(a, b); }
  static V abs16(V a) { return _mm256_abs_epi16(a); }
  static V abs32(V a) { return _mm256_abs_epi32(a); }

  // Lanes widened in column order: int8 -> 2 x int16, int8 -> 4 x int32, int16 -> 2 x int32.
  static void widen8_16(V s, V out[2]) {
    out[0] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(s));
    out[1] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(s, 1));
  }
  static void widen8_32(V s, V out[4]) {
    const __m128i l = _mm256_castsi256_si128(s), h = _mm256_extracti128_si256(s, 1);
    out[0] = _mm256_cvtepi8_epi32(l);
    out[1] = _mm256_cvtepi8_epi32(_mm_srli_si128(l, 8));
    out[2] = _mm256_cvtepi8_epi32(h);
    out[3] = _mm256_cvtepi8_epi32(_mm_srli_si128(h, 8));
  }
  static void widen16_32(V s, V out[2]) {
    out[0] = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s));
    out[1] = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s, 1));
  }
  // Narrowed in column order: the low 16 bits of the int32 lanes of lo, hi;
  // the low bytes of the int16 lanes of lo, hi. (packus saturates: the high
  // parts are masked off first.)
  static V low16_of_32(V lo, V hi) {
    const V m = _mm256_set1_epi32(0xffff);
    return _mm256_permute4x64_epi64(_mm256_packus_epi32(_mm256_and_si256(lo, m), _mm256_and_si256(hi, m)), 0xd8);
  }
  static V low_bytes(V lo, V hi) {
    const V m = _mm256_set1_epi16(0xff);
    return _mm256_permute4x64_epi64(_mm256_packus_epi16(_mm256_and_si256(lo, m), _mm256_and_si256(hi, m)), 0xd8);
  }

  // The 32 int16 values row[0 .. 31] as two vectors, 0 past the first nj.
  static void load_columns16(const std::int16_t* row, int nj, V out[2]) {
    if (nj == kLanes) {
      out[0] = _mm256_loadu_si256(reinterpret_cast<const V*>(row));
      out[1] = _mm256_loadu_si256(reinterpret_cast<const V*>(row + 16));
      return;
    }
    alignas(32) std::int16_t tmp[kLanes] = {};
    std::copy_n(row, nj, tmp);
    out[0] = load(tmp);
    out[1] = load(tmp + 16);
  }

  // The byte kernel's table offsets of n <= 32 A values: (a - amin) * 4
  // (a slot is 32 bytes: the offset / 8, for scale-8 addressing).
  static void table_offsets(const std::int16_t* src, int n, int amin, std::uint8_t* dst) {
    if (n == 32) {
      const V bias = set1_16(amin);
      const V x0 = _mm256_slli_epi16(_mm256_sub_epi16(_mm256_loadu_si256(reinterpret_cast<const V*>(src)), bias), 2);
      const V x1 =
          _mm256_slli_epi16(_mm256_sub_epi16(_mm256_loadu_si256(reinterpret_cast<const V*>(src + 16)), bias), 2);
      _mm256_storeu_si256(reinterpret_cast<V*>(dst), _mm256_permute4x64_epi64(_mm256_packus_epi16(x0, x1), 0xd8));
      return;
    }
    for (int q = 0; q < n; ++q) dst[q] = static_cast<std::uint8_t>((src[q] - amin) * 4);
  }

  static std::uint64_t hsum64(V v) {
    const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return std::uint64_t(_mm_cvtsi128_si64(s)) + std::uint64_t(_mm_extract_epi64(s, 1));
  }
  static std::uint32_t hmax_u32(V v) {
    __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4e));
    m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xb1));
    return std::uint32_t(_mm_cvtsi128_si32(m));
  }

  // Lanes that differ: int32 lanes of a[g], b[g] (g < 4); int16 lanes of (a0, b0), (a1, b1).
  static std::uint64_t count_ne32(const V a[4], const V b[4]) {
    std::uint32_t eq = 0;
    for (int g = 0; g < 4; ++g)
      eq |= std::uint32_t(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(a[g], b[g])))) << (8 * g);
    return std::uint64_t(32 - __builtin_popcount(eq));
  }
  static std::uint64_t count_ne16(V a0, V b0, V a1, V b1) {
    const std::uint64_t eq = std::uint64_t(std::uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi16(a0, b0)))) |
                             std::uint64_t(std::uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi16(a1, b1)))) << 32;
    return std::uint64_t(64 - __builtin_popcountll(eq)) / 2;  // two mask bits per lane
  }
  // Some uint16 lane of a above b's.
  static bool any_gt_u16(V a, V b) {
    return _mm256_movemask_epi8(_mm256_cmpeq_epi16(_mm256_max_epu16(a, b), b)) != -1;
  }
  // The byte lanes where a <= b (uint8).
  static ByteMask le_u8(V a, V b) {
    return ByteMask(_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(a, b), b)));
  }
  // |s| (int8) in the lanes where n is 0, else 0.
  static V abs8_where_zero(V s, V n) {
    return _mm256_and_si256(_mm256_abs_epi8(s), _mm256_cmpeq_epi8(n, _mm256_setzero_si256()));
  }

  // One accumulate step of the byte kernel for one row: s = rule(s + p), p
  // the 32 products at `pp`, loaded once (two memory operands cost a second
  // load per step: about 14% slower on the 256^3 benchmark on Zen 5); c += -1
  // where the step changed nothing (vpcmpeqb gives -1), so c, started at the
  // segment length, ends as the number of changed steps. Inline asm keeps the
  // 4-6 ops free of register copies (GCC 12 inserts a vmovdqa per step when
  // this is written with intrinsics).
  template <ByteStep kStep>
  struct ByteStepOp {
    V lo, h, m;  // constants: biased bottom rail; wrap_general 2^(W-1) and 2^W - 1
    static V count_start(int len) { return set1_8(len); }
    inline void operator()(V& s, V& c, const V* pp) const {
      const V p = _mm256_load_si256(pp);  // one load, used twice
      V x;
      if constexpr (kStep == ByteStep::sat_full8) {
        asm("vpaddb %[p], %[s], %[x]\n\t"
            "vpaddsb %[p], %[s], %[s]\n\t"
            "vpcmpeqb %[x], %[s], %[x]\n\t"
            "vpaddb %[x], %[c], %[c]"
            : [s] "+x"(s), [c] "+x"(c), [x] "=&x"(x)
            : [p] "x"(p));
      } else if constexpr (kStep == ByteStep::sat_biased) {
        asm("vpaddb %[p], %[s], %[x]\n\t"
            "vpaddsb %[p], %[s], %[s]\n\t"
            "vpmaxsb %[lo], %[s], %[s]\n\t"
            "vpcmpeqb %[x], %[s], %[x]\n\t"
            "vpaddb %[x], %[c], %[c]"
            : [s] "+x"(s), [c] "+x"(c), [x] "=&x"(x)
            : [p] "x"(p), [lo] "x"(lo));
      } else if constexpr (kStep == ByteStep::wrap_scaled) {
        asm("vpaddsb %[p], %[s], %[x]\n\t"
            "vpaddb %[p], %[s], %[s]\n\t"
            "vpcmpeqb %[x], %[s], %[x]\n\t"
            "vpaddb %[x], %[c], %[c]"
            : [s] "+x"(s), [c] "+x"(c), [x] "=&x"(x)
            : [p] "x"(p));
      } else {
        asm("vpaddb %[p], %[s], %[x]\n\t"
            "vpaddb %[h], %[x], %[s]\n\t"
            "vpand %[m], %[s], %[s]\n\t"
            "vpsubb %[h], %[s], %[s]\n\t"
            "vpcmpeqb %[x], %[s], %[x]\n\t"
            "vpaddb %[x], %[c], %[c]"
            : [s] "+x"(s), [c] "+x"(c), [x] "=&x"(x)
            : [p] "x"(p), [h] "x"(h), [m] "x"(m));
      }
    }
  };
};

}  // namespace
}  // namespace hdq::detail
