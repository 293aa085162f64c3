#include "models/hdqt/hdqt_mlp.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"

namespace hdq {

void HdqtOverflow::merge(const HdqtOverflow& o) {
  if (layers.size() < o.layers.size()) layers.resize(o.layers.size());
  for (std::size_t l = 0; l < o.layers.size(); ++l)
    for (int g = 0; g < kGemmRoles; ++g) layers[l][g].merge(o.layers[l][g]);
}

double HdqtOverflow::inner_event_rate(std::initializer_list<GemmRole> roles) const {
  std::vector<GemmStats> merged;
  for (GemmRole r : roles) {
    merged.emplace_back();
    for (const HdqtLayerStats& layer : layers) merged.back().merge(layer[int(r)]);
  }
  return hdq::inner_event_rate(merged);
}

namespace {

HdqtStepContext context(const HdqtRun& run, std::uint64_t step, int net, int l) {
  return {run.seed, step, net * kLayersPerNet + l};
}

}  // namespace

void hdqt_forward(HdqtContext& hc, const MlpParams& p, const Matrix& x, const HdqtRun& run, std::uint64_t step,
                  int net, HdqtTrace& trace, HdqtOverflow* overflow) {
  const int L = int(p.w.size());
  if (p.graph) throw ConfigError("hdqt_forward: a layer graph runs through hdqt_graph_forward (hdqt_net.h)");
  if (L > kLayersPerNet) throw ConfigError(fmt::format("an HDQT network has at most {} layers", kLayersPerNet));
  trace.pre.resize(L);
  trace.states.resize(L);
  HdqtOverflow ignored;
  HdqtOverflow& stats = overflow ? *overflow : ignored;
  if (int(stats.layers.size()) < L) stats.layers.resize(L);
  Matrix& act = hc.scratch.act;  // ReLU output of the layer below
  for (int l = 0; l < L; ++l) {
    hdqt_linear_forward(hc, l == 0 ? x : act, p.w[l], p.b[l], *run.cfg, context(run, step, net, l), trace.pre[l],
                        trace.states[l], stats.layers[l]);
    if (l + 1 < L) {
      act = trace.pre[l];
      for (float& v : act.v) v = std::max(v, 0.0f);  // ReLU
    }
  }
}

void hdqt_backward(HdqtContext& hc, const MlpParams& p, const HdqtTrace& trace, const Matrix& dout,
                   const HdqtRun& run, std::uint64_t step, int net, MlpGrads& grads, HdqtOverflow& overflow) {
  const int L = int(p.w.size());
  if (grads.w.size() != p.w.size()) grads = zeros_like(p);
  if (int(overflow.layers.size()) < L) overflow.layers.resize(L);
  const Matrix* g = &dout;  // dL/dY of layer l
  Matrix& g_below = hc.scratch.g_below;
  Matrix& dx = hc.scratch.dx;
  for (int l = L - 1; l >= 0; --l) {
    hdqt_linear_backward(hc, *g, trace.states[l], *run.cfg, context(run, step, net, l), l > 0 ? &dx : nullptr,
                         grads.w[l], grads.b[l], overflow.layers[l]);
    if (l > 0) {
      const Matrix& pre = trace.pre[l - 1];  // ReLU passes the gradient where its input was > 0
      for (std::size_t i = 0; i < dx.v.size(); ++i)
        if (!(pre.v[i] > 0.0f)) dx.v[i] = 0.0f;
      std::swap(g_below, dx);
      g = &g_below;
    }
  }
}

}  // namespace hdq
