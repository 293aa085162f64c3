// Configuration of HDQT training (docs/contract.md §6 and 7): one quantizer
// per operand role, one accumulator per GEMM, the Hadamard unit and the
// straight-through estimator. The presets paper and npu are the contract's table.
#pragma once

#include <array>
#include <string_view>

#include "models/accumulator/gemm.h"
#include "models/hadamard/hadamard.h"
#include "models/quantizer/quantizer.h"

namespace hdq {

// Operand roles of one layer; the random stream of a role is 8 * layer + role.
enum class QuantRole { fwd_x = 0, fwd_w = 1, bwd_g_dx = 2, bwd_w_dx = 3, bwd_x_dw = 4, bwd_g_dw = 5 };
inline constexpr int kQuantRoles = 6;

// The three GEMMs of a training step of one layer.
enum class GemmRole { fwd = 0, bwd_dx = 1, bwd_dw = 2 };
inline constexpr int kGemmRoles = 3;

// Straight-through estimator: `clipped` zeroes dX where the forward clamp of
// role fwd_x changed X; `identity` passes dX unchanged.
enum class Ste { identity, clipped };

// How a convolution's backward is grouped and scaled (docs/contract.md §9):
// per_sample (the authors' code: dX and dW GEMMs per sample, gradient-side
// scales per sample, dW summed over samples in f32) or whole_batch (one GEMM
// per phase, every scale per tensor: what the NPU executes). Linear layers
// ignore it.
enum class ConvMapping { per_sample, whole_batch };

struct HdqtConfig {
  std::array<QuantConfig, kQuantRoles> quant;
  std::array<AccumulatorConfig, kGemmRoles> gemm;
  HadamardConfig hadamard;
  Ste ste = Ste::clipped;
  ConvMapping conv_mapping = ConvMapping::whole_batch;

  QuantConfig& q(QuantRole r) { return quant[int(r)]; }
  const QuantConfig& q(QuantRole r) const { return quant[int(r)]; }
  AccumulatorConfig& acc(GemmRole r) { return gemm[int(r)]; }
  const AccumulatorConfig& acc(GemmRole r) const { return gemm[int(r)]; }
};

// "paper" (the authors' code), "npu" (default hardware) or "luq" (paper without
// the Hadamard transform, LUQ rounding of bwd_g_dx and bwd_g_dw); ConfigError otherwise.
// conv_mapping: per_sample for paper and luq, whole_batch for npu (§7).
HdqtConfig hdqt_preset(std::string_view name);

// Throws ConfigError naming the first bad knob.
void validate(const HdqtConfig& cfg);

std::string_view name(QuantRole r);
std::string_view name(GemmRole r);
std::string_view name(Ste s);
Ste parse_ste(std::string_view s, std::string_view field = "ste");
std::string_view name(ConvMapping m);
ConvMapping parse_conv_mapping(std::string_view s, std::string_view field = "conv_mapping");

}  // namespace hdq
