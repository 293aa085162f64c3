// The Hadamard transform's AVX2 path (hadamard_paths.h). This file is compiled
// with -mavx2 and only called when the CPU has AVX2; raw pointers and
// intrinsics only, everything else goes to the reference loops.
//
// The contract's order (docs/contract.md §4) computes, at stage h, for every
// pair (j, j + h): x[j] = u + w, x[j + h] = u - w with (u, w) = (x[j], x[j + h])
// of the previous stage. Here, per block of b elements:
// - stages h = 1, 2, 4 inside each 8-lane register: y = the register with the
//   lanes of each pair swapped; lanes j take x + y (= u + w) and lanes j + h
//   take y - x (= u - w), so each result is the same add or subtract of the
//   same operands in the same order;
// - stages h >= 8 two at a time (h and 2h) on whole registers: 4 registers at
//   j, j + h, j + 2h, j + 3h go through stage h, then stage 2h, exactly the
//   adds and subtracts of the reference.
// Blocks of 2 and 4 are whole inside each register (4 or 2 blocks per register).
#include <immintrin.h>

#include <cstdint>

#include "models/hadamard/hadamard_paths.h"

namespace hdq::detail {
namespace {

struct F32 {
  using T = float;
  using V = __m256;
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V stage1(V x) {
    const V y = _mm256_permute_ps(x, 0xB1);  // lanes 1,0,3,2 in each half
    return _mm256_blend_ps(_mm256_add_ps(x, y), _mm256_sub_ps(y, x), 0xAA);
  }
  static V stage2(V x) {
    const V y = _mm256_permute_ps(x, 0x4E);  // lanes 2,3,0,1 in each half
    return _mm256_blend_ps(_mm256_add_ps(x, y), _mm256_sub_ps(y, x), 0xCC);
  }
  static V stage4(V x) {
    const V y = _mm256_permute2f128_ps(x, x, 0x01);  // halves swapped
    return _mm256_blend_ps(_mm256_add_ps(x, y), _mm256_sub_ps(y, x), 0xF0);
  }
};

struct I32 {
  using T = std::int32_t;
  using V = __m256i;
  static V load(const T* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(T* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static V add(V a, V b) { return _mm256_add_epi32(a, b); }
  static V sub(V a, V b) { return _mm256_sub_epi32(a, b); }
  static V stage1(V x) {
    const V y = _mm256_shuffle_epi32(x, 0xB1);
    return _mm256_blend_epi32(_mm256_add_epi32(x, y), _mm256_sub_epi32(y, x), 0xAA);
  }
  static V stage2(V x) {
    const V y = _mm256_shuffle_epi32(x, 0x4E);
    return _mm256_blend_epi32(_mm256_add_epi32(x, y), _mm256_sub_epi32(y, x), 0xCC);
  }
  static V stage4(V x) {
    const V y = _mm256_permute2x128_si256(x, x, 0x01);
    return _mm256_blend_epi32(_mm256_add_epi32(x, y), _mm256_sub_epi32(y, x), 0xF0);
  }
};

// Stages h = 8 .. block/2 of one block at v (block >= 16).
template <typename O>
void wide_stages(typename O::T* v, int block) {
  using V = typename O::V;
  int h = 8;
  for (; 4 * h <= block; h *= 4)  // stages h and 2h together
    for (int i = 0; i < block; i += 4 * h)
      for (int j = i; j < i + h; j += 8) {
        const V a0 = O::load(v + j), a1 = O::load(v + j + h), a2 = O::load(v + j + 2 * h), a3 = O::load(v + j + 3 * h);
        const V b0 = O::add(a0, a1), b1 = O::sub(a0, a1), b2 = O::add(a2, a3), b3 = O::sub(a2, a3);
        O::store(v + j, O::add(b0, b2));
        O::store(v + j + 2 * h, O::sub(b0, b2));
        O::store(v + j + h, O::add(b1, b3));
        O::store(v + j + 3 * h, O::sub(b1, b3));
      }
  if (h < block)  // one stage left (h = block / 2)
    for (int j = 0; j < h; j += 8) {
      const V u = O::load(v + j), w = O::load(v + j + h);
      O::store(v + j, O::add(u, w));
      O::store(v + j + h, O::sub(u, w));
    }
}

// The whole transform for block >= 2; returns how many leading elements it did
// (all of n, or for block 2 and 4 the largest multiple of 8; the rest is the caller's).
template <typename O>
std::size_t transform(typename O::T* x, std::size_t n, int block) {
  using V = typename O::V;
  if (block == 2 || block == 4) {
    const std::size_t done = n / 8 * 8;
    for (std::size_t i = 0; i < done; i += 8) {
      V r = O::stage1(O::load(x + i));
      if (block == 4) r = O::stage2(r);
      O::store(x + i, r);
    }
    return done;
  }
  for (std::size_t base = 0; base < n; base += std::size_t(block)) {
    typename O::T* v = x + base;
    for (int i = 0; i < block; i += 8) O::store(v + i, O::stage4(O::stage2(O::stage1(O::load(v + i)))));
    if (block > 8) wide_stages<O>(v, block);
  }
  return n;
}

}  // namespace

void fwht_f32_avx2(float* x, std::size_t n, int block) {
  if (block < 2) return;
  const std::size_t done = transform<F32>(x, n, block);
  if (done < n) fwht_f32_reference(x + done, n - done, block);
}

void fwht_i32_avx2(std::int32_t* x, std::size_t n, int block) {
  if (block < 2) return;
  // Every intermediate of the transform is bounded by max |x_i| * block.
  __m256i vmax = _mm256_setzero_si256();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_epu32(vmax, _mm256_abs_epi32(I32::load(x + i)));  // |INT32_MIN| = 2^31 as unsigned
  alignas(32) std::uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), vmax);
  std::uint64_t max_abs = 0;
  for (std::uint32_t l : lanes) max_abs = l > max_abs ? l : max_abs;
  for (; i < n; ++i) {
    const std::int64_t v = x[i];
    const std::uint64_t a = static_cast<std::uint64_t>(v < 0 ? -v : v);
    max_abs = a > max_abs ? a : max_abs;
  }
  if (max_abs * static_cast<std::uint64_t>(block) > 0x7fffffffULL) return fwht_i32_reference(x, n, block);
  const std::size_t done = transform<I32>(x, n, block);
  if (done < n) fwht_i32_reference(x + done, n - done, block);
}

}  // namespace hdq::detail
