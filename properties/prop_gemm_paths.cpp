// Properties of docs/contract.md §5 across implementations: every GEMM path
// (and thread count) must give the reference's bits.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <ostream>
#include <random>
#include <vector>

#include "models/accumulator/gemm.h"
#include "models/common/names.h"
#include "properties/prop_common.h"

namespace {

using hdqprop::uniform;
using namespace rc;

// Dimensions around the vector widths and blocks of the fast paths (the column
// kernel blocks 64 columns; SIMD widths are 4..16 lanes): powers of two and
// their neighbours, plus arbitrary sizes.
Gen<int> dimension_gen() {
  return gen::weightedOneOf<int>({
      {4, gen::element(1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65)},
      {1, uniform(1, 130)},
  });
}

struct PathCase {
  int m = 1, n = 1, k = 1;
  hdq::AccumulatorConfig cfg;
  int a_bits = 4, b_bits = 4;
  bool a_unsigned = false, b_unsigned = false;
  std::vector<std::int16_t> a, b;
};

// Regimes of the case generator. A fast path may pick specialised kernels from
// the mode, W and the operands' actual value ranges (the AVX2 path has int8-lane
// saturate/wrap kernels for W <= 8 with products fitting int8, and
// pair-multiply exact/clamp_tile kernels for 8-bit-representable B), so
// besides fully random knobs the generator aims at those regimes on purpose:
//   general        every knob random;
//   narrow         saturate/wrap, W 2..8, operands of 2..4 bits;
//   byte_operands  exact/clamp_tile, B signed or at most 7 bits unsigned;
//   long_k         K around 16384 (where the column kernel switches from int32
//                  to int64 lanes for 255 * 255 products) on a small output;
//   wide_operands  any mode, W 2..16, signed operands of 5..8 bits (the AVX2
//                  int16-lane word kernel takes W <= 14 when a register plus
//                  a product fits int16).
enum class Regime { general, narrow, byte_operands, long_k, wide_operands };
void showValue(Regime r, std::ostream& os) {
  static const char* const names[] = {"general", "narrow", "byte_operands", "long_k", "wide_operands"};
  os << names[int(r)];
}

PathCase path_case_gen() {
  PathCase g;
  const Regime regime = *gen::weightedElement<Regime>(
      {{8, Regime::general}, {4, Regime::narrow}, {3, Regime::byte_operands}, {1, Regime::long_k},
       {3, Regime::wide_operands}});
  if (regime == Regime::long_k) {
    g.m = *uniform(1, 3);
    g.n = *uniform(1, 5);
    g.k = *uniform(16000, 17000);
  } else {
    g.m = *dimension_gen();
    g.n = *dimension_gen();
    g.k = *dimension_gen();
  }
  g.cfg.range = *gen::element(hdq::AccRange::symmetric, hdq::AccRange::full);
  g.a_unsigned = *hdqprop::coin();
  g.b_unsigned = *hdqprop::coin();
  switch (regime) {
    case Regime::narrow:
      g.cfg.mode = *gen::element(hdq::AccMode::saturate, hdq::AccMode::wrap);
      g.cfg.acc_bits = *uniform(2, 8);
      g.a_bits = *uniform(2, 4);
      g.b_bits = *uniform(2, 4);
      break;
    case Regime::byte_operands:
      g.cfg.mode = *gen::element(hdq::AccMode::exact, hdq::AccMode::clamp_tile);
      g.cfg.acc_bits = *hdqprop::acc_bits_gen();
      g.a_bits = *uniform(2, 8);
      g.b_bits = *uniform(2, g.b_unsigned ? 7 : 8);
      break;
    case Regime::wide_operands:
      g.cfg.mode =
          *gen::element(hdq::AccMode::exact, hdq::AccMode::clamp_tile, hdq::AccMode::saturate, hdq::AccMode::wrap);
      g.cfg.acc_bits = *uniform(2, 16);
      g.a_unsigned = g.b_unsigned = false;
      g.a_bits = *uniform(5, 8);
      g.b_bits = *uniform(5, 8);
      break;
    case Regime::general:
    case Regime::long_k:
      g.cfg.mode =
          *gen::element(hdq::AccMode::exact, hdq::AccMode::clamp_tile, hdq::AccMode::saturate, hdq::AccMode::wrap);
      g.cfg.acc_bits = *hdqprop::acc_bits_gen();
      g.a_bits = *gen::weightedOneOf<int>({{1, uniform(2, 7)}, {1, gen::just(8)}});
      g.b_bits = *gen::weightedOneOf<int>({{1, uniform(2, 7)}, {1, gen::just(8)}});
      break;
  }
  // Wo: 32 (the default, where an int32 outer sum must not be needed) half
  // the time, otherwise W..32 biased toward W (outer overflow).
  g.cfg.outer_bits = *gen::weightedOneOf<int>({{1, gen::just(32)}, {1, hdqprop::outer_bits_gen(g.cfg.acc_bits)}});
  g.cfg.tile = *gen::weightedOneOf<int>({
      {6, gen::element(1, 3, 16, 32, g.k, 0)},
      {1, uniform(1, g.k + 2)},
      {1, gen::just(16513)},  // int32-lane bound for 255 * 255 products
  });
  hdqprop::fill_case_operands(g);
  return g;
}

// A context per thread count, kept across cases (as an engine keeps its own):
// every GEMM reuses workspaces earlier cases of other shapes left behind.
hdq::GemmContext& context(int threads) {
  static hdq::GemmContext one(1), two(2), three(3), five(5);
  switch (threads) {
    case 1: return one;
    case 2: return two;
    case 3: return three;
  }
  return five;
}

hdq::GemmStats run(const PathCase& g, std::vector<std::int32_t>& c, hdq::KernelPath path, int threads) {
  c.assign(std::size_t(g.m) * g.n, -12345);
  return hdq::gemm(context(threads), {g.m, g.n, g.k}, {g.a, g.a_bits, g.a_unsigned}, {g.b, g.b_bits, g.b_unsigned},
                   g.cfg, c, path);
}

// 9. gemm.h: "Every path returns the same C and the same GemmStats, bit for
// bit; reference is the obviously-correct triple loop" (itself checked
// against the cpp_int oracle in prop_accumulator.cpp), and "results do not
// depend on" threads. For every path of available_gemm_paths() and threads 1
// and 2 (3 or 5 for half of the cases), the whole C and all GemmStats fields
// equal the single-threaded reference, for every mode, range, W, Wo, tile
// t in {1, 3, 16, 32, K, 0, random}, operand bits/signedness and shapes at
// vector-width boundaries, and in the regimes of specialised kernels (above).
RC_GTEST_PROP(GemmPaths, EveryPathAndThreadCountEqualsReference, ()) {
  const PathCase g = path_case_gen();
  const int extra_threads = *gen::element(2, 2, 3, 5);
  std::vector<std::int32_t> ref_c;
  const hdq::GemmStats ref = run(g, ref_c, hdq::KernelPath::reference, 1);
  for (hdq::KernelPath path : hdq::available_gemm_paths()) {
    for (int threads : {1, extra_threads}) {
      if (path == hdq::KernelPath::reference && threads == 1) continue;
      std::vector<std::int32_t> c;
      const hdq::GemmStats st = run(g, c, path, threads);
      RC_LOG() << "path " << hdq::name(path) << ", threads " << threads << "\n";
      RC_ASSERT(c == ref_c);
      RC_ASSERT(st.products == ref.products);
      RC_ASSERT(st.clamped_tiles == ref.clamped_tiles);
      RC_ASSERT(st.changed_steps == ref.changed_steps);
      RC_ASSERT(st.outer_overflows == ref.outer_overflows);
      RC_ASSERT(st.max_abs_tile_sum == ref.max_abs_tile_sum);
    }
  }
}

}  // namespace
