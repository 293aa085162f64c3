#include "models/quantizer/quantizer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <fmt/format.h>

#include "models/common/errors.h"
#include "models/common/names.h"
#include "models/quantizer/quantizer_paths.h"

namespace hdq {

void validate(const QuantConfig& cfg) {
  require_in_range("bits", cfg.bits, 2, 8);
  if (cfg.rounding != Rounding::nearest) require_in_range("sr_bits", cfg.sr_bits, 1, 23);
  if (!(cfg.clip > 0.0f && cfg.clip <= 1.0f))
    throw ConfigError(fmt::format("clip = {} is outside the allowed range (0, 1]", cfg.clip));
  if (cfg.rounding == Rounding::luq && operand_bits(cfg) > 8)
    throw ConfigError(fmt::format(
        "bits = {} with rounding = luq gives integers up to +-2^{} (a {}-bit GEMM operand); GEMM operands are 2..8 "
        "bits, so luq allows bits 2..4",
        cfg.bits, luq_max_exponent(cfg.bits), operand_bits(cfg)));
}

int luq_max_exponent(int bits) {
  require_in_range("bits", bits, 2, 8);
  return (1 << (bits - 1)) - 2;
}

int operand_bits(const QuantConfig& cfg) {
  if (cfg.rounding != Rounding::luq) return cfg.bits;
  return luq_max_exponent(cfg.bits) + 2;  // +-2^E needs E + 1 magnitude bits and a sign
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

ScaleSummary scale_summary(std::span<const float> x, std::string_view tensor, std::uint64_t first_index) {
  const detail::ScaleScan scan = detail::scan(x, detail::best_quant_path());
  if (scan.first_nonfinite < x.size()) {
    const std::size_t i = scan.first_nonfinite;
    throw NumericError(fmt::format("tensor '{}': element {} is {} (a quantizer accepts finite values only)", tensor,
                                   first_index + i, std::isnan(x[i]) ? "NaN" : "Inf"));
  }
  return {scan.max_abs, scan.nonnegative};
}

QuantParams choose_scale(std::span<const float> x, const QuantConfig& cfg, std::string_view tensor) {
  validate(cfg);
  return choose_scale(scale_summary(x, tensor), cfg, tensor);
}

QuantParams choose_scale(const ScaleSummary& s, const QuantConfig& cfg, std::string_view tensor) {
  validate(cfg);
  const float m = s.max_abs;
  QuantParams p;
  p.mx = cfg.clip == 1.0f ? m : m * cfg.clip;
  p.is_unsigned = cfg.signedness == Signedness::is_unsigned ||
                  (cfg.signedness == Signedness::automatic && s.nonnegative);
  if (cfg.rounding == Rounding::luq) {
    // LUQ (quantizer.h): levels 2^e, e = 0..E, and zero; the top level 2^E * alpha is mx.
    const int top = 1 << luq_max_exponent(cfg.bits);
    p.qmin = p.is_unsigned ? 0 : -top;
    p.qmax = top;
  } else {
    p.qmin = p.is_unsigned ? 0 : -((1 << (cfg.bits - 1)) - 1);
    p.qmax = p.is_unsigned ? (1 << cfg.bits) - 1 : (1 << (cfg.bits - 1)) - 1;
  }
  if (p.mx == 0.0f) return p;  // all-zero tensor: s = 0, every q = 0

  p.scale = p.mx / static_cast<float>(p.qmax);  // luq: alpha = mx / 2^E
  // R2: a quotient that underflows to 0 (a vanished gradient, max |x| < qmax * 2^-149)
  // quantizes like an all-zero tensor; there is no power of two to round it up to.
  if (p.scale == 0.0f) return p;
  if (cfg.scale_mode == ScaleMode::pow2) p.scale = pow2_at_least(p.scale);
  if (!std::isfinite(p.scale))
    throw NumericError(fmt::format("tensor '{}': max |x| * clip = {} gives no finite scale at {} bits (pow2 "
                                   "would be 2^128)",
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
  } else if (cfg.rounding == Rounding::luq) {
    return detail::luq_round(v, element_random_bits(key, index, cfg.sr_bits), cfg.sr_bits, p.qmin, p.qmax);
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
  detail::quantize_span(x, first_index, p, cfg, key, q, detail::best_quant_path());
}

void quantize(std::span<const float> x, const QuantConfig& cfg, const RandomStream& rs, std::string_view tensor,
              QuantizedTensor& out) {
  out.params = choose_scale(x, cfg, tensor);
  out.q.resize(x.size());
  quantize_span(x, 0, out.params, cfg, rs.key(), out.q);
}

QuantizedTensor quantize(std::span<const float> x, const QuantConfig& cfg, const RandomStream& rs,
                         std::string_view tensor) {
  QuantizedTensor t;
  quantize(x, cfg, rs, tensor, t);
  return t;
}

void dequantize(std::span<const std::int32_t> o, std::span<const float> factors, std::span<float> y) {
  if (y.size() != o.size())
    throw ConfigError(fmt::format("dequantize: output size {} != input size {}", y.size(), o.size()));
  detail::dequantize_portable(o, factors, y);
}

// ---------------------------------------------------------------------------
// The paths (quantizer_paths.h).
namespace detail {

namespace {

constexpr std::uint64_t kGamma = 0x9e3779b97f4a7c15ULL;  // random_bits.h: R_i = mix(key + (i + 1) * gamma) >> (64 - r)

}  // namespace

std::vector<KernelPath> available_quant_paths() {
  return runnable_paths({KernelPath::reference, KernelPath::portable, KernelPath::avx2});
}

KernelPath best_quant_path() {
  static const KernelPath best = available_quant_paths().back();
  return best;
}

int luq_round(float v, std::uint32_t r, int sr_bits, int qmin, int qmax) {
  const float a = std::fabs(v);
  std::int64_t magnitude;
  if (a < 1.0f) {
    // Stochastic underflow: F = floor(a * 2^r), exact (a power-of-two multiply of a value below 1).
    const auto f = static_cast<std::uint32_t>(a * std::ldexp(1.0f, sr_bits));  // truncation = floor, a >= 0
    magnitude = r < f ? 1 : 0;
  } else if (a >= 0x1p62f) {
    magnitude = std::int64_t{1} << 62;  // only hand-built params get here; clamps to qmax like 2^e would
  } else {
    // 1 <= a < 2^62 is a normal f32: e from the exponent field; m = a / 2^e - 1 in
    // [0, 1) exactly; F = floor(m * 2^r).
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(a);
    const int e = static_cast<int>(bits >> 23) - 127;  // 0..61
    const float m = a / std::ldexp(1.0f, e) - 1.0f;
    const auto f = static_cast<std::uint32_t>(m * std::ldexp(1.0f, sr_bits));
    magnitude = std::int64_t{1} << (e + (r < f ? 1 : 0));  // at most 2^62
  }
  const std::int64_t q = v < 0.0f ? -magnitude : magnitude;
  return static_cast<int>(std::clamp<std::int64_t>(q, qmin, qmax));
}

ScaleScan scan_reference(std::span<const float> x) {
  ScaleScan r;
  float m = 0.0f, lowest = 0.0f;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      r.first_nonfinite = i;
      return r;
    }
    m = std::max(m, std::fabs(x[i]));
    lowest = std::min(lowest, x[i]);
  }
  r.max_abs = m;
  r.nonnegative = lowest >= 0.0f;
  r.first_nonfinite = x.size();
  return r;
}

ScaleScan scan(std::span<const float> x, KernelPath path) {
  if (path == KernelPath::avx2) {
    if (!cpu_supports(KernelPath::avx2)) throw ConfigError("quantizer: path avx2 requested on a CPU without AVX2");
    return scan_avx2(x.data(), x.size());
  }
  return scan_reference(x);  // the reference loop is also the portable one
}

void quantize_span_reference(std::span<const float> x, std::uint64_t first_index, const QuantParams& p,
                             const QuantConfig& cfg, std::uint64_t key, std::span<std::int16_t> q) {
  for (std::size_t i = 0; i < x.size(); ++i)
    q[i] = static_cast<std::int16_t>(quantize_element(x[i], first_index + i, p, cfg, key));
}

// The fast paths need |v| < 2^22 for every element, where v = clamp(x) / s and
// |clamp(x)| <= mx; f32 division is monotonic, so |v| <= fl(mx / s) bounds it.
// Every scale choose_scale makes gives mx / s close to qmax <= 255; any other
// QuantParams a caller builds by hand run the reference loop.
bool fast_paths_apply(const QuantParams& p) {
  return p.scale == 0.0f || (p.scale > 0.0f && p.mx >= 0.0f && p.mx / p.scale < 0x1p22f);
}

void quantize_span_portable(std::span<const float> x, std::uint64_t first_index, const QuantParams& p,
                            const QuantConfig& cfg, std::uint64_t key, std::span<std::int16_t> q) {
  if (!fast_paths_apply(p)) return quantize_span_reference(x, first_index, p, cfg, key, q);
  const std::size_t n = x.size();
  if (p.scale == 0.0f) {
    std::fill(q.begin(), q.end(), std::int16_t{0});
    return;
  }
  const float lo = p.is_unsigned ? 0.0f : -p.mx, hi = p.mx, s = p.scale;
  const int qmin = p.qmin, qmax = p.qmax;
  const float* xp = x.data();
  std::int16_t* qp = q.data();
  if (cfg.rounding == Rounding::nearest) {
    // Round half to even of |v| < 2^22: adding 1.5 * 2^23 lands in [2^23, 2^24),
    // where the f32 spacing is 1, so the default rounding of that one addition
    // is round-half-to-even (1.5 * 2^23 is even); subtracting it back is exact.
    constexpr float kMagic = 0x1.8p23f;
    for (std::size_t i = 0; i < n; ++i) {
      const float v = std::min(std::max(xp[i], lo), hi) / s;
      const int r = static_cast<int>((v + kMagic) - kMagic);
      qp[i] = static_cast<std::int16_t>(std::min(std::max(r, qmin), qmax));
    }
    return;
  }
  const int shift = 64 - cfg.sr_bits;
  std::uint64_t counter = key + (first_index + 1) * kGamma;
  if (cfg.rounding == Rounding::luq) {
    // Scalar: luq_round per element with R_i from the running counter (not vectorized).
    for (std::size_t i = 0; i < n; ++i, counter += kGamma) {
      const float v = std::min(std::max(xp[i], lo), hi) / s;
      const auto r = static_cast<std::uint32_t>(mix64(counter) >> shift);
      qp[i] = static_cast<std::int16_t>(luq_round(v, r, cfg.sr_bits, qmin, qmax));
    }
    return;
  }
  const float two_r = std::ldexp(1.0f, cfg.sr_bits);  // exact
  for (std::size_t i = 0; i < n; ++i, counter += kGamma) {
    const float v = std::min(std::max(xp[i], lo), hi) / s;
    const float a = std::fabs(v);
    const int fl = static_cast<int>(a);  // floor: 0 <= a < 2^22
    const auto f = static_cast<std::uint32_t>(static_cast<int>((a - static_cast<float>(fl)) * two_r));  // floor, >= 0
    const auto r = static_cast<std::uint32_t>(mix64(counter) >> shift);
    const int magnitude = fl + (r < f ? 1 : 0);
    const int qv = v < 0.0f ? -magnitude : magnitude;
    qp[i] = static_cast<std::int16_t>(std::min(std::max(qv, qmin), qmax));
  }
}

void quantize_span(std::span<const float> x, std::uint64_t first_index, const QuantParams& p, const QuantConfig& cfg,
                   std::uint64_t key, std::span<std::int16_t> q, KernelPath path) {
  if (q.size() != x.size())
    throw ConfigError(fmt::format("quantize_span: output size {} != input size {}", q.size(), x.size()));
  switch (path) {
    case KernelPath::reference: return quantize_span_reference(x, first_index, p, cfg, key, q);
    case KernelPath::portable: return quantize_span_portable(x, first_index, p, cfg, key, q);
    case KernelPath::avx2:
      if (!cpu_supports(KernelPath::avx2)) throw ConfigError("quantizer: path avx2 requested on a CPU without AVX2");
      if (!fast_paths_apply(p)) return quantize_span_reference(x, first_index, p, cfg, key, q);
      return quantize_span_avx2(x.data(), x.size(), first_index, p, cfg, key, q.data());
    case KernelPath::avx512:
      break;
  }
  throw ConfigError(fmt::format("quantizer: no {} path (available_quant_paths() lists them)", name(path)));
}

void dequantize_reference(std::span<const std::int32_t> o, std::span<const float> factors, std::span<float> y) {
  for (std::size_t i = 0; i < o.size(); ++i) {
    float v = static_cast<float>(o[i]);
    for (float f : factors) v *= f;
    y[i] = v;
  }
}

namespace {

// y[i] = (((f32)o[i] * f[0]) * f[1]) ... with N factors: a fixed inner length, so it vectorizes.
template <std::size_t N>
void dequantize_fixed(const std::int32_t* o, const float* f, float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    float v = static_cast<float>(o[i]);
    for (std::size_t k = 0; k < N; ++k) v *= f[k];
    y[i] = v;
  }
}

}  // namespace

void dequantize_portable(std::span<const std::int32_t> o, std::span<const float> factors, std::span<float> y) {
  const std::int32_t* op = o.data();
  const float* f = factors.data();
  float* yp = y.data();
  const std::size_t n = o.size();
  switch (factors.size()) {
    case 0: return dequantize_fixed<0>(op, f, yp, n);
    case 1: return dequantize_fixed<1>(op, f, yp, n);
    case 2: return dequantize_fixed<2>(op, f, yp, n);
    case 3: return dequantize_fixed<3>(op, f, yp, n);
    case 4: return dequantize_fixed<4>(op, f, yp, n);
    case 5: return dequantize_fixed<5>(op, f, yp, n);
    default: return dequantize_reference(o, factors, y);
  }
}

}  // namespace detail
}  // namespace hdq
