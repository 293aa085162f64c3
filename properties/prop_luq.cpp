// Properties of LUQ rounding (models/quantizer/quantizer.h, "LUQ"; Chmiel et
// al., ICLR 2023, section 4, Eqs. 10-12 and 15; docs/contract.md §8, R13-R18).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <bit>
#include <boost/multiprecision/cpp_int.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

#include "models/common/errors.h"
#include "models/quantizer/quantizer.h"
#include "models/quantizer/quantizer_paths.h"
#include "properties/prop_common.h"
#include "properties/prop_exact.h"

namespace {

using boost::multiprecision::cpp_int;
using boost::multiprecision::cpp_rational;
using hdqprop::coin;
using hdqprop::exact_rational;
using hdqprop::floor_nonneg;
using hdqprop::pow2;
using hdqprop::uniform;
using namespace rc;

// ---------------------------------------------------------------------------
// Oracles, written from the definition in quantizer.h (nothing from models/ is reused).

// LUQ of v for one r-bit random value R, in exact rationals:
//   a < 1:  F = floor(a 2^r), q = sign * (R < F)
//   a >= 1: e with 2^e <= a < 2^(e+1), F = floor((a / 2^e - 1) 2^r), q = sign * 2^(e + (R < F))
// (before the final clamp). `low`/`high` are the two candidates, P(high) = F / 2^r.
struct LuqOracle {
  int sign = 1;
  cpp_rational a;
  bool below_one = false;
  int e = 0;
  cpp_int F;
  LuqOracle(float v, int r) {
    sign = v < 0.0f ? -1 : 1;
    a = exact_rational(std::fabs(v));
    const cpp_rational two_r(cpp_int(1) << r);
    if (a < 1) {
      below_one = true;
      F = floor_nonneg(a * two_r);
    } else {
      while (pow2(e + 1) <= a) ++e;
      F = floor_nonneg((a / pow2(e) - 1) * two_r);
    }
  }
  cpp_rational low() const { return below_one ? cpp_rational(0) : pow2(e); }
  cpp_rational high() const { return below_one ? cpp_rational(1) : pow2(e + 1); }
  cpp_rational q(std::uint64_t R) const { return sign * (cpp_int(R) < F ? high() : low()); }
  // The exact mean over all 2^r values of R.
  cpp_rational mean(int r) const {
    const cpp_rational p(F, cpp_int(1) << r);
    return sign * (low() + p * (high() - low()));
  }
};

// The r-bit random value's flat index: one index per value R = 0..2^r-1 under `key`
// (section 3 formula typed in again in prop_common.h).
std::vector<std::uint64_t> index_per_random_value(std::uint64_t key, int r, std::uint64_t start) {
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
  return index_of;
}

// The scale of a LUQ tensor (quantizer.h): E = 2^(k-1) - 2, s = mx / 2^E (pow2: the
// smallest power of two >= that), [qmin, qmax] = [-2^E, 2^E] ([0, 2^E] unsigned).
struct LuqScale {
  float mx = 0.0f, s = 0.0f;
  int E = 0, qmin = 0, qmax = 0;
  bool is_unsigned = false, no_finite_scale = false;
};

LuqScale luq_scale(const std::vector<float>& x, const hdq::QuantConfig& cfg) {
  LuqScale o;
  float m = 0.0f, lowest = 0.0f;
  for (float v : x) {
    m = std::max(m, std::fabs(v));
    lowest = std::min(lowest, v);
  }
  o.mx = cfg.clip == 1.0f ? m : m * cfg.clip;
  o.is_unsigned = cfg.signedness == hdq::Signedness::is_unsigned ||
                  (cfg.signedness == hdq::Signedness::automatic && lowest >= 0.0f);
  o.E = (1 << (cfg.bits - 1)) - 2;
  o.qmax = 1 << o.E;
  o.qmin = o.is_unsigned ? 0 : -o.qmax;
  if (o.mx == 0.0f) return o;
  o.s = o.mx / float(o.qmax);
  if (o.s == 0.0f) return o;  // R2 (v1.4): a quotient that underflows quantizes like all zero
  if (cfg.scale_mode == hdq::ScaleMode::pow2) {
    int e = 0;
    const float f = std::frexp(o.s, &e);
    if (f != 0.5f) o.s = std::ldexp(1.0f, e);
  }
  o.no_finite_scale = std::isinf(o.s);
  return o;
}

hdq::QuantConfig luq_config() {
  hdq::QuantConfig cfg;
  cfg.bits = *uniform(2, 4);  // the widths validate() allows for luq
  cfg.rounding = hdq::Rounding::luq;
  cfg.sr_bits = *uniform(1, 23);
  cfg.clip = *gen::weightedElement<float>({{4, 1.0f}, {1, 0.975f}, {1, 0.5f}});
  cfg.signedness = *gen::element(hdq::Signedness::automatic, hdq::Signedness::is_signed, hdq::Signedness::is_unsigned);
  cfg.scale_mode = *gen::element(hdq::ScaleMode::f32, hdq::ScaleMode::pow2);
  return cfg;
}

// 1..80 values of every magnitude kind times 2^e (e in -60..60; a few tensors whose
// alpha underflows occur), half of them non-negative; or all zero.
std::vector<float> tensor_gen() {
  const int n = *uniform(1, 80);
  if (*gen::weightedElement<int>({{12, 0}, {1, 1}}) == 1) return std::vector<float>(std::size_t(n), 0.0f);
  const int e = *uniform(-60, 60);
  const bool non_negative = *coin();
  std::vector<float> x = *gen::container<std::vector<float>>(n, hdqprop::signed_value_below(0x1p22f));
  for (float& v : x) {
    v = std::ldexp(v, e);
    if (non_negative) v = std::fabs(v);
  }
  return x;
}

bool is_zero_or_signed_power_of_two(int q) {
  const unsigned m = unsigned(std::abs(q));
  return m == 0 || std::has_single_bit(m);
}

// ---------------------------------------------------------------------------
// 1. Unbiasedness, exactly: over all 2^r values of R the mean of q is the oracle's
// sign * (low + F / 2^r * (high - low)); 0 <= |v| - |mean| < max(1, low) * 2^-r; and
// when v lies on the r-bit grid of its binade (or below 1, on the 2^-r grid) the
// mean is v itself. Hand-built params s = 1 (v = x) with a wide clamp, so the
// clamp does not bind; quantize_element is the per-element reference.
RC_GTEST_PROP(Luq, MeanOverAllRandomValuesIsUnbiasedUpToRBits, ()) {
  const int r = *uniform(1, 12);
  const bool on_grid = *coin();
  float v;
  if (on_grid) {
    // sign * 2^e * (1 + j / 2^r) (e in 0..20), or sign * j / 2^r below one.
    const std::uint32_t j = *uniform<std::uint32_t>(0, (1u << r) - 1);
    const int e = *uniform(-1, 20);
    v = e < 0 ? std::ldexp(float(j), -r) : std::ldexp(1.0f + std::ldexp(float(j), -r), e);
    if (*coin()) v = -v;
  } else {
    v = *hdqprop::signed_value_below(0x1p21f);
  }
  const std::uint64_t key = *hdqprop::any_u64();
  const auto index_of = index_per_random_value(key, r, *uniform<std::uint64_t>(0, std::uint64_t{1} << 40));

  hdq::QuantParams p;
  p.scale = 1.0f;
  p.mx = 0x1p23f;
  p.qmin = -(1 << 23);
  p.qmax = 1 << 23;
  hdq::QuantConfig cfg;
  cfg.rounding = hdq::Rounding::luq;
  cfg.sr_bits = r;

  const LuqOracle o(v, r);
  cpp_rational sum = 0;
  for (std::uint32_t R = 0; R < (1u << r); ++R) {
    const int q = hdq::quantize_element(v, index_of[R], p, cfg, key);
    RC_ASSERT(cpp_rational(q) == o.q(R));
    sum += q;
  }
  const cpp_rational mean = sum / cpp_rational(cpp_int(1) << r);
  RC_ASSERT(mean == o.mean(r));
  const cpp_rational bias = o.a - abs(mean);
  RC_ASSERT(bias >= 0);
  RC_ASSERT(bias < (o.below_one ? cpp_rational(1) : o.low()) / cpp_rational(cpp_int(1) << r));
  if (on_grid) RC_ASSERT(mean == exact_rational(v));
  RC_CLASSIFY(o.below_one, "stochastic underflow");
}

// 1b. E[q * alpha] = x on a real tensor: alpha = max|x| / 2^E is a power of two and
// x sits on the r-bit grid of its binade, so the exact mean of the dequantized value
// over all 2^r values of R is x. The element is quantized with the tensor's own
// choose_scale params at one flat index per value of R.
RC_GTEST_PROP(Luq, DequantizedMeanOfAGridValueIsTheValue, ()) {
  hdq::QuantConfig cfg;
  cfg.bits = *uniform(2, 4);
  cfg.rounding = hdq::Rounding::luq;
  cfg.sr_bits = *uniform(1, 10);
  const int r = cfg.sr_bits, E = (1 << (cfg.bits - 1)) - 2;
  const int k = *uniform(-30, 30);                   // alpha = 2^k
  const float top = std::ldexp(1.0f, k + E);         // max |x| = 2^E alpha
  const int e = *uniform(-1, E - 1);                 // the element's binade (-1: below alpha)
  const std::uint32_t j = *uniform<std::uint32_t>(0, (1u << r) - 1);
  float x = e < 0 ? std::ldexp(float(j), k - r) : std::ldexp(1.0f + std::ldexp(float(j), -r), k + e);
  if (*coin()) x = -x;
  const std::vector<float> tensor{-top, x};
  const hdq::QuantParams p = hdq::choose_scale(tensor, cfg, "x");
  RC_ASSERT(p.scale == std::ldexp(1.0f, k));
  const std::uint64_t key = *hdqprop::any_u64();
  const auto index_of = index_per_random_value(key, r, 0);
  cpp_rational sum = 0;
  for (std::uint32_t R = 0; R < (1u << r); ++R)
    sum += hdq::quantize_element(x, index_of[R], p, cfg, key);
  RC_ASSERT(sum / cpp_rational(cpp_int(1) << r) * exact_rational(p.scale) == exact_rational(x));
}

// 2. On real tensors every element is the oracle's q at its own section 3 random
// bits, clamped to the LUQ range; every q is 0 or +-2^e with e <= E, carries the
// sign of x (none negative when unsigned), and the scale is the stated one.
RC_GTEST_PROP(Luq, QuantizeMatchesOracleAndGivesZeroOrPowersOfTwo, ()) {
  const hdq::QuantConfig cfg = luq_config();
  const std::vector<float> x = tensor_gen();
  const hdq::RandomStream rs{*hdqprop::any_u64(), *uniform<std::uint64_t>(0, 1000), *uniform<std::uint64_t>(0, 1u << 30)};
  const LuqScale o = luq_scale(x, cfg);
  if (o.no_finite_scale) {
    RC_ASSERT_THROWS_AS(hdq::quantize(x, cfg, rs, "x"), hdq::NumericError);
    return;
  }
  const hdq::QuantizedTensor t = hdq::quantize(x, cfg, rs, "x");
  RC_ASSERT(t.params.qmin == o.qmin);
  RC_ASSERT(t.params.qmax == o.qmax);
  RC_ASSERT(t.params.is_unsigned == o.is_unsigned);
  RC_ASSERT(std::bit_cast<std::uint32_t>(t.params.scale) == std::bit_cast<std::uint32_t>(o.s));
  const std::uint64_t key = hdqprop::contract_key(rs.seed, rs.stream, rs.step);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const int q = t.q[i];
    RC_ASSERT(is_zero_or_signed_power_of_two(q));
    RC_ASSERT(std::abs(q) <= (1 << o.E));
    if (o.is_unsigned) RC_ASSERT(q >= 0);
    if (q != 0) RC_ASSERT((q < 0) == (x[i] < 0.0f));
    if (o.s == 0.0f) {  // all zero, or R2: the scale underflows
      RC_ASSERT(q == 0);
      continue;
    }
    const float lo = o.is_unsigned ? 0.0f : -o.mx;
    const float v = std::min(std::max(x[i], lo), o.mx) / o.s;
    const cpp_rational expected = LuqOracle(v, cfg.sr_bits).q(hdqprop::contract_random_bits(key, i, cfg.sr_bits));
    const cpp_rational clamped = std::clamp(expected, cpp_rational(o.qmin), cpp_rational(o.qmax));
    RC_ASSERT(cpp_rational(q) == clamped);
  }
}

// 3. Every path of quantize_span, on the whole tensor or cut into chunks at
// arbitrary points (each chunk with its own first flat index), gives exactly the
// bits of quantize_element per element.
RC_GTEST_PROP(Luq, EveryPathAndTilingGivesTheElementReferenceBits, ()) {
  const hdq::QuantConfig cfg = luq_config();
  const std::vector<float> x = tensor_gen();
  const hdq::RandomStream rs{*hdqprop::any_u64(), 3, 9};
  const LuqScale o = luq_scale(x, cfg);
  RC_PRE(!o.no_finite_scale);
  const hdq::QuantParams p = hdq::choose_scale(x, cfg, "x");
  const std::uint64_t first = *uniform<std::uint64_t>(0, std::uint64_t{1} << 40);
  std::vector<std::int16_t> ref(x.size());
  for (std::size_t i = 0; i < x.size(); ++i)
    ref[i] = static_cast<std::int16_t>(hdq::quantize_element(x[i], first + i, p, cfg, rs.key()));
  const std::size_t chunk = *uniform<std::size_t>(1, x.size());
  for (hdq::KernelPath path : hdq::detail::available_quant_paths()) {
    std::vector<std::int16_t> whole(x.size()), tiled(x.size());
    hdq::detail::quantize_span(x, first, p, cfg, rs.key(), whole, path);
    RC_ASSERT(whole == ref);
    for (std::size_t at = 0; at < x.size(); at += chunk) {
      const std::size_t n = std::min(chunk, x.size() - at);
      hdq::detail::quantize_span(std::span<const float>(x).subspan(at, n), first + at, p, cfg, rs.key(),
                                 std::span<std::int16_t>(tiled).subspan(at, n), path);
    }
    RC_ASSERT(tiled == ref);
  }
}

// 4. The largest level is max|x| (Eq. 11): with c = 1 and a float scale that is a
// normal number, 2^E * alpha == max|x| exactly, an element of magnitude max|x|
// quantizes to +-2^E for every R (unless `unsigned` clamps it to 0), and no
// dequantized magnitude exceeds max|x|.
RC_GTEST_PROP(Luq, TopLevelIsMaxAbsAndNothingExceedsIt, ()) {
  hdq::QuantConfig cfg = luq_config();
  cfg.clip = 1.0f;
  cfg.scale_mode = hdq::ScaleMode::f32;
  const std::vector<float> x = tensor_gen();
  const LuqScale o = luq_scale(x, cfg);
  RC_PRE(o.mx > 0.0f && !o.no_finite_scale && std::isnormal(o.s));
  const hdq::QuantizedTensor t = hdq::quantize(x, cfg, {*hdqprop::any_u64(), 1, 2}, "x");
  RC_ASSERT(float(t.params.qmax) * t.params.scale == o.mx);
  for (std::size_t i = 0; i < x.size(); ++i) {
    RC_ASSERT(float(std::abs(int(t.q[i]))) * t.params.scale <= o.mx);
    const bool clamped_to_zero = o.is_unsigned && x[i] < 0.0f;  // `unsigned` forced on a negative element
    if (std::fabs(x[i]) == o.mx && !clamped_to_zero) RC_ASSERT(std::abs(int(t.q[i])) == (1 << o.E));
  }
}

}  // namespace
