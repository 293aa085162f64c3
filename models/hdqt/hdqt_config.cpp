#include "models/hdqt/hdqt_config.h"

#include <fmt/format.h>

#include "models/common/errors.h"

namespace hdq {

// docs/contract.md §7, row by row; `luq` is `paper` with the Hadamard
// transform off (max_block = 1: every block is H_1 = [1]) and LUQ rounding
// (quantizer.h) of the two gradient operands, bwd_g_dx and bwd_g_dw: the
// HDQT-vs-LUQ comparison on the same integer GEMMs and accumulators.
HdqtConfig hdqt_preset(std::string_view preset) {
  if (preset == "luq") {
    HdqtConfig c = hdqt_preset("paper");
    c.hadamard = HadamardConfig{.max_block = 1, .pad = false};
    for (QuantRole r : {QuantRole::bwd_g_dx, QuantRole::bwd_g_dw}) c.q(r).rounding = Rounding::luq;
    return c;
  }
  const bool paper = preset == "paper";
  if (!paper && preset != "npu")
    throw ConfigError(fmt::format("preset = '{}' is not one of: paper, npu, luq", preset));
  HdqtConfig c;
  for (auto& q : c.quant) {
    q.bits = 4;
    q.clip = 1.0f;
    q.signedness = Signedness::automatic;
    q.scale_mode = ScaleMode::f32;
    q.sr_bits = 16;
  }
  // fwd_x / fwd_w: nearest, clip 0.975 (paper) or 1.0 (npu).
  for (QuantRole r : {QuantRole::fwd_x, QuantRole::fwd_w}) {
    c.q(r).rounding = Rounding::nearest;
    c.q(r).clip = paper ? 0.975f : 1.0f;
  }
  c.q(QuantRole::bwd_w_dx).rounding = Rounding::nearest;
  for (QuantRole r : {QuantRole::bwd_g_dx, QuantRole::bwd_x_dw, QuantRole::bwd_g_dw})
    c.q(r).rounding = Rounding::stochastic;

  // fwd: t = 32, W = 8; clamp_tile + symmetric (paper) or saturate + full (npu).
  // bwd: paper clamps the whole product once (t = 0); npu tiles like the forward.
  for (int g = 0; g < kGemmRoles; ++g) {
    AccumulatorConfig& a = c.gemm[g];
    a.acc_bits = 8;
    a.outer_bits = 32;
    a.mode = paper ? AccMode::clamp_tile : AccMode::saturate;
    a.range = paper ? AccRange::symmetric : AccRange::full;
    a.tile = (paper && g != int(GemmRole::fwd)) ? 0 : 32;
  }
  c.hadamard = paper ? HadamardConfig{} : HadamardConfig{.max_block = 32, .pad = true};
  c.ste = paper ? Ste::identity : Ste::clipped;
  c.conv_mapping = paper ? ConvMapping::per_sample : ConvMapping::whole_batch;
  return c;
}

void validate(const HdqtConfig& cfg) {
  for (int r = 0; r < kQuantRoles; ++r) {
    try {
      validate(cfg.quant[r]);
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("quant.{}: {}", name(QuantRole(r)), e.what()));
    }
  }
  for (int g = 0; g < kGemmRoles; ++g) {
    try {
      validate(cfg.gemm[g]);
    } catch (const ConfigError& e) {
      throw ConfigError(fmt::format("gemm.{}: {}", name(GemmRole(g)), e.what()));
    }
  }
  plan_hadamard(1, cfg.hadamard);  // checks max_block / pad
}

std::string_view name(QuantRole r) {
  static constexpr std::array<std::string_view, kQuantRoles> names{"fwd_x",    "fwd_w",    "bwd_g_dx",
                                                                   "bwd_w_dx", "bwd_x_dw", "bwd_g_dw"};
  return names[int(r)];
}

std::string_view name(GemmRole r) {
  static constexpr std::array<std::string_view, kGemmRoles> names{"fwd", "bwd_dx", "bwd_dw"};
  return names[int(r)];
}

std::string_view name(Ste s) { return s == Ste::clipped ? "clipped" : "identity"; }

Ste parse_ste(std::string_view s, std::string_view field) {
  if (s == "clipped") return Ste::clipped;
  if (s == "identity") return Ste::identity;
  throw ConfigError(fmt::format("{} = '{}' is not one of: identity, clipped", field, s));
}

std::string_view name(ConvMapping m) { return m == ConvMapping::per_sample ? "per_sample" : "whole_batch"; }

ConvMapping parse_conv_mapping(std::string_view s, std::string_view field) {
  if (s == "per_sample") return ConvMapping::per_sample;
  if (s == "whole_batch") return ConvMapping::whole_batch;
  throw ConfigError(fmt::format("{} = '{}' is not one of: per_sample, whole_batch", field, s));
}

}  // namespace hdq
