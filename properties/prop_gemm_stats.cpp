// docs/contract.md §5 "Statistics": every figure a GEMM reports (the six
// GemmStats counters and the derived inner_events and inner_event_rate), on
// every GEMM path, recomputed by the oracle of prop_gemm_oracle.h, which
// counts each event as it happens (tile_results included: one per tile it
// visits) and computes the rate from the text. Alignment CSVs, sweep reports,
// regression overflow bounds and the NPU's MAC energy all read these figures.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <ostream>
#include <random>
#include <vector>

#include "models/accumulator/gemm.h"
#include "models/common/names.h"
#include "properties/prop_common.h"
#include "properties/prop_gemm_oracle.h"

namespace {

using hdqprop::uniform;
using namespace rc;

// How the tile length t relates to the contraction length K. The tile
// arithmetic differs in each: a ceiling (ragged: the last tile is shorter),
// one short tile (t > K, R5), one whole tile (t = 0), an exact division, and
// no tile at all (K = 0).
enum class TileRegime { ragged, longer_than_k, untiled, multiple, empty_k };
void showValue(TileRegime r, std::ostream& os) {
  static const char* const names[] = {"K > t, K % t != 0", "K < t", "t = 0", "K % t == 0", "K = 0"};
  os << names[int(r)];
}

struct StatsCase {
  TileRegime regime = TileRegime::ragged;
  int m = 1, n = 1, k = 1;
  hdq::AccumulatorConfig cfg;
  int a_bits = 4, b_bits = 4;
  bool a_unsigned = false, b_unsigned = false;
  std::vector<std::int16_t> a, b;
};

// Small shapes (M, N up to 6 with an occasional 0, K up to 80): enough for
// several tiles per output and for every kernel's remainder loops.
StatsCase stats_case_gen() {
  StatsCase g;
  g.regime = *gen::weightedElement<TileRegime>({{4, TileRegime::ragged},
                                                {2, TileRegime::longer_than_k},
                                                {2, TileRegime::untiled},
                                                {1, TileRegime::multiple},
                                                {1, TileRegime::empty_k}});
  switch (g.regime) {
    case TileRegime::ragged:  // t in 1..20, K = q t + r with q >= 1 and 0 < r < t
      g.cfg.tile = *uniform(2, 20);
      g.k = g.cfg.tile * *uniform(1, 4) + *uniform(1, g.cfg.tile - 1);
      break;
    case TileRegime::longer_than_k:
      g.k = *uniform(1, 40);
      g.cfg.tile = *uniform(g.k + 1, 64);
      break;
    case TileRegime::untiled:
      g.k = *uniform(1, 64);
      g.cfg.tile = 0;
      break;
    case TileRegime::multiple:
      g.cfg.tile = *uniform(1, 20);
      g.k = g.cfg.tile * *uniform(1, 4);
      break;
    case TileRegime::empty_k:
      g.k = 0;
      g.cfg.tile = *gen::element(0, 1, 32);
      break;
  }
  g.m = *gen::weightedOneOf<int>({{1, gen::just(0)}, {20, uniform(1, 6)}});
  g.n = *gen::weightedOneOf<int>({{1, gen::just(0)}, {20, uniform(1, 6)}});
  g.cfg.mode =
      *gen::element(hdq::AccMode::exact, hdq::AccMode::clamp_tile, hdq::AccMode::saturate, hdq::AccMode::wrap);
  g.cfg.range = *gen::element(hdq::AccRange::symmetric, hdq::AccRange::full);
  g.cfg.acc_bits = *hdqprop::acc_bits_gen();
  g.cfg.outer_bits = *hdqprop::outer_bits_gen(g.cfg.acc_bits);
  hdqprop::random_case_operands(g);
  return g;
}

// 10. Section 5 "Statistics", for every mode, range and path of
// available_gemm_paths() (1 and 2 threads): products = M N K,
// clamped_tiles, changed_steps, outer_overflows, max_abs_tile_sum,
// tile_results = M N ceil(K / t') (counted tile by tile by the oracle, with
// t' = K for t = 0 or t > K and no tile for K = 0), inner_events and
// inner_event_rate (clamped tiles per tile result, changed steps per product,
// or 0) all equal the oracle's, on shapes where K > t with a ragged last tile,
// K < t, t = 0, K a multiple of t, and K = 0. The rate is compared exactly:
// both sides divide the same two integers once.
RC_GTEST_PROP(GemmStats, EveryReportedFigureEqualsTheContractsDefinition, ()) {
  const StatsCase g = stats_case_gen();
  RC_TAG(g.regime, g.cfg.mode);
  const hdqprop::OracleResult o = hdqprop::oracle_gemm(g.m, g.n, g.k, g.a, g.b, g.cfg);
  RC_CLASSIFY(o.inner_events() > 0, "inner events");
  for (hdq::KernelPath path : hdq::available_gemm_paths())
    for (int threads : {1, 2}) {
      RC_LOG() << "path " << hdq::name(path) << ", threads " << threads << "\n";
      std::vector<std::int32_t> c(std::size_t(g.m) * g.n, -12345);
      hdq::GemmContext ctx(threads);
      const hdq::GemmStats st = hdq::gemm(ctx, {g.m, g.n, g.k}, {g.a, g.a_bits, g.a_unsigned},
                                          {g.b, g.b_bits, g.b_unsigned}, g.cfg, c, path);
      hdqprop::assert_gemm_equals_oracle(c, st, o);
      // The one rate function of every report, on this GEMM alone.
      RC_ASSERT(hdq::inner_event_rate({&st, 1}) == o.inner_event_rate());
    }
}

}  // namespace
