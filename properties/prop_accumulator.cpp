// Properties of docs/contract.md §5 (integer GEMM with narrow tiled
// accumulation), against an exact oracle in boost::multiprecision::cpp_int.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <boost/multiprecision/cpp_int.hpp>
#include <cstdint>
#include <random>
#include <vector>

#include "models/accumulator/gemm.h"
#include "properties/prop_common.h"
#include "properties/prop_gemm_oracle.h"

namespace {

using boost::multiprecision::cpp_int;
using hdqprop::oracle_gemm;
using hdqprop::OracleResult;
using hdqprop::uniform;
using namespace rc;

// ---------------------------------------------------------------------------
// A random GEMM case: small shapes, every knob, operands biased to overflow.

struct GemmCase {
  int m = 1, n = 1, k = 1;
  hdq::AccumulatorConfig cfg;
  int a_bits = 4, b_bits = 4;
  bool a_unsigned = false, b_unsigned = false;
  std::vector<std::int16_t> a, b;
};

GemmCase gemm_case_gen(std::vector<hdq::AccMode> modes) {
  GemmCase g;
  g.m = *gen::weightedOneOf<int>({{1, gen::just(0)}, {30, uniform(1, 5)}});
  g.n = *gen::weightedOneOf<int>({{1, gen::just(0)}, {30, uniform(1, 5)}});
  g.k = *gen::weightedOneOf<int>({{1, gen::just(0)}, {30, uniform(1, 48)}});
  g.cfg.mode = *gen::elementOf(modes);
  g.cfg.range = *gen::element(hdq::AccRange::symmetric, hdq::AccRange::full);
  g.cfg.acc_bits = *hdqprop::acc_bits_gen();
  g.cfg.outer_bits = *hdqprop::outer_bits_gen(g.cfg.acc_bits);
  g.cfg.tile = *gen::weightedOneOf<int>({{1, gen::just(0)}, {4, uniform(1, g.k + 2)}});
  hdqprop::random_case_operands(g);
  return g;
}

hdq::GemmStats run(const GemmCase& g, std::vector<std::int32_t>& c, hdq::KernelPath path) {
  c.assign(std::size_t(g.m) * g.n, -12345);
  hdq::GemmContext ctx;
  return hdq::gemm(ctx, {g.m, g.n, g.k}, {g.a, g.a_bits, g.a_unsigned}, {g.b, g.b_bits, g.b_unsigned}, g.cfg, c,
                   path);
}

// 4. Section 5, every accumulator mode: the reference GEMM's whole C matrix
// and every GemmStats field equal the cpp_int oracle of prop_gemm_oracle.h
// (which follows the text literally: tiles of t with a short last one and
// t = 0 meaning K; exact / clamp_tile / saturate / wrap tile results; wrap into
// the full range whatever acc_range says; outer O = clamp(O + P, full Wo
// range) in tile order; counts of products, clamp_tile changes, saturate/wrap
// changed steps, outer overflows, tile results, and the largest |exact tile
// sum|; the derived inner events and rate). Cases cover W 2..32, both ranges, tiles 0
// and 1..K+2, Wo W..32, operand bits 2..8 signed/unsigned including the most
// negative value, and operands at the extremes / in same-sign runs so most
// narrow-register cases do overflow.
RC_GTEST_PROP(Accumulator, ReferenceGemmEqualsExactCppIntOracle, ()) {
  const GemmCase g = gemm_case_gen(
      {hdq::AccMode::exact, hdq::AccMode::clamp_tile, hdq::AccMode::saturate, hdq::AccMode::wrap});
  std::vector<std::int32_t> c;
  const hdq::GemmStats st = run(g, c, hdq::KernelPath::reference);
  const OracleResult o = oracle_gemm(g.m, g.n, g.k, g.a, g.b, g.cfg);
  RC_CLASSIFY(o.clamped_tiles + o.changed_steps > 0, "inner overflow");
  RC_CLASSIFY(o.outer_overflows > 0, "outer overflow");
  hdqprop::assert_gemm_equals_oracle(c, st, o);
}

// 6. Section 5: narrowing only ever happens through the reported events. The
// tiled result differs from the exact product A B (computed here in cpp_int)
// only if some inner event (clamp_tile change or saturate/wrap changed step)
// or outer overflow was counted; equivalently, with all counters zero every
// stage was the identity and C == A B. Also, for clamp_tile, a largest
// |tile sum| within 2^(W-1)-1 (inside both ranges) means no clamp happened.
// Checked on every available GEMM path, since all must report the same.
RC_GTEST_PROP(Accumulator, TiledEqualsExactProductWheneverNoOverflowIsReported, ()) {
  const GemmCase g =
      gemm_case_gen({hdq::AccMode::exact, hdq::AccMode::clamp_tile, hdq::AccMode::saturate, hdq::AccMode::wrap});
  std::vector<cpp_int> exact(std::size_t(g.m) * g.n, 0);
  for (int i = 0; i < g.m; ++i)
    for (int j = 0; j < g.n; ++j)
      for (int kk = 0; kk < g.k; ++kk)
        exact[std::size_t(i) * g.n + j] +=
            cpp_int(g.a[std::size_t(i) * g.k + kk]) * cpp_int(g.b[std::size_t(kk) * g.n + j]);
  bool any_reported = false, any_differs = false;
  for (hdq::KernelPath path : hdq::available_gemm_paths()) {
    std::vector<std::int32_t> c;
    const hdq::GemmStats st = run(g, c, path);
    const bool reported = st.inner_events() > 0 || st.outer_overflows > 0;
    bool differs = false;
    for (std::size_t i = 0; i < c.size(); ++i) differs = differs || cpp_int(c[i]) != exact[i];
    if (differs) RC_ASSERT(reported);
    if (!reported) RC_ASSERT(!differs);
    if (g.cfg.mode == hdq::AccMode::exact) RC_ASSERT(st.inner_events() == 0u);
    if (g.cfg.mode == hdq::AccMode::clamp_tile &&
        cpp_int(st.max_abs_tile_sum) <= (cpp_int(1) << (g.cfg.acc_bits - 1)) - 1)
      RC_ASSERT(st.clamped_tiles == 0u);
    any_reported = any_reported || reported;
    any_differs = any_differs || differs;
  }
  RC_CLASSIFY(any_reported, "overflow reported");
  RC_CLASSIFY(any_differs, "C differs from exact");
}

}  // namespace
