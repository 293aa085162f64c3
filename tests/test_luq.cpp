// LUQ rounding (quantizer.h, docs/contract.md §8, R13-R18): hand-derived
// cases, the operand width, config checks, the `luq` preset, and the HDQT
// layer's use of the wider operand.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "models/common/errors.h"
#include "models/common/names.h"
#include "models/hdqt/hdqt_linear.h"
#include "models/quantizer/quantizer.h"
#include "models/quantizer/quantizer_paths.h"
#include "models/quantizer/random_bits.h"
#include "sim/npu_engine.h"

namespace hdq {
namespace {

constexpr std::uint64_t kKey = 0x1234567887654321ULL;

QuantConfig luq(int bits = 4, int sr_bits = 2) {
  QuantConfig c;
  c.bits = bits;
  c.rounding = Rounding::luq;
  c.sr_bits = sr_bits;
  return c;
}

// Hand-built params with s = 1, so v = x exactly; [qmin, qmax] of 4-bit LUQ.
QuantParams unit_params(bool is_unsigned = false) {
  QuantParams p;
  p.scale = 1.0f;
  p.mx = 0x1p20f;
  p.qmin = is_unsigned ? 0 : -64;
  p.qmax = 64;
  p.is_unsigned = is_unsigned;
  return p;
}

// The first flat index whose r-bit random value under kKey is R.
std::uint64_t index_with(std::uint32_t R, int r) {
  for (std::uint64_t i = 0;; ++i)
    if (element_random_bits(kKey, i, r) == R) return i;
}

// q of v for each of the 2^r random values R = 0, 1, ..., 2^r - 1 (r = 2 here).
std::vector<int> q_for_each_R(float v, const QuantParams& p = unit_params(), int r = 2) {
  std::vector<int> out;
  for (std::uint32_t R = 0; R < (1u << r); ++R) out.push_back(quantize_element(v, index_with(R, r), p, luq(4, r), kKey));
  return out;
}

// ---------------------------------------------------------------------------
// Element rule, r = 2 (R in 0..3, "R < F" rounds up).

TEST(Luq, BetweenTwoPowersRoundsUnbiasedToEither) {
  // v = 3: e = 1, m = 3/2 - 1 = 0.5, F = floor(0.5 * 4) = 2: R = 0, 1 -> 2^2, R = 2, 3 -> 2^1. Mean (4+4+2+2)/4 = 3.
  EXPECT_EQ(q_for_each_R(3.0f), (std::vector<int>{4, 4, 2, 2}));
  // v = -5: e = 2, m = 5/4 - 1 = 0.25, F = 1: only R = 0 goes to -8. Mean (-8-4-4-4)/4 = -5.
  EXPECT_EQ(q_for_each_R(-5.0f), (std::vector<int>{-8, -4, -4, -4}));
  // v = 48: e = 5, m = 0.5, F = 2: 64 or 32, never 48 (the uniform grid's value). Mean 48.
  EXPECT_EQ(q_for_each_R(48.0f), (std::vector<int>{64, 64, 32, 32}));
  // v = 1.5: e = 0, m = 0.5, F = 2: 2 or 1 (the same as uniform stochastic rounding in [1, 2)).
  EXPECT_EQ(q_for_each_R(1.5f), (std::vector<int>{2, 2, 1, 1}));
}

TEST(Luq, BelowOneUnderflowsStochasticallyToZeroOrOne) {
  // v = 0.75 < 1: F = floor(0.75 * 4) = 3: R = 0, 1, 2 -> 1, R = 3 -> 0. Mean 0.75 (Eq. 10: P(alpha) = |x| / alpha).
  EXPECT_EQ(q_for_each_R(0.75f), (std::vector<int>{1, 1, 1, 0}));
  // v = -0.5: F = 2: -1 for R = 0, 1, else 0. Mean -0.5.
  EXPECT_EQ(q_for_each_R(-0.5f), (std::vector<int>{-1, -1, 0, 0}));
  // v = 0.2: F = floor(0.8) = 0: always 0; the bias 0.2 is below the stated bound 2^-r = 0.25.
  EXPECT_EQ(q_for_each_R(0.2f), (std::vector<int>{0, 0, 0, 0}));
  // v = 0: always 0 (and never -0 trouble: an int).
  EXPECT_EQ(q_for_each_R(0.0f), (std::vector<int>{0, 0, 0, 0}));
}

TEST(Luq, PowersOfTwoNeverMoveAndTheTopIsClamped) {
  // v = 8 = 2^3: m = 0, F = 0, no R is below 0: always 8.
  EXPECT_EQ(q_for_each_R(8.0f), (std::vector<int>{8, 8, 8, 8}));
  // v = 64 = 2^E (E = 6 at 4 bits): the top level, always.
  EXPECT_EQ(q_for_each_R(64.0f), (std::vector<int>{64, 64, 64, 64}));
  // v = 63.9: e = 5, m = 63.9/32 - 1 = 0.996875 (f32), F = floor(3.99) = 3: 64 except R = 3 -> 32.
  EXPECT_EQ(q_for_each_R(63.9f), (std::vector<int>{64, 64, 64, 32}));
  // v = -100 (only with hand-built params: choose_scale keeps |v| <= 2^E): e = 6, m = 0.5625,
  // F = 2: -128 for R = 0, 1, clamped to qmin = -64; else -64.
  EXPECT_EQ(q_for_each_R(-100.0f), (std::vector<int>{-64, -64, -64, -64}));
  // Unsigned params: x = -3 is clamped to 0 first, so q = 0 for every R.
  EXPECT_EQ(q_for_each_R(-3.0f, unit_params(true)), (std::vector<int>{0, 0, 0, 0}));
}

// ---------------------------------------------------------------------------
// Scale and whole tensors.

TEST(Luq, ScaleIsMaxOverTwoToTheE) {
  // 4 bits: E = 2^3 - 2 = 6, alpha = 6.4 / 64 (a power-of-two division, exact).
  const std::vector<float> x{-6.4f, 0.1f, 3.2f};
  const QuantParams p = choose_scale(x, luq(), "x");
  EXPECT_EQ(std::bit_cast<std::uint32_t>(p.scale), std::bit_cast<std::uint32_t>(std::ldexp(6.4f, -6)));
  EXPECT_EQ(p.qmin, -64);
  EXPECT_EQ(p.qmax, 64);
  EXPECT_FALSE(p.is_unsigned);
  // E per bits: 2 -> 0 (levels {0, alpha}), 3 -> 2, 4 -> 6.
  EXPECT_EQ(choose_scale(x, luq(2), "x").qmax, 1);
  EXPECT_EQ(choose_scale(x, luq(3), "x").qmax, 4);
  EXPECT_EQ(luq_max_exponent(4), 6);
}

TEST(Luq, PowerOfTwoValuesQuantizeExactlyWhateverTheRandomBits) {
  // max |x| = 1, alpha = 1/64: v = 32, -64, 16, 0, 1 are 0 or powers of two, so q = v
  // for every R and dequantization q * alpha gives x back exactly.
  const std::vector<float> x{0.5f, -1.0f, 0.25f, 0.0f, 0.015625f};
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    const QuantizedTensor t = quantize(x, luq(4, 16), {seed, 2, 7}, "x");
    EXPECT_EQ(t.q, (std::vector<std::int16_t>{32, -64, 16, 0, 1}));
    EXPECT_EQ(t.params.scale, 0.015625f);
  }
}

TEST(Luq, NonNegativeTensorUsesTheSameLevelsWithoutNegatives) {
  // auto signedness: min x >= 0 -> unsigned, [qmin, qmax] = [0, 64]; alpha = 1 / 64.
  const std::vector<float> x{1.0f, 0.125f, 0.0f};
  const QuantizedTensor t = quantize(x, luq(), {5, 4, 0}, "x");
  EXPECT_TRUE(t.params.is_unsigned);
  EXPECT_EQ(t.params.qmin, 0);
  EXPECT_EQ(t.params.qmax, 64);
  EXPECT_EQ(t.q, (std::vector<std::int16_t>{64, 8, 0}));  // 1 / (1/64) = 64, 0.125 * 64 = 8
}

TEST(Luq, Pow2ScaleModeKeepsEveryValueRepresentable) {
  // max 3: 3 / 64 = 0.046875 -> the next power of two 0.0625; top level 64 * 0.0625 = 4 >= 3.
  QuantConfig c = luq(4, 2);
  c.scale_mode = ScaleMode::pow2;
  const std::vector<float> x{3.0f, -0.0625f};
  const QuantizedTensor t = quantize(x, c, {9, 1, 1}, "x");
  EXPECT_EQ(t.params.scale, 0.0625f);
  // v = 3 / 0.0625 = 48 -> 32 or 64 (e = 5, F = 2); v = -1 -> -1 always.
  EXPECT_TRUE(t.q[0] == 32 || t.q[0] == 64) << t.q[0];
  EXPECT_EQ(t.q[1], -1);
}

// Every path gives the reference's bits: sizes around the AVX2 group of 8 and
// the tails, with both signednesses and several r.
TEST(Luq, EveryPathMatchesTheReference) {
  for (int n : {1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 257})
    for (int r : {1, 5, 16, 23})
      for (bool nonneg : {false, true}) {
        std::vector<float> x(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
          const float u = float(mix64(std::uint64_t(n * 1000 + i)) >> 40) * 0x1p-24f;  // [0, 1)
          x[std::size_t(i)] = std::ldexp(nonneg ? u : 2.0f * u - 1.0f, int(i % 13) - 8);  // many binades
        }
        const QuantConfig c = luq(4, r);
        const QuantParams p = choose_scale(x, c, "x");
        std::vector<std::int16_t> ref(x.size()), got(x.size());
        detail::quantize_span(x, 11, p, c, kKey, ref, KernelPath::reference);
        for (KernelPath path : detail::available_quant_paths()) {
          detail::quantize_span(x, 11, p, c, kKey, got, path);
          EXPECT_EQ(got, ref) << name(path) << " n=" << n << " r=" << r;
        }
      }
}

// ---------------------------------------------------------------------------
// Operand width and config checks.

TEST(Luq, OperandBitsCoverTheLargestInteger) {
  // +-2^E in two's complement needs E + 2 bits: E = 0 -> 2 ([-2, 1] holds +-1), E = 2 -> 4
  // ([-8, 7] holds +-4), E = 6 -> 8 ([-128, 127] holds +-64).
  EXPECT_EQ(operand_bits(luq(2)), 2);
  EXPECT_EQ(operand_bits(luq(3)), 4);
  EXPECT_EQ(operand_bits(luq(4)), 8);
  // The other roundings keep the quantizer's own width.
  QuantConfig sr = luq(6);
  sr.rounding = Rounding::stochastic;
  EXPECT_EQ(operand_bits(sr), 6);
  sr.rounding = Rounding::nearest;
  EXPECT_EQ(operand_bits(sr), 6);
}

std::string validate_error(const QuantConfig& c) {
  try {
    validate(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Luq, ValidateRejectsOperandsWiderThanEightBits) {
  EXPECT_EQ(validate_error(luq(4)), "no error");
  // 5-bit LUQ: E = 14, integers up to +-16384, a 16-bit operand.
  const std::string e5 = validate_error(luq(5));
  EXPECT_NE(e5.find("bits = 5"), std::string::npos) << e5;
  EXPECT_NE(e5.find("luq"), std::string::npos) << e5;
  EXPECT_NE(e5.find("16-bit"), std::string::npos) << e5;
  QuantConfig sr = luq(5);
  sr.rounding = Rounding::stochastic;
  EXPECT_EQ(validate_error(sr), "no error");  // only luq widens the operand
  // sr_bits is used by luq, so it is checked.
  EXPECT_NE(validate_error(luq(4, 0)).find("sr_bits"), std::string::npos);
  // The HDQT config names the role.
  HdqtConfig h = hdqt_preset("paper");
  h.q(QuantRole::bwd_g_dw) = luq(6);
  try {
    validate(h);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("quant.bwd_g_dw: bits = 6"), std::string::npos) << e.what();
  }
}

TEST(Luq, NameParsesAndPrints) {
  EXPECT_EQ(parse_rounding("luq"), Rounding::luq);
  EXPECT_EQ(name(Rounding::luq), "luq");
  try {
    parse_rounding("log");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("nearest, stochastic, luq"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------
// The luq preset.

TEST(Luq, PresetIsPaperWithoutHadamardAndLuqGradients) {
  const HdqtConfig l = hdqt_preset("luq"), p = hdqt_preset("paper");
  EXPECT_NO_THROW(validate(l));
  for (int r = 0; r < kQuantRoles; ++r) {
    const bool gradient = QuantRole(r) == QuantRole::bwd_g_dx || QuantRole(r) == QuantRole::bwd_g_dw;
    EXPECT_EQ(l.quant[r].rounding, gradient ? Rounding::luq : p.quant[r].rounding) << name(QuantRole(r));
    EXPECT_EQ(l.quant[r].bits, 4);
    EXPECT_EQ(l.quant[r].clip, p.quant[r].clip);
    EXPECT_EQ(l.quant[r].sr_bits, p.quant[r].sr_bits);
  }
  for (int g = 0; g < kGemmRoles; ++g) {
    EXPECT_EQ(l.gemm[g].mode, p.gemm[g].mode);
    EXPECT_EQ(l.gemm[g].acc_bits, p.gemm[g].acc_bits);
    EXPECT_EQ(l.gemm[g].tile, p.gemm[g].tile);
  }
  EXPECT_EQ(l.ste, p.ste);
  // max_block = 1: every dimension gets block 1 (H_1 = [1], the identity), no padding;
  // 405 (odd) and 64 (a power of two, block 64 under paper) alike.
  ASSERT_TRUE(l.hadamard.max_block);
  EXPECT_EQ(*l.hadamard.max_block, 1);
  EXPECT_FALSE(l.hadamard.pad);
  for (int d : {405, 64, 12}) {
    const HadamardPlan h = plan_hadamard(d, l.hadamard);
    EXPECT_EQ(h.block, 1) << d;
    EXPECT_EQ(h.padded_length, d) << d;
  }
  try {
    hdqt_preset("float");
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("paper, npu, luq"), std::string::npos) << e.what();
  }
}

// The layer's dX under the luq preset equals a naive composition whose G'q is a
// 4-bit LUQ tensor fed to the GEMM as an 8-bit operand (with a 4-bit operand the
// GEMM rejects values above 7, so this fails if hdqt_linear ignores operand_bits).
// Hadamard is off, so G' = G and W' = Wq.
TEST(Luq, LayerFeedsLuqIntegersAsEightBitOperands) {
  HdqtConfig cfg = hdqt_preset("luq");
  for (auto& a : cfg.gemm) a.mode = AccMode::exact;  // the naive sum below is exact
  const int B = 6, I = 5, O = 9;
  Matrix x(B, I), w(O, I), g(B, O);
  for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] = float(int(i % 7) - 3) * 0.25f;
  for (std::size_t i = 0; i < w.v.size(); ++i) w.v[i] = float(int(i % 5) - 2) * 0.125f;
  for (std::size_t i = 0; i < g.v.size(); ++i) g.v[i] = std::ldexp(float(int(i % 11) - 5), -int(i % 9));
  const std::vector<float> bias(std::size_t(O), 0.0f);
  const HdqtStepContext ctx{.seed = 4, .step = 3, .layer = 0};
  Matrix y, dx, dw;
  std::vector<float> db;
  HdqtLayerState st;
  HdqtLayerStats stats{};
  HdqtContext hc;
  hdqt_linear_forward(hc, x, w, bias, cfg, ctx, y, st, stats);
  ASSERT_NO_THROW(hdqt_linear_backward(hc, g, st, cfg, ctx, &dx, dw, db, stats));

  auto stream = [&](QuantRole r) { return RandomStream{4, std::uint64_t(r), 3}; };
  const QuantizedTensor wq = quantize(w.v, cfg.q(QuantRole::fwd_w), stream(QuantRole::fwd_w), "w");
  std::vector<float> wf(wq.q.begin(), wq.q.end());
  const QuantizedTensor whq = quantize(wf, cfg.q(QuantRole::bwd_w_dx), stream(QuantRole::bwd_w_dx), "w'");
  const QuantizedTensor ghq = quantize(g.v, cfg.q(QuantRole::bwd_g_dx), stream(QuantRole::bwd_g_dx), "g'");
  int largest = 0;
  for (std::int16_t v : ghq.q) largest = std::max(largest, std::abs(int(v)));
  EXPECT_EQ(largest, 64);  // max |G| maps to the top level 2^6: not a 4-bit operand
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < I; ++i) {
      std::int64_t acc = 0;
      for (int o = 0; o < O; ++o) acc += std::int64_t(ghq.q[std::size_t(b) * O + o]) * whq.q[std::size_t(o) * I + i];
      const float expected = float(acc) * ghq.params.scale * whq.params.scale * wq.params.scale * 1.0f;  // b_O = 1
      EXPECT_EQ(std::bit_cast<std::uint32_t>(dx.at(b, i)), std::bit_cast<std::uint32_t>(expected)) << b << "," << i;
    }
}

// The NPU model packs k-bit operand fields (4-bit fields would silently drop the
// high bits of +-64), so its engine refuses luq up front, naming the role.
TEST(Luq, NpuEngineRefusesLuq) {
  try {
    npu::NpuEngine e(npu::default_npu_config(), hdqt_preset("luq"), 1, SgdConfig{});
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("quant.bwd_g_dx: luq rounding is not modelled on the NPU"), std::string::npos)
        << e.what();
  }
  EXPECT_NO_THROW(npu::NpuEngine(npu::default_npu_config(), hdqt_preset("paper"), 1, SgdConfig{}));
}

}  // namespace
}  // namespace hdq
