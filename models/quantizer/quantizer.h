// Per-tensor quantizer (docs/contract.md §1 and 2).
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
// LUQ (rounding = luq; an option beside the contract's two, docs/contract.md §8, R13-R18):
// logarithmic unbiased quantization, B. Chmiel, R. Banner, E. Hoffer, H. Ben-Yaacov,
// D. Soudry, "Accurate Neural Training with 4-bit Matrix Multiplications at Standard
// Formats", ICLR 2023 (arXiv 2112.10769), section 4: a sign and an exponent, levels
// alpha * 2^e; |x| < alpha underflows stochastically to sign * alpha w.p. |x| / alpha,
// else 0 (Eq. 10); alpha is tied to max|x| so that the top level is max|x| (Eq. 11);
// between 2^e alpha and 2^(e+1) alpha unbiased stochastic rounding (Eq. 12); q =
// Q_alpha(T_alpha(x)) (Eq. 15). The paper's text writes alpha = max|x| / 2^(2^(b-1))
// with b = 3 (5 levels); the LUQ authors' reference code (OpenReview supplement)
// divides by 2^(2^b - 1) (8 levels + zero: 17 values, more than 4 bits hold).
// Taken here: k bits = 1 sign bit + (k-1) exponent bits whose all-zero code is 0
// (standard FP [1,k-1,0] without mantissa), i.e. E = 2^(k-1) - 2 and levels
// alpha * 2^e, e = 0..E (4 bits: e = 0..6, alpha = max|x| / 64), the same as the
// `corrected_version` branch of the LUQ baseline in the HDQT authors' code
// (QuantizedCIL luq/LUQ.py: max|x| / 2^(2^3 - 2)).
//   Scale:  E = 2^(k-1) - 2; mx as above; [qmin, qmax] = [-2^E, 2^E] (unsigned: [0, 2^E])
//           s = alpha = mx / 2^E (one f32 division, exact unless s is subnormal);
//           pow2: the smallest power of two >= that value (as for the other roundings)
//   Element: v = clamp(x, -mx, mx) / s (unsigned: clamp to [0, mx]; one f32 division)
//           a = |v|, R = R_i (r = sr_bits random bits, same keying as stochastic)
//           a < 1:  F = floor(a * 2^r)                     (exact: power-of-two multiply)
//                   q = sign(v) * (R < F ? 1 : 0)          (stochastic underflow, Eq. 10)
//           a >= 1: e = floor(log2 a)                      (the f32 exponent field of a, exact)
//                   m = a / 2^e - 1                        (exact: power-of-two division, then
//                                                           Sterbenz subtraction; m in [0, 1))
//                   F = floor(m * 2^r)                     (exact; = the top r bits of a's mantissa)
//                   q = sign(v) * 2^(e + (R < F ? 1 : 0))  (logarithmic SR, Eq. 12)
//           q = clamp(q, qmin, qmax)
//   Over all 2^r values of R: E[q] = sign(v) * F / 2^r (a < 1) or sign(v) * 2^e * (1 + F / 2^r),
//   so 0 <= |v| - |E[q]| < max(1, 2^e) * 2^-r: unbiased up to r bits of a's own magnitude;
//   powers of two (and v on the r-bit grid of its binade) are exact in expectation.
//   Integers out are 0 or +-2^e, e = 0..E; the scale is alpha, so dequantization is
//   unchanged. The GEMM operand then needs operand_bits(cfg) = E + 2 bits (two's
//   complement holding +-2^E): 2 -> 2, 3 -> 4, 4 -> 8; k >= 5 needs >= 16 bits and
//   validate() rejects it (GEMM operands are 2..8 bits).
//   Signedness: LUQ is meant for signed gradients; `auto` still picks unsigned for a
//   non-negative tensor, which changes nothing but the clamp range (and forbids negative
//   values): the levels are the same. `unsigned` on a tensor with negatives clamps them
//   to 0 first, exactly as for the other roundings. clip c < 1 is allowed (values above
//   mx are clamped to the top level, which biases them; LUQ itself uses c = 1).
//
// Readings of the contract chosen here (docs/contract.md, readings of §1 and §2):
// - NaN or Inf anywhere in x is a NumericError naming the tensor, found while
//   computing m, before anything is written.
// - If mx > 0 but s = mx / qmax underflows to 0, the tensor quantizes like an all-zero
//   one: s = 0, every q = 0 (reading 2, v1.4). If pow2 makes s Inf (a value above
//   2^127), no finite scale exists: NumericError naming the tensor.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "models/common/knobs.h"  // Rounding, Signedness, ScaleMode
#include "models/quantizer/random_bits.h"

namespace hdq {

struct QuantConfig {
  int bits = 4;                          // k, 2..8
  Rounding rounding = Rounding::nearest;
  int sr_bits = 16;                      // r, 1..23 (stochastic and luq only)
  float clip = 1.0f;                     // c, in (0, 1]
  Signedness signedness = Signedness::automatic;
  ScaleMode scale_mode = ScaleMode::f32;
};

// Throws ConfigError naming the field when a knob is out of range (including a
// luq config whose GEMM operand would exceed 8 bits: field `bits`).
void validate(const QuantConfig& cfg);

// Bits of the two's-complement GEMM operand (IntOperand::bits) the integers of a
// tensor quantized under `cfg` need: cfg.bits for nearest and stochastic; for luq
// E + 2 with E = 2^(bits-1) - 2 (the integers reach +-2^E), e.g. 4-bit LUQ -> 8.
int operand_bits(const QuantConfig& cfg);

// LUQ's largest exponent E = 2^(bits-1) - 2 (bits 2..8): integers are 0 or +-2^e, e = 0..E.
int luq_max_exponent(int bits);

// What section 1 decides for a whole tensor before any element is rounded.
struct QuantParams {
  float scale = 0.0f;  // s; 0 for an all-zero tensor
  float mx = 0.0f;     // clip bound: values are clamped to [-mx, mx] (unsigned: [0, mx])
  int qmin = 0;
  int qmax = 0;
  bool is_unsigned = false;
};

// Section 1's pass over a tensor: all the scale depends on. A tensor scanned
// in pieces (the NPU's quantizer unit streams it chunk by chunk) has the
// merge() of its pieces' summaries.
struct ScaleSummary {
  float max_abs = 0.0f;     // m = max |x_i| (0 for no elements)
  bool nonnegative = true;  // every x_i >= 0 (-0 included)
  void merge(const ScaleSummary& o) {
    max_abs = max_abs < o.max_abs ? o.max_abs : max_abs;
    nonnegative = nonnegative && o.nonnegative;
  }
};

// The summary of the values x, a whole tensor or the piece of it whose first
// flat index is first_index. A NaN or Inf is a NumericError naming `tensor`
// and the element's flat index.
ScaleSummary scale_summary(std::span<const float> x, std::string_view tensor, std::uint64_t first_index = 0);

// Section 1 from a whole tensor's summary. `tensor` names it in error messages.
QuantParams choose_scale(const ScaleSummary& s, const QuantConfig& cfg, std::string_view tensor);
// Section 1: choose_scale(scale_summary(x, tensor), cfg, tensor), the config checked first.
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

// choose_scale + quantize_span over the whole tensor, into `out` (its
// storage reused) or returned.
void quantize(std::span<const float> x, const QuantConfig& cfg, const RandomStream& rs, std::string_view tensor,
              QuantizedTensor& out);
QuantizedTensor quantize(std::span<const float> x, const QuantConfig& cfg, const RandomStream& rs,
                         std::string_view tensor);

// Dequantization (section 5): y = (((f32)o * f0) * f1) * ... in this order,
// one f32 rounding per multiply. For a GEMM: factors = {s_A, s_B, 1/b}.
void dequantize(std::span<const std::int32_t> o, std::span<const float> factors, std::span<float> y);

}  // namespace hdq
