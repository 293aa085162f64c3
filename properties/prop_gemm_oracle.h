// docs/contract.md §5 (integer GEMM with narrow tiled accumulation) typed in
// from the text with unbounded integers: the outputs, every statistic and the
// derived figures. It uses nothing from models/ but the knob types (no
// acc_limits, clamp_to, wrap_to_bits, GemmStats methods).
#pragma once

#include <rapidcheck.h>

#include <algorithm>
#include <boost/multiprecision/cpp_int.hpp>
#include <cstdint>
#include <vector>

#include "models/accumulator/gemm.h"

namespace hdqprop {

using boost::multiprecision::cpp_int;

struct Register {
  cpp_int lo, hi;  // the W-bit range of the accumulator
  cpp_int modulus, half;
};

// symmetric: [-(2^(W-1)-1), 2^(W-1)-1]; full: [-2^(W-1), 2^(W-1)-1].
inline Register register_of(int w, bool symmetric) {
  Register r;
  r.half = cpp_int(1) << (w - 1);
  r.modulus = cpp_int(1) << w;
  r.hi = r.half - 1;
  r.lo = symmetric ? cpp_int(-(r.half - 1)) : cpp_int(-r.half);
  return r;
}

inline cpp_int clamp_int(const cpp_int& v, const cpp_int& lo, const cpp_int& hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// v reduced modulo 2^W into the full range [-2^(W-1), 2^(W-1)-1].
inline cpp_int wrap_int(const cpp_int& v, const Register& r) {
  cpp_int m = v % r.modulus;  // sign of v (truncating), |m| < 2^W
  if (m < 0) m += r.modulus;
  if (m >= r.half) m -= r.modulus;
  return m;
}

struct OracleResult {
  std::vector<cpp_int> c;
  // The counters, each counted one event at a time (tile_results: one per
  // tile the loop visits, never from a formula).
  cpp_int products = 0, clamped_tiles = 0, changed_steps = 0, outer_overflows = 0, max_abs_tile_sum = 0,
          tile_results = 0;

  // "inner_events = clamped_tiles + changed_steps".
  cpp_int inner_events() const { return clamped_tiles + changed_steps; }
  // "inner_event_rate (double) = clamped_tiles / tile_results if
  // clamped_tiles > 0, else changed_steps / products if products > 0, else 0"
  // (the counters are below 2^53 here, so each converts to double exactly and
  // the quotient is one correctly rounded division).
  double inner_event_rate() const {
    if (clamped_tiles > 0) return clamped_tiles.convert_to<double>() / tile_results.convert_to<double>();
    if (products > 0) return changed_steps.convert_to<double>() / products.convert_to<double>();
    return 0.0;
  }
};

inline OracleResult oracle_gemm(int m, int n, int k, const std::vector<std::int16_t>& a,
                                const std::vector<std::int16_t>& b, const hdq::AccumulatorConfig& cfg) {
  const Register inner = register_of(cfg.acc_bits, cfg.range == hdq::AccRange::symmetric);
  const Register wrap_reg = register_of(cfg.acc_bits, false);
  const Register outer = register_of(cfg.outer_bits, false);
  const int t = cfg.tile == 0 ? k : cfg.tile;  // "0 means one tile"; a t above K gives one tile below
  OracleResult res;
  res.c.assign(std::size_t(m) * n, 0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      cpp_int o = 0;
      // Tiles [0,t), [t,2t), ...; the last may be shorter.
      for (int k0 = 0; k0 < k; k0 += t) {
        const int k1 = std::min(k, k0 + t);
        res.tile_results += 1;
        cpp_int exact = 0, acc = 0;
        for (int kk = k0; kk < k1; ++kk) {
          const cpp_int p = cpp_int(a[std::size_t(i) * k + kk]) * cpp_int(b[std::size_t(kk) * n + j]);
          exact += p;
          res.products += 1;
          const cpp_int raw = acc + p;
          cpp_int next = raw;
          if (cfg.mode == hdq::AccMode::saturate) next = clamp_int(raw, inner.lo, inner.hi);
          if (cfg.mode == hdq::AccMode::wrap) next = wrap_int(raw, wrap_reg);
          if (next != raw) res.changed_steps += 1;
          acc = next;
        }
        res.max_abs_tile_sum = std::max(res.max_abs_tile_sum, cpp_int(abs(exact)));
        cpp_int tile_result = exact;
        switch (cfg.mode) {
          case hdq::AccMode::exact: break;
          case hdq::AccMode::clamp_tile:
            tile_result = clamp_int(exact, inner.lo, inner.hi);
            if (tile_result != exact) res.clamped_tiles += 1;
            break;
          case hdq::AccMode::saturate:
          case hdq::AccMode::wrap: tile_result = acc; break;
        }
        const cpp_int sum = o + tile_result;
        o = clamp_int(sum, outer.lo, outer.hi);
        if (o != sum) res.outer_overflows += 1;
      }
      res.c[std::size_t(i) * n + j] = o;
    }
  return res;
}

// Inside a property: C and every reported figure equal the oracle's (the six
// counters, inner_events, and inner_event_rate exactly: both sides divide the
// same two integers once).
inline void assert_gemm_equals_oracle(const std::vector<std::int32_t>& c, const hdq::GemmStats& st,
                                      const OracleResult& o) {
  RC_ASSERT(c.size() == o.c.size());
  for (std::size_t i = 0; i < c.size(); ++i) RC_ASSERT(cpp_int(c[i]) == o.c[i]);
  RC_ASSERT(cpp_int(st.products) == o.products);
  RC_ASSERT(cpp_int(st.clamped_tiles) == o.clamped_tiles);
  RC_ASSERT(cpp_int(st.changed_steps) == o.changed_steps);
  RC_ASSERT(cpp_int(st.outer_overflows) == o.outer_overflows);
  RC_ASSERT(cpp_int(st.max_abs_tile_sum) == o.max_abs_tile_sum);
  RC_ASSERT(cpp_int(st.tile_results) == o.tile_results);
  RC_ASSERT(cpp_int(st.inner_events()) == o.inner_events());
  RC_ASSERT(st.inner_event_rate() == o.inner_event_rate());
}

}  // namespace hdqprop
