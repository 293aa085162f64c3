// Per-tensor quantizer (NUMERICS.md sections 1 and 2).
//
// Scale (section 1):
//   m  = max |x_i|                        (exact in f32)
//   mx = (c == 1) ? m : m * c             (one f32 multiply)
//   signed:   [qmin, qmax] = [-(2^(k-1) - 1), 2^(k-1) - 1]   (symmetric)
//   unsigned: [qmin, qmax] = [0, 2^k - 1];  `automatic` picks unsigned iff min x_i >= 0
//   scale mode f32:  s = mx / qmax        (one f32 division)
//   scale mode pow2: s = smallest power of two >= the f32 value mx / qmax
//   mx == 0: s = 0 and every q = 0.
//
// Rounding (section 2), per element with flat index i:
//   v = clamp(x, -mx, mx) / s             (unsigned: clamp to [0, mx]; one f32 division)
//   nearest:    q = round-half-to-even(v)
//   stochastic: a = |v|, fl = floor(a), F = floor((a - fl) * 2^r), R = R_i (random_bits.h),
//               q = sign(v) * (fl + (R < F ? 1 : 0))       (every step exact in f32)
//   q = clamp(q, qmin, qmax)
//
// Readings of the contract chosen here (also in docs/numerics-readings.md):
// - NaN or Inf anywhere in x is a NumericError naming the tensor, found while
//   computing m, before anything is written.
// - If mx > 0 but s is 0 (mx / qmax underflows) or Inf (pow2 of a value
//   above 2^127), no finite scale exists: NumericError naming the tensor.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "models/quantizer/random_bits.h"

namespace hdq {

enum class Rounding { nearest, stochastic };
enum class Signedness { automatic, is_signed, is_unsigned };
enum class ScaleMode { f32, pow2 };

struct QuantConfig {
  int bits = 4;                          // k, 2..8
  Rounding rounding = Rounding::nearest;
  int sr_bits = 16;                      // r, 1..23 (stochastic only)
  float clip = 1.0f;                     // c, in (0, 1]
  Signedness signedness = Signedness::automatic;
  ScaleMode scale_mode = ScaleMode::f32;
};

// Throws ConfigError naming the field when a knob is out of range.
void validate(const QuantConfig& cfg);

// What section 1 decides for a whole tensor before any element is rounded.
struct QuantParams {
  float scale = 0.0f;  // s; 0 for an all-zero tensor
  float mx = 0.0f;     // clip bound: values are clamped to [-mx, mx] (unsigned: [0, mx])
  int qmin = 0;
  int qmax = 0;
  bool is_unsigned = false;
};

// Section 1. `tensor` names the tensor in error messages.
QuantParams choose_scale(std::span<const float> x, const QuantConfig& cfg, std::string_view tensor);

// Section 2 for one element: the scalar reference. `key` is RandomStream::key();
// `index` the element's flat index in the whole tensor.
int quantize_element(float x, std::uint64_t index, const QuantParams& p, const QuantConfig& cfg,
                     std::uint64_t key);

// Section 2 over a contiguous run of elements whose first flat index is
// `first_index` (a whole tensor, or one tile of it). Same bits as calling
// quantize_element per element; written as a loop the compiler vectorizes.
void quantize_span(std::span<const float> x, std::uint64_t first_index, const QuantParams& p,
                   const QuantConfig& cfg, std::uint64_t key, std::span<std::int16_t> q);

// A quantized tensor: integers plus the one f32 scale that dequantizes them.
struct QuantizedTensor {
  std::vector<std::int16_t> q;
  QuantParams params;
};

// choose_scale + quantize_span over the whole tensor.
QuantizedTensor quantize(std::span<const float> x, const QuantConfig& cfg, const RandomStream& rs,
                         std::string_view tensor);

// Dequantization (section 5): y = (((f32)o * f0) * f1) * ... in this order,
// one f32 rounding per multiply. For a GEMM: factors = {s_A, s_B, 1/b}.
void dequantize(std::span<const std::int32_t> o, std::span<const float> factors, std::span<float> y);

}  // namespace hdq
