#include "models/hdqt/hdqt_net.h"

#include <fmt/format.h>

#include "models/common/errors.h"

namespace hdq {
namespace {

// The HDQT layers of one pass: their states live in the trace, written by a
// forward pass (`written` non-null) and read by the backward pass.
class HdqtOps final : public GemmLayerOps {
 public:
  HdqtOps(HdqtContext& hc, HdqtConvScratch& cs, const HdqtRun& run, std::uint64_t step, int net, HdqtOverflow& stats,
          const HdqtGraphTrace& trace, HdqtGraphTrace* written)
      : hc_(hc), cs_(cs), run_(run), step_(step), net_(net), stats_(stats), trace_(trace), written_(written) {}

  void forward(const LayerNode& n, const Matrix& x, const Matrix& w, std::span<const float> b, Matrix& y) override {
    if (!written_) throw ConfigError("HDQT graph ops: a forward pass needs a trace to write");
    const auto l = std::size_t(n.param);
    if (n.kind == LayerKind::conv)
      hdqt_conv_forward(hc_.gemm, cs_, n.conv, x, w, b, *run_.cfg, context(n), y, written_->conv[l], stats_.layers[l]);
    else
      hdqt_linear_forward(hc_, x, w, b, *run_.cfg, context(n), y, written_->linear[l], stats_.layers[l]);
  }

  void backward(const LayerNode& n, const Matrix&, const Matrix&, const Matrix& g, Matrix* dx, Matrix& dw,
                std::vector<float>& db) override {  // the quantized operands are in the layer's state
    const auto l = std::size_t(n.param);
    if (n.kind == LayerKind::conv)
      hdqt_conv_backward(hc_.gemm, cs_, g, trace_.conv[l], *run_.cfg, context(n), dx, dw, db, stats_.layers[l]);
    else
      hdqt_linear_backward(hc_, g, trace_.linear[l], *run_.cfg, context(n), dx, dw, db, stats_.layers[l]);
  }

 private:
  HdqtStepContext context(const LayerNode& n) const { return {run_.seed, step_, net_ * kLayersPerNet + n.param}; }
  HdqtContext& hc_;
  HdqtConvScratch& cs_;
  const HdqtRun& run_;
  std::uint64_t step_;
  int net_;
  HdqtOverflow& stats_;
  const HdqtGraphTrace& trace_;
  HdqtGraphTrace* written_;
};

void check_layers(const MlpParams& p, HdqtOverflow& stats) {
  const int L = p.graph ? p.graph->param_layers() : 0;
  if (L > kLayersPerNet)
    throw ConfigError(fmt::format("network: {} parameter layers; an HDQT network has at most {}", L, kLayersPerNet));
  if (int(stats.layers.size()) < L) stats.layers.resize(std::size_t(L));
}

}  // namespace

void hdqt_graph_forward(HdqtContext& hc, HdqtConvScratch& cs, const MlpParams& p, const Matrix& x, const HdqtRun& run,
                        std::uint64_t step, int net, bool batch_stats, HdqtGraphTrace& trace, HdqtOverflow* overflow) {
  HdqtOverflow ignored;
  HdqtOverflow& stats = overflow ? *overflow : ignored;
  check_layers(p, stats);
  const auto L = std::size_t(p.graph ? p.graph->param_layers() : 0);
  trace.conv.resize(L);
  trace.linear.resize(L);
  HdqtOps ops(hc, cs, run, step, net, stats, trace, &trace);
  graph_forward(ops, p, x, batch_stats, trace.graph);
}

void hdqt_graph_backward(HdqtContext& hc, HdqtConvScratch& cs, const MlpParams& p, const HdqtGraphTrace& trace,
                         const Matrix& dout, const HdqtRun& run, std::uint64_t step, int net, MlpGrads& grads,
                         HdqtOverflow& overflow, GraphScratch& scratch) {
  check_layers(p, overflow);
  HdqtOps ops(hc, cs, run, step, net, overflow, trace, nullptr);
  graph_backward(ops, p, trace.graph, dout, grads, scratch);
}

}  // namespace hdq
