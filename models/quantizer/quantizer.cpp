#include "models/quantizer/quantizer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <fmt/format.h>

#include "models/common/errors.h"

namespace hdq {

void validate(const QuantConfig& cfg) {
  require_in_range("bits", cfg.bits, 2, 8);
  if (cfg.rounding == Rounding::stochastic) require_in_range("sr_bits", cfg.sr_bits, 1, 23);
  if (!(cfg.clip > 0.0f && cfg.clip <= 1.0f))
    throw ConfigError(fmt::format("clip = {} is outside the allowed range (0, 1]", cfg.clip));
}

namespace {

// Smallest power of two >= f, for finite f > 0, read off the f32 bit fields.
// Returns +Inf when that power (2^128) is not representable.
float pow2_at_least(float f) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t exponent = bits >> 23;  // sign bit is 0
  const std::uint32_t mantissa = bits & 0x7fffffu;
  if (exponent == 0) {
    // Subnormal: f = mantissa * 2^-149, so the answer is 2^(ceil(log2 mantissa) - 149).
    const int p = std::bit_width(mantissa - 1);  // ceil(log2 mantissa), mantissa >= 1
    if (p == 23) return std::bit_cast<float>(std::uint32_t{1} << 23);  // 2^-126, smallest normal
    return std::bit_cast<float>(std::uint32_t{1} << p);
  }
  if (mantissa == 0) return f;  // already a power of two
  return std::bit_cast<float>((exponent + 1) << 23);  // exponent 255 with mantissa 0 is +Inf
}

}  // namespace

QuantParams choose_scale(std::span<const float> x, const QuantConfig& cfg, std::string_view tensor) {
  validate(cfg);
  float m = 0.0f;
  float lowest = 0.0f;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]))
      throw NumericError(fmt::format("tensor '{}': element {} is {} (a quantizer accepts finite values only)",
                                     tensor, i, std::isnan(x[i]) ? "NaN" : "Inf"));
    m = std::max(m, std::fabs(x[i]));
    lowest = std::min(lowest, x[i]);
  }
  QuantParams p;
  p.mx = cfg.clip == 1.0f ? m : m * cfg.clip;
  p.is_unsigned = cfg.signedness == Signedness::is_unsigned ||
                  (cfg.signedness == Signedness::automatic && lowest >= 0.0f);
  p.qmin = p.is_unsigned ? 0 : -((1 << (cfg.bits - 1)) - 1);
  p.qmax = p.is_unsigned ? (1 << cfg.bits) - 1 : (1 << (cfg.bits - 1)) - 1;
  if (p.mx == 0.0f) return p;  // all-zero tensor: s = 0, every q = 0

  p.scale = p.mx / static_cast<float>(p.qmax);
  if (cfg.scale_mode == ScaleMode::pow2 && p.scale > 0.0f) p.scale = pow2_at_least(p.scale);
  if (p.scale == 0.0f || !std::isfinite(p.scale))
    throw NumericError(fmt::format("tensor '{}': max |x| * clip = {} gives no finite non-zero scale at {} bits",
                                   tensor, p.mx, cfg.bits));
  return p;
}

int quantize_element(float x, std::uint64_t index, const QuantParams& p, const QuantConfig& cfg,
                     std::uint64_t key) {
  if (p.scale == 0.0f) return 0;
  const float lo = p.is_unsigned ? 0.0f : -p.mx;
  const float v = std::min(std::max(x, lo), p.mx) / p.scale;
  int q;
  if (cfg.rounding == Rounding::nearest) {
    q = static_cast<int>(std::nearbyint(v));  // default FP environment: ties to even
  } else {
    const float a = std::fabs(v);
    const float fl = std::floor(a);
    const float frac_scaled = (a - fl) * std::ldexp(1.0f, cfg.sr_bits);  // exact: power-of-two multiply
    const auto f = static_cast<std::uint32_t>(std::floor(frac_scaled));
    const std::uint32_t r = element_random_bits(key, index, cfg.sr_bits);
    const int magnitude = static_cast<int>(fl) + (r < f ? 1 : 0);
    q = v < 0.0f ? -magnitude : magnitude;
  }
  return std::clamp(q, p.qmin, p.qmax);
}

void quantize_span(std::span<const float> x, std::uint64_t first_index, const QuantParams& p,
                   const QuantConfig& cfg, std::uint64_t key, std::span<std::int16_t> q) {
  if (q.size() != x.size())
    throw ConfigError(fmt::format("quantize_span: output size {} != input size {}", q.size(), x.size()));
  for (std::size_t i = 0; i < x.size(); ++i)
    q[i] = static_cast<std::int16_t>(quantize_element(x[i], first_index + i, p, cfg, key));
}

QuantizedTensor quantize(std::span<const float> x, const QuantConfig& cfg, const RandomStream& rs,
                         std::string_view tensor) {
  QuantizedTensor t;
  t.params = choose_scale(x, cfg, tensor);
  t.q.resize(x.size());
  quantize_span(x, 0, t.params, cfg, rs.key(), t.q);
  return t;
}

void dequantize(std::span<const std::int32_t> o, std::span<const float> factors, std::span<float> y) {
  if (y.size() != o.size())
    throw ConfigError(fmt::format("dequantize: output size {} != input size {}", y.size(), o.size()));
  for (std::size_t i = 0; i < o.size(); ++i) {
    float v = static_cast<float>(o[i]);
    for (float f : factors) v *= f;
    y[i] = v;
  }
}

}  // namespace hdq
