// The register rules of accumulator.h, and the tiled GEMM on hand-sized cases.
#include <gtest/gtest.h>

#include <vector>

#include "models/accumulator/gemm.h"
#include "models/common/errors.h"
#include "models/common/names.h"

namespace hdq {
namespace {

TEST(Accumulator, Ranges) {
  EXPECT_EQ(acc_limits(8, AccRange::symmetric).lo, -127);  // -(2^7 - 1)
  EXPECT_EQ(acc_limits(8, AccRange::symmetric).hi, 127);
  EXPECT_EQ(acc_limits(8, AccRange::full).lo, -128);  // -2^7
  EXPECT_EQ(acc_limits(8, AccRange::full).hi, 127);
  EXPECT_EQ(acc_limits(2, AccRange::full).lo, -2);  // the narrowest register: [-2, 1]
  EXPECT_EQ(acc_limits(2, AccRange::symmetric).lo, -1);
  EXPECT_EQ(acc_limits(32, AccRange::full).lo, -2147483648LL);
  EXPECT_EQ(acc_limits(32, AccRange::full).hi, 2147483647LL);
}

TEST(Accumulator, WrapIsModulo2PowW) {
  EXPECT_EQ(wrap_to_bits(128, 8), -128);  // 127 + 1 wraps to -128
  EXPECT_EQ(wrap_to_bits(-129, 8), 127);  // -128 - 1 wraps to 127
  EXPECT_EQ(wrap_to_bits(255, 8), -1);
  EXPECT_EQ(wrap_to_bits(256, 8), 0);
  EXPECT_EQ(wrap_to_bits(2, 2), -2);  // range [-2, 1]: 2 - 4 = -2
  EXPECT_EQ(wrap_to_bits(5, 32), 5);
}

// A (1 x K) times B (K x 1): one output, so C[0] and the stats are the whole story.
struct Dot {
  std::vector<std::int16_t> a, b;
  int bits = 4;
  GemmStats stats = {};
  std::int32_t run(AccumulatorConfig cfg, KernelPath path = KernelPath::reference) {
    std::vector<std::int32_t> c(1);
    const int k = int(a.size());
    GemmContext ctx;
    stats = gemm(ctx, {1, 1, k}, {a, bits, false}, {b, bits, false}, cfg, c, path);
    return c[0];
  }
};

AccumulatorConfig cfg(AccMode mode, AccRange range = AccRange::full, int tile = 32, int outer = 32) {
  return {.acc_bits = 8, .tile = tile, .mode = mode, .range = range, .outer_bits = outer};
}

// 7 * 7 = 49 three times: 49, 98, 147. At W = 8 the third step leaves [-128, 127].
TEST(Accumulator, SaturationAtTheTop) {
  Dot d{{7, 7, 7}, {7, 7, 7}};
  EXPECT_EQ(d.run(cfg(AccMode::saturate)), 127);  // 147 saturates to 127
  EXPECT_EQ(d.stats.changed_steps, 1u);
  EXPECT_EQ(d.stats.max_abs_tile_sum, 147);
  EXPECT_EQ(d.stats.products, 3u);
  EXPECT_EQ(d.run(cfg(AccMode::clamp_tile)), 127);  // clamp(147) after the fact
  EXPECT_EQ(d.stats.clamped_tiles, 1u);
  EXPECT_EQ(d.stats.changed_steps, 0u);
  EXPECT_EQ(d.run(cfg(AccMode::wrap)), -109);  // 147 - 256
  EXPECT_EQ(d.stats.changed_steps, 1u);
  EXPECT_EQ(d.run(cfg(AccMode::exact)), 147);
  EXPECT_EQ(d.stats.inner_events(), 0u);
}

// -49 three times = -147: full range stops at -128, symmetric at -127.
TEST(Accumulator, SaturationAtTheBottomDependsOnRange) {
  Dot d{{-7, -7, -7}, {7, 7, 7}};
  EXPECT_EQ(d.run(cfg(AccMode::saturate, AccRange::full)), -128);
  EXPECT_EQ(d.run(cfg(AccMode::saturate, AccRange::symmetric)), -127);
  EXPECT_EQ(d.run(cfg(AccMode::clamp_tile, AccRange::full)), -128);
  EXPECT_EQ(d.run(cfg(AccMode::clamp_tile, AccRange::symmetric)), -127);
}

// 8-bit operands: 127 * 1 + 1 * 1 = 128 does not fit; a plain register wraps to -128.
TEST(Accumulator, WrapOf127Plus1IsMinus128) {
  Dot d{{127, 1}, {1, 1}, 8};
  EXPECT_EQ(d.run(cfg(AccMode::wrap)), -128);
  EXPECT_EQ(d.stats.changed_steps, 1u);
  EXPECT_EQ(d.run(cfg(AccMode::saturate)), 127);
}

// Saturation is order dependent: 49, 98, 127 (147 saturated), 127 - 49 = 78,
// while the exact sum is 98, which clamp_tile keeps (98 fits).
TEST(Accumulator, SaturateDiffersFromClampTile) {
  Dot d{{7, 7, 7, -7}, {7, 7, 7, 7}};
  EXPECT_EQ(d.run(cfg(AccMode::saturate)), 78);
  EXPECT_EQ(d.stats.changed_steps, 1u);
  EXPECT_EQ(d.run(cfg(AccMode::clamp_tile)), 98);
  EXPECT_EQ(d.stats.clamped_tiles, 0u);
}

// Tiles of 2 keep each partial at 98 (no event) and the outer sum is 196;
// one tile of 4 saturates at the third and fourth steps.
TEST(Accumulator, TilingKeepsPartialsInRange) {
  Dot d{{7, 7, 7, 7}, {7, 7, 7, 7}};
  EXPECT_EQ(d.run(cfg(AccMode::saturate, AccRange::full, 2)), 196);
  EXPECT_EQ(d.stats.changed_steps, 0u);
  EXPECT_EQ(d.stats.max_abs_tile_sum, 98);
  EXPECT_EQ(d.run(cfg(AccMode::saturate, AccRange::full, 4)), 127);
  EXPECT_EQ(d.stats.changed_steps, 2u);  // 147 -> 127, then 176 -> 127
  EXPECT_EQ(d.run(cfg(AccMode::saturate, AccRange::full, 0)), 127);  // tile 0 = whole K
  EXPECT_EQ(d.run(cfg(AccMode::saturate, AccRange::full, 100)), 127);  // tile > K = whole K
}

// Outer accumulator of 8 bits: 98 + 98 = 196 clamps to 127 once.
TEST(Accumulator, OuterOverflowIsCountedAndClamped) {
  Dot d{{7, 7, 7, 7}, {7, 7, 7, 7}};
  EXPECT_EQ(d.run(cfg(AccMode::exact, AccRange::full, 2, 8)), 127);
  EXPECT_EQ(d.stats.outer_overflows, 1u);
}

// Every available path agrees on these hand cases too.
TEST(Accumulator, HandCasesOnEveryPath) {
  for (KernelPath path : available_gemm_paths()) {
    Dot d{{7, 7, 7, -7}, {7, 7, 7, 7}};
    EXPECT_EQ(d.run(cfg(AccMode::saturate), path), 78) << name(path);
    // Wrap: 49, 98, 147 -> -109, -109 - 49 = -158 -> 98. Modular arithmetic
    // ends at the exact sum (98) because it is in range; two steps changed.
    EXPECT_EQ(d.run(cfg(AccMode::wrap), path), 98) << name(path);
    EXPECT_EQ(d.stats.changed_steps, 2u) << name(path);
  }
}

std::string config_error(AccumulatorConfig c) {
  try {
    validate(c);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Accumulator, BadConfigNamesTheField) {
  AccumulatorConfig c;
  c.acc_bits = 1;
  EXPECT_NE(config_error(c).find("acc_bits"), std::string::npos);
  c.acc_bits = 33;
  EXPECT_NE(config_error(c).find("acc_bits = 33"), std::string::npos);
  c = {};
  c.tile = -1;
  EXPECT_NE(config_error(c).find("tile = -1"), std::string::npos);
  c = {};
  c.acc_bits = 16;
  c.outer_bits = 12;  // Wo < W
  EXPECT_NE(config_error(c).find("outer_bits"), std::string::npos);
}

TEST(Accumulator, ShapeAndOperandErrors) {
  std::vector<std::int16_t> a{1, 2, 3}, b{1, 2};
  std::vector<std::int32_t> c(1);
  GemmContext ctx;
  EXPECT_THROW(gemm(ctx, {1, 1, 3}, {a, 4, false}, {b, 4, false}, {}, c), ConfigError);  // b has 2 values, not 3
  std::vector<std::int16_t> big{8, 0, 0};  // 8 does not fit 4-bit signed (-8..7)
  EXPECT_THROW(gemm(ctx, {1, 1, 3}, {big, 4, false}, {a, 4, false}, {}, c), ConfigError);
  std::vector<std::int32_t> c2(2);
  EXPECT_THROW(gemm(ctx, {1, 1, 3}, {a, 4, false}, {a, 4, false}, {}, c2), ConfigError);  // output size
}

}  // namespace
}  // namespace hdq
