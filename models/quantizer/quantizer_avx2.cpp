// The quantizer's AVX2 path (quantizer_paths.h). This file is compiled with
// -mavx2 and only called when the CPU has AVX2; it uses raw pointers and
// intrinsics only (no inline library code that another translation unit could
// end up sharing), and hands every tail to the reference loop.
//
// Same bits as the reference, element by element:
// - v = min(max(x, lo), mx) / s: vmaxps/vminps/vdivps (one f32 rounding each; for
//   finite x they differ from std::max/std::min only in the sign of a zero,
//   which no rounding below can see: every zero becomes the integer 0);
// - nearest: vroundps to nearest-even (= nearbyint in the default FP mode);
// - stochastic: a = |v|, fl = vroundps toward -inf (floor), F = truncation of
//   (a - fl) * 2^r (>= 0, so truncation is floor), R_i from the 64-bit mix
//   below, magnitude = fl + (R < F), negated where v < 0;
// - luq (quantizer.h): a = |v|; a < 1: F = truncation of a * 2^r; a >= 1 (< 2^22 on
//   this path): e = exponent field - 127, F = mantissa field >> (23 - r) (= floor((a / 2^e
//   - 1) * 2^r), exactly); up = R < F; magnitude = up (a < 1) or 1 << (e + up) (vpsllvd),
//   negated where v < 0;
// - clamp to [qmin, qmax] in int32, then narrowed to int16 (|q| <= 255).
//
// The random bits R_i = mix64(key + (i + 1) * gamma) >> (64 - r) for 8
// elements: lanes of `even` hold elements 0, 2, 4, 6 and lanes of `odd`
// elements 1, 3, 5, 7 (R < 2^23 sits in the low half of its 64-bit lane, so
// even | (odd << 32) is the 8 R values in element order). AVX2 has no 64-bit
// multiply-low; z * c mod 2^64 is built from 32-bit partial products:
//   lo(z) lo(c) + ((hi(z) lo(c) + lo(z) hi(c)) << 32)      (all mod 2^64)
#include <immintrin.h>

#include <cstdint>

#include "models/quantizer/quantizer_paths.h"

namespace hdq::detail {
namespace {

constexpr std::uint64_t kGamma = 0x9e3779b97f4a7c15ULL;
constexpr std::uint64_t kMul1 = 0xbf58476d1ce4e5b9ULL;
constexpr std::uint64_t kMul2 = 0x94d049bb133111ebULL;

// z * c mod 2^64 per 64-bit lane; c_lo holds c (only its low 32 bits are read), c_hi holds c >> 32.
inline __m256i mul64(__m256i z, __m256i c_lo, __m256i c_hi) {
  const __m256i lo_lo = _mm256_mul_epu32(z, c_lo);
  const __m256i hi_lo = _mm256_mul_epu32(_mm256_srli_epi64(z, 32), c_lo);
  const __m256i lo_hi = _mm256_mul_epu32(z, c_hi);
  return _mm256_add_epi64(lo_lo, _mm256_slli_epi64(_mm256_add_epi64(hi_lo, lo_hi), 32));
}

struct Mixer {
  __m256i c1_lo = _mm256_set1_epi64x(static_cast<long long>(kMul1));
  __m256i c1_hi = _mm256_set1_epi64x(static_cast<long long>(kMul1 >> 32));
  __m256i c2_lo = _mm256_set1_epi64x(static_cast<long long>(kMul2));
  __m256i c2_hi = _mm256_set1_epi64x(static_cast<long long>(kMul2 >> 32));

  // random_bits.h mix64, 4 lanes.
  __m256i mix(__m256i z) const {
    z = _mm256_xor_si256(z, _mm256_srli_epi64(z, 30));
    z = mul64(z, c1_lo, c1_hi);
    z = _mm256_xor_si256(z, _mm256_srli_epi64(z, 27));
    z = mul64(z, c2_lo, c2_hi);
    return _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
  }
};

// The sr_bits-bit random values R_i (random_bits.h element_random_bits) of 8
// consecutive elements per next(), starting at flat index first_index.
class RandomBits8 {
 public:
  RandomBits8(std::uint64_t key, std::uint64_t first_index, int sr_bits)
      : shift_(_mm_cvtsi32_si128(64 - sr_bits)) {
    // Counters of elements 0, 2, 4, 6 (even) and 1, 3, 5, 7 (odd) of the first group of 8.
    const std::uint64_t c0 = key + (first_index + 1) * kGamma;
    even_ = _mm256_setr_epi64x(static_cast<long long>(c0), static_cast<long long>(c0 + 2 * kGamma),
                               static_cast<long long>(c0 + 4 * kGamma), static_cast<long long>(c0 + 6 * kGamma));
    odd_ = _mm256_add_epi64(even_, _mm256_set1_epi64x(static_cast<long long>(kGamma)));
  }
  __m256i next() {
    const __m256i r_even = _mm256_srl_epi64(mixer_.mix(even_), shift_);
    const __m256i r_odd = _mm256_srl_epi64(mixer_.mix(odd_), shift_);
    even_ = _mm256_add_epi64(even_, step_);
    odd_ = _mm256_add_epi64(odd_, step_);
    return _mm256_blend_epi32(r_even, _mm256_slli_epi64(r_odd, 32), 0xAA);
  }

 private:
  Mixer mixer_;
  __m128i shift_;
  __m256i even_, odd_;
  __m256i step_ = _mm256_set1_epi64x(static_cast<long long>(8 * kGamma));
};

// 2^r as f32 in every lane (exact, r <= 23).
inline __m256 pow2_ps(int r) {
  float two_r = 1.0f;
  for (int b = 0; b < r; ++b) two_r *= 2.0f;
  return _mm256_set1_ps(two_r);
}

// 8 int32 values (each within int16) -> 8 int16 at q.
inline void store8_i16(std::int16_t* q, __m256i v) {
  const __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), packed);
}

inline float hmax8(__m256 v) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  float m = lanes[0];
  for (int i = 1; i < 8; ++i) m = lanes[i] > m ? lanes[i] : m;
  return m;
}

}  // namespace

ScaleScan scan_avx2(const float* x, std::size_t n) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i exp_mask = _mm256_set1_epi32(0x7f800000);
  const __m256 zero = _mm256_setzero_ps();
  __m256 vmax = zero, negative = zero;
  __m256i nonfinite = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    vmax = _mm256_max_ps(vmax, _mm256_and_ps(v, abs_mask));
    negative = _mm256_or_ps(negative, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
    nonfinite = _mm256_or_si256(nonfinite, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(v), exp_mask), exp_mask));
  }
  float m = hmax8(vmax);
  bool any_negative = _mm256_movemask_ps(negative) != 0;
  bool any_nonfinite = !_mm256_testz_si256(nonfinite, nonfinite);
  for (; i < n && !any_nonfinite; ++i) {
    const float v = x[i];
    std::uint32_t bits;
    __builtin_memcpy(&bits, &v, sizeof bits);
    if ((bits & 0x7f800000u) == 0x7f800000u) any_nonfinite = true;
    const float a = v < 0.0f ? -v : v;
    m = a > m ? a : m;
    any_negative = any_negative || v < 0.0f;
  }
  if (any_nonfinite) return scan_reference({x, n});  // finds the first NaN / Inf
  ScaleScan r;
  r.max_abs = m;
  r.nonnegative = !any_negative;
  r.first_nonfinite = n;
  return r;
}

void quantize_span_avx2(const float* x, std::size_t n, std::uint64_t first_index, const QuantParams& p,
                        const QuantConfig& cfg, std::uint64_t key, std::int16_t* q) {
  if (!fast_paths_apply(p)) return quantize_span_reference({x, n}, first_index, p, cfg, key, {q, n});
  std::size_t i = 0;
  if (p.scale == 0.0f) {
    for (; i < n; ++i) q[i] = 0;
    return;
  }
  const __m256 lo = _mm256_set1_ps(p.is_unsigned ? 0.0f : -p.mx), hi = _mm256_set1_ps(p.mx);
  const __m256 s = _mm256_set1_ps(p.scale);
  const __m256i qmin = _mm256_set1_epi32(p.qmin), qmax = _mm256_set1_epi32(p.qmax);
  if (cfg.rounding == Rounding::nearest) {
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_div_ps(_mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(x + i), lo), hi), s);
      __m256i r = _mm256_cvttps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      r = _mm256_min_epi32(_mm256_max_epi32(r, qmin), qmax);
      store8_i16(q + i, r);
    }
  } else if (cfg.rounding == Rounding::luq) {
    RandomBits8 random(key, first_index, cfg.sr_bits);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    const __m256 scale_r = pow2_ps(cfg.sr_bits);
    const __m128i mant_shift = _mm_cvtsi32_si128(23 - cfg.sr_bits);
    const __m256i mant_mask = _mm256_set1_epi32(0x7fffff), bias = _mm256_set1_epi32(127);
    const __m256i ones = _mm256_set1_epi32(1), izero = _mm256_setzero_si256();
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_div_ps(_mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(x + i), lo), hi), s);
      const __m256 a = _mm256_and_ps(v, abs_mask);
      const __m256i below = _mm256_castps_si256(_mm256_cmp_ps(a, one, _CMP_LT_OQ));  // a < 1: -1
      // a < 1: F = floor(a * 2^r) (truncation of a value >= 0). a >= 1 (< 2^22 here): e and the
      // 23-bit mantissa field M of a; floor((a / 2^e - 1) * 2^r) = M >> (23 - r).
      const __m256i f_below = _mm256_cvttps_epi32(_mm256_mul_ps(a, scale_r));
      const __m256i bits = _mm256_castps_si256(a);
      const __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), bias);
      const __m256i f_above = _mm256_srl_epi32(_mm256_and_si256(bits, mant_mask), mant_shift);
      const __m256i f = _mm256_blendv_epi8(f_above, f_below, below);
      const __m256i r = random.next();
      const __m256i up = _mm256_cmpgt_epi32(f, r);  // R < F: -1
      // Below one: 0 or 1. Above: 2^(e + up), e + up <= 22.
      const __m256i m_below = _mm256_sub_epi32(izero, up);
      const __m256i m_above = _mm256_sllv_epi32(ones, _mm256_sub_epi32(e, up));
      const __m256i magnitude = _mm256_blendv_epi8(m_above, m_below, below);
      const __m256i negative = _mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_LT_OQ));
      __m256i qv = _mm256_sub_epi32(_mm256_xor_si256(magnitude, negative), negative);
      qv = _mm256_min_epi32(_mm256_max_epi32(qv, qmin), qmax);
      store8_i16(q + i, qv);
    }
  } else {
    RandomBits8 random(key, first_index, cfg.sr_bits);
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 zero = _mm256_setzero_ps();
    const __m256 scale_r = pow2_ps(cfg.sr_bits);
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_div_ps(_mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(x + i), lo), hi), s);
      const __m256 a = _mm256_and_ps(v, abs_mask);
      const __m256 fl = _mm256_round_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
      const __m256i f = _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_sub_ps(a, fl), scale_r));
      const __m256i r = random.next();
      const __m256i up = _mm256_cmpgt_epi32(f, r);  // R < F: -1
      const __m256i magnitude = _mm256_sub_epi32(_mm256_cvttps_epi32(fl), up);
      const __m256i negative = _mm256_castps_si256(_mm256_cmp_ps(v, zero, _CMP_LT_OQ));
      __m256i qv = _mm256_sub_epi32(_mm256_xor_si256(magnitude, negative), negative);
      qv = _mm256_min_epi32(_mm256_max_epi32(qv, qmin), qmax);
      store8_i16(q + i, qv);
    }
  }
  if (i < n) quantize_span_reference({x + i, n - i}, first_index + i, p, cfg, key, {q + i, n - i});
}

}  // namespace hdq::detail
