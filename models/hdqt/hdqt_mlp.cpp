#include "models/hdqt/hdqt_mlp.h"

#include <algorithm>

namespace hdq {

void HdqtOverflow::merge(const HdqtOverflow& o) {
  if (layers.size() < o.layers.size()) layers.resize(o.layers.size());
  for (std::size_t l = 0; l < o.layers.size(); ++l)
    for (int g = 0; g < kGemmRoles; ++g) layers[l][g].merge(o.layers[l][g]);
}

namespace {

struct ForwardPass {
  std::vector<Matrix> pre;  // pre-activations Y of every layer (the last is the logits)
  std::vector<HdqtLayerState> states;
};

void forward(const MlpParams& p, const Matrix& x, const HdqtRun& run, std::uint64_t step, ForwardPass& fp,
             HdqtOverflow& overflow) {
  const int L = int(p.w.size());
  fp.pre.resize(L);
  fp.states.resize(L);
  if (int(overflow.layers.size()) < L) overflow.layers.resize(L);
  Matrix act;
  for (int l = 0; l < L; ++l) {
    const HdqtStepContext ctx{run.seed, step, l, run.threads};
    hdqt_linear_forward(l == 0 ? x : act, p.w[l], p.b[l], *run.cfg, ctx, fp.pre[l], fp.states[l], overflow.layers[l]);
    if (l + 1 < L) {
      act = fp.pre[l];
      for (float& v : act.v) v = std::max(v, 0.0f);  // ReLU
    }
  }
}

}  // namespace

float hdqt_gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels, std::span<const bool> active,
                     const HdqtRun& run, std::uint64_t step, MlpGrads& grads, HdqtOverflow& overflow,
                     std::vector<Matrix>* layer_outputs) {
  const int L = int(p.w.size());
  ForwardPass fp;
  forward(p, x, run, step, fp, overflow);
  Matrix g;
  const float loss = softmax_cross_entropy(fp.pre[L - 1], labels, active, &g);
  if (grads.w.size() != p.w.size()) grads = zeros_like(p);
  for (int l = L - 1; l >= 0; --l) {
    const HdqtStepContext ctx{run.seed, step, l, run.threads};
    Matrix dx;
    hdqt_linear_backward(g, fp.states[l], *run.cfg, ctx, l > 0 ? &dx : nullptr, grads.w[l], grads.b[l],
                         overflow.layers[l]);
    if (l > 0) {
      const Matrix& pre = fp.pre[l - 1];  // ReLU passes the gradient where its input was > 0
      for (std::size_t i = 0; i < dx.v.size(); ++i)
        if (!(pre.v[i] > 0.0f)) dx.v[i] = 0.0f;
      g = std::move(dx);
    }
  }
  if (layer_outputs) *layer_outputs = std::move(fp.pre);
  return loss;
}

void hdqt_logits(const MlpParams& p, const Matrix& x, const HdqtRun& run, std::uint64_t step, Matrix& logits) {
  ForwardPass fp;
  HdqtOverflow ignored;
  forward(p, x, run, step, fp, ignored);
  logits = std::move(fp.pre.back());
}

}  // namespace hdq
