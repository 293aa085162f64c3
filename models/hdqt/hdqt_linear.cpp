#include "models/hdqt/hdqt_linear.h"

#include <fmt/format.h>

#include "models/common/errors.h"

namespace hdq {
namespace {

std::string tensor_name(const HdqtStepContext& ctx, QuantRole r) { return fmt::format("layer{}.{}", ctx.layer, name(r)); }

RandomStream stream(const HdqtStepContext& ctx, QuantRole r) {
  return {ctx.seed, 8 * std::uint64_t(ctx.layer) + std::uint64_t(r), ctx.step};
}

QuantizedTensor quantize_role(std::span<const float> x, const HdqtConfig& cfg, const HdqtStepContext& ctx,
                              QuantRole r) {
  return quantize(x, cfg.q(r), stream(ctx, r), tensor_name(ctx, r));
}

// Rows x cols int16 -> cols x rows int32, zero-padding the new column count to
// padded_cols: the layout in which a transform along the old rows is a
// transform along contiguous rows.
std::vector<std::int32_t> transpose_padded(const std::vector<std::int16_t>& a, int rows, int cols, int padded_rows) {
  std::vector<std::int32_t> t(std::size_t(cols) * padded_rows, 0);
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) t[std::size_t(c) * padded_rows + r] = a[std::size_t(r) * cols + c];
  return t;
}

// The integer Hadamard transform of the int16 matrix `a` (rows x cols) along
// its rows dimension, padded to padded_rows; returned as f32 (padded_rows x cols),
// exact since every value is an integer of at most 24 bits.
std::vector<float> hadamard_along_rows_dim(const std::vector<std::int16_t>& a, int rows, int cols, int padded_rows,
                                           int block) {
  std::vector<std::int32_t> t = transpose_padded(a, rows, cols, padded_rows);  // cols x padded_rows
  hadamard_rows_i32(t, cols, padded_rows, block);
  std::vector<float> out(std::size_t(padded_rows) * cols);
  for (int c = 0; c < cols; ++c)
    for (int r = 0; r < padded_rows; ++r) {
      const std::int32_t v = t[std::size_t(c) * padded_rows + r];
      if (v > (1 << 24) || v < -(1 << 24)) throw NumericError("integer Hadamard result exceeds 2^24 (not exact in f32)");
      out[std::size_t(r) * cols + c] = float(v);
    }
  return out;
}

IntOperand operand(const QuantizedTensor& t, int bits) { return {t.q, bits, t.params.is_unsigned}; }

}  // namespace

void hdqt_linear_forward(const Matrix& x, const Matrix& w, std::span<const float> bias, const HdqtConfig& cfg,
                         const HdqtStepContext& ctx, Matrix& y, HdqtLayerState& st, HdqtLayerStats& stats) {
  const int B = x.rows, I = x.cols, O = w.rows;
  if (w.cols != I || int(bias.size()) != O)
    throw ConfigError(fmt::format("layer{}: X is {} x {}, W is {} x {}, bias has {}: shapes do not match", ctx.layer, B,
                                  I, w.rows, w.cols, bias.size()));
  QuantizedTensor xq = quantize_role(x.v, cfg, ctx, QuantRole::fwd_x);
  QuantizedTensor wq = quantize_role(w.v, cfg, ctx, QuantRole::fwd_w);

  // Wq^T (I x O) is the right-hand operand.
  std::vector<std::int16_t> wqt(std::size_t(I) * O);
  for (int o = 0; o < O; ++o)
    for (int i = 0; i < I; ++i) wqt[std::size_t(i) * O + o] = wq.q[std::size_t(o) * I + i];
  std::vector<std::int32_t> acc(std::size_t(B) * O);
  stats[int(GemmRole::fwd)].merge(gemm({B, O, I}, operand(xq, cfg.q(QuantRole::fwd_x).bits),
                                       {wqt, cfg.q(QuantRole::fwd_w).bits, wq.params.is_unsigned},
                                       cfg.acc(GemmRole::fwd), acc, best_gemm_path(), ctx.threads));
  y = Matrix(B, O);
  const std::array<float, 2> factors{xq.params.scale, wq.params.scale};
  dequantize(acc, factors, y.v);
  for (int r = 0; r < B; ++r)
    for (int o = 0; o < O; ++o) y.at(r, o) = y.at(r, o) + bias[o];

  st.batch = B, st.in = I, st.out = O;
  st.x_clipped.assign(x.v.size(), false);
  const float lo = xq.params.is_unsigned ? 0.0f : -xq.params.mx;
  for (std::size_t i = 0; i < x.v.size(); ++i) st.x_clipped[i] = x.v[i] > xq.params.mx || x.v[i] < lo;
  st.xq = std::move(xq.q);
  st.px = xq.params;
  st.wq = std::move(wq.q);
  st.pw = wq.params;
}

void hdqt_linear_backward(const Matrix& g, const HdqtLayerState& st, const HdqtConfig& cfg, const HdqtStepContext& ctx,
                          Matrix* dx, Matrix& dw, std::vector<float>& db, HdqtLayerStats& stats) {
  const int B = st.batch, I = st.in, O = st.out;
  if (g.rows != B || g.cols != O)
    throw ConfigError(fmt::format("layer{}: G is {} x {}, expected {} x {}", ctx.layer, g.rows, g.cols, B, O));

  // ---- dX: Hadamard along O.
  if (dx) {
    const HadamardPlan h = plan_hadamard(O, cfg.hadamard);
    const int Op = h.padded_length;
    const std::vector<float> wh = hadamard_along_rows_dim(st.wq, O, I, Op, h.block);  // W' (Op x I)
    const QuantizedTensor whq = quantize_role(wh, cfg, ctx, QuantRole::bwd_w_dx);
    std::vector<float> gh(std::size_t(B) * Op, 0.0f);  // G' (B x Op)
    for (int r = 0; r < B; ++r)
      for (int o = 0; o < O; ++o) gh[std::size_t(r) * Op + o] = g.at(r, o);
    hadamard_rows_f32(gh, B, Op, h.block);
    const QuantizedTensor ghq = quantize_role(gh, cfg, ctx, QuantRole::bwd_g_dx);
    std::vector<std::int32_t> acc(std::size_t(B) * I);
    stats[int(GemmRole::bwd_dx)].merge(gemm({B, I, Op}, operand(ghq, cfg.q(QuantRole::bwd_g_dx).bits),
                                            operand(whq, cfg.q(QuantRole::bwd_w_dx).bits), cfg.acc(GemmRole::bwd_dx),
                                            acc, best_gemm_path(), ctx.threads));
    *dx = Matrix(B, I);
    const std::array<float, 4> factors{ghq.params.scale, whq.params.scale, st.pw.scale, 1.0f / float(h.block)};
    dequantize(acc, factors, dx->v);
    if (cfg.ste == Ste::clipped)
      for (std::size_t i = 0; i < dx->v.size(); ++i)
        if (st.x_clipped[i]) dx->v[i] = 0.0f;
  }

  // ---- dW: Hadamard along B.
  const HadamardPlan h = plan_hadamard(B, cfg.hadamard);
  const int Bp = h.padded_length;
  const std::vector<float> xh = hadamard_along_rows_dim(st.xq, B, I, Bp, h.block);  // X' (Bp x I)
  const QuantizedTensor xhq = quantize_role(xh, cfg, ctx, QuantRole::bwd_x_dw);
  std::vector<float> gth(std::size_t(O) * Bp, 0.0f);  // G'' (O x Bp)
  for (int r = 0; r < B; ++r)
    for (int o = 0; o < O; ++o) gth[std::size_t(o) * Bp + r] = g.at(r, o);
  hadamard_rows_f32(gth, O, Bp, h.block);
  const QuantizedTensor gthq = quantize_role(gth, cfg, ctx, QuantRole::bwd_g_dw);
  std::vector<std::int32_t> acc(std::size_t(O) * I);
  stats[int(GemmRole::bwd_dw)].merge(gemm({O, I, Bp}, operand(gthq, cfg.q(QuantRole::bwd_g_dw).bits),
                                          operand(xhq, cfg.q(QuantRole::bwd_x_dw).bits), cfg.acc(GemmRole::bwd_dw),
                                          acc, best_gemm_path(), ctx.threads));
  dw = Matrix(O, I);
  const std::array<float, 4> factors{gthq.params.scale, xhq.params.scale, st.px.scale, 1.0f / float(h.block)};
  dequantize(acc, factors, dw.v);

  // ---- db: column sums of G, batch ascending.
  db.assign(std::size_t(O), 0.0f);
  for (int r = 0; r < B; ++r)
    for (int o = 0; o < O; ++o) db[o] += g.at(r, o);
}

}  // namespace hdq
