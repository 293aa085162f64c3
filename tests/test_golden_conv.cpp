// The golden model's convolution (golden/conv.h) and the CNN layers of
// models/nn/cnn_layers.h: gradients against f64 central finite differences of
// the same loops instantiated in double, the f32 instantiation against the
// f64 one, the stated f32 reduction orders bit for bit against plain loops, a
// hand-derived convolution, max-pool ties, BatchNorm's running statistics and
// evaluation mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "golden/conv.h"
#include "models/common/errors.h"
#include "models/nn/cnn_layers.h"

namespace hdq {
namespace {

std::vector<double> random_vec(std::size_t n, std::uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 gen(seed);
  std::vector<double> v(n);
  // f32-representable values, so the f32 and f64 instantiations see the same inputs.
  for (auto& x : v) x = double(float(lo + (hi - lo) * double(gen() >> 8) * 0x1p-24));
  return v;
}

std::vector<float> to_f32(const std::vector<double>& v) { return {v.begin(), v.end()}; }

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Central differences of loss(x) = <f(x), r> in f64 against the analytic
// gradient `grad`, every coordinate. f is the forward in double; the
// tolerance is relative to the gradient's largest entry.
void expect_matches_finite_differences(std::vector<double> x, const std::function<std::vector<double>(const std::vector<double>&)>& f,
                                       const std::vector<double>& r, const std::vector<double>& grad, double h,
                                       double tol, const char* what) {
  ASSERT_EQ(x.size(), grad.size()) << what;
  double scale = 0;
  for (double g : grad) scale = std::max(scale, std::fabs(g));
  ASSERT_GT(scale, 0.0) << what;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double keep = x[i];
    x[i] = keep + h;
    const double up = dot(f(x), r);
    x[i] = keep - h;
    const double down = dot(f(x), r);
    x[i] = keep;
    EXPECT_NEAR((up - down) / (2 * h), grad[i], tol * scale) << what << " coordinate " << i;
  }
}

// The f32 gradient agrees with the f64 one up to f32 rounding: the largest
// difference is within 1e-5 of the largest entry (a few ulps of the sums of
// tens of terms; a formula or index difference is of the order of the entries).
void expect_close_to_f64(const std::vector<float>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0, err = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    scale = std::max(scale, std::fabs(want[i])), err = std::max(err, std::fabs(got[i] - want[i]));
  EXPECT_LE(err, 1e-5 * scale) << what;
}

// ---------------------------------------------------------------------------
// Convolution.

ConvGeometry geo(int c, int h, int w, int o, int kh, int kw, int sh, int sw, int ph, int pw) {
  return {.in_channels = c, .in_h = h, .in_w = w, .out_channels = o, .kernel_h = kh, .kernel_w = kw,
          .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw};
}

const std::vector<ConvGeometry> kConvCases = {
    geo(2, 5, 5, 3, 3, 3, 1, 1, 1, 1),  // "same" 3x3
    geo(3, 6, 7, 2, 3, 3, 2, 2, 0, 0),  // stride 2, no padding
    geo(2, 5, 6, 3, 2, 3, 2, 1, 1, 0),  // 2x3 kernel, strides (2, 1), padding (1, 0)
    geo(1, 4, 4, 2, 1, 1, 1, 1, 0, 0),  // 1x1
};

TEST(GoldenConv, GradientsMatchFiniteDifferences) {
  const int N = 2;
  std::uint32_t seed = 1;
  for (const ConvGeometry& g : kConvCases) {
    const auto x = random_vec(std::size_t(N) * g.in_size(), ++seed), w = random_vec(std::size_t(g.out_channels) * g.patch(), ++seed);
    const auto b = random_vec(std::size_t(g.out_channels), ++seed), r = random_vec(std::size_t(N) * g.out_size(), ++seed);
    auto forward = [&](const std::vector<double>& xx, const std::vector<double>& ww, const std::vector<double>& bb) {
      std::vector<double> y(r.size());
      golden::conv2d_forward<double>(g, N, xx, ww, bb, y);
      return y;
    };
    std::vector<double> dx(x.size()), dw(w.size()), db(b.size());
    golden::conv2d_backward<double>(g, N, x, w, r, dx, dw, db);
    // The loss is bilinear in (x, w) and linear in b: central differences are
    // exact up to rounding (~1e-16 * |loss| / h), so 1e-7 relative is ample.
    expect_matches_finite_differences(x, [&](const auto& v) { return forward(v, w, b); }, r, dx, 1e-3, 1e-7, "conv dX");
    expect_matches_finite_differences(w, [&](const auto& v) { return forward(x, v, b); }, r, dw, 1e-3, 1e-7, "conv dW");
    expect_matches_finite_differences(b, [&](const auto& v) { return forward(x, w, v); }, r, db, 1e-3, 1e-7, "conv db");

    std::vector<float> yf(r.size()), dxf(x.size()), dwf(w.size()), dbf(b.size());
    golden::conv2d_forward<float>(g, N, to_f32(x), to_f32(w), to_f32(b), yf);
    golden::conv2d_backward<float>(g, N, to_f32(x), to_f32(w), to_f32(r), dxf, dwf, dbf);
    expect_close_to_f64(yf, forward(x, w, b), "conv Y f32");
    expect_close_to_f64(dxf, dx, "conv dX f32");
    expect_close_to_f64(dwf, dw, "conv dW f32");
    expect_close_to_f64(dbf, db, "conv db f32");
  }
}

// The f32 results are the sums in the order golden/conv.h states, bit for bit,
// recomputed here one output at a time.
TEST(GoldenConv, F32ReductionOrdersAreTheStatedOnes) {
  const int N = 2;
  for (const ConvGeometry& g : kConvCases) {
    const auto x = to_f32(random_vec(std::size_t(N) * g.in_size(), 11, -4, 4));
    const auto w = to_f32(random_vec(std::size_t(g.out_channels) * g.patch(), 12, -4, 4));
    const auto b = to_f32(random_vec(std::size_t(g.out_channels), 13));
    const auto gy = to_f32(random_vec(std::size_t(N) * g.out_size(), 14, -4, 4));
    std::vector<float> y(gy.size()), dx(x.size()), dw(w.size()), db(b.size());
    golden::conv2d_forward<float>(g, N, x, w, b, y);
    golden::conv2d_backward<float>(g, N, x, w, gy, dx, dw, db);
    const int C = g.in_channels, O = g.out_channels, H = g.in_h, W = g.in_w, OH = g.out_h(), OW = g.out_w();
    auto X = [&](int n, int c, int yy, int xx) { return x[((std::size_t(n) * C + c) * H + yy) * W + xx]; };
    auto Wt = [&](int o, int c, int i, int j) { return w[((std::size_t(o) * C + c) * g.kernel_h + i) * g.kernel_w + j]; };
    auto G = [&](int n, int o, int oy, int ox) { return gy[((std::size_t(n) * O + o) * OH + oy) * OW + ox]; };
    auto inside = [&](int yy, int xx) { return yy >= 0 && yy < H && xx >= 0 && xx < W; };
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < O; ++o)
        for (int oy = 0; oy < OH; ++oy)
          for (int ox = 0; ox < OW; ++ox) {
            float s = 0.0f;  // (c, i, j) ascending, padded taps skipped, then + bias
            for (int c = 0; c < C; ++c)
              for (int i = 0; i < g.kernel_h; ++i)
                for (int j = 0; j < g.kernel_w; ++j) {
                  const int yy = oy * g.stride_h - g.pad_h + i, xx = ox * g.stride_w - g.pad_w + j;
                  if (inside(yy, xx)) s += X(n, c, yy, xx) * Wt(o, c, i, j);
                }
            ASSERT_EQ(std::bit_cast<std::uint32_t>(y[((std::size_t(n) * O + o) * OH + oy) * OW + ox]),
                      std::bit_cast<std::uint32_t>(s + b[o]));
          }
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        for (int yy = 0; yy < H; ++yy)
          for (int xx = 0; xx < W; ++xx) {
            float s = 0.0f;  // o ascending, then (i, j)
            for (int o = 0; o < O; ++o)
              for (int i = 0; i < g.kernel_h; ++i)
                for (int j = 0; j < g.kernel_w; ++j) {
                  const int ny = yy + g.pad_h - i, nx = xx + g.pad_w - j;
                  if (ny < 0 || nx < 0 || ny % g.stride_h || nx % g.stride_w) continue;
                  if (ny / g.stride_h < OH && nx / g.stride_w < OW) s += G(n, o, ny / g.stride_h, nx / g.stride_w) * Wt(o, c, i, j);
                }
            ASSERT_EQ(std::bit_cast<std::uint32_t>(dx[((std::size_t(n) * C + c) * H + yy) * W + xx]),
                      std::bit_cast<std::uint32_t>(s));
          }
    for (int o = 0; o < O; ++o) {
      float sb = 0.0f;
      for (int n = 0; n < N; ++n)
        for (int p = 0; p < OH * OW; ++p) sb += G(n, o, p / OW, p % OW);
      ASSERT_EQ(std::bit_cast<std::uint32_t>(db[o]), std::bit_cast<std::uint32_t>(sb));
      for (int c = 0; c < C; ++c)
        for (int i = 0; i < g.kernel_h; ++i)
          for (int j = 0; j < g.kernel_w; ++j) {
            float s = 0.0f;  // n ascending, then (oy, ox)
            for (int n = 0; n < N; ++n)
              for (int oy = 0; oy < OH; ++oy)
                for (int ox = 0; ox < OW; ++ox) {
                  const int yy = oy * g.stride_h - g.pad_h + i, xx = ox * g.stride_w - g.pad_w + j;
                  if (inside(yy, xx)) s += G(n, o, oy, ox) * X(n, c, yy, xx);
                }
            ASSERT_EQ(std::bit_cast<std::uint32_t>(dw[((std::size_t(o) * C + c) * g.kernel_h + i) * g.kernel_w + j]),
                      std::bit_cast<std::uint32_t>(s));
          }
    }
  }
}

// Input 1..9 (3x3), one 2x2 kernel of ones, stride 1: each output is the sum
// of a 2x2 window, 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28;
// with padding 1 the corner output sees the single cell 1.
TEST(GoldenConv, HandDerivedWindowSums) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w = {1, 1, 1, 1};
  std::vector<float> y(4);
  golden::conv2d_forward<float>(geo(1, 3, 3, 1, 2, 2, 1, 1, 0, 0), 1, x, w, {}, y);
  EXPECT_EQ(y, (std::vector<float>{12, 16, 24, 28}));
  std::vector<float> yp(16);
  golden::conv2d_forward<float>(geo(1, 3, 3, 1, 2, 2, 1, 1, 1, 1), 1, x, w, {}, yp);
  EXPECT_EQ(yp[0], 1.0f);
  EXPECT_EQ(yp[15], 9.0f);
  EXPECT_THROW(golden::conv2d_forward<float>(geo(1, 3, 3, 1, 2, 2, 1, 1, 0, 0), 1, x, w, {}, yp), ConfigError);
}

// ---------------------------------------------------------------------------
// Pooling.

PoolGeometry pool(int c, int h, int w, int k, int s, int p) {
  return {.channels = c, .in_h = h, .in_w = w, .kernel_h = k, .kernel_w = k, .stride_h = s, .stride_w = s,
          .pad_h = p, .pad_w = p};
}

TEST(CnnLayers, PoolingGradientsMatchFiniteDifferences) {
  const int N = 2;
  // 2x2/2 (the CNN's pooling), 3x3/2 with padding 1 (overlapping windows), 3x2 windows on 5x6.
  for (const PoolGeometry& g : {pool(2, 4, 6, 2, 2, 0), pool(2, 5, 5, 3, 2, 1),
                                PoolGeometry{.channels = 1, .in_h = 5, .in_w = 6, .kernel_h = 3, .kernel_w = 2,
                                             .stride_h = 1, .stride_w = 2}}) {
    const auto x = random_vec(std::size_t(N) * g.in_size(), 21), r = random_vec(std::size_t(N) * g.out_size(), 22);
    std::vector<std::int32_t> arg(r.size());
    auto max_fwd = [&](const std::vector<double>& v) {
      std::vector<double> y(r.size());
      max_pool_forward<double>(g, N, v, y, arg);
      return y;
    };
    auto avg_fwd = [&](const std::vector<double>& v) {
      std::vector<double> y(r.size());
      avg_pool_forward<double>(g, N, v, y);
      return y;
    };
    std::vector<double> dmax(x.size()), davg(x.size());
    max_fwd(x);
    const std::vector<std::int32_t> arg_at_x = arg;
    max_pool_backward<double>(g, N, arg_at_x, r, dmax);
    avg_pool_backward<double>(g, N, r, davg);
    // Distinct f32 values in [-1, 1) are at least 2^-24 (6e-8) apart, so
    // h = 1e-9 moves no maximum: max pooling is linear there, and its central
    // differences are exact up to rounding, ~1e-16 * sum |terms| / h ~ 1e-6.
    std::vector<double> sorted = x;
    std::sort(sorted.begin(), sorted.end());
    ASSERT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end()) << "inputs must be distinct";
    expect_matches_finite_differences(x, max_fwd, r, dmax, 1e-9, 1e-5, "max pool");
    expect_matches_finite_differences(x, avg_fwd, r, davg, 1e-3, 1e-7, "avg pool");

    std::vector<float> yf(r.size()), dmaxf(x.size()), davgf(x.size());
    std::vector<std::int32_t> argf(r.size());
    max_pool_forward<float>(g, N, to_f32(x), yf, argf);
    EXPECT_EQ(argf, arg_at_x);
    max_pool_backward<float>(g, N, argf, to_f32(r), dmaxf);
    avg_pool_backward<float>(g, N, to_f32(r), davgf);
    expect_close_to_f64(dmaxf, dmax, "max pool f32");
    expect_close_to_f64(davgf, davg, "avg pool f32");
  }
}

TEST(CnnLayers, MaxPoolTiesGoToTheFirstCellAndOverlapsAdd) {
  // One 2x2 window of equal values: the first cell (0, 0) wins.
  const std::vector<float> x = {3, 3, 3, 3};
  std::vector<float> y(1), dx(4);
  std::vector<std::int32_t> arg(1);
  max_pool_forward<float>(pool(1, 2, 2, 2, 2, 0), 1, x, y, arg);
  EXPECT_EQ(arg[0], 0);
  // 1x3 input, windows of 2 with stride 1: both windows choose the middle 5,
  // which receives both gradients, 0.25 + 0.5.
  const PoolGeometry g{.channels = 1, .in_h = 1, .in_w = 3, .kernel_h = 1, .kernel_w = 2};
  const std::vector<float> x2 = {1, 5, 2}, dy2 = {0.25f, 0.5f};
  std::vector<float> y2(2), dx2(3);
  std::vector<std::int32_t> arg2(2);
  max_pool_forward<float>(g, 1, x2, y2, arg2);
  max_pool_backward<float>(g, 1, arg2, dy2, dx2);
  EXPECT_EQ(dx2, (std::vector<float>{0, 0.75f, 0}));
  // count_include_pad: a 3x3 window at the corner of a padded 2x2 input holds
  // 4 cells and divides by 9: (1 + 2 + 3 + 4) / 9.
  const std::vector<float> x3 = {1, 2, 3, 4};
  std::vector<float> y3(1);
  avg_pool_forward<float>(pool(1, 2, 2, 3, 2, 1), 1, x3, y3);
  EXPECT_EQ(y3[0], 10.0f / 9.0f);
  EXPECT_THROW(validate(pool(1, 4, 4, 3, 1, 2)), ConfigError);  // padding above kernel / 2
}

TEST(CnnLayers, GlobalAveragePoolAndResidualAdd) {
  const int N = 2, C = 3, HW = 5;
  const auto x = random_vec(std::size_t(N) * C * HW, 31), r = random_vec(std::size_t(N) * C, 32);
  auto fwd = [&](const std::vector<double>& v) {
    std::vector<double> y(r.size());
    global_avg_pool_forward<double>(N, C, HW, v, y);
    return y;
  };
  std::vector<double> dx(x.size());
  global_avg_pool_backward<double>(N, C, HW, r, dx);
  expect_matches_finite_differences(x, fwd, r, dx, 1e-3, 1e-7, "global avg pool");
  // (1 + 2 + 3 + 4 + 5) / 5 = 3 exactly.
  std::vector<float> y(1);
  global_avg_pool_forward<float>(1, 1, 5, std::vector<float>{1, 2, 3, 4, 5}, y);
  EXPECT_EQ(y[0], 3.0f);

  std::vector<float> sum(2);
  residual_add<float>(std::vector<float>{1.5f, -2}, std::vector<float>{0.25f, 2}, sum);
  EXPECT_EQ(sum, (std::vector<float>{1.75f, 0}));
}

// ---------------------------------------------------------------------------
// BatchNorm.

TEST(CnnLayers, BatchNormGradientsMatchFiniteDifferences) {
  const BatchNormSpec s{.batch = 3, .channels = 2, .hw = 4};
  const auto x = random_vec(std::size_t(s.batch) * s.channels * s.hw, 41, -2, 3);
  const auto gamma = random_vec(2, 42, 0.5, 1.5), beta = random_vec(2, 43);
  const auto r = random_vec(x.size(), 44);
  auto fwd = [&](const std::vector<double>& xx, const std::vector<double>& gg, const std::vector<double>& bb) {
    std::vector<double> rm(2, 0.0), rv(2, 1.0), y(x.size());
    BatchNormSaved<double> saved;
    batchnorm_forward_train<double>(s, xx, gg, bb, rm, rv, y, saved);
    return y;
  };
  std::vector<double> rm(2, 0.0), rv(2, 1.0), y(x.size()), dx(x.size()), dgamma(2), dbeta(2);
  BatchNormSaved<double> saved;
  batchnorm_forward_train<double>(s, x, gamma, beta, rm, rv, y, saved);
  batchnorm_backward<double>(s, saved, gamma, r, dx, dgamma, dbeta);
  // Smooth: truncation ~h^2 = 1e-10 of the third derivative, rounding
  // ~1e-16 / h; 1e-6 relative separates both from a wrong formula.
  expect_matches_finite_differences(x, [&](const auto& v) { return fwd(v, gamma, beta); }, r, dx, 1e-5, 1e-6, "bn dx");
  expect_matches_finite_differences(gamma, [&](const auto& v) { return fwd(x, v, beta); }, r, dgamma, 1e-5, 1e-6,
                                    "bn dgamma");
  expect_matches_finite_differences(beta, [&](const auto& v) { return fwd(x, gamma, v); }, r, dbeta, 1e-5, 1e-6,
                                    "bn dbeta");

  std::vector<float> rmf(2, 0.0f), rvf(2, 1.0f), yf(x.size()), dxf(x.size()), dgf(2), dbf(2);
  BatchNormSaved<float> savedf;
  batchnorm_forward_train<float>(s, to_f32(x), to_f32(gamma), to_f32(beta), rmf, rvf, yf, savedf);
  batchnorm_backward<float>(s, savedf, to_f32(gamma), to_f32(r), dxf, dgf, dbf);
  expect_close_to_f64(yf, y, "bn y f32");
  expect_close_to_f64(dxf, dx, "bn dx f32");
  expect_close_to_f64(dgf, dgamma, "bn dgamma f32");
  expect_close_to_f64(dbf, dbeta, "bn dbeta f32");
}

// Running statistics as PyTorch: one step from (0, 1) with momentum 0.1 gives
// 0.1 * mean and 0.9 + 0.1 * (unbiased variance); evaluation then normalizes
// with them, not with the batch's statistics.
TEST(CnnLayers, BatchNormRunningStatisticsAndEvaluation) {
  // One channel, values 1, 2, 3, 6: mean 3, squared deviations 4 + 1 + 0 + 9 =
  // 14, biased variance 3.5, unbiased 14 / 3.
  const BatchNormSpec s{.batch = 2, .channels = 1, .hw = 2};
  const std::vector<double> x = {1, 2, 3, 6}, gamma = {2}, beta = {0.5};
  std::vector<double> rm = {0}, rv = {1}, y(4);
  BatchNormSaved<double> saved;
  batchnorm_forward_train<double>(s, x, gamma, beta, rm, rv, y, saved);
  EXPECT_DOUBLE_EQ(rm[0], 0.1 * 3);
  EXPECT_DOUBLE_EQ(rv[0], 0.1 * (14.0 / 3.0) + 0.9 * 1);
  EXPECT_DOUBLE_EQ(saved.invstd[0], 1 / std::sqrt(3.5 + 1e-5));
  EXPECT_DOUBLE_EQ(y[3], (6 - 3) / std::sqrt(3.5 + 1e-5) * 2 + 0.5);
  std::vector<double> ye(4);
  batchnorm_forward_eval<double>(s, x, gamma, beta, rm, rv, ye);
  EXPECT_DOUBLE_EQ(ye[3], (6 - rm[0]) * (1 / std::sqrt(rv[0] + 1e-5)) * 2 + 0.5);

  // One value per channel cannot be normalized in training (PyTorch refuses too).
  const BatchNormSpec one{.batch = 1, .channels = 1, .hw = 1};
  std::vector<double> y1(1), m1 = {0}, v1 = {1};
  EXPECT_THROW(batchnorm_forward_train<double>(one, std::vector<double>{1}, gamma, beta, m1, v1, y1, saved),
               ConfigError);
}

}  // namespace
}  // namespace hdq
