// The quantizer's loops, one function per path (internal to models/; the
// public API in quantizer.h dispatches to the fastest path this CPU runs).
//
// `reference` is the definition (docs/contract.md §1-§3 written out element
// by element); every other path must give the same bits for every input the
// public API can pass it, and tests/test_simd_paths.cpp checks that they do:
//   reference  the per-element loops (quantize_element per element)
//   portable   plain C++, constants hoisted, one loop per mode (baseline ISA;
//              the compiler vectorizes the nearest-rounding loop; luq is a scalar
//              loop over luq_round with the running random-bit counter)
//   avx2       quantizer_avx2.cpp: 8 elements per step, the 64-bit mix of the
//              counter-based random bits emulated with 32-bit multiplies
//              (_mm256_mul_epu32 partial products); only run when the CPU has AVX2.
//              luq reads e and F off the f32 bit fields (same values as luq_round).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "models/quantizer/quantizer.h"

#include "models/common/kernel_path.h"

namespace hdq::detail {

// The paths this machine can run, reference first; the last is the fastest.
std::vector<KernelPath> available_quant_paths();
KernelPath best_quant_path();

// Section 1's pass over the tensor: m = max |x_i| (0 for an empty tensor),
// whether every x_i >= 0, and the index of the first NaN or Inf (x.size() when
// every element is finite; then max_abs and nonnegative are of the whole tensor).
struct ScaleScan {
  float max_abs = 0.0f;
  bool nonnegative = true;
  std::size_t first_nonfinite = 0;
};
ScaleScan scan_reference(std::span<const float> x);
ScaleScan scan_avx2(const float* x, std::size_t n);
ScaleScan scan(std::span<const float> x, KernelPath path);

// Section 2 over x (finite values; q.size() == x.size()), flat indices from first_index.
// The fast paths hold for QuantParams with fl(mx / s) < 2^22 (every scale
// choose_scale makes: mx / s is about qmax) or s == 0; for any other params
// the dispatcher below runs the reference loop.
bool fast_paths_apply(const QuantParams& p);
// LUQ for one element (quantizer.h), v = clamp(x) / s already computed, r = R_i:
// the one definition every path calls, so the paths cannot differ in it.
int luq_round(float v, std::uint32_t r, int sr_bits, int qmin, int qmax);
void quantize_span_reference(std::span<const float> x, std::uint64_t first_index, const QuantParams& p,
                             const QuantConfig& cfg, std::uint64_t key, std::span<std::int16_t> q);
void quantize_span_portable(std::span<const float> x, std::uint64_t first_index, const QuantParams& p,
                            const QuantConfig& cfg, std::uint64_t key, std::span<std::int16_t> q);
void quantize_span_avx2(const float* x, std::size_t n, std::uint64_t first_index, const QuantParams& p,
                        const QuantConfig& cfg, std::uint64_t key, std::int16_t* q);
void quantize_span(std::span<const float> x, std::uint64_t first_index, const QuantParams& p, const QuantConfig& cfg,
                   std::uint64_t key, std::span<std::int16_t> q, KernelPath path);

// Dequantization, y = (((f32)o * f0) * f1) * ...: the per-element loop over the
// factors (reference) and one fixed-length loop per factor count (portable).
void dequantize_reference(std::span<const std::int32_t> o, std::span<const float> factors, std::span<float> y);
void dequantize_portable(std::span<const std::int32_t> o, std::span<const float> factors, std::span<float> y);

}  // namespace hdq::detail
