// Shared pieces of the AVX2 GEMM kernels (docs/contract.md §5): operand
// ranges, tile geometry, packed layouts and the outer (Wo-bit) accumulator.
//
// Include only from gemm_avx2.cpp and gemm_avx512.cpp (which reuses the
// width-independent pieces): everything here lives in an anonymous namespace
// of the including translation unit, compiled with its ISA flags.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <span>
#include <thread>
#include <vector>

#include "models/accumulator/gemm.h"
#include "models/common/thread_pool.h"

namespace hdq::detail {
namespace {

constexpr int kLanes = 32;  // output columns per 256-bit byte vector

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

// Which row block of which calling thread's GEMM this thread is running
// (set by run_blocks around each block's kernel).
struct BlockId {
  std::thread::id caller;
  int block = -1;  // -1: the caller's own work outside the row blocks (packing B)
};
inline thread_local BlockId current_block;

// Scratch that outlives a call, one W per (calling thread, row block): block t
// of every GEMM a thread runs gets the same W whichever pool thread executes
// it, so each W sees the same shapes every training step and stops growing
// after the first (no allocation per step), and GEMMs of different calling
// threads never share one.
template <typename W>
class WorkspacePool {
 public:
  W& get(const BlockId& id) {
    std::lock_guard<std::mutex> lock(mu_);
    std::unique_ptr<W>& w = slots_[{id.caller, id.block}];
    if (!w) w = std::make_unique<W>();
    return *w;
  }
  // The workspace of the block the current thread runs.
  W& current() { return get(current_block); }
  // The calling thread's own one (outside the row blocks).
  W& of_this_thread() { return get({std::this_thread::get_id(), -1}); }

 private:
  std::mutex mu_;
  std::map<std::pair<std::thread::id, int>, std::unique_ptr<W>> slots_;
};

// ---------------------------------------------------------------- threads
// Row blocks of about equal size, multiples of 4 rows (the kernels' row
// groups) except the last; block i covers [row_block(i), row_block(i + 1)).
inline int row_block(int m, int blocks, int i) {
  if (i >= blocks) return m;
  const std::int64_t groups = (std::int64_t(m) + 3) / 4;
  return int(std::min<std::int64_t>(m, 4 * (groups * i / blocks)));
}

// kernel(r0, r1) on each row block, one per thread of the pool; the
// statistics merged in block order.
template <typename Kernel>
GemmStats run_blocks(GemmShape s, int threads, Kernel kernel) {
  threads = std::clamp(threads, 1, std::max(1, (s.m + 3) / 4));
  // The calling thread's buffer, reused (no allocation per GEMM); bound to a
  // reference because the workers must write the caller's instance.
  thread_local std::vector<GemmStats> parts_of_this_thread;
  std::vector<GemmStats>& parts = parts_of_this_thread;
  parts.assign(static_cast<std::size_t>(threads), GemmStats{});
  const std::thread::id caller = std::this_thread::get_id();
  parallel_for(threads, [&](int t) {
    current_block = {caller, t};
    parts[std::size_t(t)] = kernel(row_block(s.m, threads, t), row_block(s.m, threads, t + 1));
    current_block = {};
  });
  GemmStats total;
  for (const GemmStats& p : parts) total.merge(p);
  return total;
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
  Tiling(int K, int cfg_tile) : k(K), t((cfg_tile == 0 || cfg_tile > K) ? K : cfg_tile) {
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
// B for the pair (vpmaddubsw) kernels: per 32-column vector v and k-pair p,
// two 32-byte groups (columns 0..15, 16..31 of the vector); in a group the
// bytes 2j, 2j+1 hold b[k][j], b[k+1][j] as int8 (0 past K-pad or N). Also,
// per tile, amin * (column sums), which undoes the bias of A: in int32 and
// reduced mod 2^16 for int16 lanes.
struct PackedBPairs {
  int nvec = 0, total_pairs = 0, ntiles = 0;
  AlignedBuffer<std::int8_t> bytes;    // [nvec][total_pairs][2][32]
  AlignedBuffer<std::int32_t> corr32;  // [nvec][ntiles][32]
  AlignedBuffer<std::int16_t> corr16;  // [nvec][ntiles][32]
  const std::int8_t* pair(int v, int p) const { return bytes.data() + (std::size_t(v) * total_pairs + p) * 64; }
  const __m256i* c32(int v, int tau) const {
    return reinterpret_cast<const __m256i*>(corr32.data() + (std::size_t(v) * ntiles + tau) * 32);
  }
  const __m256i* c16(int v, int tau) const {
    return reinterpret_cast<const __m256i*>(corr16.data() + (std::size_t(v) * ntiles + tau) * 32);
  }
};

inline void init_b_pairs(GemmShape s, const Tiling& tl, PackedBPairs& out) {
  out.nvec = (s.n + kLanes - 1) / kLanes;
  out.total_pairs = tl.total_pairs;
  out.ntiles = tl.ntiles;
  out.bytes.resize(std::size_t(out.nvec) * tl.total_pairs * 64);
  out.corr32.resize(std::size_t(out.nvec) * tl.ntiles * 32);
  out.corr16.resize(std::size_t(out.nvec) * tl.ntiles * 32);
}

inline void tile_corrections(const std::int32_t* colsum, int amin, __m256i c32[4], __m256i c16[2]);

// Packs the 32-column vector v (init_b_pairs first). Requires every b to fit int8.
inline void pack_b_pairs(GemmShape s, const std::int16_t* b, const Tiling& tl, int amin, int v, PackedBPairs& out) {
  {
    const int j0 = v * kLanes, nj = std::min(kLanes, s.n - j0);
    for (int tau = 0; tau < tl.ntiles; ++tau) {
      __m256i cs[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
      for (int q = 0; q < tl.pairs(tau); ++q) {
        const int k = tl.begin(tau) + 2 * q;
        const bool has2 = k + 1 < tl.end(tau);
        std::int8_t* dst = out.bytes.data() + (std::size_t(v) * tl.total_pairs + tl.pair_base(tau) + q) * 64;
        const std::int16_t* r0 = b + std::size_t(k) * s.n + j0;
        const std::int16_t* r1 = r0 + s.n;
        if (nj == kLanes) {
          for (int g = 0; g < 2; ++g) {
            const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + 16 * g));
            const __m256i hi =
                has2 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r1 + 16 * g)) : _mm256_setzero_si256();
            const __m256i w = _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi16(0xff)), _mm256_slli_epi16(hi, 8));
            _mm256_store_si256(reinterpret_cast<__m256i*>(dst + 32 * g), w);
            cs[2 * g] = _mm256_add_epi32(cs[2 * g], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo)));
            cs[2 * g + 1] = _mm256_add_epi32(cs[2 * g + 1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo, 1)));
            cs[2 * g] = _mm256_add_epi32(cs[2 * g], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(hi)));
            cs[2 * g + 1] = _mm256_add_epi32(cs[2 * g + 1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(hi, 1)));
          }
        } else {
          alignas(32) std::int32_t sum[32];
          for (int g = 0; g < 4; ++g) _mm256_store_si256(reinterpret_cast<__m256i*>(sum + 8 * g), cs[g]);
          for (int j = 0; j < kLanes; ++j) {
            const int x0 = j < nj ? r0[j] : 0, x1 = (j < nj && has2) ? r1[j] : 0;
            dst[2 * j] = static_cast<std::int8_t>(x0);
            dst[2 * j + 1] = static_cast<std::int8_t>(x1);
            sum[j] += x0 + x1;
          }
          for (int g = 0; g < 4; ++g) cs[g] = _mm256_load_si256(reinterpret_cast<const __m256i*>(sum + 8 * g));
        }
      }
      alignas(32) std::int32_t sum[32];
      for (int g = 0; g < 4; ++g) _mm256_store_si256(reinterpret_cast<__m256i*>(sum + 8 * g), cs[g]);
      __m256i c32[4], c16[2];
      tile_corrections(sum, amin, c32, c16);
      __m256i* d32 = reinterpret_cast<__m256i*>(out.corr32.data() + (std::size_t(v) * tl.ntiles + tau) * 32);
      __m256i* d16 = reinterpret_cast<__m256i*>(out.corr16.data() + (std::size_t(v) * tl.ntiles + tau) * 32);
      for (int g = 0; g < 4; ++g) _mm256_store_si256(d32 + g, c32[g]);
      for (int g = 0; g < 2; ++g) _mm256_store_si256(d16 + g, c16[g]);
    }
  }
}

// A rows for the pair kernels: per k-pair the bytes (a[k] - amin,
// a[k+1] - amin) as uint8, twice, in a uint32 (one vpbroadcastd loads it), in
// the tile-padded pair layout (the pad byte 0). Requires amax - amin <= 255.
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

// Exact tile sums of R rows x 32 columns over one tile in int16 lanes:
// e[r][g] (g = columns 0..15, 16..31) = sum_k a[k] * b[k][j]. Requires every
// biased partial sum and the result to fit int16 (the caller's plan checks).
// corr[g] = amin * (tile column sums), reduced mod 2^16.
template <int R>
inline void exact_tile_sums16(const std::uint32_t* const* ap, const std::int8_t* bp, int np, const __m256i corr[2],
                              __m256i (&e)[R][2]) {
  __m256i s0[R], s1[R];
  for (int r = 0; r < R; ++r) s0[r] = corr[0], s1[r] = corr[1];
  if constexpr (R == 4) {
    __m256i a0 = s0[0], a1 = s1[0], b0 = s0[1], b1 = s1[1], c0 = s0[2], c1 = s1[2], d0 = s0[3], d1 = s1[3];
    const std::uint32_t *pa = ap[0], *pb = ap[1], *pc = ap[2], *pd = ap[3];
    for (int q = 0; q < np; ++q, bp += 64) {
      const __m256i g0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(bp));
      const __m256i g1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(bp + 32));
      __m256i av = _mm256_set1_epi32(static_cast<int>(pa[q]));
      a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(av, g0));
      a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(av, g1));
      av = _mm256_set1_epi32(static_cast<int>(pb[q]));
      b0 = _mm256_add_epi16(b0, _mm256_maddubs_epi16(av, g0));
      b1 = _mm256_add_epi16(b1, _mm256_maddubs_epi16(av, g1));
      av = _mm256_set1_epi32(static_cast<int>(pc[q]));
      c0 = _mm256_add_epi16(c0, _mm256_maddubs_epi16(av, g0));
      c1 = _mm256_add_epi16(c1, _mm256_maddubs_epi16(av, g1));
      av = _mm256_set1_epi32(static_cast<int>(pd[q]));
      d0 = _mm256_add_epi16(d0, _mm256_maddubs_epi16(av, g0));
      d1 = _mm256_add_epi16(d1, _mm256_maddubs_epi16(av, g1));
    }
    e[0][0] = a0, e[0][1] = a1, e[1][0] = b0, e[1][1] = b1, e[2][0] = c0, e[2][1] = c1, e[3][0] = d0, e[3][1] = d1;
  } else {
    for (int r = 0; r < R; ++r) {
      __m256i x0 = s0[r], x1 = s1[r];
      const std::uint32_t* pa = ap[r];
      for (int q = 0; q < np; ++q) {
        const __m256i av = _mm256_set1_epi32(static_cast<int>(pa[q]));
        x0 = _mm256_add_epi16(
            x0, _mm256_maddubs_epi16(av, _mm256_load_si256(reinterpret_cast<const __m256i*>(bp + 64 * q))));
        x1 = _mm256_add_epi16(
            x1, _mm256_maddubs_epi16(av, _mm256_load_si256(reinterpret_cast<const __m256i*>(bp + 64 * q + 32))));
      }
      e[r][0] = x0, e[r][1] = x1;
    }
  }
}

// The same in int32 lanes for any plan that keeps a vpmaddubsw lane exact:
// int16 partial sums over `block` pairs at a time, widened and added.
inline void exact_tile_sums32(const std::uint32_t* ap, const std::int8_t* bp, int np, int block, const __m256i corr[4],
                              __m256i e[4]) {
  for (int g = 0; g < 4; ++g) e[g] = corr[g];
  for (int q0 = 0; q0 < np; q0 += block) {
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    const int q1 = std::min(np, q0 + block);
    for (int q = q0; q < q1; ++q) {
      const __m256i av = _mm256_set1_epi32(static_cast<int>(ap[q]));
      s0 = _mm256_add_epi16(s0,
                            _mm256_maddubs_epi16(av, _mm256_load_si256(reinterpret_cast<const __m256i*>(bp + 64 * q))));
      s1 = _mm256_add_epi16(
          s1, _mm256_maddubs_epi16(av, _mm256_load_si256(reinterpret_cast<const __m256i*>(bp + 64 * q + 32))));
    }
    e[0] = _mm256_add_epi32(e[0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s0)));
    e[1] = _mm256_add_epi32(e[1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s0, 1)));
    e[2] = _mm256_add_epi32(e[2], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s1)));
    e[3] = _mm256_add_epi32(e[3], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s1, 1)));
  }
}

// amin * column sums of a tile, int32 lanes (4 vectors) and int16 lanes mod 2^16 (2 vectors).
inline void tile_corrections(const std::int32_t* colsum, int amin, __m256i c32[4], __m256i c16[2]) {
  const __m256i am = _mm256_set1_epi32(amin);
  for (int g = 0; g < 4; ++g)
    c32[g] = _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(colsum + 8 * g)), am);
  // packs would saturate: take the low 16 bits of each int32 instead.
  const __m256i lowmask = _mm256_set1_epi32(0xffff);
  c16[0] = _mm256_permute4x64_epi64(
      _mm256_packus_epi32(_mm256_and_si256(c32[0], lowmask), _mm256_and_si256(c32[1], lowmask)), 0xd8);
  c16[1] = _mm256_permute4x64_epi64(
      _mm256_packus_epi32(_mm256_and_si256(c32[2], lowmask), _mm256_and_si256(c32[3], lowmask)), 0xd8);
}

// ---------------------------------------------------------------- horizontal
inline std::uint64_t hsum_epi64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return std::uint64_t(_mm_cvtsi128_si64(s)) + std::uint64_t(_mm_extract_epi64(s, 1));
}

inline std::uint32_t hmax_epu32(__m256i v) {
  __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xb1));
  return std::uint32_t(_mm_cvtsi128_si32(m));
}

// ---------------------------------------------------------------- outer
// The Wo-bit outer accumulator of one output row segment (32 columns), int32
// lanes: O = clamp(O + P, outer range), counting the lanes the clamp changed.
// With kClamp false the caller has proved that no sum can leave the range.
template <bool kClamp>
inline void outer_add32(std::int32_t* o, const __m256i p[4], __m256i lo, __m256i hi, std::uint64_t& overflows) {
  for (int g = 0; g < 4; ++g) {
    __m256i* op = reinterpret_cast<__m256i*>(o + 8 * g);
    const __m256i sum = _mm256_add_epi32(_mm256_load_si256(op), p[g]);
    if constexpr (kClamp) {
      const __m256i c = _mm256_min_epi32(_mm256_max_epi32(sum, lo), hi);
      overflows +=
          std::uint64_t(32 - _mm_popcnt_u32(std::uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi32(c, sum))))) / 4;
      _mm256_store_si256(op, c);
    } else {
      _mm256_store_si256(op, sum);
    }
  }
}

// True when no outer sum can leave the Wo-bit range (nor int32): the outer
// accumulator then needs no clamp. max_abs_p bounds |P| of every tile.
inline bool outer_cannot_overflow(std::int64_t ntiles, std::int64_t max_abs_p, int outer_bits) {
  const std::int64_t hi = (std::int64_t{1} << (outer_bits - 1)) - 1;
  return max_abs_p == 0 || ntiles <= hi / max_abs_p;
}

// Copies 32 int32 outer values to C (only the real columns of the vector).
inline void store_row_segment(std::int32_t* dst, const std::int32_t* o, int nj) {
  if (nj == kLanes)
    std::memcpy(dst, o, sizeof(std::int32_t) * kLanes);
  else
    std::memcpy(dst, o, sizeof(std::int32_t) * std::size_t(nj));
}

}  // namespace
}  // namespace hdq::detail
