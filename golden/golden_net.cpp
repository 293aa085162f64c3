#include "golden/golden_net.h"

#include "golden/conv.h"

namespace hdq::golden {
namespace {

class GoldenOps final : public GemmLayerOps {
 public:
  explicit GoldenOps(MatmulContext& mc) : mc_(mc) {}

  void forward(const LayerNode& n, const Matrix& x, const Matrix& w, std::span<const float> b, Matrix& y) override {
    if (n.kind == LayerKind::linear) return linear_forward(mc_, x, w, b, y);
    y.reshape(x.rows, n.conv.out_size());
    conv2d_forward<float>(n.conv, x.rows, x.v, w.v, b, y.v);
  }

  void backward(const LayerNode& n, const Matrix& x, const Matrix& w, const Matrix& g, Matrix* dx, Matrix& dw,
                std::vector<float>& db) override {
    if (n.kind == LayerKind::linear) return linear_backward(mc_, x, w, g, dx, dw, db);
    if (dx) dx->reshape(x.rows, n.conv.in_size());
    dw.reshape(n.conv.out_channels, n.conv.patch());
    db.resize(n.bias ? std::size_t(n.conv.out_channels) : 0);
    conv2d_backward<float>(n.conv, x.rows, x.v, w.v, g.v, dx ? std::span<float>(dx->v) : std::span<float>(),
                           dw.v, db);
  }

 private:
  MatmulContext& mc_;
};

}  // namespace

void graph_forward(Context& ctx, const MlpParams& p, const Matrix& x, bool batch_stats, GraphTrace& trace) {
  GoldenOps ops(ctx.matmul);
  hdq::graph_forward(ops, p, x, batch_stats, trace);
}

void graph_backward(Context& ctx, const MlpParams& p, const GraphTrace& trace, const Matrix& dout, MlpGrads& grads,
                    GraphScratch& scratch) {
  GoldenOps ops(ctx.matmul);
  hdq::graph_backward(ops, p, trace, dout, grads, scratch);
}

}  // namespace hdq::golden
