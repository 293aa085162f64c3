#include "models/hdqt/hdqt_linear.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"

namespace hdq {
namespace {

// "layer<l>.<role>" for error messages, formatted without allocating.
struct TensorName {
  std::array<char, 40> text{};
  std::size_t size = 0;
  std::string_view view() const { return {text.data(), size}; }
};

TensorName tensor_name(const HdqtStepContext& ctx, QuantRole r) {
  TensorName n;
  n.size = std::min(n.text.size(), fmt::format_to_n(n.text.data(), n.text.size(), "layer{}.{}", ctx.layer, name(r)).size);
  return n;
}

RandomStream stream(const HdqtStepContext& ctx, QuantRole r) {
  return {ctx.seed, 8 * std::uint64_t(ctx.layer) + std::uint64_t(r), ctx.step};
}

void quantize_role(std::span<const float> x, const HdqtConfig& cfg, const HdqtStepContext& ctx, QuantRole r,
                   QuantizedTensor& out) {
  quantize(x, cfg.q(r), stream(ctx, r), tensor_name(ctx, r).view(), out);
}

// The integer Hadamard transform of the int16 matrix `a` (rows x cols) along
// its rows dimension, zero-padded to padded_rows, into `out` as f32
// (padded_rows x cols), exact since every value is an integer of at most 24
// bits; `t` holds the widened integers.
void hadamard_along_rows_dim(const std::vector<std::int16_t>& a, int rows, int cols, int padded_rows, int block,
                             std::vector<std::int32_t>& t, std::vector<float>& out) {
  const std::size_t filled = std::size_t(rows) * cols, total = std::size_t(padded_rows) * cols;
  t.resize(total);
  std::copy(a.begin(), a.begin() + std::ptrdiff_t(filled), t.begin());
  std::fill(t.begin() + std::ptrdiff_t(filled), t.end(), 0);
  hadamard_columns_i32(t, padded_rows, cols, block);
  out.resize(total);
  bool exact = true;
  for (std::size_t i = 0; i < total; ++i) {
    exact &= t[i] <= (1 << 24) && t[i] >= -(1 << 24);
    out[i] = float(t[i]);
  }
  if (!exact) throw NumericError("integer Hadamard result exceeds 2^24 (not exact in f32)");
}

// out (cols x rows) = in (rows x cols) transposed, in 16 x 16 blocks (both
// sides touch a few cache lines per block instead of one per element).
template <typename T>
void transpose(const T* in, int rows, int cols, T* out) {
  constexpr int kBlock = 16;
  for (int r0 = 0; r0 < rows; r0 += kBlock)
    for (int c0 = 0; c0 < cols; c0 += kBlock)
      for (int r = r0; r < std::min(rows, r0 + kBlock); ++r)
        for (int c = c0; c < std::min(cols, c0 + kBlock); ++c)
          out[std::size_t(c) * rows + r] = in[std::size_t(r) * cols + c];
}

// The GEMM operand of a tensor quantized under `q`: operand_bits(q) wide (the
// quantizer's bits, or wider for luq, whose integers reach +-2^E).
IntOperand operand(const QuantizedTensor& t, const QuantConfig& q) {
  return {t.q, operand_bits(q), t.params.is_unsigned};
}

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
  st.x_clipped.resize(x.v.size());
  const float lo = xq.params.is_unsigned ? 0.0f : -xq.params.mx;
  for (std::size_t i = 0; i < x.v.size(); ++i) st.x_clipped[i] = x.v[i] > xq.params.mx || x.v[i] < lo;
  st.xq.assign(xq.q.begin(), xq.q.end());  // copies: the state's buffers keep their layer's size
  st.px = xq.params;
  st.wq.assign(wq.q.begin(), wq.q.end());
  st.pw = wq.params;
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
  hadamard_along_rows_dim(q, K, n, Kp, h.block, scratch.widened, scratch.q_hadamard);
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
