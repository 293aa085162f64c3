#include "golden/golden.h"

#include <fmt/format.h>

#include "models/common/errors.h"

namespace hdq::golden {

namespace {

void check_params(const MlpParams& p) {
  if (p.graph) throw ConfigError("golden: a layer graph runs through golden::graph_forward (golden_net.h), not the MLP passes");
  if (p.w.empty() || p.w.size() != p.b.size())
    throw ConfigError(fmt::format("golden: parameters have {} weight and {} bias tensors", p.w.size(), p.b.size()));
  for (std::size_t l = 0; l < p.w.size(); ++l) {
    const Matrix& w = p.w[l];
    if (w.rows < 1 || w.cols < 1 || w.v.size() != std::size_t(w.rows) * std::size_t(w.cols) ||
        p.b[l].size() != std::size_t(w.rows))
      throw ConfigError(fmt::format("golden: layer {} has a {} x {} weight ({} values) and {} biases", l, w.rows, w.cols,
                                    w.v.size(), p.b[l].size()));
    if (l > 0 && w.cols != p.w[l - 1].rows)
      throw ConfigError(fmt::format("golden: layer {} takes {} inputs but layer {} gives {}", l, w.cols, l - 1,
                                    p.w[l - 1].rows));
  }
}

void check_input(const MlpParams& p, const Matrix& x) {
  check_params(p);
  if (x.cols != p.w[0].cols || x.rows < 0 || x.v.size() != std::size_t(x.rows) * std::size_t(x.cols))
    throw ConfigError(fmt::format("golden: input is {} x {}, the network takes {} features", x.rows, x.cols,
                                  p.w[0].cols));
}

// Give m the shape r x c, keeping its storage when large enough (the callers
// overwrite every element).
void reshape(Matrix& m, int r, int c) {
  m.rows = r;
  m.cols = c;
  m.v.resize(std::size_t(r) * std::size_t(c));
}

}  // namespace

void linear_forward(MatmulContext& mc, const Matrix& x, const Matrix& w, std::span<const float> bias, Matrix& y) {
  const int batch = x.rows, out = w.rows;
  reshape(y, batch, out);
  matmul(mc, view(x), transposed(w), y.v.data(), out);  // X W^T, i ascending
  for (int r = 0; r < batch; ++r) {
    float* yr = y.v.data() + std::size_t(r) * out;
    for (int o = 0; o < out; ++o) yr[o] = yr[o] + bias[std::size_t(o)];  // one rounding
  }
}

void linear_backward(MatmulContext& mc, const Matrix& x, const Matrix& w, const Matrix& g, Matrix* dx, Matrix& dw,
                     std::vector<float>& db) {
  const int batch = x.rows, out = w.rows, inw = w.cols;
  reshape(dw, out, inw);
  // dW = G^T X: contraction over the batch, r ascending.
  matmul(mc, transposed(g), view(x), dw.v.data(), inw);
  // db[o] = sum_r G[r][o], r ascending from +0 (vectorizes across o).
  db.assign(std::size_t(out), 0.0f);
  for (int r = 0; r < batch; ++r) {
    const float* gr = g.v.data() + std::size_t(r) * out;
    for (int o = 0; o < out; ++o) db[std::size_t(o)] = db[std::size_t(o)] + gr[o];
  }
  if (!dx) return;
  // dX = G W: contraction over the outputs, o ascending.
  reshape(*dx, batch, inw);
  matmul(mc, view(g), view(w), dx->v.data(), inw);
}

void forward(Context& ctx, const MlpParams& p, const Matrix& x, Matrix& logits, Activations* saved) {
  check_input(p, x);
  const int layers = int(p.w.size()), batch = x.rows;
  Activations& act = saved ? *saved : ctx.act;
  act.pre.resize(std::size_t(layers));
  act.post.resize(std::size_t(layers - 1));
  for (int l = 0; l < layers; ++l) {
    const Matrix& in = l == 0 ? x : act.post[std::size_t(l) - 1];
    const int out = p.w[l].rows;
    Matrix& y = act.pre[std::size_t(l)];
    linear_forward(ctx.matmul, in, p.w[l], p.b[l], y);
    if (l + 1 < layers) {
      Matrix& h = act.post[std::size_t(l)];
      reshape(h, batch, out);
      for (std::size_t i = 0; i < y.v.size(); ++i) {
        const float v = y.v[i];
        h.v[i] = (v > 0.0f || v != v) ? v : 0.0f;  // ReLU; -0 and negatives -> +0, NaN kept
      }
    }
  }
  logits = act.pre.back();
}

void backward(Context& ctx, const MlpParams& p, const Matrix& x, const Activations& saved, const Matrix& dlogits,
              MlpGrads& g) {
  check_input(p, x);
  const int layers = int(p.w.size()), batch = x.rows;
  if (int(saved.pre.size()) != layers || int(saved.post.size()) != layers - 1)
    throw ConfigError("golden backward: the saved activations are not those of this network");
  for (int l = 0; l < layers; ++l) {
    const Matrix& y = saved.pre[std::size_t(l)];
    if (y.rows != batch || y.cols != p.w[l].rows || (l + 1 < layers && (saved.post[std::size_t(l)].rows != batch ||
                                                                         saved.post[std::size_t(l)].cols != y.cols)))
      throw ConfigError(fmt::format("golden backward: saved activations of layer {} have the wrong shape", l));
  }
  if (dlogits.rows != batch || dlogits.cols != p.w.back().rows)
    throw ConfigError(fmt::format("golden backward: dlogits is {} x {}, expected {} x {}", dlogits.rows, dlogits.cols,
                                  batch, p.w.back().rows));

  g.w.resize(std::size_t(layers));
  g.b.resize(std::size_t(layers));
  Matrix& gcur = ctx.gcur;  // G = dL/dY of the current layer
  Matrix& gnext = ctx.gnext;  // and of the one below
  gcur = dlogits;
  for (int l = layers - 1; l >= 0; --l) {
    const Matrix& in = l == 0 ? x : saved.post[std::size_t(l) - 1];
    // dX of the first layer is not needed.
    linear_backward(ctx.matmul, in, p.w[l], gcur, l == 0 ? nullptr : &gnext, g.w[std::size_t(l)], g.b[std::size_t(l)]);
    if (l == 0) break;
    // The ReLU mask of the previous layer (pass where its pre-activation > 0).
    const Matrix& yprev = saved.pre[std::size_t(l) - 1];
    float* gn = gnext.v.data();
    const float* yp = yprev.v.data();
    for (std::size_t i = 0; i < gnext.v.size(); ++i) gn[i] = yp[i] > 0.0f ? gn[i] : 0.0f;
    std::swap(gcur, gnext);
  }
}

float gradients(Context& ctx, const MlpParams& p, const Matrix& x, std::span<const int> labels,
                std::span<const bool> active, MlpGrads& g, Matrix* logits_out) {
  forward(ctx, p, x, ctx.logits, &ctx.act);
  const float loss = softmax_cross_entropy(ctx.logits, labels, active, &ctx.dlogits);
  backward(ctx, p, x, ctx.act, ctx.dlogits, g);
  if (logits_out) *logits_out = ctx.logits;
  return loss;
}

}  // namespace hdq::golden
