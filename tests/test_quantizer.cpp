#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "models/common/errors.h"
#include "models/quantizer/quantizer.h"

namespace hdq {
namespace {

QuantConfig nearest4() { return QuantConfig{}; }  // 4 bits, nearest, clip 1, auto sign, f32 scale

QuantConfig stochastic4(int sr_bits) {
  QuantConfig c;
  c.rounding = Rounding::stochastic;
  c.sr_bits = sr_bits;
  return c;
}

// A tensor whose max |x| is 7 gives s = 7 / 7 = 1 at 4 bits signed, so v = x
// and the rounding rule can be read off directly.
TEST(Quantizer, NearestTiesGoToEven) {
  const std::vector<float> x{7.0f, 2.5f, -2.5f, 3.5f, 0.5f, -0.5f, 1.5f, 2.4f};
  const auto t = quantize(x, nearest4(), RandomStream{}, "x");
  ASSERT_EQ(t.params.scale, 1.0f);
  EXPECT_EQ(t.q[1], 2);   // 2.5 -> 2: tie, 2 is even
  EXPECT_EQ(t.q[2], -2);  // -2.5 -> -2: tie, toward the even neighbour, not away from zero
  EXPECT_EQ(t.q[3], 4);   // 3.5 -> 4: tie, 4 is even (so ties are not truncated either)
  EXPECT_EQ(t.q[4], 0);   // 0.5 -> 0
  EXPECT_EQ(t.q[5], 0);   // -0.5 -> 0 (negative zero as an integer is 0)
  EXPECT_EQ(t.q[6], 2);   // 1.5 -> 2
  EXPECT_EQ(t.q[7], 2);   // 2.4 -> 2: not a tie
}

// Signed range is symmetric: -8 is never produced at 4 bits.
TEST(Quantizer, SignedRangeIsSymmetric) {
  const std::vector<float> x{-7.0f, 7.0f, -6.9f};
  const auto t = quantize(x, nearest4(), RandomStream{}, "x");
  EXPECT_EQ(t.params.qmin, -7);
  EXPECT_EQ(t.params.qmax, 7);
  EXPECT_EQ(t.q[0], -7);
  EXPECT_EQ(t.q[2], -7);  // -6.9 rounds to -7
}

// clip 0.5: mx = 7 * 0.5 = 3.5, s = 3.5 / 7 = 0.5. x = 7 and x = -7 clamp to
// +-3.5 and land exactly on +-7; 1.2 / 0.5 = 2.4 rounds to 2.
TEST(Quantizer, ClipFractionClampsBeforeScaling) {
  QuantConfig c = nearest4();
  c.clip = 0.5f;
  const std::vector<float> x{7.0f, -7.0f, 1.2f};
  const auto t = quantize(x, c, RandomStream{}, "x");
  EXPECT_EQ(t.params.mx, 3.5f);
  EXPECT_EQ(t.params.scale, 0.5f);
  EXPECT_EQ(t.q[0], 7);
  EXPECT_EQ(t.q[1], -7);
  EXPECT_EQ(t.q[2], 2);
}

// All-zero tensor: s = 0 and every q = 0 (section 1.4); dequantization gives 0.
TEST(Quantizer, AllZeroTensor) {
  const std::vector<float> x(5, 0.0f);
  const auto t = quantize(x, stochastic4(16), RandomStream{1, 2, 3}, "x");
  EXPECT_EQ(t.params.scale, 0.0f);
  for (auto q : t.q) EXPECT_EQ(q, 0);
  const std::vector<std::int32_t> o{0, 0};
  const std::vector<float> factors{t.params.scale, 1.0f};
  std::vector<float> y(2, 1.0f);
  dequantize(o, factors, y);
  EXPECT_EQ(y[0], 0.0f);
}

// After ReLU a tensor is non-negative, so `automatic` picks [0, 2^k - 1]:
// max 15 gives s = 15 / 15 = 1 and q = x. -0.0 >= 0 holds, so it counts as non-negative.
TEST(Quantizer, AutoSignednessDetectsNonNegativeTensors) {
  const std::vector<float> x{0.0f, -0.0f, 15.0f, 4.0f};
  const auto t = quantize(x, nearest4(), RandomStream{}, "relu_out");
  EXPECT_TRUE(t.params.is_unsigned);
  EXPECT_EQ(t.params.qmin, 0);
  EXPECT_EQ(t.params.qmax, 15);
  EXPECT_EQ(t.q[2], 15);
  EXPECT_EQ(t.q[3], 4);
  // One negative element switches to the signed, symmetric range.
  const std::vector<float> y{-0.5f, 15.0f};
  EXPECT_FALSE(quantize(y, nearest4(), RandomStream{}, "y").params.is_unsigned);
}

// Forcing unsigned on a tensor with negatives clamps them to 0.
TEST(Quantizer, ForcedUnsignedClampsNegativesToZero) {
  QuantConfig c = nearest4();
  c.signedness = Signedness::is_unsigned;
  const std::vector<float> x{-3.0f, 15.0f};
  const auto t = quantize(x, c, RandomStream{}, "x");
  EXPECT_EQ(t.q[0], 0);
  EXPECT_EQ(t.q[1], 15);
}

// An integer v has fraction 0, so F = 0 and R < 0 never holds: it never moves,
// whatever the seed, stream or step.
TEST(Quantizer, StochasticRoundingNeverMovesAnInteger) {
  const std::vector<float> x{7.0f, 3.0f, -2.0f, 0.0f, -7.0f};
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    const auto t = quantize(x, stochastic4(16), RandomStream{seed, seed % 8, seed * 3}, "x");
    EXPECT_EQ(t.q, (std::vector<std::int16_t>{7, 3, -2, 0, -7}));
  }
}

// v = 2.25 with r = 2: F = floor(0.25 * 4) = 1, so q = 3 iff R < 1, i.e. R == 0,
// and q = 2 for R in {1, 2, 3}. Same for -2.25 with the sign applied.
TEST(Quantizer, StochasticRoundingUpIffRandomBelowFraction) {
  QuantConfig c = stochastic4(2);
  const std::vector<float> tensor{7.0f, -1.0f};  // signed (has a negative), max 7: s = 1
  const QuantParams p = choose_scale(tensor, c, "x");
  const std::uint64_t key = RandomStream{5, 3, 9}.key();
  int seen_up = 0, seen_down = 0;
  for (std::uint64_t i = 0; i < 64; ++i) {
    const bool up = element_random_bits(key, i, 2) == 0;
    EXPECT_EQ(quantize_element(2.25f, i, p, c, key), up ? 3 : 2) << "element " << i;
    EXPECT_EQ(quantize_element(-2.25f, i, p, c, key), up ? -3 : -2) << "element " << i;
    (up ? seen_up : seen_down)++;
  }
  EXPECT_GT(seen_up, 0);  // both outcomes occurred, so both branches were checked
  EXPECT_GT(seen_down, 0);
}

// pow2 scale: the smallest power of two >= mx / qmax (signed tensors: qmax = 7).
TEST(Quantizer, Pow2ScaleRoundsUpToAPowerOfTwo) {
  QuantConfig c = nearest4();
  c.scale_mode = ScaleMode::pow2;
  auto scale_of = [&](float m) { return choose_scale(std::vector<float>{m, -m}, c, "x").scale; };
  EXPECT_EQ(scale_of(7.0f), 1.0f);     // 7 / 7 = 1 is a power of two already
  EXPECT_EQ(scale_of(10.0f), 2.0f);    // 10 / 7 = 1.43 -> 2
  EXPECT_EQ(scale_of(0.7f), 0.125f);   // 0.7 / 7 = 0.1 -> 0.125
  // Subnormal quotient: 7 * 2^-140 / 7 = 2^-140 exactly (a subnormal power of two).
  EXPECT_EQ(scale_of(std::ldexp(7.0f, -140)), std::ldexp(1.0f, -140));
  // 10 * 2^-140 / 7 = 1.43 * 2^-140 -> 2^-139.
  EXPECT_EQ(scale_of(std::ldexp(10.0f, -140)), std::ldexp(1.0f, -139));
}

// Reading 2 (contract v1.4). A vanished gradient: max |x| = 3 * 2^-149 at 4 bits
// gives mx / qmax = 3/7 * 2^-149, below half the smallest subnormal, so the f32
// quotient rounds to 0. The tensor quantizes like an all-zero one (s = 0, q = 0)
// in both scale modes. A pow2 scale can overflow only at qmax = 1 (signed 2 bits;
// FLT_MAX / 3 < 2^127): mx = 1.5 * 2^127 rounds up to 2^128, which has no finite
// value, so that stays a NumericError naming the tensor.
TEST(Quantizer, UnderflowingScaleQuantizesToZeroAndOverflowingPow2ScaleIsAnError) {
  const float tiny = std::ldexp(3.0f, -149);
  const std::vector<float> x{tiny, -tiny, std::ldexp(1.0f, -149)};
  for (ScaleMode mode : {ScaleMode::f32, ScaleMode::pow2}) {
    for (Rounding r : {Rounding::nearest, Rounding::stochastic}) {
      QuantConfig c = nearest4();
      c.scale_mode = mode;
      c.rounding = r;
      const QuantizedTensor t = quantize(x, c, RandomStream{1, 2, 3}, "layer1.bwd_g_dx");
      EXPECT_EQ(t.params.mx, tiny);
      EXPECT_EQ(t.params.scale, 0.0f);
      EXPECT_EQ(t.q, (std::vector<std::int16_t>{0, 0, 0}));
    }
  }
  QuantConfig c = nearest4();
  c.bits = 2;
  c.scale_mode = ScaleMode::pow2;
  const std::vector<float> huge{std::ldexp(1.5f, 127), -1.0f};
  try {
    quantize(huge, c, RandomStream{}, "layer0.fwd_w");
    FAIL() << "expected NumericError";
  } catch (const NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("layer0.fwd_w"), std::string::npos);
  }
}

TEST(Quantizer, NonFiniteInputIsANumericErrorNamingTheTensor) {
  const std::vector<float> x{1.0f, std::numeric_limits<float>::quiet_NaN()};
  try {
    quantize(x, nearest4(), RandomStream{}, "layer0.fwd_x");
    FAIL() << "expected NumericError";
  } catch (const NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("layer0.fwd_x"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos);
  }
  const std::vector<float> y{std::numeric_limits<float>::infinity()};
  EXPECT_THROW(quantize(y, nearest4(), RandomStream{}, "y"), NumericError);
}

TEST(Quantizer, BadConfigIsAConfigErrorNamingTheField) {
  auto message = [](QuantConfig c) {
    try {
      validate(c);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  QuantConfig c = nearest4();
  c.bits = 9;
  EXPECT_NE(message(c).find("bits = 9"), std::string::npos);
  c = nearest4();
  c.bits = 1;
  EXPECT_NE(message(c).find("bits"), std::string::npos);
  c = stochastic4(24);
  EXPECT_NE(message(c).find("sr_bits"), std::string::npos);
  c = stochastic4(0);
  EXPECT_NE(message(c).find("sr_bits"), std::string::npos);
  c = nearest4();
  c.clip = 0.0f;
  EXPECT_NE(message(c).find("clip"), std::string::npos);
  c.clip = 1.5f;
  EXPECT_NE(message(c).find("clip"), std::string::npos);
}

// y = ((f32)o * f0) * f1 in this order: 3 * 0.5 = 1.5, * 3 = 4.5.
TEST(Quantizer, DequantizeMultipliesFactorsInOrder) {
  const std::vector<std::int32_t> o{3, -4};
  const std::vector<float> factors{0.5f, 3.0f};
  std::vector<float> y(2);
  dequantize(o, factors, y);
  EXPECT_EQ(y[0], 4.5f);
  EXPECT_EQ(y[1], -6.0f);
  // (f32)o rounds: 2^24 + 1 is not an f32 and becomes 2^24 (ties to even).
  const std::vector<std::int32_t> big{(1 << 24) + 1};
  const std::vector<float> one{1.0f};
  std::vector<float> z(1);
  dequantize(big, one, z);
  EXPECT_EQ(z[0], 16777216.0f);
}

}  // namespace
}  // namespace hdq
