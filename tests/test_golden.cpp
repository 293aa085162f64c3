// Tests of the float golden model (golden/): the matmul's stated reduction
// order (bit for bit against a plain loop, across ISAs and thread counts),
// hand-derived one- and two-layer cases, gradients against f64 central finite
// differences, thread-count independence of a whole training step, a tiny
// training run, and the cosine / SQNR helpers.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include <time.h>

#include "golden/compare.h"
#include "golden/golden.h"
#include "golden/matmul.h"
#include "models/common/errors.h"
#include "models/nn/mlp.h"

namespace hdq::golden {
namespace {

// Deterministic uniform floats in [lo, hi) from mt19937 (whose output is fully
// specified, unlike std::uniform_real_distribution's).
struct Rng {
  std::mt19937 gen;
  explicit Rng(std::uint32_t seed) : gen(seed) {}
  float uniform(float lo, float hi) { return lo + (hi - lo) * float(gen() >> 8) * 0x1p-24f; }
  int below(int n) { return int(gen() % std::uint32_t(n)); }
};

Matrix random_matrix(Rng& rng, int rows, int cols, float lo = -1.0f, float hi = 1.0f) {
  Matrix m(rows, cols);
  for (auto& v : m.v) v = rng.uniform(lo, hi);
  return m;
}

bool same_bits(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool same_bits(const MlpGrads& a, const MlpGrads& b) {
  if (a.w.size() != b.w.size() || a.b.size() != b.b.size()) return false;
  for (std::size_t l = 0; l < a.w.size(); ++l)
    if (!same_bits(a.w[l].v, b.w[l].v) || !same_bits(a.b[l], b.b[l])) return false;
  return true;
}

std::vector<KernelPath> isas() {
  std::vector<KernelPath> v = available_matmul_paths();
  return v;
}

// ---------------------------------------------------------------- matmul

// Row 0 of a = [2^24, 1, 1, ..., 1] (K = 300 > the 256-wide k-block), b = all
// ones. k ascending: 0 + 2^24 = 2^24, then 2^24 + 1 is a tie (the f32 spacing
// above 2^24 is 2) that rounds to even 2^24, and it stays 2^24 for all 299
// ones. Any other grouping (the ones summed first, or the second k-block
// [256, 300) summed on its own and added at the end: 2^24 + 44) would give
// more. The other rows put 2^24 last: the 299 ones sum exactly to 299, then
// 299 + 2^24 = 16777515 is odd, a tie between 16777514 and 16777516, and rounds
// to the even mantissa: 16777516 (= 2 * 8388758).
TEST(GoldenMatmul, OrderIsKAscendingAcrossKBlocks) {
  const int M = 7, N = 19, K = 300;  // not multiples of any tile: padded edges
  Matrix a(M, K), b(K, N);
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) a.at(m, k) = 1.0f;
  a.at(0, 0) = 16777216.0f;
  for (int m = 1; m < M; ++m) a.at(m, K - 1) = 16777216.0f;
  std::fill(b.v.begin(), b.v.end(), 1.0f);
  for (KernelPath isa : isas())
    for (int threads : {1, 2}) {
      Matrix c(M, N);
      MatmulContext mc(threads);
      matmul(mc, view(a), view(b), c.v.data(), N, isa);
      for (int n = 0; n < N; ++n) {
        EXPECT_EQ(c.at(0, n), 16777216.0f);
        for (int m = 1; m < M; ++m) EXPECT_EQ(c.at(m, n), 16777516.0f);
      }
    }
}

// The fast path against the plain triple loop, bit for bit, over ragged shapes,
// strided (transposed) operands, K across k-blocks, values spanning many
// binades (so roundings happen everywhere) plus subnormals, signed zeros and
// an infinity; every ISA and 1..3 threads.
TEST(GoldenMatmul, FastPathsEqualReferenceBitForBit) {
  Rng rng(7);
  const std::array<std::array<int, 3>, 8> shapes{{{1, 1, 1},
                                                  {3, 5, 2},
                                                  {6, 16, 7},
                                                  {13, 33, 1},
                                                  {31, 9, 257},
                                                  {7, 70, 513},
                                                  {50, 3, 40},
                                                  {0, 4, 3}}};
  for (auto [M, N, K] : shapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        Matrix as = ta ? Matrix(K, M) : Matrix(M, K), bs = tb ? Matrix(N, K) : Matrix(K, N);
        for (Matrix* mat : {&as, &bs})
          for (auto& v : mat->v) {
            const int kind = rng.below(40);
            v = kind == 0 ? 1e-41f : kind == 1 ? -0.0f : rng.uniform(-1, 1) * std::ldexp(1.0f, rng.below(40) - 20);
          }
        if (M > 2 && K > 2 && N > 2) as.v[5] = std::numeric_limits<float>::infinity();  // -> inf/NaN in some outputs
        const ConstView a = ta ? transposed(as) : view(as), b = tb ? transposed(bs) : view(bs);
        const std::ptrdiff_t ldc = N + 3;  // a row stride wider than N: the gap must stay untouched
        std::vector<float> ref(std::size_t(std::max(M, 1)) * ldc, 42.0f);
        matmul_reference(a, b, ref.data(), ldc);
        for (KernelPath isa : isas())
          for (int threads : {1, 2, 3}) {
            std::vector<float> c(ref.size(), 42.0f);
            MatmulContext mc(threads);
            matmul(mc, a, b, c.data(), ldc, isa);
            EXPECT_TRUE(same_bits(c, ref)) << M << "x" << N << "x" << K << " ta " << ta << " tb " << tb << " isa "
                                           << int(isa) << " threads " << threads;
          }
      }
}

TEST(GoldenMatmul, RejectsShapesThatDoNotChain) {
  Matrix a(2, 3), b(4, 2), c(2, 2);
  MatmulContext mc;
  EXPECT_THROW(matmul(mc, view(a), view(b), c.v.data(), 2), ConfigError);
  EXPECT_THROW(matmul(mc, view(a), transposed(b), c.v.data(), 1), ConfigError);  // ldc < N
  EXPECT_THROW(MatmulContext(0), ConfigError);  // threads 1..256
}

// ---------------------------------------------------------------- hand cases

// One layer 2 -> 2, one sample x = [1, 2], label 0, both classes active.
// W = [[0.5, 0.25], [0.25, -0.125]], b = [0, 0]:
//   z0 = 0.5*1 + 0.25*2 = 1, z1 = 0.25*1 - 0.125*2 = 0 (all exact in f32).
// softmax: p0 = e/(e+1) = 0.7310585786, p1 = 1/(e+1) = 0.2689414214 =: q.
// loss = -log p0 = log(1 + e^-1) = 0.3132616875.
// dz = p - onehot(0) = [-q, q] (B = 1); dW = dz^T x = [[-q, -2q], [q, 2q]],
// db = dz = [-q, q]. The f32 results are within a few ulp of these values; the
// products by x = 1, 2 are exact, so dW[o][1] = 2 dW[o][0] and db = dW[:, 0]
// bit for bit.
TEST(GoldenHand, OneLayerTwoClasses) {
  MlpParams p;
  p.w.push_back(Matrix(2, 2));
  p.w[0].v = {0.5f, 0.25f, 0.25f, -0.125f};
  p.b.push_back({0.0f, 0.0f});
  Matrix x(1, 2);
  x.v = {1.0f, 2.0f};
  const std::array<int, 1> labels{0};
  const std::array<bool, 2> active{true, true};
  MlpGrads g;
  Context ctx;
  Matrix logits;
  const float loss = gradients(ctx, p, x, labels, active, g, &logits);
  EXPECT_EQ(logits.v, (std::vector<float>{1.0f, 0.0f}));
  const double q = 1.0 / (std::exp(1.0) + 1.0);
  EXPECT_NEAR(loss, 0.3132616875, 1e-6);
  EXPECT_NEAR(g.w[0].at(0, 0), -q, 1e-6);
  EXPECT_NEAR(g.w[0].at(1, 0), q, 1e-6);
  EXPECT_EQ(g.w[0].at(0, 1), 2.0f * g.w[0].at(0, 0));
  EXPECT_EQ(g.w[0].at(1, 1), 2.0f * g.w[0].at(1, 0));
  EXPECT_EQ(g.b[0], (std::vector<float>{g.w[0].at(0, 0), g.w[0].at(1, 0)}));
}

// Two layers 1 -> 2 -> 2, x = [1], label 0.
// W0 = [[1], [-1]], b0 = [0, 0]: pre0 = [1, -1], h = relu = [1, 0].
// W1 = [[1, 5], [0, 7]], b1 = [0, 0]: logits = [1*1 + 5*0, 0*1 + 7*0] = [1, 0],
// so as above dz = [-q, q] with q = 1/(e+1).
// dW1 = dz^T h = [[-q, 0], [q, 0]]; db1 = [-q, q].
// dh = dz W1 = [-q*1 + q*0, -q*5 + q*7] = [-q, 2q]; the ReLU mask (pre0 > 0)
// keeps unit 0 and blocks unit 1: dpre0 = [-q, 0].
// dW0 = dpre0^T x = [[-q], [0]]; db0 = [-q, 0].
// Every nonzero gradient is -q or q computed once in f32 (times 1 or plus 0,
// exact), so they equal dz bit for bit; the blocked ones are exactly +0.
// A third case x = [0] puts both pre-activations at exactly 0: no gradient
// passes (the mask is "> 0"), so layer 0 gets all zeros.
TEST(GoldenHand, TwoLayersReluMask) {
  MlpParams p;
  p.w.push_back(Matrix(2, 1));
  p.w[0].v = {1.0f, -1.0f};
  p.b.push_back({0.0f, 0.0f});
  p.w.push_back(Matrix(2, 2));
  p.w[1].v = {1.0f, 5.0f, 0.0f, 7.0f};
  p.b.push_back({0.0f, 0.0f});
  Matrix x(1, 1);
  x.v = {1.0f};
  const std::array<int, 1> labels{0};
  const std::array<bool, 2> active{true, true};
  MlpGrads g;
  Context ctx;
  Matrix logits, dz;
  gradients(ctx, p, x, labels, active, g, &logits);
  EXPECT_EQ(logits.v, (std::vector<float>{1.0f, 0.0f}));
  softmax_cross_entropy(logits, labels, active, &dz);
  const float mq = dz.v[0], pq = dz.v[1];
  EXPECT_NEAR(pq, 1.0 / (std::exp(1.0) + 1.0), 1e-7);
  EXPECT_EQ(g.w[1].v, (std::vector<float>{mq, 0.0f, pq, 0.0f}));
  EXPECT_EQ(g.b[1], (std::vector<float>{mq, pq}));
  EXPECT_EQ(g.w[0].v, (std::vector<float>{mq, 0.0f}));
  EXPECT_EQ(g.b[0], (std::vector<float>{mq, 0.0f}));

  x.v = {0.0f};  // pre0 = [0, 0]: logits = b1 = [0, 0], dz = [-0.5, 0.5], nothing reaches layer 0
  gradients(ctx, p, x, labels, active, g);
  EXPECT_EQ(g.w[1].v, (std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f}));  // h = 0
  EXPECT_EQ(g.b[1], (std::vector<float>{-0.5f, 0.5f}));
  EXPECT_EQ(g.w[0].v, (std::vector<float>{0.0f, 0.0f}));
  EXPECT_EQ(g.b[0], (std::vector<float>{0.0f, 0.0f}));
}

// ------------------------------------------------- finite differences in f64

// An independent f64 implementation of the loss: the same network and the
// same active-class softmax cross-entropy, written directly in double.
struct Net64 {
  std::vector<int> widths;
  std::vector<std::vector<double>> w, b;  // w[l][o * I + i]

  explicit Net64(const MlpParams& p) {
    widths.push_back(p.w[0].cols);
    for (std::size_t l = 0; l < p.w.size(); ++l) {
      widths.push_back(p.w[l].rows);
      w.emplace_back(p.w[l].v.begin(), p.w[l].v.end());
      b.emplace_back(p.b[l].begin(), p.b[l].end());
    }
  }

  // Mean loss; min_abs_pre receives the smallest |pre-activation| of a hidden
  // unit (to keep finite differences away from the ReLU kink).
  double loss(const Matrix& x, std::span<const int> labels, std::span<const bool> active,
              double* min_abs_pre = nullptr) const {
    const int L = int(w.size());
    double total = 0.0, kink = INFINITY;
    for (int r = 0; r < x.rows; ++r) {
      std::vector<double> h(x.row(r).begin(), x.row(r).end());
      for (int l = 0; l < L; ++l) {
        const int I = widths[l], O = widths[l + 1];
        std::vector<double> y(static_cast<std::size_t>(O));
        for (int o = 0; o < O; ++o) {
          double s = b[l][o];
          for (int i = 0; i < I; ++i) s += w[l][std::size_t(o) * I + i] * h[i];
          y[o] = s;
          if (l + 1 < L) kink = std::min(kink, std::abs(s));
        }
        if (l + 1 < L)
          for (auto& v : y) v = std::max(v, 0.0);
        h = std::move(y);
      }
      double mx = -INFINITY, s = 0.0;
      for (std::size_t c = 0; c < h.size(); ++c)
        if (active[c]) mx = std::max(mx, h[c]);
      for (std::size_t c = 0; c < h.size(); ++c)
        if (active[c]) s += std::exp(h[c] - mx);
      total += std::log(s) + mx - h[std::size_t(labels[r])];
    }
    if (min_abs_pre) *min_abs_pre = kink;
    return total / x.rows;
  }
};

// Error budget for |f32 analytic - f64 central difference|:
// * The f64 central difference with h = 1e-6 has truncation error
//   h^2 |L'''| / 6 ~ 1e-13 and cancellation error ~ 2^-53 |L| / h ~ 1e-10:
//   negligible next to the f32 error.
// * The f32 analytic gradient (first-order error analysis): each gradient
//   element depends on at most ~100 f32 roundings (B <= 4 rows x [forward dot
//   products of length <= 6 per layer, expf/logf within 1 ulp, the softmax
//   divisions, backward dot products of length <= 5], the batch sum and the
//   final dW product), each off by <= u = 2^-24 ~ 6e-8 times the value
//   rounded. With inputs in [-1, 1] and the PyTorch-style init
//   (|w|, |b| <= 1/sqrt(I) <= 0.5), logits and activations stay <= ~3 and the
//   backward values are small (|dlogits| <= 1/B, |dX| <= |dlogits| * sum|w|),
//   while errors in the logits reach the gradient damped by the softmax
//   Jacobian (<= 1/4 per entry, divided by B). That bounds the error by about
//   100 * 6e-8 * 1 ~ 6e-6 absolute; with random signs it is ~10x smaller.
// Bound used: |diff| <= 1e-5 + 1e-3 |fd|. The absolute part covers the
// worst case above (and components near 0, where a relative test means
// nothing); the relative part adds slack far above u for large components. A
// wrong formula (missing ReLU mask, transposed product, missing 1/B, wrong
// class mask) is off by >= 10% of components of size ~1e-2 and fails.
// The measured maxima are printed (3.4e-8 and 1.5e-8 when written).
void check_against_finite_differences(const std::vector<int>& widths, int batch, std::span<const bool> active,
                                      std::uint64_t seed) {
  MlpParams p = init_mlp(MlpSpec{widths}, seed);
  Rng rng(static_cast<std::uint32_t>(seed));
  const Matrix x = random_matrix(rng, batch, widths[0]);
  std::vector<int> labels;
  for (int r = 0; r < batch; ++r) {
    int y;
    do y = rng.below(widths.back());
    while (!active[std::size_t(y)]);
    labels.push_back(y);
  }
  MlpGrads g;
  Context ctx;
  const float loss32 = gradients(ctx, p, x, labels, active, g);

  Net64 net(p);
  double kink = 0.0;
  const double loss64 = net.loss(x, labels, active, &kink);
  ASSERT_GT(kink, 1e-3) << "a hidden pre-activation is near the ReLU kink: pick another seed";
  EXPECT_NEAR(loss32, loss64, 1e-5 + 1e-5 * std::abs(loss64));

  const double h = 1e-6;
  double worst_abs = 0.0, worst_ratio = 0.0;
  auto check = [&](double& param, float analytic, const char* what, int l, std::size_t i) {
    const double saved = param;
    param = saved + h;
    const double up = net.loss(x, labels, active);
    param = saved - h;
    const double down = net.loss(x, labels, active);
    param = saved;
    const double fd = (up - down) / (2 * h);
    const double diff = std::abs(double(analytic) - fd), tol = 1e-5 + 1e-3 * std::abs(fd);
    worst_abs = std::max(worst_abs, diff);
    worst_ratio = std::max(worst_ratio, diff / tol);
    EXPECT_LE(diff, tol) << what << "[" << l << "][" << i << "] analytic " << analytic << " fd " << fd;
  };
  const int L = int(widths.size()) - 1;
  for (int l = 0; l < L; ++l) {
    for (std::size_t i = 0; i < net.w[l].size(); ++i) check(net.w[l][i], g.w[l].v[i], "dW", l, i);
    for (std::size_t i = 0; i < net.b[l].size(); ++i) check(net.b[l][i], g.b[l][i], "db", l, i);
  }
  // Inactive classes take no part: their weights and bias get exactly zero.
  for (int c = 0; c < widths.back(); ++c)
    if (!active[std::size_t(c)]) {
      EXPECT_EQ(g.b[L - 1][c], 0.0f);
      for (int i = 0; i < widths[L - 1]; ++i) EXPECT_EQ(g.w[L - 1].at(c, i), 0.0f);
    }
  std::printf("  max |analytic - fd| = %.3g, max |diff| / bound = %.3g\n", worst_abs, worst_ratio);
}

TEST(GoldenGradients, MatchFiniteDifferencesTwoLayers) {
  const std::array<bool, 3> active{true, true, true};
  check_against_finite_differences({5, 4, 3}, 3, active, 11);
}

TEST(GoldenGradients, MatchFiniteDifferencesThreeLayersWithInactiveClass) {
  const std::array<bool, 4> active{true, false, true, true};
  check_against_finite_differences({6, 5, 4, 4}, 4, active, 23);
}

// ------------------------------------------- stated order, threads, training

// The whole step written as plain loops in the order golden.h states, with the
// matmul's reference definition: the fast model must equal it bit for bit, on
// 1, 2 and 3 threads.
TEST(GoldenGradients, BitIdenticalToPlainLoopsOnOneTwoThreeThreads) {
  const std::vector<int> widths{300, 130, 70, 12};
  const int batch = 37;
  const MlpParams p = init_mlp(MlpSpec{widths}, 5);
  Rng rng(3);
  const Matrix x = random_matrix(rng, batch, widths[0], 0.0f, 1.0f);
  std::vector<int> labels;
  for (int r = 0; r < batch; ++r) labels.push_back(rng.below(10));
  std::array<bool, 12> active{};
  std::fill(active.begin(), active.begin() + 10, true);  // classes 10, 11 not yet seen

  // Plain loops.
  const int L = int(widths.size()) - 1;
  std::vector<Matrix> pre(static_cast<std::size_t>(L)), post(static_cast<std::size_t>(L));
  for (int l = 0; l < L; ++l) {
    const Matrix& in = l == 0 ? x : post[l - 1];
    pre[l] = Matrix(batch, widths[l + 1]);
    matmul_reference(view(in), transposed(p.w[l]), pre[l].v.data(), widths[l + 1]);
    for (int r = 0; r < batch; ++r)
      for (int o = 0; o < widths[l + 1]; ++o) pre[l].at(r, o) = pre[l].at(r, o) + p.b[l][o];
    post[l] = pre[l];
    for (auto& v : post[l].v) v = v > 0.0f ? v : 0.0f;
  }
  Matrix G;
  const float ref_loss = softmax_cross_entropy(pre[L - 1], labels, active, &G);
  MlpGrads ref = zeros_like(p);
  for (int l = L - 1; l >= 0; --l) {
    const Matrix& in = l == 0 ? x : post[l - 1];
    matmul_reference(transposed(G), view(in), ref.w[l].v.data(), widths[l]);
    for (int o = 0; o < widths[l + 1]; ++o) {
      float s = 0.0f;
      for (int r = 0; r < batch; ++r) s = s + G.at(r, o);
      ref.b[l][o] = s;
    }
    if (l == 0) break;
    Matrix dx(batch, widths[l]);
    matmul_reference(view(G), view(p.w[l]), dx.v.data(), widths[l]);
    for (std::size_t i = 0; i < dx.v.size(); ++i)
      if (!(pre[l - 1].v[i] > 0.0f)) dx.v[i] = 0.0f;
    G = dx;
  }

  for (int threads : {1, 2, 3}) {
    MlpGrads g;
    Matrix logits;
    Context ctx(threads);
    const float loss = gradients(ctx, p, x, labels, active, g, &logits);
    EXPECT_EQ(std::bit_cast<std::uint32_t>(loss), std::bit_cast<std::uint32_t>(ref_loss)) << threads;
    EXPECT_TRUE(same_bits(logits.v, pre[L - 1].v)) << threads;
    EXPECT_TRUE(same_bits(g, ref)) << threads;
    Matrix fwd;
    forward(ctx, p, x, fwd);
    EXPECT_TRUE(same_bits(fwd.v, pre[L - 1].v)) << threads;
  }
}

// 2-D points, class = side of the line x0 + 0.5 x1 = 0.1; a third class is
// declared but inactive. 60 SGD steps on one fixed batch of 64 must cut the
// loss by more than 3x and classify at least 95% right; the inactive class's
// weights never move (zero gradient, no weight decay).
TEST(GoldenTraining, LossDecreasesOnSeparableProblem) {
  const MlpSpec spec{{2, 16, 3}};
  MlpParams p = init_mlp(spec, 99);
  Rng rng(4);
  const int batch = 64;
  const Matrix x = random_matrix(rng, batch, 2);
  std::vector<int> labels;
  for (int r = 0; r < batch; ++r) labels.push_back(x.at(r, 0) + 0.5f * x.at(r, 1) > 0.1f ? 1 : 0);
  const std::array<bool, 3> active{true, true, false};
  const std::vector<float> inactive_row(p.w[1].row(2).begin(), p.w[1].row(2).end());

  Sgd sgd({.lr = 0.2f, .momentum = 0.9f, .weight_decay = 0.0f});
  MlpGrads g;
  Context ctx;
  const float first = gradients(ctx, p, x, labels, active, g);
  float last = first;
  for (int step = 0; step < 60; ++step) {
    last = gradients(ctx, p, x, labels, active, g);
    sgd.step(p, g);
  }
  Matrix logits;
  last = gradients(ctx, p, x, labels, active, g, &logits);
  int right = 0;
  for (int r = 0; r < batch; ++r) right += predict_class(logits.row(r), active) == labels[r];
  EXPECT_LT(last, first / 3.0f) << "first " << first << " last " << last;
  EXPECT_GE(right, batch * 95 / 100);
  EXPECT_TRUE(same_bits(p.w[1].row(2), inactive_row));
}

TEST(GoldenGradients, RejectsMismatchedShapes) {
  const MlpParams p = init_mlp(MlpSpec{{4, 3, 2}}, 1);
  Matrix logits;
  Context ctx;
  EXPECT_THROW(forward(ctx, p, Matrix(2, 5), logits), ConfigError);
  EXPECT_THROW(Context(0), ConfigError);  // threads 1..256
  MlpParams bad = p;
  bad.w[1] = Matrix(2, 4);  // takes 4 inputs, layer 0 gives 3
  EXPECT_THROW(forward(ctx, bad, Matrix(2, 4), logits), ConfigError);
  Activations act;
  forward(ctx, p, Matrix(2, 4), logits, &act);
  MlpGrads g;
  EXPECT_THROW(backward(ctx, p, Matrix(2, 4), act, Matrix(2, 3), g), ConfigError);
  EXPECT_NO_THROW(backward(ctx, p, Matrix(2, 4), act, Matrix(2, 2), g));
}

// ---------------------------------------------------------------- compare

TEST(GoldenCompare, CosineHandCases) {
  const std::vector<float> a{1.0f, -2.0f, 3.0f, 0.5f}, neg{-1.0f, 2.0f, -3.0f, -0.5f};
  const std::vector<float> e0{1.0f, 0.0f, 0.0f}, e1{0.0f, 5.0f, 0.0f}, z{0.0f, 0.0f, 0.0f};
  EXPECT_DOUBLE_EQ(cosine(a, a), 1.0);
  EXPECT_DOUBLE_EQ(cosine(a, neg), -1.0);
  EXPECT_EQ(cosine(e0, e1), 0.0);  // dot product exactly 0
  // [1, 1] vs [1, 0]: 1 / (sqrt(2) * 1) = cos 45 degrees.
  const std::vector<float> d{1.0f, 1.0f}, x{1.0f, 0.0f};
  EXPECT_NEAR(cosine(d, x), std::sqrt(0.5), 1e-15);
  EXPECT_EQ(cosine(z, z), 1.0);   // both zero: identical
  EXPECT_EQ(cosine(z, e1), 0.0);  // one zero: no alignment
  EXPECT_THROW(cosine(a, e0), ConfigError);
}

// reference r = [3, 4]: signal = 9 + 16 = 25. test = r + [0.5, 0]: noise 0.25,
// SQNR = 10 log10(100) = 20 dB. test = r + [0.05, 0]: noise = 0.0025 in exact
// arithmetic, 10 log10(1e4) = 40 dB (up to the f32 representation of 3.05).
TEST(GoldenCompare, SqnrHandCases) {
  const std::vector<float> r{3.0f, 4.0f}, t1{3.5f, 4.0f}, t2{3.05f, 4.0f};
  EXPECT_DOUBLE_EQ(sqnr_db(r, t1), 20.0);
  EXPECT_NEAR(sqnr_db(r, t2), 40.0, 1e-5);
  EXPECT_EQ(sqnr_db(r, r), std::numeric_limits<double>::infinity());
  const std::vector<float> z{0.0f, 0.0f};
  EXPECT_EQ(sqnr_db(z, z), std::numeric_limits<double>::infinity());
  EXPECT_EQ(sqnr_db(z, r), -std::numeric_limits<double>::infinity());
  EXPECT_THROW(sqnr_db(r, std::vector<float>{1.0f}), ConfigError);
}

// ---------------------------------------------------------------- timing
// Not part of the suite; run with
//   test_golden --gtest_also_run_disabled_tests --gtest_filter='*StepTiming*'
// One training step (forward + backward) of the default scenario's network
// 784-256-256-10 at batch 128.
TEST(GoldenTiming, DISABLED_StepTiming) {
  const std::vector<int> widths{784, 256, 256, 10};
  const int batch = 128;
  const MlpParams p = init_mlp(MlpSpec{widths}, 1);
  Rng rng(2);
  const Matrix x = random_matrix(rng, batch, 784, 0.0f, 1.0f);
  std::vector<int> labels;
  for (int r = 0; r < batch; ++r) labels.push_back(rng.below(10));
  std::array<bool, 10> active{};
  active.fill(true);
  MlpGrads g;
  for (KernelPath isa : isas())
    std::printf("isa available: %s\n", isa == KernelPath::avx2 ? "avx2" : "portable");
  auto cpu_now = [] {  // CPU time of the whole process (all threads), ms
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  };
  for (int threads : {1, 2}) {
    Context ctx(threads);
    std::vector<double> step_ms, fwd_ms, cpu_ms;
    const int reps = 41;
    for (int rep = 0; rep < reps; ++rep) {
      const double c0 = cpu_now();
      auto t0 = std::chrono::steady_clock::now();
      gradients(ctx, p, x, labels, active, g);
      auto t1 = std::chrono::steady_clock::now();
      const double c1 = cpu_now();
      Matrix logits;
      forward(ctx, p, x, logits);
      auto t2 = std::chrono::steady_clock::now();
      step_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      fwd_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
      cpu_ms.push_back(c1 - c0);
    }
    for (auto* v : {&step_ms, &fwd_ms, &cpu_ms}) std::sort(v->begin(), v->end());
    std::printf("threads %d: step wall median %.3f ms (min %.3f), step cpu median %.3f ms, forward wall median %.3f ms "
                "(min %.3f)\n",
                threads, step_ms[reps / 2], step_ms[0], cpu_ms[reps / 2], fwd_ms[reps / 2], fwd_ms[0]);
  }
}

}  // namespace
}  // namespace hdq::golden
