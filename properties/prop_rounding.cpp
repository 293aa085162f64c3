// Properties of docs/contract.md §1 (scale) and 2 (rounding).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <bit>
#include <boost/multiprecision/cpp_int.hpp>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "models/common/errors.h"
#include "models/quantizer/quantizer.h"
#include "models/quantizer/random_bits.h"
#include "properties/prop_common.h"
#include "properties/prop_exact.h"

namespace {

using boost::multiprecision::cpp_int;
using boost::multiprecision::cpp_rational;
using hdqprop::coin;
using hdqprop::exact_rational;
using hdqprop::floor_nonneg;
using hdqprop::uniform;
using namespace rc;

// ---------------------------------------------------------------------------
// Oracles (written from the contract text; nothing from models/ is reused).

// Section 2, stochastic, for one element with its r-bit random integer R
// given explicitly, in exact rational arithmetic:
//   a = |v|; fl = floor(a); F = floor((a - fl) * 2^r); q = sign(v) * (fl + (R < F ? 1 : 0)).
struct SrOracle {
  int sign = 1;
  cpp_rational a;
  cpp_int fl, F;
  SrOracle(float v, int r) {
    sign = v < 0.0f ? -1 : 1;
    a = exact_rational(std::fabs(v));
    fl = floor_nonneg(a);
    F = floor_nonneg((a - cpp_rational(fl)) * cpp_rational(cpp_int(1) << r));
  }
  // For |v| < 2^23 and r <= 23 both fit easily in 64 bits.
  std::int64_t fl64() const { return static_cast<std::int64_t>(fl); }
  std::uint64_t F64() const { return static_cast<std::uint64_t>(F); }
};

// The oracle's q for one R, with fl and F already exact.
struct SrOracleQ {
  int sign;
  std::int64_t fl;
  std::uint64_t F;
  explicit SrOracleQ(const SrOracle& o) : sign(o.sign), fl(o.fl64()), F(o.F64()) {}
  std::int64_t q(std::uint64_t R) const { return sign * (fl + (R < F ? 1 : 0)); }
};

// Section 2, nearest: round half to even, written with floor and a compare
// (v is an f32, so v - floor(v) is exact in double).
double round_half_even(double v) {
  const double fl = std::floor(v);
  const double d = v - fl;
  if (d < 0.5) return fl;
  if (d > 0.5) return fl + 1.0;
  return std::fmod(fl, 2.0) == 0.0 ? fl : fl + 1.0;
}

// Section 1 for a whole tensor, from the text.
struct ScaleOracle {
  float m = 0.0f, mx = 0.0f, s = 0.0f;
  int qmin = 0, qmax = 0;
  bool is_unsigned = false;
  bool no_finite_scale = false;  // pow2 makes s Inf: a NumericError (R2)
};

ScaleOracle scale_oracle(const std::vector<float>& x, const hdq::QuantConfig& cfg) {
  ScaleOracle o;
  float lowest = 0.0f;
  for (float v : x) {
    o.m = std::max(o.m, std::fabs(v));
    lowest = std::min(lowest, v);
  }
  o.mx = cfg.clip == 1.0f ? o.m : o.m * cfg.clip;
  o.is_unsigned = cfg.signedness == hdq::Signedness::is_unsigned ||
                  (cfg.signedness == hdq::Signedness::automatic && lowest >= 0.0f);
  const int k = cfg.bits;
  o.qmin = o.is_unsigned ? 0 : -((1 << (k - 1)) - 1);
  o.qmax = o.is_unsigned ? (1 << k) - 1 : (1 << (k - 1)) - 1;
  if (o.mx == 0.0f) return o;
  o.s = o.mx / static_cast<float>(o.qmax);
  if (o.s == 0.0f) return o;  // R2 (v1.4): quantized like an all-zero tensor
  if (cfg.scale_mode == hdq::ScaleMode::pow2) {
    // Smallest power of two >= s: s = f * 2^e with 0.5 <= f < 1, so it is s
    // itself when f == 0.5 and 2^e otherwise (2^128 overflows to Inf).
    int e = 0;
    const float f = std::frexp(o.s, &e);
    if (f != 0.5f) o.s = std::ldexp(1.0f, e);
  }
  o.no_finite_scale = std::isinf(o.s);
  return o;
}

// v = clamp(x, -mx, mx) / s (unsigned: clamp to [0, mx]), one f32 division.
float contract_v(float x, const ScaleOracle& o) {
  const float lo = o.is_unsigned ? 0.0f : -o.mx;
  const float c = x < lo ? lo : (x > o.mx ? o.mx : x);
  return c / o.s;
}

// ---------------------------------------------------------------------------
// Generators for whole quantizer cases.

Gen<float> clip_gen() {
  return gen::weightedOneOf<float>({
      {3, gen::just(1.0f)},
      {1, gen::just(0.975f)},
      {3, gen::map(uniform<std::uint32_t>(1, 1u << 24), [](std::uint32_t u) { return float(u) * 0x1p-24f; })},
  });
}

hdq::QuantConfig config_gen(hdq::Rounding rounding) {
  hdq::QuantConfig cfg;
  cfg.bits = *uniform(2, 8);
  cfg.rounding = rounding;
  cfg.sr_bits = *uniform(1, 23);
  cfg.clip = *clip_gen();
  cfg.signedness = *gen::element(hdq::Signedness::automatic, hdq::Signedness::is_signed, hdq::Signedness::is_unsigned);
  cfg.scale_mode = *gen::element(hdq::ScaleMode::f32, hdq::ScaleMode::pow2);
  return cfg;
}

// A tensor of 1..64 elements for `cfg`, in one of four styles:
//   0 generic: signed values of every kind times a random power of two
//     (2^-60..2^105, so tiny tensors whose scale underflows and huge ones whose
//     pow2 scale overflows occur too);
//   1 the same, non-negative (auto signedness then picks unsigned);
//   2 lattice: c = 1 and max |x| = qmax * 2^e, so s = 2^e and every element
//     j * 2^(e-1) gives v = j / 2: exact ties, half of them odd;
//   3 all zero;
//   4 the edges of R2: either subnormal multiples j * 2^-149 (|j| <= 2^k), whose
//     mx / qmax often underflows to 0, or, at qmax = 1 (signed 2 bits, pow2,
//     c = 1), magnitudes in [2^127, 2^128) whose pow2 scale would be 2^128.
std::vector<float> tensor_gen(hdq::QuantConfig& cfg) {
  const int style = *gen::weightedElement<int>({{4, 0}, {2, 1}, {3, 2}, {1, 3}, {1, 4}});
  const int n = *uniform(1, 64);
  std::vector<float> x;
  if (style == 0 || style == 1) {
    const int e = *uniform(-60, 105);
    x = *gen::container<std::vector<float>>(n, hdqprop::signed_value_below(0x1p22f));
    for (float& v : x) {
      v = std::ldexp(v, e);
      if (style == 1) v = std::fabs(v);
    }
  } else if (style == 2) {
    cfg.clip = 1.0f;
    const bool want_unsigned = cfg.signedness == hdq::Signedness::is_unsigned ||
                               (cfg.signedness == hdq::Signedness::automatic && *coin());
    const int qmax = want_unsigned ? (1 << cfg.bits) - 1 : (1 << (cfg.bits - 1)) - 1;
    const int e = *uniform(-20, 20);
    const int jlo = want_unsigned ? 0 : -2 * qmax;
    x = *gen::container<std::vector<float>>(n, gen::map(uniform(jlo, 2 * qmax), [e](int j) {
      return std::ldexp(float(j), e - 1);
    }));
    // Pin the maximum (and, for auto-signed, a negative minimum).
    x[0] = want_unsigned ? std::ldexp(float(qmax), e) : -std::ldexp(float(qmax), e);
  } else if (style == 3) {
    x.assign(n, *gen::element(0.0f, -0.0f));
  } else if (*coin()) {
    const int jmax = *uniform(1, 1 << cfg.bits);  // near qmax units: s = 0, 2^-149 or 2^-148
    x = *gen::container<std::vector<float>>(n, gen::map(uniform(-jmax, jmax), [](int j) {
      return std::ldexp(float(j), -149);
    }));
  } else {
    cfg.bits = 2;
    cfg.signedness = hdq::Signedness::is_signed;
    cfg.scale_mode = hdq::ScaleMode::pow2;
    cfg.clip = 1.0f;
    x = *gen::container<std::vector<float>>(n, gen::map(uniform<std::uint32_t>(1u << 23, (1u << 24) - 1),
                                                        [](std::uint32_t u) { return std::ldexp(float(u), 104); }));
    for (float& v : x)
      if (*coin()) v = -v;
  }
  return x;
}

// ---------------------------------------------------------------------------
// 1. Section 2 (stochastic): "Averaged over all 2^r values of R, E[q] =
// sign(v) * (fl + F / 2^r) exactly, so 0 <= |v| - |E[q]| < 2^-r ... An integer
// v never moves." The library's quantize_element is evaluated for every one of
// the 2^r values of R: for a random key we look (with the section 3 formula
// typed in again in prop_common.h) for one flat index per value R, then
// quantize that element. Each result must equal the exact-rational oracle for
// that R, and the exact mean over all R must be the stated value and satisfy
// the stated bias bound. QuantParams are built by hand (s = 1, a wide
// [qmin, qmax]) so that v = x exactly for |v| up to 2^22, far beyond what 8-bit
// scales reach; quantize_element is the per-element reference for any params.
RC_GTEST_PROP(Rounding, StochasticMeanOverAllRandomValuesIsExactAndBiasBelowResolution, ()) {
  const float v = *hdqprop::signed_value_below(0x1p22f);
  const int r = *uniform(1, 12);
  const std::uint64_t key = *hdqprop::any_u64();
  const std::uint64_t start = *uniform<std::uint64_t>(0, std::uint64_t{1} << 40);

  const std::uint32_t levels = 1u << r;
  std::vector<std::uint64_t> index_of(levels, 0);
  std::vector<bool> seen(levels, false);
  std::uint32_t found = 0;
  for (std::uint64_t i = start; found < levels; ++i) {
    const std::uint32_t R = hdqprop::contract_random_bits(key, i, r);
    if (!seen[R]) {
      seen[R] = true;
      index_of[R] = i;
      ++found;
    }
  }

  hdq::QuantParams p;
  p.scale = 1.0f;
  p.mx = 0x1p23f;
  p.qmin = -(1 << 23);
  p.qmax = 1 << 23;
  hdq::QuantConfig cfg;
  cfg.rounding = hdq::Rounding::stochastic;
  cfg.sr_bits = r;

  const SrOracle oracle(v, r);
  const SrOracleQ oracle_q(oracle);
  const bool integer = oracle.F == 0 && cpp_rational(oracle.fl) == oracle.a;
  std::int64_t sum = 0;
  for (std::uint32_t R = 0; R < levels; ++R) {
    const int q = hdq::quantize_element(v, index_of[R], p, cfg, key);
    RC_ASSERT(std::int64_t{q} == oracle_q.q(R));
    if (integer) RC_ASSERT(double(q) == double(v));
    sum += q;
  }
  const cpp_rational mean{cpp_int(sum), cpp_int(levels)};
  const cpp_rational stated = oracle.sign * (cpp_rational(oracle.fl) + cpp_rational(oracle.F, cpp_int(levels)));
  RC_ASSERT(mean == stated);
  const cpp_rational bias = oracle.a - abs(mean);
  RC_ASSERT(bias >= 0);
  RC_ASSERT(bias < cpp_rational(cpp_int(1), cpp_int(levels)));
  RC_CLASSIFY(integer, "integer v");
}

// 1b. Section 2 (stochastic) + section 3 on real tensors: every element of
// hdq::quantize equals clamp(oracle(v, r, R_i), qmin, qmax) where v is computed
// as the contract says (clamp, then one f32 division by the section 1 scale)
// and R_i is the section 3 formula for the element's flat index. Covers all
// r = 1..23, bits, signedness, scale modes and clips.
RC_GTEST_PROP(Rounding, StochasticQuantizeMatchesOracleAtEachElementsRandomBits, ()) {
  hdq::QuantConfig cfg = config_gen(hdq::Rounding::stochastic);
  const std::vector<float> x = tensor_gen(cfg);
  const hdq::RandomStream rs{*hdqprop::any_u64(), *uniform<std::uint64_t>(0, 1000), *uniform<std::uint64_t>(0, 1u << 30)};
  const ScaleOracle o = scale_oracle(x, cfg);
  if (o.no_finite_scale) {
    RC_ASSERT_THROWS_AS(hdq::quantize(x, cfg, rs, "x"), hdq::NumericError);
    return;
  }
  const hdq::QuantizedTensor t = hdq::quantize(x, cfg, rs, "x");
  RC_ASSERT(t.q.size() == x.size());
  const std::uint64_t key = hdqprop::contract_key(rs.seed, rs.stream, rs.step);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (o.s == 0.0f) {  // all zero, or R2: the scale underflows
      RC_ASSERT(t.q[i] == 0);
      continue;
    }
    const float v = contract_v(x[i], o);
    const SrOracleQ sr{SrOracle(v, cfg.sr_bits)};
    const std::int64_t expected =
        std::clamp<std::int64_t>(sr.q(hdqprop::contract_random_bits(key, i, cfg.sr_bits)), o.qmin, o.qmax);
    RC_ASSERT(std::int64_t{t.q[i]} == expected);
  }
}

// 2. Section 2 (stochastic) with the real random stream: the statement of
// property 1 is about the average over R; here R comes from the counter-based
// generator of section 3 across 10^5 elements of one tensor. Each q_i is a
// two-point variable: lo_i = sign * fl, hi_i = sign * (fl + 1) (both then
// clamped to [qmin, qmax], so the rare clamp near qmax is predicted too) with
// P(hi) = F / 2^r if R_i is uniform. So E[q_i] and Var[q_i] = p(1-p)(hi-lo)^2
// are known exactly; the sum D = sum(q_i - E[q_i]) has standard deviation
// sqrt(sum Var) and must lie within 5 of them. Equivalently: the mean
// rounding error mean(q - v) (in units of the scale) is within 5 standard
// errors of the predicted mean bias mean(E[q_i] - v_i), which for unclamped
// elements is -(a - fl - F/2^r) * sign(v). At least half the elements are
// uniform over the clip range, so sum Var >= ~N/24 and the normal
// approximation is sound; the chance of a false alarm is 5.7e-7 per case
// (about 6e-4 per 1000-case run). v_i is recomputed as the contract states
// from the tensor's own (already tested) scale.
RC_GTEST_PROP(Rounding, StochasticRoundingOfLargeTensorIsStatisticallyUnbiased, ()) {
  constexpr std::size_t kN = 100000;
  hdq::QuantConfig cfg;
  cfg.rounding = hdq::Rounding::stochastic;
  cfg.sr_bits = *uniform(4, 16);
  cfg.bits = *uniform(2, 8);
  cfg.signedness = *gen::element(hdq::Signedness::automatic, hdq::Signedness::is_unsigned);
  cfg.scale_mode = *gen::element(hdq::ScaleMode::f32, hdq::ScaleMode::pow2);
  const hdq::RandomStream rs{*hdqprop::any_u64(), *uniform<std::uint64_t>(0, 1000), *uniform<std::uint64_t>(0, 1u << 30)};
  const std::uint64_t value_seed = *hdqprop::any_u64();
  // 0: uniform over the range; 1: odd elements uniform inside random cells of
  // width range/64; 2: odd elements just above a multiple of range/64 (small
  // fractions, F often 0 or tiny for coarse grids).
  const int style = *uniform(0, 2);
  const bool non_negative = *coin();

  std::mt19937_64 rng(value_seed);
  auto unit = [&] { return float(rng() >> 40) * 0x1p-24f; };  // [0, 1) on a 2^-24 grid
  std::vector<float> x(kN);
  const float range = std::ldexp(1.0f, *uniform(-10, 10));
  for (std::size_t i = 0; i < kN; ++i) {
    float mag = unit() * range;
    if (style != 0 && (i & 1)) {
      const float grid = range / 64.0f;
      mag = std::floor(unit() * 64.0f) * grid + (style == 1 ? unit() * grid : unit() * grid * 0x1p-12f);
    }
    x[i] = (non_negative || (rng() & 1)) ? mag : -mag;
  }
  x[0] = range;  // pins max |x|

  const hdq::QuantizedTensor t = hdq::quantize(x, cfg, rs, "x");
  const auto& p = t.params;
  RC_ASSERT(p.scale > 0.0f);
  const double two_r = std::ldexp(1.0, cfg.sr_bits);
  double d = 0.0, var = 0.0, err = 0.0, predicted_bias = 0.0;
  for (std::size_t i = 0; i < kN; ++i) {
    const float lo_x = p.is_unsigned ? 0.0f : -p.mx;
    const float v = std::min(std::max(x[i], lo_x), p.mx) / p.scale;
    const double a = std::fabs(double(v));
    const double fl = std::floor(a);
    const double F = std::floor((a - fl) * two_r);  // exact: a has 24 significant bits, a < 2^9
    const double pr = F / two_r;
    const double sign = v < 0.0f ? -1.0 : 1.0;
    const double lo = std::clamp(sign * fl, double(p.qmin), double(p.qmax));
    const double hi = std::clamp(sign * (fl + 1.0), double(p.qmin), double(p.qmax));
    const double expected = lo + pr * (hi - lo);
    d += double(t.q[i]) - expected;
    var += pr * (1.0 - pr) * (hi - lo) * (hi - lo);
    err += double(t.q[i]) - double(v);
    predicted_bias += expected - double(v);
  }
  const double se = std::sqrt(var);
  RC_LOG() << "mean error " << err / kN << ", predicted " << predicted_bias / kN << ", standard error " << se / kN
           << "\n";
  RC_ASSERT(std::fabs(d) <= 5.0 * se + 1e-6);
}

// 3a. Section 2 (nearest): q = clamp(round-half-to-even(v), qmin, qmax) with v
// = clamp(x, -mx, mx) / s in one f32 division; so |q - v| <= 1/2 whenever v is
// inside [qmin, qmax], and a distance of exactly 1/2 (a tie) lands on an even
// q. The lattice style makes exact ties common. Clipped elements (|x| > mx) in
// f32 scale mode give v = mx / fl(mx / qmax), within an ulp of qmax when the
// scale is a normal number, so they must quantize to +-qmax (pow2 scales make
// v smaller, so only the range is checked there). A subnormal scale has fewer
// significant bits and v may land far from qmax (max|x| = 7.3e-40 with clip
// 0.03 at 6 bits gives q = 16, not 31): the contract's bits still hold (the
// first assertion), the +-qmax shortcut does not.
RC_GTEST_PROP(Rounding, NearestIsHalfToEvenWithinHalfAndClippedElementsHitQmax, ()) {
  hdq::QuantConfig cfg = config_gen(hdq::Rounding::nearest);
  const std::vector<float> x = tensor_gen(cfg);
  const hdq::RandomStream rs{*hdqprop::any_u64(), 1, 0};
  const ScaleOracle o = scale_oracle(x, cfg);
  RC_PRE(!o.no_finite_scale);
  const hdq::QuantizedTensor t = hdq::quantize(x, cfg, rs, "x");
  bool any_tie = false, any_clipped = false;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const int q = t.q[i];
    if (o.s == 0.0f) {  // all zero, or R2: the scale underflows
      RC_ASSERT(q == 0);
      continue;
    }
    const float v = contract_v(x[i], o);
    RC_ASSERT(double(q) == std::clamp(round_half_even(v), double(o.qmin), double(o.qmax)));
    if (v >= float(o.qmin) && v <= float(o.qmax)) {
      const double dist = std::fabs(double(q) - double(v));
      RC_ASSERT(dist <= 0.5);
      if (dist == 0.5) RC_ASSERT(q % 2 == 0);
      any_tie = any_tie || dist == 0.5;
    }
    const bool clipped = o.is_unsigned ? (x[i] > o.mx) : (std::fabs(x[i]) > o.mx);
    if (clipped && cfg.scale_mode == hdq::ScaleMode::f32 && o.s >= std::numeric_limits<float>::min())
      RC_ASSERT(std::abs(q) == o.qmax);
    any_clipped = any_clipped || clipped;
  }
  RC_CLASSIFY(any_tie, "exact tie");
  RC_CLASSIFY(any_clipped, "clipped element");
}

// 3b. Section 2 ("Finally q = clamp(q, qmin, qmax)") and section 1 ranges:
// for every bits 2..8, signedness, scale mode, clip in (0, 1] and both
// rounding modes, no quantized value leaves [qmin, qmax], and qmin/qmax are
// the section 1 values (signed symmetric: -2^(k-1) is never produced).
RC_GTEST_PROP(Rounding, QuantizedValuesNeverLeaveQminQmax, ()) {
  const auto rounding = *gen::element(hdq::Rounding::nearest, hdq::Rounding::stochastic);
  hdq::QuantConfig cfg = config_gen(rounding);
  const std::vector<float> x = tensor_gen(cfg);
  const ScaleOracle o = scale_oracle(x, cfg);
  RC_PRE(!o.no_finite_scale);
  const hdq::QuantizedTensor t = hdq::quantize(x, cfg, {*hdqprop::any_u64(), 2, 3}, "x");
  RC_ASSERT(t.params.qmin == o.qmin);
  RC_ASSERT(t.params.qmax == o.qmax);
  for (std::int16_t q : t.q) {
    RC_ASSERT(int(q) >= o.qmin);
    RC_ASSERT(int(q) <= o.qmax);
    if (!o.is_unsigned) RC_ASSERT(int(q) != -(1 << (cfg.bits - 1)));
  }
}

// 3c. Section 2, last step: "Finally q = clamp(q, qmin, qmax)", for the
// per-element function itself. Section 1 scales keep v within about an ulp of
// [qmin, qmax], so on real tensors the clamp almost never binds and 3b cannot
// tell whether it is there. Here QuantParams are built by hand with s = 1,
// mx = 2^23 and the section 1 [qmin, qmax] of k bits, for |x| up to 2^12: the
// clamp binds in most cases, and q must be clamp(rounded v, qmin, qmax) with v
// = clamp(x, lo, mx) (lo = 0 unsigned) for both roundings, the stochastic one
// at the element's section 3 random bits.
RC_GTEST_PROP(Rounding, QuantizeElementClampsEitherRoundingToQminQmax, ()) {
  const float x = *hdqprop::signed_value_below(0x1p12f);
  const int k = *uniform(2, 8);
  hdq::QuantConfig cfg;
  cfg.bits = k;
  cfg.rounding = *gen::element(hdq::Rounding::nearest, hdq::Rounding::stochastic);
  cfg.sr_bits = *uniform(1, 23);
  hdq::QuantParams p;
  p.scale = 1.0f;
  p.mx = 0x1p23f;
  p.is_unsigned = *coin();
  p.qmin = p.is_unsigned ? 0 : -((1 << (k - 1)) - 1);
  p.qmax = p.is_unsigned ? (1 << k) - 1 : (1 << (k - 1)) - 1;
  const std::uint64_t key = *hdqprop::any_u64();
  const std::uint64_t index = *uniform<std::uint64_t>(0, std::uint64_t{1} << 40);
  const float v = p.is_unsigned && x < 0.0f ? 0.0f : x;
  const double rounded = cfg.rounding == hdq::Rounding::nearest
                             ? round_half_even(v)
                             : double(SrOracleQ(SrOracle(v, cfg.sr_bits))
                                          .q(hdqprop::contract_random_bits(key, index, cfg.sr_bits)));
  const int q = hdq::quantize_element(x, index, p, cfg, key);
  RC_ASSERT(double(q) == std::clamp(rounded, double(p.qmin), double(p.qmax)));
}

// 3d. Section 1: m = max |x|, mx = (c == 1) ? m : m * c (one f32 multiply),
// qmin/qmax by signedness (`auto` is unsigned iff min x >= 0), s = mx / qmax
// in f32, or for pow2 the smallest power of two >= that f32 value; mx == 0
// gives s = 0 and all q = 0, and so does an mx / qmax that underflows to 0 (R2);
// a pow2 scale that would be 2^128 is a NumericError (R2).
RC_GTEST_PROP(Rounding, ChooseScaleFollowsSection1, ()) {
  hdq::QuantConfig cfg = config_gen(*gen::element(hdq::Rounding::nearest, hdq::Rounding::stochastic));
  const std::vector<float> x = tensor_gen(cfg);
  const ScaleOracle o = scale_oracle(x, cfg);
  RC_CLASSIFY(o.mx > 0.0f && o.s == 0.0f, "mx / qmax underflows");
  RC_CLASSIFY(o.no_finite_scale, "pow2 scale overflows");
  if (o.no_finite_scale) {
    RC_ASSERT_THROWS_AS(hdq::choose_scale(x, cfg, "x"), hdq::NumericError);
    return;
  }
  const hdq::QuantParams p = hdq::choose_scale(x, cfg, "x");
  RC_ASSERT(p.is_unsigned == o.is_unsigned);
  RC_ASSERT(p.qmin == o.qmin);
  RC_ASSERT(p.qmax == o.qmax);
  RC_ASSERT(std::bit_cast<std::uint32_t>(p.mx) == std::bit_cast<std::uint32_t>(o.mx));
  RC_ASSERT(std::bit_cast<std::uint32_t>(p.scale) == std::bit_cast<std::uint32_t>(o.s));
  if (cfg.scale_mode == hdq::ScaleMode::pow2 && o.s > 0.0f) {
    // s is a power of two and the smallest one >= mx / qmax.
    int e = 0;
    RC_ASSERT(std::frexp(p.scale, &e) == 0.5f);
    const float f32_ratio = o.mx / float(o.qmax);
    RC_ASSERT(p.scale >= f32_ratio);
    RC_ASSERT(p.scale / 2.0f < f32_ratio);
  }
}

}  // namespace
