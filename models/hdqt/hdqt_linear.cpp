#include "models/hdqt/hdqt_linear.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"
#include "models/hdqt/layer_ops.h"

namespace hdq {
namespace {

using detail::operand;
using detail::quantize_role;
using detail::transpose;

}  // namespace

void hdqt_linear_forward(HdqtContext& hc, const Matrix& x, const Matrix& w, std::span<const float> bias,
                         const HdqtConfig& cfg, const HdqtStepContext& ctx, Matrix& y, HdqtLayerState& st,
                         HdqtLayerStats& stats) {
  HdqtScratch& scratch = hc.scratch;
  const int B = x.rows, I = x.cols, O = w.rows;
  if (w.cols != I || int(bias.size()) != O)
    throw ConfigError(fmt::format("layer{}: X is {} x {}, W is {} x {}, bias has {}: shapes do not match", ctx.layer, B,
                                  I, w.rows, w.cols, bias.size()));
  QuantizedTensor& xq = scratch.xq;
  QuantizedTensor& wq = scratch.wq;
  quantize_role(x.v, cfg, ctx, QuantRole::fwd_x, xq);
  quantize_role(w.v, cfg, ctx, QuantRole::fwd_w, wq);

  // Wq^T (I x O) is the right-hand operand.
  std::vector<std::int16_t>& wqt = scratch.wqt;
  wqt.resize(std::size_t(I) * O);
  transpose(wq.q.data(), O, I, wqt.data());
  std::vector<std::int32_t>& acc = scratch.acc;
  acc.resize(std::size_t(B) * O);
  stats[int(GemmRole::fwd)].merge(gemm(hc.gemm, {B, O, I}, operand(xq, cfg.q(QuantRole::fwd_x)),
                                       {wqt, operand_bits(cfg.q(QuantRole::fwd_w)), wq.params.is_unsigned},
                                       cfg.acc(GemmRole::fwd), acc));
  y.reshape(B, O);
  const std::array<float, 2> factors{xq.params.scale, wq.params.scale};
  dequantize(acc, factors, y.v);
  for (int r = 0; r < B; ++r)
    for (int o = 0; o < O; ++o) y.at(r, o) = y.at(r, o) + bias[o];

  st.batch = B, st.in = I, st.out = O;
  detail::keep_forward_operands(x.v, xq, wq, st);
}

namespace {

// One backward GEMM of section 6, shared by dX and dW. `g` (R x K) is the f32
// operand with the contraction dimension K along its rows, `q` (K x N) the
// forward's integer operand with scale q_scale. K is padded to the Hadamard
// plan's length Kp; then
//   Q' = H_K q (exact ints) -> Q'q, s_q' = Q(Q'; q_role)
//   G' = g H_K (f32 FWHT)   -> G'q, s_g  = Q(G'; g_role)
//   out (R x N) = ((((f32)GEMM(G'q, Q'q) * s_g) * s_q') * q_scale) * (1/b)
void backward_gemm(HdqtContext& hc, const Matrix& g, const std::vector<std::int16_t>& q, int n, float q_scale,
                   QuantRole g_role, QuantRole q_role, GemmRole gemm_role, const HdqtConfig& cfg,
                   const HdqtStepContext& ctx, HdqtLayerStats& stats, Matrix& out) {
  HdqtScratch& scratch = hc.scratch;
  const int R = g.rows, K = g.cols;
  const HadamardPlan h = plan_hadamard(K, cfg.hadamard);
  const int Kp = h.padded_length;
  QuantizedTensor& qh = scratch.qh;
  detail::hadamard_along_rows_dim(q, K, n, Kp, h.block, scratch.widened, scratch.q_hadamard);
  quantize_role(scratch.q_hadamard, cfg, ctx, q_role, qh);
  std::vector<float>& gh = scratch.g_hadamard;
  gh.assign(std::size_t(R) * Kp, 0.0f);
  for (int r = 0; r < R; ++r) std::copy_n(g.row(r).data(), K, gh.begin() + std::size_t(r) * Kp);
  hadamard_rows_f32(gh, R, Kp, h.block);
  QuantizedTensor& ghq = scratch.ghq;
  quantize_role(gh, cfg, ctx, g_role, ghq);
  std::vector<std::int32_t>& acc = scratch.acc;
  acc.resize(std::size_t(R) * n);
  stats[int(gemm_role)].merge(
      gemm(hc.gemm, {R, n, Kp}, operand(ghq, cfg.q(g_role)), operand(qh, cfg.q(q_role)), cfg.acc(gemm_role), acc));
  out.reshape(R, n);
  const std::array<float, 4> factors{ghq.params.scale, qh.params.scale, q_scale, 1.0f / float(h.block)};
  dequantize(acc, factors, out.v);
}

}  // namespace

void hdqt_linear_backward(HdqtContext& hc, const Matrix& g, const HdqtLayerState& st, const HdqtConfig& cfg,
                          const HdqtStepContext& ctx, Matrix* dx, Matrix& dw, std::vector<float>& db,
                          HdqtLayerStats& stats) {
  const int B = st.batch, I = st.in, O = st.out;
  if (g.rows != B || g.cols != O)
    throw ConfigError(fmt::format("layer{}: G is {} x {}, expected {} x {}", ctx.layer, g.rows, g.cols, B, O));

  // dX (B x I): contraction over O, so G (B x O) and Wq (O x I) as they are.
  if (dx) {
    backward_gemm(hc, g, st.wq, I, st.pw.scale, QuantRole::bwd_g_dx, QuantRole::bwd_w_dx, GemmRole::bwd_dx, cfg, ctx, stats,
                  *dx);
    if (cfg.ste == Ste::clipped)
      for (std::size_t i = 0; i < dx->v.size(); ++i)
        if (st.x_clipped[i]) dx->v[i] = 0.0f;
  }

  // dW (O x I): contraction over B, so G^T (O x B) and Xq (B x I).
  Matrix& gt = hc.scratch.gt;
  gt.reshape(O, B);
  transpose(g.v.data(), B, O, gt.v.data());
  backward_gemm(hc, gt, st.xq, I, st.px.scale, QuantRole::bwd_g_dw, QuantRole::bwd_x_dw, GemmRole::bwd_dw, cfg, ctx, stats,
                dw);

  // db: column sums of G, batch ascending.
  db.assign(std::size_t(O), 0.0f);
  for (int r = 0; r < B; ++r)
    for (int o = 0; o < O; ++o) db[o] += g.at(r, o);
}

}  // namespace hdq
