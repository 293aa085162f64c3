// Shared pieces of the SIMD GEMM kernels (docs/contract.md §5): operand
// ranges, tile geometry, row blocks, packed layouts, exact tile sums and the
// outer (Wo-bit) accumulator.
//
// The kernels are written once, as templates over a vector-width type T that
// carries the vector type and the primitives whose instructions differ with
// the width: gemm_simd_avx2.h (Avx2: 256-bit vectors, 32 byte lanes) and
// gemm_simd_avx512.h (Avx512: 512-bit vectors, 64 byte lanes). T::kLanes is
// the number of byte lanes, i.e. the output columns a byte kernel holds in one
// vector; a vector of int16 lanes holds kLanes / 2 of them, of int32 lanes
// kLanes / 4.
//
// Include only from gemm_avx2.cpp and gemm_avx512.cpp: everything here lives
// in an anonymous namespace of the including translation unit, compiled with
// its ISA flags, so no code of one width can be merged into the other's. The
// AVX2 pieces that do not depend on the width (value_range, pack_a_pairs) are
// also used by the AVX-512 unit, which is compiled with -mavx2 too.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <vector>

#include "models/accumulator/gemm.h"

namespace hdq::detail {
namespace {

// ---------------------------------------------------------------- buffers
// 64-byte aligned, uninitialised scratch (std::vector would zero it first).
// resize() keeps the allocation when it is large enough.
template <typename T>
class AlignedBuffer {
 public:
  void resize(std::size_t n) {
    n_ = n;
    if (n <= cap_) return;
    p_.reset(static_cast<T*>(::operator new[](n * sizeof(T), std::align_val_t{64})));
    cap_ = n;
  }
  T* data() { return p_.get(); }
  const T* data() const { return p_.get(); }
  T& operator[](std::size_t i) { return p_[i]; }
  const T& operator[](std::size_t i) const { return p_[i]; }
  std::size_t size() const { return n_; }

 private:
  struct Free {
    void operator()(T* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<T[], Free> p_;
  std::size_t n_ = 0, cap_ = 0;
};

// ---------------------------------------------------------------- threads
// Row blocks of about equal size, multiples of 4 rows (the kernels' row
// groups) except the last; block i covers [row_block(i), row_block(i + 1)).
inline int row_block(int m, int blocks, int i) {
  if (i >= blocks) return m;
  const std::int64_t groups = (std::int64_t(m) + 3) / 4;
  return int(std::min<std::int64_t>(m, 4 * (groups * i / blocks)));
}

// kernel on each row block (at most one per row group), one per thread of the context's pool; the
// statistics merged in block order. With a workspace type W the kernel is
// called as kernel(w, r0, r1), w the context's workspace of the block (so
// block t of every GEMM of the context reuses the same one, whichever thread
// runs it); with W = void as kernel(r0, r1).
template <class W = void, typename Kernel>
GemmStats run_blocks(GemmContext& ctx, GemmShape s, int threads, Kernel kernel) {
  threads = std::clamp(threads, 1, std::max(1, (s.m + 3) / 4));
  GemmStats* parts = ctx.block_stats(threads);
  if constexpr (std::is_void_v<W>) {
    ctx.pool().run(threads, [&](int t) { parts[t] = kernel(row_block(s.m, threads, t), row_block(s.m, threads, t + 1)); });
  } else {
    const GemmWorkspaces::List<W> ws = ctx.workspaces().get<W>(threads);
    ctx.pool().run(threads, [&](int t) {
      parts[t] = kernel(ws[t], row_block(s.m, threads, t), row_block(s.m, threads, t + 1));
    });
  }
  GemmStats total;
  for (int t = 0; t < threads; ++t) total.merge(parts[t]);
  return total;
}

// The context's one workspace of type W outside the row blocks (B packed once per GEMM).
template <class W>
W& shared_workspace(GemmContext& ctx) {
  return ctx.workspaces().get<W>(1)[0];
}

// ---------------------------------------------------------------- values
struct ValueRange {
  int lo = 0, hi = 0;  // actual min / max of the values (0, 0 when empty)
};

inline ValueRange value_range(const std::int16_t* v, std::size_t n) {
  if (n == 0) return {};
  __m256i mn = _mm256_set1_epi16(std::numeric_limits<std::int16_t>::max());
  __m256i mx = _mm256_set1_epi16(std::numeric_limits<std::int16_t>::min());
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + i));
    mn = _mm256_min_epi16(mn, x);
    mx = _mm256_max_epi16(mx, x);
  }
  // Horizontal reduction in registers (taking the vectors' address would
  // keep them in memory inside the loop).
  __m128i m = _mm_min_epi16(_mm256_castsi256_si128(mn), _mm256_extracti128_si256(mn, 1));
  __m128i M = _mm_max_epi16(_mm256_castsi256_si128(mx), _mm256_extracti128_si256(mx, 1));
  m = _mm_min_epi16(m, _mm_shuffle_epi32(m, 0x4e));
  M = _mm_max_epi16(M, _mm_shuffle_epi32(M, 0x4e));
  m = _mm_min_epi16(m, _mm_shuffle_epi32(m, 0xb1));
  M = _mm_max_epi16(M, _mm_shuffle_epi32(M, 0xb1));
  m = _mm_min_epi16(m, _mm_srli_epi32(m, 16));
  M = _mm_max_epi16(M, _mm_srli_epi32(M, 16));
  int lo = static_cast<std::int16_t>(_mm_extract_epi16(m, 0)), hi = static_cast<std::int16_t>(_mm_extract_epi16(M, 0));
  for (; i < n; ++i) lo = std::min<int>(lo, v[i]), hi = std::max<int>(hi, v[i]);
  return {lo, hi};
}

// Smallest and largest product a * b over a in ra, b in rb.
inline ValueRange product_range(ValueRange ra, ValueRange rb) {
  const int c[4] = {ra.lo * rb.lo, ra.lo * rb.hi, ra.hi * rb.lo, ra.hi * rb.hi};
  return {*std::min_element(c, c + 4), *std::max_element(c, c + 4)};
}

// ---------------------------------------------------------------- tiles
// Tile tau covers k in [tau * t, min(K, (tau + 1) * t)). For the pair kernels
// every tile is cut into k-pairs starting at its first k; an odd tile's last
// pair is padded with a zero product.
struct Tiling {
  int k = 0, t = 1, ntiles = 0, pairs_per_tile = 0, total_pairs = 0;
  Tiling(int K, const AccumulatorConfig& cfg) : k(K), t(tile_length(cfg, K)) {
    ntiles = t > 0 ? (K + t - 1) / t : 0;
    pairs_per_tile = (t + 1) / 2;
    total_pairs = ntiles > 0 ? (ntiles - 1) * pairs_per_tile + (len(ntiles - 1) + 1) / 2 : 0;
  }
  int begin(int tau) const { return tau * t; }
  int end(int tau) const { return std::min(k, tau * t + t); }
  int len(int tau) const { return end(tau) - begin(tau); }
  int pair_base(int tau) const { return tau * pairs_per_tile; }
  int pairs(int tau) const { return (len(tau) + 1) / 2; }
};

// ---------------------------------------------------------------- packing
// B for the pair (vpmaddubsw) kernels: per kLanes-column vector v and k-pair
// p, two groups of kLanes bytes (the vector's first and second half of
// columns); in a group the bytes 2j, 2j+1 hold b[k][j], b[k+1][j] as int8 (0
// past K-pad or N). Also, per tile, amin * (column sums), which undoes the
// bias of A: in int32 and reduced mod 2^16 for int16 lanes.
template <class T>
struct PackedBPairs {
  using V = typename T::V;
  static constexpr int kLanes = T::kLanes;
  int nvec = 0, total_pairs = 0, ntiles = 0;
  AlignedBuffer<std::int8_t> bytes;    // [nvec][total_pairs][2][kLanes]
  AlignedBuffer<std::int32_t> colsum;  // [nvec][ntiles][kLanes]: B's tile column sums
  AlignedBuffer<std::int32_t> corr32;  // [nvec][ntiles][kLanes]: amin * colsum
  AlignedBuffer<std::int16_t> corr16;  // [nvec][ntiles][kLanes]: the same mod 2^16
  int amin = 0;                        // what corr32 and corr16 were made for
  const std::int8_t* pair(int v, int p) const {
    return bytes.data() + (std::size_t(v) * total_pairs + p) * 2 * kLanes;
  }
  const V* c32(int v, int tau) const {
    return reinterpret_cast<const V*>(corr32.data() + (std::size_t(v) * ntiles + tau) * kLanes);
  }
  const V* c16(int v, int tau) const {
    return reinterpret_cast<const V*>(corr16.data() + (std::size_t(v) * ntiles + tau) * kLanes);
  }
};

template <class T>
inline void init_b_pairs(GemmShape s, const Tiling& tl, PackedBPairs<T>& out) {
  constexpr int kLanes = T::kLanes;
  out.nvec = (s.n + kLanes - 1) / kLanes;
  out.total_pairs = tl.total_pairs;
  out.ntiles = tl.ntiles;
  out.bytes.resize(std::size_t(out.nvec) * tl.total_pairs * 2 * kLanes);
  out.colsum.resize(std::size_t(out.nvec) * tl.ntiles * kLanes);
  out.corr32.resize(std::size_t(out.nvec) * tl.ntiles * kLanes);
  out.corr16.resize(std::size_t(out.nvec) * tl.ntiles * kLanes);
}

// Packs the vector v's bytes and tile column sums (init_b_pairs first).
// Requires every b to fit int8.
template <class T>
inline void pack_b_pair_bytes(GemmShape s, const std::int16_t* b, const Tiling& tl, int v, PackedBPairs<T>& out) {
  using V = typename T::V;
  constexpr int kLanes = T::kLanes;
  const int j0 = v * kLanes, nj = std::min(kLanes, s.n - j0);
  const V low_byte = T::set1_16(0xff);
  for (int tau = 0; tau < tl.ntiles; ++tau) {
    // Column sums of the tile, int32, a quarter of the vector's columns each.
    V cs[4] = {T::zero(), T::zero(), T::zero(), T::zero()};
    for (int q = 0; q < tl.pairs(tau); ++q) {
      const int k = tl.begin(tau) + 2 * q;
      const std::int16_t* r0 = b + std::size_t(k) * s.n + j0;
      V x0[2], x1[2] = {T::zero(), T::zero()};
      T::load_columns16(r0, nj, x0);
      if (k + 1 < tl.end(tau)) T::load_columns16(r0 + s.n, nj, x1);
      std::int8_t* dst = out.bytes.data() + (std::size_t(v) * tl.total_pairs + tl.pair_base(tau) + q) * 2 * kLanes;
      for (int g = 0; g < 2; ++g) {
        T::store(dst + kLanes * g, T::or_(T::and_(x0[g], low_byte), T::shl16(x1[g], 8)));
        V sum[2];
        T::widen16_32(T::add16(x0[g], x1[g]), sum);  // |b[k] + b[k+1]| <= 256
        cs[2 * g] = T::add32(cs[2 * g], sum[0]);
        cs[2 * g + 1] = T::add32(cs[2 * g + 1], sum[1]);
      }
    }
    V* sums = reinterpret_cast<V*>(out.colsum.data() + (std::size_t(v) * tl.ntiles + tau) * kLanes);
    for (int g = 0; g < 4; ++g) T::store(sums + g, cs[g]);
  }
}

// The vector v's corrections for A's minimum amin (pack_b_pair_bytes first):
// a GEMM whose A differs only in its minimum reuses the packed bytes.
template <class T>
inline void set_b_pair_corrections(const Tiling& tl, int amin, int v, PackedBPairs<T>& out) {
  using V = typename T::V;
  constexpr int kLanes = T::kLanes;
  const V am = T::set1_32(amin);
  for (int tau = 0; tau < tl.ntiles; ++tau) {
    const std::size_t at = (std::size_t(v) * tl.ntiles + tau) * kLanes;
    const V* sums = reinterpret_cast<const V*>(out.colsum.data() + at);
    V* d32 = reinterpret_cast<V*>(out.corr32.data() + at);
    V* d16 = reinterpret_cast<V*>(out.corr16.data() + at);
    V c32[4];
    for (int g = 0; g < 4; ++g) T::store(d32 + g, c32[g] = T::mullo32(T::load(sums + g), am));
    for (int g = 0; g < 2; ++g) T::store(d16 + g, T::low16_of_32(c32[2 * g], c32[2 * g + 1]));
  }
}

// Packs the vector v for A's minimum amin (init_b_pairs first).
template <class T>
inline void pack_b_pairs(GemmShape s, const std::int16_t* b, const Tiling& tl, int amin, int v,
                         PackedBPairs<T>& out) {
  pack_b_pair_bytes(s, b, tl, v, out);
  set_b_pair_corrections(tl, amin, v, out);
}

// A rows for the pair kernels: per k-pair the bytes (a[k] - amin,
// a[k+1] - amin) as uint8, twice, in a uint32 (one vpbroadcastd loads it), in
// the tile-padded pair layout (the pad byte 0). Requires amax - amin <= 255.
// Independent of the kernels' width.
inline void pack_a_pairs(GemmShape s, const std::int16_t* a, int amin, const Tiling& tl, int row_begin, int row_end,
                         AlignedBuffer<std::uint32_t>& out) {
  const std::size_t stride = std::size_t(tl.total_pairs);
  out.resize(std::size_t(row_end - row_begin) * stride + 8);
  const __m256i bias = _mm256_set1_epi16(static_cast<std::int16_t>(amin));
  alignas(32) std::uint8_t tmp[64];
  for (int i = row_begin; i < row_end; ++i) {
    const std::int16_t* src = a + std::size_t(i) * s.k;
    std::uint32_t* dst = out.data() + std::size_t(i - row_begin) * stride;
    for (int tau = 0; tau < tl.ntiles; ++tau) {
      const int k0 = tl.begin(tau), n = tl.len(tau);
      std::uint32_t* d = dst + tl.pair_base(tau);
      int q = 0;
      for (; q + 32 <= n; q += 32) {  // 16 pairs
        const __m256i x0 = _mm256_sub_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + k0 + q)), bias);
        const __m256i x1 =
            _mm256_sub_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + k0 + q + 16)), bias);
        // bytes a'0 a'1 a'2 ... as 16 uint16 pairs, then each pair twice.
        const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi16(x0, x1), 0xd8);
        const __m256i lo = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(p));
        const __m256i hi = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(p, 1));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + q / 2), _mm256_or_si256(lo, _mm256_slli_epi32(lo, 16)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + q / 2 + 8), _mm256_or_si256(hi, _mm256_slli_epi32(hi, 16)));
      }
      for (; q < n; q += 2) {
        tmp[0] = static_cast<std::uint8_t>(src[k0 + q] - amin);
        tmp[1] = q + 1 < n ? static_cast<std::uint8_t>(src[k0 + q + 1] - amin) : 0;
        const std::uint32_t pr = std::uint32_t(tmp[0]) | std::uint32_t(tmp[1]) << 8;
        d[q / 2] = pr | pr << 16;
      }
    }
  }
}

// Exact tile sums of R rows x kLanes columns over one tile in int16 lanes:
// e[r][g] (g = the first, second half of the columns) = sum_k a[k] * b[k][j].
// Requires every biased partial sum and the result to fit int16 (the caller's
// plan checks). ap: the rows' pair layouts (pack_a_pairs); corr[g] = amin *
// (tile column sums), reduced mod 2^16.
template <class T, int R>
[[gnu::always_inline]] inline void exact_tile_sums16(const std::uint32_t* const* ap, const std::int8_t* bp, int np,
                                                     const typename T::V corr[2], typename T::V (&e)[R][2]) {
  using V = typename T::V;
  constexpr int kPair = 2 * T::kLanes;  // bytes of B per k-pair
  if constexpr (R == 4) {
    // Named accumulators: GCC keeps them in registers.
    V a0 = corr[0], a1 = corr[1], b0 = corr[0], b1 = corr[1], c0 = corr[0], c1 = corr[1], d0 = corr[0], d1 = corr[1];
    const std::uint32_t *pa = ap[0], *pb = ap[1], *pc = ap[2], *pd = ap[3];
    for (int q = 0; q < np; ++q, bp += kPair) {
      const V g0 = T::load(bp), g1 = T::load(bp + T::kLanes);
      V av = T::set1_32(static_cast<int>(pa[q]));
      a0 = T::add16(a0, T::maddubs(av, g0));
      a1 = T::add16(a1, T::maddubs(av, g1));
      av = T::set1_32(static_cast<int>(pb[q]));
      b0 = T::add16(b0, T::maddubs(av, g0));
      b1 = T::add16(b1, T::maddubs(av, g1));
      av = T::set1_32(static_cast<int>(pc[q]));
      c0 = T::add16(c0, T::maddubs(av, g0));
      c1 = T::add16(c1, T::maddubs(av, g1));
      av = T::set1_32(static_cast<int>(pd[q]));
      d0 = T::add16(d0, T::maddubs(av, g0));
      d1 = T::add16(d1, T::maddubs(av, g1));
    }
    e[0][0] = a0, e[0][1] = a1, e[1][0] = b0, e[1][1] = b1, e[2][0] = c0, e[2][1] = c1, e[3][0] = d0, e[3][1] = d1;
  } else {
    for (int r = 0; r < R; ++r) {
      V x0 = corr[0], x1 = corr[1];
      const std::uint32_t* pa = ap[r];
      for (int q = 0; q < np; ++q) {
        const V av = T::set1_32(static_cast<int>(pa[q]));
        x0 = T::add16(x0, T::maddubs(av, T::load(bp + kPair * q)));
        x1 = T::add16(x1, T::maddubs(av, T::load(bp + kPair * q + T::kLanes)));
      }
      e[r][0] = x0, e[r][1] = x1;
    }
  }
}

// The same in int32 lanes (e[g]: a quarter of the columns each) for any plan
// that keeps a vpmaddubsw lane exact: int16 partial sums over `block` pairs
// at a time, widened and added.
template <class T>
inline void exact_tile_sums32(const std::uint32_t* ap, const std::int8_t* bp, int np, int block,
                              const typename T::V corr[4], typename T::V e[4]) {
  using V = typename T::V;
  constexpr int kPair = 2 * T::kLanes;
  for (int g = 0; g < 4; ++g) e[g] = corr[g];
  for (int q0 = 0; q0 < np; q0 += block) {
    V s0 = T::zero(), s1 = T::zero();
    const int q1 = std::min(np, q0 + block);
    for (int q = q0; q < q1; ++q) {
      const V av = T::set1_32(static_cast<int>(ap[q]));
      s0 = T::add16(s0, T::maddubs(av, T::load(bp + kPair * q)));
      s1 = T::add16(s1, T::maddubs(av, T::load(bp + kPair * q + T::kLanes)));
    }
    V w[2];
    T::widen16_32(s0, w);
    e[0] = T::add32(e[0], w[0]);
    e[1] = T::add32(e[1], w[1]);
    T::widen16_32(s1, w);
    e[2] = T::add32(e[2], w[0]);
    e[3] = T::add32(e[3], w[1]);
  }
}

// The largest of the uint16 lanes.
template <class T>
inline std::uint32_t hmax_u16(typename T::V v) {
  return T::hmax_u32(T::max_u32(T::and_(v, T::set1_32(0xffff)), T::shr32(v, 16)));
}

// ---------------------------------------------------------------- outer
// The Wo-bit outer accumulator of one output row segment (kLanes columns),
// int32 lanes: O = clamp(O + P, outer range), counting the lanes the clamp
// changed. With kClamp false the caller has proved that no sum can leave the
// range.
template <class T, bool kClamp>
[[gnu::always_inline]] inline void outer_add32(std::int32_t* o, const typename T::V p[4], typename T::V lo,
                                               typename T::V hi, std::uint64_t& overflows) {
  using V = typename T::V;
  V sum[4], c[4];
  for (int g = 0; g < 4; ++g) {
    V* op = reinterpret_cast<V*>(o) + g;
    sum[g] = T::add32(T::load(op), p[g]);
    if constexpr (kClamp) {
      c[g] = T::min32(T::max32(sum[g], lo), hi);
      T::store(op, c[g]);
    } else {
      T::store(op, sum[g]);
    }
  }
  if constexpr (kClamp) overflows += T::count_ne32(c, sum);
}

// True when no outer sum can leave the Wo-bit range (nor int32): the outer
// accumulator then needs no clamp. max_abs_p bounds |P| of every tile.
inline bool outer_cannot_overflow(std::int64_t ntiles, std::int64_t max_abs_p, int outer_bits) {
  const std::int64_t hi = (std::int64_t{1} << (outer_bits - 1)) - 1;
  return max_abs_p == 0 || ntiles <= hi / max_abs_p;
}

// Copies the outer values of one vector's columns to C (only its nj real columns).
template <class T>
inline void store_row_segment(std::int32_t* dst, const std::int32_t* o, int nj) {
  if (nj == T::kLanes)
    std::memcpy(dst, o, sizeof(std::int32_t) * T::kLanes);  // a fixed size: inlined as vector moves
  else
    std::memcpy(dst, o, sizeof(std::int32_t) * std::size_t(nj));
}

}  // namespace
}  // namespace hdq::detail
