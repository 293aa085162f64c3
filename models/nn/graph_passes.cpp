#include "models/nn/graph_passes.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"

namespace hdq {
namespace {

BatchNormSpec bn_spec(const LayerNode& n, int batch) { return {batch, n.in.c, n.in.h * n.in.w}; }

ShortcutGeometry shortcut_geometry(const LayerNode& n) {
  return {n.in.c, n.in.h, n.in.w, n.out.c, n.out.h, n.out.w, n.stride, n.pad_before};
}

}  // namespace

void check_graph_params(const MlpParams& p) {
  if (!p.graph) throw ConfigError("graph passes: the parameters have no layer graph");
  const Graph& g = *p.graph;
  const auto L = std::size_t(g.param_layers());
  if (p.w.size() != L || p.b.size() != L || p.running.size() != L)
    throw ConfigError(fmt::format("graph passes: {} weight, {} bias and {} running-statistic tensors for {} parameter "
                                  "layers",
                                  p.w.size(), p.b.size(), p.running.size(), L));
  for (const LayerNode& n : g.nodes()) {
    if (n.param < 0) continue;
    const auto l = std::size_t(n.param);
    int rows = n.out.c, cols = 0;
    std::size_t biases = n.bias ? std::size_t(n.out.c) : 0, running = 0;
    if (n.kind == LayerKind::conv) cols = n.conv.patch();
    if (n.kind == LayerKind::linear) cols = int(n.in.size());
    if (n.kind == LayerKind::batchnorm) rows = 1, cols = n.in.c, biases = std::size_t(n.in.c), running = 2 * biases;
    if (p.w[l].rows != rows || p.w[l].cols != cols || p.w[l].v.size() != std::size_t(rows) * std::size_t(cols) ||
        p.b[l].size() != biases || p.running[l].size() != running)
      throw ConfigError(fmt::format("graph passes: layer {} ({}) has a {} x {} weight, {} biases and {} running "
                                    "statistics; it needs {} x {}, {} and {}",
                                    l, name(n.kind), p.w[l].rows, p.w[l].cols, p.b[l].size(), p.running[l].size(),
                                    rows, cols, biases, running));
  }
}

void graph_forward(GemmLayerOps& ops, const MlpParams& p, const Matrix& x, bool batch_stats, GraphTrace& t) {
  check_graph_params(p);
  const Graph& graph = *p.graph;
  const auto& nodes = graph.nodes();
  const int N = x.rows;
  if (N < 1 || x.cols != graph.input().size() || x.v.size() != std::size_t(N) * std::size_t(x.cols))
    throw ConfigError(fmt::format("graph forward: input is {} x {}, the network takes {} x {} x {} = {} features",
                                  x.rows, x.cols, graph.input().c, graph.input().h, graph.input().w,
                                  graph.input().size()));
  t.input = x;
  t.batch_stats = batch_stats;
  t.act.resize(nodes.size());
  t.bn.resize(nodes.size());
  t.argmax.resize(nodes.size());
  t.running = p.running;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const LayerNode& n = nodes[i];
    const Matrix& in = n.a == kNetworkInput ? t.input : t.act[std::size_t(n.a)];
    Matrix& y = t.act[i];
    y.reshape(N, int(n.out.size()));
    const auto l = std::size_t(std::max(n.param, 0));
    switch (n.kind) {
      case LayerKind::conv:
      case LayerKind::linear: ops.forward(n, in, p.w[l], p.b[l], y); break;
      case LayerKind::batchnorm: {
        const std::size_t C = std::size_t(n.in.c);
        if (batch_stats) {
          std::span<float> r(t.running[l]);
          batchnorm_forward_train<float>(bn_spec(n, N), in.v, p.w[l].v, p.b[l], r.first(C), r.subspan(C), y.v, t.bn[i]);
        } else {
          std::span<const float> r(p.running[l]);
          batchnorm_forward_eval<float>(bn_spec(n, N), in.v, p.w[l].v, p.b[l], r.first(C), r.subspan(C), y.v);
        }
        break;
      }
      case LayerKind::relu: relu_forward<float>(in.v, y.v); break;
      case LayerKind::max_pool:
        t.argmax[i].resize(y.v.size());
        max_pool_forward<float>(n.pool, N, in.v, y.v, t.argmax[i]);
        break;
      case LayerKind::avg_pool: avg_pool_forward<float>(n.pool, N, in.v, y.v); break;
      case LayerKind::global_avg_pool: global_avg_pool_forward<float>(N, n.in.c, n.in.h * n.in.w, in.v, y.v); break;
      case LayerKind::flatten: std::copy(in.v.begin(), in.v.end(), y.v.begin()); break;
      case LayerKind::add: residual_add<float>(in.v, t.act[std::size_t(n.b)].v, y.v); break;
      case LayerKind::shortcut:
        shortcut_forward<float>(shortcut_geometry(n), N, in.v, y.v);
        break;
    }
  }
  const std::size_t L = std::size_t(graph.param_layers());
  const bool extra = nodes.back().param < 0;
  t.outputs.resize(L + (extra ? 1 : 0));
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].param >= 0) t.outputs[std::size_t(nodes[i].param)] = t.act[i];
  if (extra) t.outputs.back() = t.act.back();
}

void graph_backward(GemmLayerOps& ops, const MlpParams& p, const GraphTrace& t, const Matrix& dout, MlpGrads& g,
                    GraphScratch& scratch) {
  check_graph_params(p);
  const Graph& graph = *p.graph;
  const auto& nodes = graph.nodes();
  const int N = t.input.rows;
  if (t.act.size() != nodes.size() || t.input.cols != graph.input().size())
    throw ConfigError("graph backward: the trace is not that of a forward pass of this network");
  if (!t.batch_stats)
    throw ConfigError("graph backward: the forward pass used running statistics (an evaluation or frozen pass)");
  if (dout.rows != N || dout.cols != graph.output().size())
    throw ConfigError(fmt::format("graph backward: dL/d(output) is {} x {}, expected {} x {}", dout.rows, dout.cols, N,
                                  graph.output().size()));
  const std::size_t L = std::size_t(graph.param_layers());
  g.w.resize(L);
  g.b.resize(L);
  g.running = t.running;
  g.graph = p.graph;

  std::vector<Matrix>& grad = scratch.grad;
  std::vector<bool>& has = scratch.has;
  grad.resize(nodes.size());
  has.assign(nodes.size(), false);
  grad.back() = dout;
  has.back() = true;
  const auto contribute = [&](int node, const Matrix& c) {
    if (node == kNetworkInput) return;
    const auto k = std::size_t(node);
    if (!has[k]) {
      grad[k] = c;
      has[k] = true;
      return;
    }
    for (std::size_t j = 0; j < c.v.size(); ++j) grad[k].v[j] = grad[k].v[j] + c.v[j];
  };
  Matrix& tmp = scratch.tmp;
  for (std::size_t i = nodes.size(); i-- > 0;) {
    const LayerNode& n = nodes[i];
    const auto l = std::size_t(std::max(n.param, 0));
    if (!has[i]) {  // a node the output does not depend on: zero gradients for its parameters
      if (n.param >= 0) {
        g.w[l] = Matrix(p.w[l].rows, p.w[l].cols);
        g.b[l].assign(p.b[l].size(), 0.0f);
      }
      continue;
    }
    const Matrix& dy = grad[i];
    const Matrix& in = n.a == kNetworkInput ? t.input : t.act[std::size_t(n.a)];
    const int in_cols = int(n.in.size());
    switch (n.kind) {
      case LayerKind::conv:
      case LayerKind::linear: {
        const bool need_dx = n.a != kNetworkInput;
        ops.backward(n, in, p.w[l], dy, need_dx ? &tmp : nullptr, g.w[l], g.b[l]);
        if (need_dx) contribute(n.a, tmp);
        break;
      }
      case LayerKind::batchnorm:
        tmp.reshape(N, in_cols);
        g.w[l].reshape(1, n.in.c);
        g.b[l].resize(std::size_t(n.in.c));
        batchnorm_backward<float>(bn_spec(n, N), t.bn[i], p.w[l].v, dy.v, tmp.v, g.w[l].v, g.b[l]);
        contribute(n.a, tmp);
        break;
      case LayerKind::relu:
        tmp.reshape(N, in_cols);
        relu_backward<float>(in.v, dy.v, tmp.v);
        contribute(n.a, tmp);
        break;
      case LayerKind::max_pool:
        tmp.reshape(N, in_cols);
        max_pool_backward<float>(n.pool, N, t.argmax[i], dy.v, tmp.v);
        contribute(n.a, tmp);
        break;
      case LayerKind::avg_pool:
        tmp.reshape(N, in_cols);
        avg_pool_backward<float>(n.pool, N, dy.v, tmp.v);
        contribute(n.a, tmp);
        break;
      case LayerKind::global_avg_pool:
        tmp.reshape(N, in_cols);
        global_avg_pool_backward<float>(N, n.in.c, n.in.h * n.in.w, dy.v, tmp.v);
        contribute(n.a, tmp);
        break;
      case LayerKind::flatten: contribute(n.a, dy); break;
      case LayerKind::add:
        contribute(n.a, dy);
        contribute(n.b, dy);
        break;
      case LayerKind::shortcut:
        tmp.reshape(N, in_cols);
        shortcut_backward<float>(shortcut_geometry(n), N, dy.v, tmp.v);
        contribute(n.a, tmp);
        break;
    }
  }
}

}  // namespace hdq
