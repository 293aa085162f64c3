// Every GEMM path against the reference (docs/contract.md §5).
//
// Every expected value in this file is the one KernelPath::reference computes:
// the tests only ever compare another path's C and GemmStats (products,
// clamped_tiles, changed_steps, outer_overflows, max_abs_tile_sum) with the
// reference's on the same inputs, exhaustively over a grid of small shapes,
// tiles, modes, ranges, widths and operand kinds, on random inputs and on
// inputs at the extremes (so that saturation, wraps, tile clamps and outer
// overflows happen), with 1 and 2 threads. Every path of
// available_gemm_paths() is checked, so on a CPU with AVX-512 F/BW/VL that
// includes both the AVX2 and the AVX-512 kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "models/accumulator/gemm.h"
#include "models/common/errors.h"
#include "models/common/thread_pool.h"

namespace hdq {
namespace {

struct OperandKind {
  int bits;
  bool is_unsigned;
  int lo() const { return is_unsigned ? 0 : -(1 << (bits - 1)); }
  int hi() const { return is_unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1; }
};

enum class Fill {
  uniform,   // uniform over the operand range
  extremes,  // mostly the two ends of the range (and 0, +-1 next to them)
  high,      // mostly the value of largest magnitude: long runs of same-sign products
  ramp,      // deterministic runs of min and max values, changing every few elements
};

std::vector<std::int16_t> make_values(std::mt19937_64& rng, std::size_t n, OperandKind kind, Fill fill) {
  std::vector<std::int16_t> v(n);
  std::uniform_int_distribution<int> uni(kind.lo(), kind.hi());
  std::uniform_int_distribution<int> pct(0, 99);
  const int big = std::abs(kind.lo()) > std::abs(kind.hi()) ? kind.lo() : kind.hi();
  for (std::size_t i = 0; i < n; ++i) {
    int x = uni(rng);
    switch (fill) {
      case Fill::uniform: break;
      case Fill::extremes: {
        const int r = pct(rng);
        x = r < 40 ? kind.lo() : r < 80 ? kind.hi() : r < 85 ? 0 : r < 90 ? std::min(kind.lo() + 1, kind.hi()) : x;
        break;
      }
      case Fill::high: x = pct(rng) < 85 ? big : x; break;
      case Fill::ramp: x = ((i / 5) % 3 == 2) ? kind.lo() : kind.hi(); break;
    }
    v[i] = static_cast<std::int16_t>(x);
  }
  return v;
}

struct Case {
  GemmShape shape;
  OperandKind ka, kb;
  AccumulatorConfig cfg;
  std::vector<std::int16_t> a, b;
};

std::string describe(const Case& c) {
  std::ostringstream os;
  const char* modes[] = {"exact", "clamp_tile", "saturate", "wrap"};
  os << "m=" << c.shape.m << " n=" << c.shape.n << " k=" << c.shape.k << " tile=" << c.cfg.tile
     << " mode=" << modes[int(c.cfg.mode)] << " range=" << (c.cfg.range == AccRange::full ? "full" : "symmetric")
     << " W=" << c.cfg.acc_bits << " Wo=" << c.cfg.outer_bits << " a=" << (c.ka.is_unsigned ? "u" : "s") << c.ka.bits
     << " b=" << (c.kb.is_unsigned ? "u" : "s") << c.kb.bits;
  return os.str();
}

std::string path_name(KernelPath p) {
  switch (p) {
    case KernelPath::reference: return "reference";
    case KernelPath::portable: return "portable";
    case KernelPath::avx2: return "avx2";
    case KernelPath::avx512: return "avx512";
  }
  return "?";
}

std::string describe(const GemmStats& s) {
  std::ostringstream os;
  os << "{products " << s.products << ", clamped_tiles " << s.clamped_tiles << ", changed_steps " << s.changed_steps
     << ", outer_overflows " << s.outer_overflows << ", max_abs_tile_sum " << s.max_abs_tile_sum << "}";
  return os.str();
}

// The contexts of the comparisons below, for 1 and 2 threads: kept from call
// to call as an engine keeps its own, so every GEMM reuses workspaces that
// earlier GEMMs of other shapes and kernels have left behind.
GemmContext& context(int threads) {
  static GemmContext one(1), two(2);
  return threads == 1 ? one : two;
}

// Runs the reference and every other available path (1 thread, and 2 threads
// when `two_threads`); returns "" when all agree with the reference, else a
// description of the first difference.
std::string compare_paths(const Case& c, bool two_threads = true) {
  const std::size_t nc = std::size_t(c.shape.m) * c.shape.n;
  const IntOperand a{c.a, c.ka.bits, c.ka.is_unsigned}, b{c.b, c.kb.bits, c.kb.is_unsigned};
  std::vector<std::int32_t> want(nc, 0x5a5a5a5a);
  const GemmStats want_st = gemm(context(1), c.shape, a, b, c.cfg, want, KernelPath::reference);
  for (const KernelPath path : available_gemm_paths()) {
    if (path == KernelPath::reference) continue;
    for (const int threads : {1, 2}) {
      if (threads == 2 && (!two_threads || c.shape.m < 2)) continue;
      std::vector<std::int32_t> got(nc, 0x3c3c3c3c);
      const GemmStats got_st = gemm(context(threads), c.shape, a, b, c.cfg, got, path);
      if (got_st != want_st)
        return path_name(path) + " threads=" + std::to_string(threads) + " " + describe(c) + ": stats " +
               describe(got_st) + " != reference " + describe(want_st);
      for (std::size_t i = 0; i < nc; ++i)
        if (got[i] != want[i])
          return path_name(path) + " threads=" + std::to_string(threads) + " " + describe(c) + ": C[" +
                 std::to_string(i / std::max(c.shape.n, 1)) + "][" + std::to_string(i % std::max(c.shape.n, 1)) +
                 "] = " + std::to_string(got[i]) + " != reference " + std::to_string(want[i]);
    }
  }
  return "";
}

Case make_case(std::mt19937_64& rng, GemmShape shape, OperandKind ka, OperandKind kb, AccumulatorConfig cfg, Fill fa,
               Fill fb) {
  Case c{shape, ka, kb, cfg, {}, {}};
  c.a = make_values(rng, std::size_t(shape.m) * shape.k, ka, fa);
  c.b = make_values(rng, std::size_t(shape.k) * shape.n, kb, fb);
  return c;
}

constexpr AccMode kModes[] = {AccMode::exact, AccMode::clamp_tile, AccMode::saturate, AccMode::wrap};
constexpr AccRange kRanges[] = {AccRange::symmetric, AccRange::full};
constexpr int kWidths[] = {2, 3, 4, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32};

// Operand kinds that reach each specialised kernel and the fallback.
const std::vector<std::pair<OperandKind, OperandKind>> kOperandPairs = {
    {{4, false}, {4, false}},                            // the HDQT case: products in [-56, 64]
    {{4, true}, {4, false}},                             // products in [-120, 105]
    {{2, false}, {2, true}},  {{5, false}, {4, false}},  // A spans 32 values
    {{8, false}, {2, false}},                            // products up to 256: no int8 products
    {{4, false}, {8, true}},                             // b past int8
    {{8, true}, {8, false}},  {{5, true}, {5, true}},
};

std::vector<int> tiles_for(int k) { return {0, 1, 3, 16, 32, k + 1}; }

// The same without tiles that cut K exactly like an earlier one (t = 0, t > K
// and t = K are all one tile).
std::vector<int> distinct_tiles_for(int k) {
  std::vector<int> out, seen;
  for (const int t : tiles_for(k)) {
    const int eff = (t == 0 || t > k) ? k : t;
    if (std::find(seen.begin(), seen.end(), eff) != seen.end()) continue;
    seen.push_back(eff);
    out.push_back(t);
  }
  return out;
}

// The whole knob grid (mode x range x W x tile x operand kind x fill) on a
// rotating set of small shapes that exercise row groups, column tails and
// tiles that do not divide K.
TEST(GemmPaths, EveryModeRangeWidthTileAndOperandKind) {
  const GemmShape shapes[] = {{5, 33, 40}, {4, 32, 32}, {9, 65, 37}, {3, 31, 64},
                              {8, 17, 65}, {1, 64, 33}, {7, 40, 17}};
  std::mt19937_64 rng(20240611);
  int failures = 0, n = 0;
  for (const AccMode mode : kModes)
    for (const AccRange range : kRanges)
      for (const int w : kWidths)
        for (const auto& [ka, kb] : kOperandPairs)
          for (const Fill fill : {Fill::uniform, Fill::extremes, Fill::high}) {
            const GemmShape shape = shapes[n++ % std::size(shapes)];
            for (const int tile : tiles_for(shape.k)) {
              AccumulatorConfig cfg{.acc_bits = w, .tile = tile, .mode = mode, .range = range, .outer_bits = 32};
              const Case c = make_case(rng, shape, ka, kb, cfg, fill, fill == Fill::high ? Fill::high : Fill::uniform);
              const std::string err = compare_paths(c, n % 3 == 0);
              if (!err.empty() && ++failures <= 10) ADD_FAILURE() << err;
            }
          }
  EXPECT_EQ(failures, 0);
}

// Every operand width 2..8, signed and unsigned, for A and B: crosses every
// boundary of the kernel choice (products fitting int8, A spanning <= 32
// values, b fitting int8, tile sums fitting int16).
TEST(GemmPaths, EveryOperandWidthAndSignedness) {
  std::mt19937_64 rng(99);
  int failures = 0, n = 0;
  for (int abits = 2; abits <= 8; ++abits)
    for (const bool au : {false, true})
      for (int bbits = 2; bbits <= 8; ++bbits)
        for (const bool bu : {false, true})
          for (const AccMode mode : kModes)
            for (const int w : {3, 8, 12}) {
              const AccRange range = (n++ % 2) ? AccRange::full : AccRange::symmetric;
              AccumulatorConfig cfg{.acc_bits = w, .tile = 16, .mode = mode, .range = range, .outer_bits = 32};
              const Fill fill = n % 3 == 0 ? Fill::extremes : Fill::uniform;
              const Case c = make_case(rng, {5, 33, 40}, {abits, au}, {bbits, bu}, cfg, fill, fill);
              const std::string err = compare_paths(c, n % 5 == 0);
              if (!err.empty() && ++failures <= 10) ADD_FAILURE() << err;
            }
  EXPECT_EQ(failures, 0);
}

// Every small shape, including empty ones, for one config per kernel.
TEST(GemmPaths, EverySmallShape) {
  struct Config {
    AccumulatorConfig cfg;
    OperandKind ka, kb;
  };
  const Config configs[] = {
      {{8, 32, AccMode::saturate, AccRange::full, 32}, {4, false}, {4, false}},
      {{5, 32, AccMode::saturate, AccRange::symmetric, 32}, {4, true}, {4, false}},
      {{8, 32, AccMode::wrap, AccRange::full, 32}, {4, false}, {4, false}},
      {{7, 32, AccMode::wrap, AccRange::full, 32}, {4, false}, {4, false}},
      {{8, 32, AccMode::clamp_tile, AccRange::full, 32}, {4, false}, {4, false}},
      {{12, 32, AccMode::exact, AccRange::symmetric, 32}, {5, false}, {8, false}},
      {{16, 32, AccMode::saturate, AccRange::full, 32}, {8, false}, {8, false}},
  };
  const int ms[] = {0, 1, 2, 3, 5, 8, 9};
  const int ns[] = {0, 1, 2, 31, 32, 33, 63, 65};
  const int ks[] = {0, 1, 2, 3, 7, 16, 17, 31, 32, 33, 64, 65};
  std::mt19937_64 rng(7);
  int failures = 0;
  for (const Config& cf : configs)
    for (const int m : ms)
      for (const int n : ns)
        for (const int k : ks)
          for (const int tile : distinct_tiles_for(k)) {
            AccumulatorConfig cfg = cf.cfg;
            cfg.tile = tile;
            const Fill fill = (m + n + k) % 2 ? Fill::extremes : Fill::uniform;
            const Case c = make_case(rng, {m, n, k}, cf.ka, cf.kb, cfg, fill, fill);
            const std::string err = compare_paths(c, (n + k + tile) % 3 == 0);
            if (!err.empty() && ++failures <= 10) ADD_FAILURE() << err;
          }
  EXPECT_EQ(failures, 0);
}

// Narrow outer accumulators (Wo = W, W + 1, W + 3) so that outer overflows happen.
TEST(GemmPaths, NarrowOuterAccumulatorOverflows) {
  std::mt19937_64 rng(11);
  int failures = 0;
  for (const AccMode mode : kModes)
    for (const AccRange range : kRanges)
      for (const int w : {2, 4, 8, 9, 16, 24})
        for (const int extra : {0, 1, 3})
          for (const auto& [ka, kb] : kOperandPairs)
            for (const Fill fill : {Fill::high, Fill::ramp, Fill::extremes}) {
              AccumulatorConfig cfg{
                  .acc_bits = w, .tile = 8, .mode = mode, .range = range, .outer_bits = std::min(32, w + extra)};
              const Case c = make_case(rng, {6, 35, 67}, ka, kb, cfg, fill, fill);
              const std::string err = compare_paths(c, extra == 1);
              if (!err.empty() && ++failures <= 10) ADD_FAILURE() << err;
            }
  EXPECT_EQ(failures, 0);
}

// gemm_continue_reference: K cut at a multiple of the tile, the second part
// continued from the first part's C, gives the whole GEMM's C and (merged)
// statistics, in every mode, with the narrow outer accumulator clamping
// (Wo = W = 8, mostly positive products); from O = 0 it is gemm(); an
// initial value outside the Wo range is refused.
TEST(GemmPaths, ContinuedReferenceChainsKChunks) {
  std::mt19937 g(17);
  std::uniform_int_distribution<int> v(-2, 7);
  const int M = 5, N = 6, K = 37, T = 4, cut = 12;
  std::vector<std::int16_t> a(M * K), b(K * N), a1(M * cut), a2(M * (K - cut));
  for (auto& x : a) x = std::int16_t(v(g));
  for (auto& x : b) x = std::int16_t(v(g));
  for (int i = 0; i < M; ++i)
    for (int k = 0; k < K; ++k) (k < cut ? a1[i * cut + k] : a2[i * (K - cut) + k - cut]) = a[i * K + k];
  const std::vector<std::int16_t> b1(b.begin(), b.begin() + cut * N), b2(b.begin() + cut * N, b.end());
  GemmContext ctx;
  for (const AccMode mode : kModes)
    for (const int outer : {8, 32}) {
      const AccumulatorConfig cfg{.acc_bits = 8, .tile = T, .mode = mode, .range = AccRange::full, .outer_bits = outer};
      std::vector<std::int32_t> whole(M * N), part(M * N), c(M * N);
      const GemmStats want = gemm(ctx, {M, N, K}, {a, 4, false}, {b, 4, false}, cfg, whole, KernelPath::reference);
      GemmStats got = gemm(ctx, {M, N, cut}, {a1, 4, false}, {b1, 4, false}, cfg, part, KernelPath::reference);
      got.merge(gemm_continue_reference({M, N, K - cut}, {a2, 4, false}, {b2, 4, false}, cfg, part, c));
      EXPECT_EQ(c, whole) << int(mode) << " " << outer;
      EXPECT_EQ(got, want) << int(mode) << " " << outer;
      if (outer == 8) {
        EXPECT_GT(want.outer_overflows, 0u) << int(mode) << ": the outer clamp should fire";
      }
      const std::vector<std::int32_t> zeros(M * N, 0);
      EXPECT_EQ(gemm_continue_reference({M, N, K}, {a, 4, false}, {b, 4, false}, cfg, zeros, c), want);
      EXPECT_EQ(c, whole);
    }
  const AccumulatorConfig narrow{.acc_bits = 8, .tile = T, .mode = AccMode::exact, .range = AccRange::full, .outer_bits = 8};
  const std::vector<std::int32_t> too_big(M * N, 128);  // 8-bit outer range is -128..127
  std::vector<std::int32_t> c(M * N);
  EXPECT_THROW(gemm_continue_reference({M, N, K}, {a, 4, false}, {b, 4, false}, narrow, too_big, c), ConfigError);
}

// The largest |exact tile sum| planted in the last row, column and tile, with
// heavy saturation everywhere else: the headroom statistic must find it.
TEST(GemmPaths, HeadroomFoundWhereverItIs) {
  std::mt19937_64 rng(3);
  int failures = 0;
  for (const AccMode mode : {AccMode::saturate, AccMode::wrap})
    for (const int w : {3, 8})
      for (const int tile : {16, 32, 0}) {
        const GemmShape shape{13, 70, 96};
        AccumulatorConfig cfg{.acc_bits = w, .tile = tile, .mode = mode, .range = AccRange::full, .outer_bits = 32};
        Case c = make_case(rng, shape, {4, false}, {4, false}, cfg, Fill::uniform, Fill::uniform);
        const int t = tile == 0 ? shape.k : tile;
        for (int k = shape.k - t; k < shape.k; ++k) {
          c.a[std::size_t(shape.m - 1) * shape.k + k] = -8;
          c.b[std::size_t(k) * shape.n + shape.n - 1] = -8;
        }
        const std::string err = compare_paths(c);
        if (!err.empty() && ++failures <= 10) ADD_FAILURE() << err;
      }
  EXPECT_EQ(failures, 0);
}

// A few larger random products, including the benchmark shape.
TEST(GemmPaths, LargeRandom) {
  struct Large {
    GemmShape shape;
    AccumulatorConfig cfg;
    OperandKind ka, kb;
    Fill fill;
  };
  const Large cases[] = {
      {{256, 256, 256}, {8, 32, AccMode::saturate, AccRange::full, 32}, {4, false}, {4, false}, Fill::uniform},
      {{256, 256, 256}, {8, 32, AccMode::wrap, AccRange::symmetric, 32}, {4, false}, {4, false}, Fill::uniform},
      {{130, 100, 300}, {6, 24, AccMode::saturate, AccRange::symmetric, 16}, {4, true}, {4, false}, Fill::extremes},
      {{67, 129, 257}, {8, 0, AccMode::clamp_tile, AccRange::full, 20}, {4, false}, {4, false}, Fill::uniform},
      {{67, 129, 257}, {10, 48, AccMode::exact, AccRange::full, 32}, {8, false}, {6, false}, Fill::uniform},
      {{45, 77, 200}, {8, 40, AccMode::saturate, AccRange::full, 32}, {5, false}, {4, false}, Fill::uniform},
      // Tile sums past int16 (t * max|product| > 32767): the wide exact-sum paths.
      {{9, 70, 600}, {8, 0, AccMode::saturate, AccRange::full, 32}, {4, true}, {4, false}, Fill::uniform},
      {{9, 70, 600}, {6, 500, AccMode::wrap, AccRange::full, 32}, {4, true}, {4, false}, Fill::high},
      {{9, 70, 600}, {12, 0, AccMode::clamp_tile, AccRange::symmetric, 32}, {8, false}, {6, false}, Fill::high},
  };
  std::mt19937_64 rng(5);
  for (const Large& l : cases) {
    const Case c = make_case(rng, l.shape, l.ka, l.kb, l.cfg, l.fill, l.fill);
    const std::string err = compare_paths(c);
    EXPECT_TRUE(err.empty()) << err;
  }
}

// Operands of 5-8 bits (the AVX2 word kernel: int16 lanes, every mode) on
// larger shapes: W up to 14 (the largest where a register plus a 128 * 128
// product fits int16) and 15 (past it: the column kernel), odd tiles, narrow
// outer accumulators, 1-3 threads.
TEST(GemmPaths, WideOperandsEveryMode) {
  std::mt19937_64 rng(17);
  int failures = 0, n = 0;
  const std::pair<OperandKind, OperandKind> kinds[] = {
      {{8, false}, {8, false}}, {{5, false}, {5, false}}, {{6, false}, {8, false}}, {{7, true}, {6, false}}};
  for (const AccMode mode : kModes)
    for (const auto& [ka, kb] : kinds)
      for (const int w : {4, 8, 14, 15})
        for (const int tile : {32, 33, 1, 0}) {
          const Fill fill = (n++ % 3 == 0) ? Fill::high : (n % 3 == 1) ? Fill::extremes : Fill::uniform;
          const AccRange range = n % 2 ? AccRange::full : AccRange::symmetric;
          const int outer = n % 4 == 0 ? std::min(32, w + 3) : 32;
          AccumulatorConfig cfg{.acc_bits = w, .tile = tile, .mode = mode, .range = range, .outer_bits = outer};
          const Case c = make_case(rng, {37, 70, 101}, ka, kb, cfg, fill, fill);
          const std::string err = compare_paths(c, n % 2 == 0);
          if (!err.empty() && ++failures <= 10) ADD_FAILURE() << err;
        }
  EXPECT_EQ(failures, 0);
}

// gemm.h: results do not depend on the thread count (the row blocks run on
// the context's pool), including more threads than row groups or cores.
TEST(GemmPaths, EveryThreadCountGivesTheSameBits) {
  std::mt19937_64 rng(23);
  const struct {
    GemmShape shape;
    AccumulatorConfig cfg;
    OperandKind ka, kb;
  } cases[] = {
      {{61, 77, 96}, {8, 32, AccMode::saturate, AccRange::full, 32}, {4, false}, {4, false}},
      {{61, 77, 96}, {8, 32, AccMode::clamp_tile, AccRange::symmetric, 32}, {4, false}, {4, false}},
      {{13, 40, 50}, {8, 16, AccMode::saturate, AccRange::full, 20}, {8, false}, {8, false}},
      {{5, 33, 40}, {12, 0, AccMode::wrap, AccRange::full, 32}, {8, true}, {8, false}},
  };
  for (const int threads : {1, 2, 3, 4, 7, 64}) {
    GemmContext ctx(threads);
    std::mt19937_64 case_rng = rng;  // the same cases for every thread count
    for (const auto& cs : cases) {
      const Case c = make_case(case_rng, cs.shape, cs.ka, cs.kb, cs.cfg, Fill::extremes, Fill::uniform);
      const IntOperand a{c.a, c.ka.bits, c.ka.is_unsigned}, b{c.b, c.kb.bits, c.kb.is_unsigned};
      std::vector<std::int32_t> want(std::size_t(c.shape.m) * c.shape.n);
      const GemmStats want_st = gemm(context(1), c.shape, a, b, c.cfg, want, KernelPath::reference);
      for (const KernelPath path : available_gemm_paths()) {
        std::vector<std::int32_t> got(want.size(), -1);
        const GemmStats got_st = gemm(ctx, c.shape, a, b, c.cfg, got, path);
        EXPECT_TRUE(got == want && got_st == want_st)
            << path_name(path) << " threads=" << threads << " " << describe(c) << ": " << describe(got_st)
            << " vs reference " << describe(want_st);
      }
    }
  }
}

// Concurrent gemm() calls from several threads, each on its own context, and
// gemm() calls inside the tasks of another context's pool: the same bits. A
// context is for one calling thread at a time: a second one is refused.
TEST(GemmPaths, ConcurrentAndNestedCallsGiveTheSameBits) {
  std::mt19937_64 rng(29);
  const AccumulatorConfig cfg{8, 32, AccMode::saturate, AccRange::full, 32};
  const Case c = make_case(rng, {40, 96, 128}, {4, false}, {4, false}, cfg, Fill::uniform, Fill::uniform);
  const IntOperand a{c.a, 4, false}, b{c.b, 4, false};
  const std::size_t nc = std::size_t(c.shape.m) * c.shape.n;
  std::vector<std::int32_t> want(nc);
  const GemmStats want_st = gemm(context(1), c.shape, a, b, cfg, want, KernelPath::reference);
  std::atomic<int> mismatches{0};
  auto check = [&](GemmContext& ctx) {
    std::vector<std::int32_t> got(nc, -1);
    const GemmStats st = gemm(ctx, c.shape, a, b, cfg, got);
    if (got != want || st != want_st) ++mismatches;
  };
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t)
    callers.emplace_back([&, t] {
      GemmContext ctx(1 + t);
      for (int rep = 0; rep < 20; ++rep) check(ctx);
    });
  for (auto& th : callers) th.join();
  GemmContext nested[3] = {GemmContext(2), GemmContext(2), GemmContext(2)};
  ThreadPool outer(3);
  outer.run(3, [&](int i) { check(nested[i]); });
  EXPECT_EQ(mismatches.load(), 0);

  GemmContext busy;
  busy.acquire();  // as if another thread were inside gemm() on it
  std::vector<std::int32_t> got(nc);
  EXPECT_THROW(gemm(busy, c.shape, a, b, cfg, got), ConfigError);
  busy.release();
  EXPECT_NO_THROW(gemm(busy, c.shape, a, b, cfg, got));
  EXPECT_EQ(got, want);
}

// A B marked with a content_id (the NPU's MAC array streaming row blocks of
// A past one B panel) lets the context reuse B's range and packed layouts.
// Everything else may change between the calls (A and its range, the tile,
// the mode and so the kernel, the row count), and a new id brings new values:
// every call must still equal the reference, which never reuses anything.
TEST(GemmPaths, ReusedBGivesTheSameBits) {
  std::mt19937_64 rng(31);
  const int n = 70, k = 96;
  const OperandKind s4{4, false};
  const std::vector<std::int16_t> b1 = make_values(rng, std::size_t(k) * n, s4, Fill::uniform);
  const std::vector<std::int16_t> b2 = make_values(rng, std::size_t(k) * n, s4, Fill::extremes);
  const std::vector<std::int16_t> a_full = make_values(rng, std::size_t(40) * k, s4, Fill::uniform);  // min -8
  std::vector<std::int16_t> a_narrow = make_values(rng, std::size_t(24) * k, {3, true}, Fill::uniform);  // 0..7
  for (auto& v : a_narrow) v = std::int16_t(v - 2);  // -2..5: another offset for the pair layouts
  const AccumulatorConfig sat32{8, 32, AccMode::saturate, AccRange::full, 32};
  const AccumulatorConfig sat16{8, 16, AccMode::saturate, AccRange::full, 32};
  const AccumulatorConfig wrap6{6, 32, AccMode::wrap, AccRange::full, 32};
  const AccumulatorConfig clamp{8, 0, AccMode::clamp_tile, AccRange::symmetric, 32};
  const struct {
    const std::vector<std::int16_t>* a;
    const std::vector<std::int16_t>* b;
    std::uint64_t id;
    AccumulatorConfig cfg;
  } calls[] = {
      {&a_full, &b1, 1, sat32},  {&a_full, &b1, 1, sat32},  {&a_narrow, &b1, 1, sat32}, {&a_narrow, &b1, 1, sat16},
      {&a_narrow, &b1, 1, wrap6}, {&a_full, &b1, 1, clamp}, {&a_narrow, &b1, 1, clamp}, {&a_full, &b2, 2, clamp},
      {&a_full, &b2, 2, sat32},  {&a_narrow, &b1, 3, sat32},
  };
  for (const KernelPath path : available_gemm_paths())
    for (const int threads : {1, 2}) {
      GemmContext ctx(threads);
      int i = 0;
      for (const auto& c : calls) {
        const GemmShape shape{int(c.a->size()) / k, n, k};
        std::vector<std::int32_t> want(std::size_t(shape.m) * n), got(want.size(), -1);
        const GemmStats want_st =
            gemm(context(1), shape, {*c.a, 4, false}, {*c.b, 4, false}, c.cfg, want, KernelPath::reference);
        const GemmStats got_st = gemm(ctx, shape, {*c.a, 4, false}, {*c.b, 4, false, c.id}, c.cfg, got, path);
        EXPECT_TRUE(got == want && got_st == want_st)
            << path_name(path) << " threads=" << threads << " call " << i << ": " << describe(got_st)
            << " vs reference " << describe(want_st);
        ++i;
      }
    }
}

// On a CPU with AVX-512 F, BW and VL the AVX-512 path is available, chosen by
// default, and (by the tests above) equal to the reference; elsewhere it is
// refused.
TEST(GemmPaths, Avx512PathOnAvx512Cpus) {
#if defined(__x86_64__) || defined(__i386__)
  const bool has_avx512 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  const bool has_avx512 = false;
#endif
  const std::vector<KernelPath> paths = available_gemm_paths();
  const bool listed = std::find(paths.begin(), paths.end(), KernelPath::avx512) != paths.end();
  if (!has_avx512) {
    EXPECT_FALSE(listed);
    std::vector<std::int16_t> a(4, 1), b(4, 1);
    std::vector<std::int32_t> c(4);
    EXPECT_THROW(gemm(context(1), {2, 2, 2}, {a, 4, false}, {b, 4, false}, {}, c, KernelPath::avx512), ConfigError);
    GTEST_SKIP() << "CPU lacks AVX-512 F/BW/VL: the AVX-512 path is not run";
  }
  EXPECT_TRUE(listed);
  EXPECT_EQ(best_gemm_path(), KernelPath::avx512);
}

// The pool itself: every task index runs exactly once per call, for any task
// count and pool size, call after call; a task's exception reaches the caller
// after all tasks have finished, and the pool stays usable.
TEST(ThreadPool, EveryTaskOnceAndExceptionsPropagate) {
  for (const int size : {1, 2, 4}) {
    ThreadPool pool(size);
    EXPECT_EQ(pool.threads(), size);
    for (const int n : {1, 2, 3, 5, 17, 300}) {
      for (int rep = 0; rep < 50; ++rep) {
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
        pool.run(n, [&](int i) { hits[static_cast<std::size_t>(i)].fetch_add(1); });
        for (int i = 0; i < n; ++i)
          ASSERT_EQ(hits[static_cast<std::size_t>(i)].load(), 1) << "size=" << size << " n=" << n << " i=" << i;
      }
    }
    std::atomic<int> ran{0};
    EXPECT_THROW(pool.run(4,
                          [&](int i) {
                            ran.fetch_add(1);
                            if (i == 2) throw std::runtime_error("task 2");
                          }),
                 std::runtime_error);
    EXPECT_EQ(ran.load(), 4);  // the other tasks still ran
    std::atomic<int> after{0};
    pool.run(2, [&](int) { after.fetch_add(1); });
    EXPECT_EQ(after.load(), 2);
  }
  EXPECT_THROW(ThreadPool(0), ConfigError);
  EXPECT_THROW(ThreadPool(ThreadPool::kMaxThreads + 1), ConfigError);
}

// A call from inside a task of the same pool runs inline, in index order,
// instead of waiting for the pool it is running on.
TEST(ThreadPool, NestedCallRunsInline) {
  ThreadPool pool(2);
  std::vector<std::vector<int>> order(2);
  pool.run(2, [&](int t) { pool.run(3, [&](int i) { order[std::size_t(t)].push_back(i); }); });
  for (const auto& o : order) EXPECT_EQ(o, (std::vector<int>{0, 1, 2}));
}

}  // namespace
}  // namespace hdq
