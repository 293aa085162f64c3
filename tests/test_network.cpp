// Layer graphs (models/nn/network.h) on the engines: the golden model's
// gradients through conv, BatchNorm, residual add, option-A shortcut and
// pooling against f64 finite differences of a naive composition of the
// layers; the functional engine's forward against the same composition of
// the HDQT layers, bit for bit; the presets' shapes.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>

#include "engines/functional_engine.h"
#include "engines/golden_engine.h"
#include "golden/conv.h"
#include "models/common/errors.h"
#include "models/nn/network.h"
#include "models/quantizer/random_bits.h"

namespace hdq {
namespace {

// 2 x 6 x 6 input: conv3x3-4 (bias), BN, relu, then a residual block that
// halves the size and widens to 6 channels (conv3x3 stride 2, no bias, BN,
// plus the option-A shortcut of the relu), relu, avg pool 2 (stride 1), max
// pool 2 (stride 1), global average pooling, flatten, linear 3.
std::shared_ptr<const Graph> small_graph() {
  Graph g({2, 6, 6});
  const int r1 = g.relu(g.batchnorm(g.conv(kNetworkInput, 4, 3, 1, 1, true)));
  const int b2 = g.batchnorm(g.conv(r1, 6, 3, 2, 1, false));
  const int a = g.relu(g.add(b2, g.shortcut(r1, 6, 2)));
  g.linear(g.flatten(g.global_avg_pool(g.max_pool(g.avg_pool(a, 2, 1), 2, 1))), 3);
  return std::make_shared<const Graph>(g);
}

// Deterministic values in [-1, 1).
float value(std::uint64_t i) { return float(mix64(i) >> 40) * 0x1p-23f - 1.0f; }

// init_graph, then BatchNorm's gamma and beta moved away from 1 and 0 (so a
// wrong use of either shows).
MlpParams small_params() {
  MlpParams p = init_graph(small_graph(), 11);
  for (const LayerNode& n : p.graph->nodes())
    if (n.kind == LayerKind::batchnorm) {
      const auto l = std::size_t(n.param);
      for (std::size_t c = 0; c < p.b[l].size(); ++c) {
        p.w[l].v[c] = 1.0f + 0.5f * value(100 * l + c);
        p.b[l][c] = 0.3f * value(200 * l + c);
      }
    }
  return p;
}

Matrix input(int batch, int features, std::uint64_t seed) {
  Matrix x(batch, features);
  for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] = value(seed * 1000003 + i);
  return x;
}

// The graph evaluated node by node in T with the layer functions themselves
// (golden conv, cnn_layers), independent of models/nn/graph_passes.cpp:
// BatchNorm with batch statistics, relu as v > 0 ? v : 0, the shortcut and
// the linear layer written out. Returns the network's output.
template <typename T>
std::vector<T> naive_forward(const Graph& g, const std::vector<std::vector<T>>& w,
                             const std::vector<std::vector<T>>& b, const std::vector<T>& x, int N) {
  std::vector<std::vector<T>> act(g.nodes().size());
  for (std::size_t i = 0; i < g.nodes().size(); ++i) {
    const LayerNode& n = g.nodes()[i];
    const std::vector<T>& in = n.a == kNetworkInput ? x : act[std::size_t(n.a)];
    std::vector<T>& y = act[i];
    y.assign(std::size_t(N) * std::size_t(n.out.size()), T(0));
    const auto l = std::size_t(std::max(n.param, 0));
    switch (n.kind) {
      case LayerKind::conv: golden::conv2d_forward<T>(n.conv, N, in, w[l], b[l], y); break;
      case LayerKind::batchnorm: {
        std::vector<T> rm(std::size_t(n.in.c)), rv(std::size_t(n.in.c));
        BatchNormSaved<T> saved;
        batchnorm_forward_train<T>({N, n.in.c, n.in.h * n.in.w}, in, w[l], b[l], rm, rv, y, saved);
        break;
      }
      case LayerKind::relu:
        for (std::size_t j = 0; j < y.size(); ++j) y[j] = in[j] > T(0) ? in[j] : T(0);
        break;
      case LayerKind::add: residual_add<T>(in, act[std::size_t(n.b)], y); break;
      case LayerKind::shortcut:
        for (int s = 0; s < N; ++s)
          for (int c = 0; c < n.in.c; ++c)
            for (int oy = 0; oy < n.out.h; ++oy)
              for (int ox = 0; ox < n.out.w; ++ox)
                y[std::size_t(((s * n.out.c + c + n.pad_before) * n.out.h + oy) * n.out.w + ox)] =
                    in[std::size_t(((s * n.in.c + c) * n.in.h + oy * n.stride) * n.in.w + ox * n.stride)];
        break;
      case LayerKind::avg_pool: avg_pool_forward<T>(n.pool, N, in, y); break;
      case LayerKind::max_pool: {
        std::vector<std::int32_t> argmax(y.size());
        max_pool_forward<T>(n.pool, N, in, y, argmax);
        break;
      }
      case LayerKind::global_avg_pool: global_avg_pool_forward<T>(N, n.in.c, n.in.h * n.in.w, in, y); break;
      case LayerKind::flatten: y = in; break;
      case LayerKind::linear: {
        const int I = int(n.in.size()), O = n.out.c;
        for (int s = 0; s < N; ++s)
          for (int o = 0; o < O; ++o) {
            T sum = T(0);
            for (int k = 0; k < I; ++k) sum += in[std::size_t(s * I + k)] * w[l][std::size_t(o * I + k)];
            y[std::size_t(s * O + o)] = sum + b[l][std::size_t(o)];
          }
        break;
      }
    }
  }
  return act.back();
}

// Every parameter gradient of the golden engine's graph backward (f32)
// against central differences of L = sum_k r_k out_k in f64 through the naive
// composition. The f32 passes round at every step, so agreement is to a few
// 1e-4 of the tensor's largest gradient, not bits; a wrong index, order of
// inputs or missing term is off by the size of the gradients themselves.
TEST(Network, GoldenGraphGradientsMatchFiniteDifferences) {
  const MlpParams p = small_params();
  const Graph& g = *p.graph;
  const int N = 3;
  const Matrix x = input(N, int(g.input().size()), 1);
  Matrix r(N, int(g.output().size()));
  for (std::size_t i = 0; i < r.v.size(); ++i) r.v[i] = value(5000 + i);

  GoldenEngine engine(1);
  const NetCall call{0, 0, 0};
  engine.forward(p, x, call);
  MlpGrads grads;
  engine.backward(p, call, r, grads);

  std::vector<std::vector<double>> w, b;
  for (std::size_t l = 0; l < p.w.size(); ++l) {
    w.emplace_back(p.w[l].v.begin(), p.w[l].v.end());
    b.emplace_back(p.b[l].begin(), p.b[l].end());
  }
  const std::vector<double> x64(x.v.begin(), x.v.end());
  const auto loss = [&] {
    const auto out = naive_forward<double>(g, w, b, x64, N);
    double s = 0;
    for (std::size_t i = 0; i < out.size(); ++i) s += double(r.v[i]) * out[i];
    return s;
  };
  const double h = 1e-6;
  int checked = 0;
  const auto check = [&](std::vector<double>& t, std::span<const float> analytic, const std::string& what) {
    ASSERT_EQ(t.size(), analytic.size()) << what;
    std::vector<double> fd(t.size());
    double scale = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
      const double keep = t[i];
      t[i] = keep + h;
      const double up = loss();
      t[i] = keep - h;
      const double down = loss();
      t[i] = keep;
      fd[i] = (up - down) / (2 * h);
      scale = std::max(scale, std::abs(fd[i]));
    }
    if (what == "b0") {
      // The first conv's bias feeds a BatchNorm, which subtracts every
      // channel's batch mean: L does not depend on it at all.
      for (std::size_t i = 0; i < t.size(); ++i, ++checked) {
        EXPECT_NEAR(fd[i], 0.0, 1e-8) << what << "[" << i << "]";
        EXPECT_NEAR(analytic[i], 0.0, 1e-5) << what << "[" << i << "]";
      }
      return;
    }
    ASSERT_GT(scale, 1e-3) << what << ": the gradients are too small for the test to see an error";
    for (std::size_t i = 0; i < t.size(); ++i, ++checked)
      EXPECT_NEAR(analytic[i], fd[i], 3e-4 * scale) << what << "[" << i << "]";
  };
  for (std::size_t l = 0; l < p.w.size(); ++l) {
    check(w[l], grads.w[l].v, fmt::format("w{}", l));
    if (!b[l].empty()) check(b[l], grads.b[l], fmt::format("b{}", l));
  }
  // 72 + 4 (conv, bias), 4 + 4 (BN), 216 (conv), 6 + 6 (BN), 18 + 3 (linear).
  EXPECT_EQ(checked, 333);

  // The training forward's running statistics travel with the gradients and
  // the optimizer installs them (the weights' update is SGD's own business).
  MlpParams q = p;
  Sgd sgd({});
  sgd.step(q, grads);
  EXPECT_EQ(q.running, grads.running);
  EXPECT_NE(q.running, p.running);
}

// The functional engine's forward of a graph equals the HDQT layers and the
// f32 layers composed by hand, bit for bit: in a training slot (batch
// statistics) and in evaluation (running statistics), for network 1 (HDQT
// layer 64 + l) at step 3.
TEST(Network, FunctionalForwardEqualsNaiveCompositionOfTheLayers) {
  const MlpParams p = small_params();
  const Graph& g = *p.graph;
  const HdqtConfig cfg = hdqt_preset("paper");
  const std::uint64_t seed = 9, step = 3;
  const int net = 1, N = 4;
  const Matrix x = input(N, int(g.input().size()), 2);
  FunctionalEngine engine(cfg, seed, 1);

  for (const bool training : {true, false}) {
    const std::vector<Matrix> got = engine.forward(p, x, {step, net, training ? 0 : kEvalSlot});
    // By hand: the same node order, each parameter layer's output kept.
    GemmContext gc(1);
    HdqtContext hc(1);
    HdqtConvScratch cs;
    HdqtConvState conv_state;
    HdqtLayerState linear_state;
    HdqtLayerStats stats;
    std::vector<Matrix> act(g.nodes().size()), want(std::size_t(g.param_layers()));
    for (std::size_t i = 0; i < g.nodes().size(); ++i) {
      const LayerNode& n = g.nodes()[i];
      const Matrix& in = n.a == kNetworkInput ? x : act[std::size_t(n.a)];
      Matrix& y = act[i];
      y = Matrix(N, int(n.out.size()));
      const auto l = std::size_t(std::max(n.param, 0));
      const HdqtStepContext ctx{seed, step, net * kLayersPerNet + n.param};
      switch (n.kind) {
        case LayerKind::conv: hdqt_conv_forward(gc, cs, n.conv, in, p.w[l], p.b[l], cfg, ctx, y, conv_state, stats); break;
        case LayerKind::linear: hdqt_linear_forward(hc, in, p.w[l], p.b[l], cfg, ctx, y, linear_state, stats); break;
        case LayerKind::batchnorm: {
          const BatchNormSpec spec{N, n.in.c, n.in.h * n.in.w};
          const auto C = std::size_t(n.in.c);
          std::vector<float> rm(p.running[l].begin(), p.running[l].begin() + std::ptrdiff_t(C));
          std::vector<float> rv(p.running[l].begin() + std::ptrdiff_t(C), p.running[l].end());
          BatchNormSaved<float> saved;
          if (training)
            batchnorm_forward_train<float>(spec, in.v, p.w[l].v, p.b[l], rm, rv, y.v, saved);
          else
            batchnorm_forward_eval<float>(spec, in.v, p.w[l].v, p.b[l], rm, rv, y.v);
          break;
        }
        case LayerKind::relu:
          for (std::size_t j = 0; j < y.v.size(); ++j) y.v[j] = in.v[j] > 0.0f ? in.v[j] : 0.0f;
          break;
        case LayerKind::add: residual_add<float>(in.v, act[std::size_t(n.b)].v, y.v); break;
        case LayerKind::shortcut:
          for (int s = 0; s < N; ++s)
            for (int c = 0; c < n.in.c; ++c)
              for (int oy = 0; oy < n.out.h; ++oy)
                for (int ox = 0; ox < n.out.w; ++ox)
                  y.at(s, ((c + n.pad_before) * n.out.h + oy) * n.out.w + ox) =
                      in.at(s, (c * n.in.h + oy * n.stride) * n.in.w + ox * n.stride);
          break;
        case LayerKind::avg_pool: avg_pool_forward<float>(n.pool, N, in.v, y.v); break;
        case LayerKind::max_pool: {
          std::vector<std::int32_t> argmax(y.v.size());
          max_pool_forward<float>(n.pool, N, in.v, y.v, argmax);
          break;
        }
        case LayerKind::global_avg_pool: global_avg_pool_forward<float>(N, n.in.c, n.in.h * n.in.w, in.v, y.v); break;
        case LayerKind::flatten: y.v = in.v; break;
      }
      if (n.param >= 0) want[l] = y;
    }
    ASSERT_EQ(got.size(), want.size());  // the graph ends in its linear layer: one output per parameter layer
    for (std::size_t l = 0; l < want.size(); ++l) {
      ASSERT_EQ(got[l].v.size(), want[l].v.size()) << "layer " << l;
      for (std::size_t j = 0; j < want[l].v.size(); ++j)
        ASSERT_EQ(std::bit_cast<std::uint32_t>(got[l].v[j]), std::bit_cast<std::uint32_t>(want[l].v[j]))
            << (training ? "training" : "evaluation") << ", layer " << l << ", element " << j;
    }
  }
}

// The presets' shapes: cnn-small on Fashion-MNIST flattens 32 x 7 x 7 into its
// classifier; ResNet-20/32 have 6n + 2 weighted layers (convs and the linear),
// each conv followed by a BatchNorm, and 64 features before the classifier;
// the trunk drops the classifier only.
TEST(Network, PresetsHaveTheStatedShapes) {
  const auto small = network_preset("cnn-small", {1, 28, 28}, 10);
  EXPECT_EQ(small->nodes().back().in.size(), 32 * 7 * 7);
  EXPECT_EQ(small->param_layers(), 3);
  for (const auto& [name, n] : {std::pair{"resnet20", 3}, std::pair{"resnet32", 5}}) {
    const auto r = network_preset(name, {3, 32, 32}, 100);
    int convs = 0, bns = 0, linears = 0, shortcuts = 0;
    for (const LayerNode& node : r->nodes()) {
      convs += node.kind == LayerKind::conv;
      bns += node.kind == LayerKind::batchnorm;
      linears += node.kind == LayerKind::linear;
      shortcuts += node.kind == LayerKind::shortcut;
    }
    EXPECT_EQ(convs + linears, 6 * n + 2) << name;
    EXPECT_EQ(bns, convs) << name;
    EXPECT_EQ(shortcuts, 2) << name;  // the first block of stages 2 and 3
    EXPECT_EQ(r->nodes().back().in.size(), 64) << name;
    EXPECT_EQ(r->output().size(), 100) << name;
    const Graph t = r->trunk();
    EXPECT_EQ(t.nodes().size() + 1, r->nodes().size()) << name;
    EXPECT_EQ(t.output().size(), 64) << name;
  }
  EXPECT_THROW(network_preset("cnn-small", {1, 3, 28}, 10), ConfigError);
  EXPECT_THROW(small->trunk().trunk(), ConfigError);  // the trunk ends in flatten, not a classifier
}

}  // namespace
}  // namespace hdq
