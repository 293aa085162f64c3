// The HDQT layer against a second, naive composition of docs/contract.md §6
// (dense Sylvester matrices for the integer transforms, explicit padding and
// index arithmetic, the reference GEMM), and against float on fine settings.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>

#include "models/common/errors.h"
#include "models/hdqt/hdqt_linear.h"
#include "models/hdqt/hdqt_mlp.h"
#include "models/quantizer/random_bits.h"

namespace hdq {
namespace {

Matrix random_matrix(int r, int c, std::uint64_t seed, float scale = 1.0f, bool non_negative = false) {
  Matrix m(r, c);
  for (std::size_t i = 0; i < m.v.size(); ++i) {
    const float u = float(mix64(seed + i * 0x9e3779b97f4a7c15ULL) >> 40) * 0x1p-24f;
    m.v[i] = scale * (non_negative ? u : 2.0f * u - 1.0f);
  }
  return m;
}

struct Naive {
  const HdqtConfig& cfg;
  HdqtStepContext ctx;

  QuantizedTensor q(std::span<const float> x, QuantRole r) const {
    return quantize(x, cfg.q(r), {ctx.seed, 8 * std::uint64_t(ctx.layer) + std::uint64_t(r), ctx.step}, "t");
  }
  std::vector<std::int32_t> mm(const QuantizedTensor& a, QuantRole ra, const QuantizedTensor& b, QuantRole rb, int m,
                               int n, int k, GemmRole g) const {
    std::vector<std::int32_t> c(std::size_t(m) * n);
    GemmContext gc;
    gemm(gc, {m, n, k}, {a.q, cfg.q(ra).bits, a.params.is_unsigned}, {b.q, cfg.q(rb).bits, b.params.is_unsigned},
         cfg.acc(g), c, KernelPath::reference);
    return c;
  }
  // Dense transform along dimension 0 of an int matrix (rows x cols), padded to `padded` rows:
  // out[r][c] = sum over r2 in r's block of H_b[r % b][r2 % b] * in[r2][c].
  static std::vector<float> dense_hadamard_dim0(const std::vector<std::int16_t>& in, int rows, int cols, int padded,
                                                int b) {
    std::vector<float> out(std::size_t(padded) * cols);
    for (int r = 0; r < padded; ++r)
      for (int c = 0; c < cols; ++c) {
        std::int64_t s = 0;
        const int base = r / b * b;
        for (int r2 = base; r2 < base + b; ++r2)
          if (r2 < rows) s += sylvester_entry(r % b, r2 % b) * std::int64_t(in[std::size_t(r2) * cols + c]);
        out[std::size_t(r) * cols + c] = float(s);
      }
    return out;
  }
};

void expect_bits_equal(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::bit_cast<std::uint32_t>(a[i]), std::bit_cast<std::uint32_t>(b[i])) << what << " element " << i;
}

void check_against_naive(const HdqtConfig& cfg, int B, int I, int O, bool relu_input) {
  const HdqtStepContext ctx{.seed = 99, .step = 17, .layer = 1};
  const Matrix x = random_matrix(B, I, 1, 3.0f, relu_input), w = random_matrix(O, I, 2, 0.5f);
  const Matrix g = random_matrix(B, O, 3, 0.01f);
  const std::vector<float> bias(std::size_t(O), 0.25f);

  Matrix y, dx, dw;
  std::vector<float> db;
  HdqtLayerState st;
  HdqtLayerStats stats{};
  HdqtContext hc;
  hdqt_linear_forward(hc, x, w, bias, cfg, ctx, y, st, stats);
  hdqt_linear_backward(hc, g, st, cfg, ctx, &dx, dw, db, stats);

  const Naive n{cfg, ctx};
  // Forward: Y = ((f32)(Xq Wq^T) * sx) * sw + bias.
  const auto xq = n.q(x.v, QuantRole::fwd_x), wq = n.q(w.v, QuantRole::fwd_w);
  QuantizedTensor wqt = wq;
  for (int o = 0; o < O; ++o)
    for (int i = 0; i < I; ++i) wqt.q[std::size_t(i) * O + o] = wq.q[std::size_t(o) * I + i];
  const auto yacc = n.mm(xq, QuantRole::fwd_x, wqt, QuantRole::fwd_w, B, O, I, GemmRole::fwd);
  std::vector<float> y_ref(yacc.size());
  for (std::size_t i = 0; i < yacc.size(); ++i)
    y_ref[i] = float(yacc[i]) * xq.params.scale * wq.params.scale + bias[i % O];
  expect_bits_equal(y.v, y_ref, "Y");

  // dX along O.
  const HadamardPlan ho = plan_hadamard(O, cfg.hadamard);
  const auto wh = Naive::dense_hadamard_dim0(wq.q, O, I, ho.padded_length, ho.block);
  const auto whq = n.q(wh, QuantRole::bwd_w_dx);
  std::vector<float> gh(std::size_t(B) * ho.padded_length, 0.0f);
  for (int r = 0; r < B; ++r)
    for (int o = 0; o < O; ++o) gh[std::size_t(r) * ho.padded_length + o] = g.at(r, o);
  fwht_f32(gh, ho.block);
  const auto ghq = n.q(gh, QuantRole::bwd_g_dx);
  const auto dxacc = n.mm(ghq, QuantRole::bwd_g_dx, whq, QuantRole::bwd_w_dx, B, I, ho.padded_length, GemmRole::bwd_dx);
  std::vector<float> dx_ref(dxacc.size());
  std::size_t masked_nonzero = 0;  // elements the STE changes: clipped, with a non-zero gradient
  for (std::size_t i = 0; i < dxacc.size(); ++i) {
    dx_ref[i] = float(dxacc[i]) * ghq.params.scale * whq.params.scale * wq.params.scale * (1.0f / float(ho.block));
    const float lo = xq.params.is_unsigned ? 0.0f : -xq.params.mx;
    if (cfg.ste == Ste::clipped && (x.v[i] > xq.params.mx || x.v[i] < lo)) {
      masked_nonzero += dx_ref[i] != 0.0f;
      dx_ref[i] = 0.0f;
    }
  }
  expect_bits_equal(dx.v, dx_ref, "dX");
  // With a clip below 1 the comparison must see the mask at work (a mask
  // never applied, or applied elsewhere, then fails above).
  if (cfg.ste == Ste::clipped && cfg.q(QuantRole::fwd_x).clip < 1.0f) {
    EXPECT_GT(masked_nonzero, 0u);
  }

  // dW along B.
  const HadamardPlan hb = plan_hadamard(B, cfg.hadamard);
  const auto xh = Naive::dense_hadamard_dim0(xq.q, B, I, hb.padded_length, hb.block);
  const auto xhq = n.q(xh, QuantRole::bwd_x_dw);
  std::vector<float> gth(std::size_t(O) * hb.padded_length, 0.0f);
  for (int r = 0; r < B; ++r)
    for (int o = 0; o < O; ++o) gth[std::size_t(o) * hb.padded_length + r] = g.at(r, o);
  fwht_f32(gth, hb.block);
  const auto gthq = n.q(gth, QuantRole::bwd_g_dw);
  const auto dwacc = n.mm(gthq, QuantRole::bwd_g_dw, xhq, QuantRole::bwd_x_dw, O, I, hb.padded_length, GemmRole::bwd_dw);
  std::vector<float> dw_ref(dwacc.size());
  for (std::size_t i = 0; i < dwacc.size(); ++i)
    dw_ref[i] = float(dwacc[i]) * gthq.params.scale * xhq.params.scale * xq.params.scale * (1.0f / float(hb.block));
  expect_bits_equal(dw.v, dw_ref, "dW");

  std::vector<float> db_ref(std::size_t(O), 0.0f);
  for (int r = 0; r < B; ++r)
    for (int o = 0; o < O; ++o) db_ref[o] += g.at(r, o);
  expect_bits_equal(db, db_ref, "db");
}

TEST(HdqtLayer, PaperPresetMatchesNaiveComposition) {
  check_against_naive(hdqt_preset("paper"), 16, 12, 8, false);
  check_against_naive(hdqt_preset("paper"), 12, 20, 10, true);  // O = 10: block 2; B = 12: block 4
}

TEST(HdqtLayer, NpuPresetWithPaddingMatchesNaiveComposition) {
  HdqtConfig cfg = hdqt_preset("npu");
  check_against_naive(cfg, 16, 12, 8, false);  // padded to 32 along O and B
  cfg.hadamard.max_block = 4;
  check_against_naive(cfg, 10, 7, 5, true);  // 10 -> 12 and 5 -> 8: odd sizes are transformed too
}

// The npu preset's clipped STE only acts when the fwd_x quantizer clips
// (clip < 1): then dX is zero exactly where X was clamped, on both sides for a
// signed X and above mx for a non-negative (ReLU) input.
TEST(HdqtLayer, NpuPresetWithClipBelowOneMatchesNaiveComposition) {
  HdqtConfig cfg = hdqt_preset("npu");
  ASSERT_EQ(cfg.ste, Ste::clipped);
  for (float clip : {0.5f, 0.9f}) {
    cfg.q(QuantRole::fwd_x).clip = clip;
    check_against_naive(cfg, 16, 12, 8, false);
    check_against_naive(cfg, 12, 20, 10, true);
  }
}

// The mask the forward keeps is exactly the set of elements the fwd_x clamp
// changed, recomputed here from docs/contract.md §1-§2 alone: mx = the f32
// product max|X| * c, the clamp range [-mx, mx] for a signed X and [0, mx]
// for a non-negative one (auto signedness). The clipped STE's dX is the
// identity STE's dX with exactly those elements set to zero.
TEST(HdqtLayer, ClippedSteMaskIsExactlyTheClippedElements) {
  const int B = 12, I = 20, O = 10;
  for (bool non_negative : {false, true}) {
    HdqtConfig cfg = hdqt_preset("npu");
    const float clip = 0.6f;
    cfg.q(QuantRole::fwd_x).clip = clip;
    const Matrix x = random_matrix(B, I, 11, 3.0f, non_negative), w = random_matrix(O, I, 12, 0.5f);
    const Matrix g = random_matrix(B, O, 13, 0.01f);
    const std::vector<float> bias(std::size_t(O), 0.0f);
    const HdqtStepContext ctx{.seed = 5, .step = 3, .layer = 1};
    HdqtContext hc;
    float m = 0.0f;
    for (float v : x.v) m = std::max(m, std::fabs(v));
    const float mx = m * clip, lo = non_negative ? 0.0f : -mx;
    std::size_t above = 0, below = 0;
    std::vector<std::uint8_t> want(x.v.size());
    for (std::size_t i = 0; i < x.v.size(); ++i) {
      want[i] = x.v[i] > mx || x.v[i] < lo;
      above += x.v[i] > mx, below += x.v[i] < lo;
    }
    // Uniform data clipped at 0.6 of its max: about 40% above (and, signed, below).
    ASSERT_GT(above, 0u);
    if (!non_negative) {
      ASSERT_GT(below, 0u);
    }

    Matrix y, dx_clipped, dx_identity, dw;
    std::vector<float> db;
    HdqtLayerState st;
    HdqtLayerStats stats{};
    hdqt_linear_forward(hc, x, w, bias, cfg, ctx, y, st, stats);
    EXPECT_EQ(st.x_clipped, want) << (non_negative ? "non-negative X" : "signed X");
    hdqt_linear_backward(hc, g, st, cfg, ctx, &dx_clipped, dw, db, stats);
    cfg.ste = Ste::identity;
    hdqt_linear_backward(hc, g, st, cfg, ctx, &dx_identity, dw, db, stats);
    std::size_t zeroed = 0;
    for (std::size_t i = 0; i < x.v.size(); ++i) {
      ASSERT_EQ(std::bit_cast<std::uint32_t>(dx_clipped.v[i]),
                std::bit_cast<std::uint32_t>(want[i] ? 0.0f : dx_identity.v[i]))
          << "element " << i << (want[i] ? " (clipped)" : "");
      zeroed += want[i] && dx_identity.v[i] != 0.0f;
    }
    EXPECT_GT(zeroed, 0u);  // the mask changed some non-zero gradients
  }
}

// On fine settings (8-bit operands, exact accumulation, nearest rounding
// everywhere) the HDQT gradients point where the float ones do. With 8 bits
// the relative quantization error of each operand is about 2^-8 of its max,
// so cosines above 0.99 leave a wide margin; a transposition or scale bug gives
// cosine near 0 or a wrong norm.
TEST(HdqtLayer, FineSettingsTrackFloatGradients) {
  HdqtConfig cfg = hdqt_preset("npu");
  for (auto& q : cfg.quant) q.bits = 8, q.rounding = Rounding::nearest;
  for (auto& a : cfg.gemm) a.mode = AccMode::exact;
  const int B = 32, I = 24, O = 16;
  const Matrix x = random_matrix(B, I, 5, 2.0f), w = random_matrix(O, I, 6, 0.3f), g = random_matrix(B, O, 7, 0.1f);
  const std::vector<float> bias(std::size_t(O), 0.0f);
  Matrix y, dx, dw;
  std::vector<float> db;
  HdqtLayerState st;
  HdqtLayerStats stats{};
  const HdqtStepContext ctx{};
  HdqtContext hc;
  hdqt_linear_forward(hc, x, w, bias, cfg, ctx, y, st, stats);
  hdqt_linear_backward(hc, g, st, cfg, ctx, &dx, dw, db, stats);

  auto cosine_and_ratio = [](const std::vector<float>& a, const std::vector<double>& b) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) ab += a[i] * b[i], aa += double(a[i]) * a[i], bb += b[i] * b[i];
    return std::pair{ab / std::sqrt(aa * bb), std::sqrt(aa / bb)};
  };
  std::vector<double> y_f(std::size_t(B) * O), dx_f(std::size_t(B) * I), dw_f(std::size_t(O) * I);
  for (int r = 0; r < B; ++r)
    for (int o = 0; o < O; ++o)
      for (int i = 0; i < I; ++i) {
        y_f[r * O + o] += double(x.at(r, i)) * w.at(o, i);
        dx_f[r * I + i] += double(g.at(r, o)) * w.at(o, i);
        dw_f[o * I + i] += double(g.at(r, o)) * x.at(r, i);
      }
  for (auto [name, got, want] : {std::tuple{"Y", &y.v, &y_f}, {"dX", &dx.v, &dx_f}, {"dW", &dw.v, &dw_f}}) {
    const auto [cos, ratio] = cosine_and_ratio(*got, *want);
    EXPECT_GT(cos, 0.99) << name;
    EXPECT_NEAR(ratio, 1.0, 0.05) << name;
  }
  EXPECT_EQ(stats[0].inner_events() + stats[1].inner_events() + stats[2].inner_events(), 0u);  // exact mode
}

// The rates the sweep reports (HdqtOverflow::inner_event_rate over a group of
// roles) and those of alignment.csv and metrics.json (GemmStats per layer and
// role) are one function. Two layers, hand-made counters:
//   fwd (clamp_tile): layer 0 clamps 3 of 12 tile results (96 products),
//     layer 1 none of 4 (40 products): merged, 3 clamped of 16 tile results,
//     3 / 16 = 0.1875 (not 3 / (12 + 40): a layer without clamps still had
//     its tile results as opportunities);
//   bwd_dx (saturate): layer 0 runs no dX GEMM, layer 1 changes 10 of 200
//     steps; bwd_dw (wrap): 5 of 300 and 5 of 100; the backward group:
//     (10 + 10) / (200 + 400) = 1 / 30.
TEST(HdqtLayer, ReportedRatesAreTheOneRateFunction) {
  HdqtOverflow o;
  o.layers.resize(2);
  auto set = [&](int l, GemmRole r, std::uint64_t products, std::uint64_t tiles, std::uint64_t clamped,
                 std::uint64_t changed) {
    GemmStats& s = o.layers[std::size_t(l)][int(r)];
    s.products = products, s.tile_results = tiles, s.clamped_tiles = clamped, s.changed_steps = changed;
  };
  set(0, GemmRole::fwd, 96, 12, 3, 0);
  set(1, GemmRole::fwd, 40, 4, 0, 0);
  set(1, GemmRole::bwd_dx, 200, 20, 0, 10);
  set(0, GemmRole::bwd_dw, 300, 30, 0, 5);
  set(1, GemmRole::bwd_dw, 100, 10, 0, 5);
  EXPECT_EQ(o.inner_event_rate({GemmRole::fwd}), 3.0 / 16.0);
  EXPECT_EQ(o.inner_event_rate({GemmRole::bwd_dx, GemmRole::bwd_dw}), 20.0 / 600.0);
  // Per layer and role (alignment.csv, metrics.json): 3 / 12, 0, 10 / 200.
  EXPECT_EQ(o.layers[0][int(GemmRole::fwd)].inner_event_rate(), 0.25);
  EXPECT_EQ(o.layers[1][int(GemmRole::fwd)].inner_event_rate(), 0.0);
  EXPECT_EQ(o.layers[1][int(GemmRole::bwd_dx)].inner_event_rate(), 0.05);
  // One role of one layer through the group function is the per-GEMM figure.
  HdqtOverflow one;
  one.layers = {o.layers[0]};
  EXPECT_EQ(one.inner_event_rate({GemmRole::fwd}), o.layers[0][int(GemmRole::fwd)].inner_event_rate());
  EXPECT_EQ(HdqtOverflow{}.inner_event_rate({GemmRole::fwd}), 0.0);  // nothing ran
}

TEST(HdqtLayer, PresetsFollowTheContractTable) {
  const HdqtConfig paper = hdqt_preset("paper"), npu = hdqt_preset("npu");
  EXPECT_EQ(paper.q(QuantRole::fwd_x).clip, 0.975f);
  EXPECT_EQ(npu.q(QuantRole::fwd_x).clip, 1.0f);
  EXPECT_EQ(paper.q(QuantRole::bwd_g_dw).rounding, Rounding::stochastic);
  EXPECT_EQ(paper.q(QuantRole::bwd_w_dx).rounding, Rounding::nearest);
  EXPECT_EQ(paper.acc(GemmRole::fwd).mode, AccMode::clamp_tile);
  EXPECT_EQ(paper.acc(GemmRole::bwd_dw).tile, 0);
  EXPECT_EQ(npu.acc(GemmRole::bwd_dw).tile, 32);
  EXPECT_EQ(npu.acc(GemmRole::fwd).mode, AccMode::saturate);
  EXPECT_TRUE(npu.hadamard.pad);
  EXPECT_EQ(paper.ste, Ste::identity);
  EXPECT_THROW(hdqt_preset("fast"), ConfigError);
}

}  // namespace
}  // namespace hdq
