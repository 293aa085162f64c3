#include "models/hdqt/hdqt_conv.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"
#include "models/hdqt/layer_ops.h"

namespace hdq {
namespace {

using detail::operand;
using detail::quantize_role;
using detail::quantize_role_slice;


// im2col of every sample of the NCHW batch xq into cols ((batch*P) x K).
void im2col_batch(const ConvGeometry& g, int batch, std::span<const std::int16_t> xq, std::vector<std::int16_t>& cols) {
  const std::size_t in = std::size_t(g.in_size()), block = std::size_t(g.positions()) * g.patch();
  cols.resize(std::size_t(batch) * block);
  for (int n = 0; n < batch; ++n)
    im2col(g, xq.subspan(n * in, in), std::span(cols).subspan(n * block, block));
}

void check_batch(int batch, std::size_t values, std::size_t per_sample, const char* what, int layer) {
  if (batch < 1 || values != std::size_t(batch) * per_sample)
    throw ConfigError(fmt::format("layer{}: {} has {} values for a batch of {} samples of {}", layer, what, values,
                                  batch, per_sample));
}

}  // namespace

GemmStats conv_gemm(GemmContext& gc, HdqtConvScratch& scratch, const ConvGeometry& g, int batch, IntOperand xq,
                    IntOperand wq, const AccumulatorConfig& acc, std::span<std::int32_t> c, KernelPath path) {
  validate(g);
  const int P = g.positions(), K = g.patch(), O = g.out_channels;
  if (batch < 1 || xq.values.size() != std::size_t(batch) * g.in_size() || wq.values.size() != std::size_t(O) * K ||
      c.size() != std::size_t(batch) * O * P)
    throw ConfigError(fmt::format("conv_gemm: batch {}, {} inputs, {} weights, {} outputs do not fit the geometry "
                                  "(C*H*W = {}, C_out x K = {} x {}, P = {})",
                                  batch, xq.values.size(), wq.values.size(), c.size(), g.in_size(), O, K, P));
  std::vector<std::int16_t>& cols = scratch.cols;
  im2col_batch(g, batch, xq.values, cols);
  std::vector<std::int16_t>& wqt = scratch.wqt;  // Wq^T (K x C_out), the right-hand operand
  wqt.resize(std::size_t(K) * O);
  detail::transpose(wq.values.data(), O, K, wqt.data());
  std::vector<std::int32_t>& rows = scratch.nchw;  // (N*P) x C_out
  rows.resize(std::size_t(batch) * P * O);
  const GemmStats s = gemm(gc, {batch * P, O, K}, {cols, xq.bits, xq.is_unsigned}, {wqt, wq.bits, wq.is_unsigned},
                           acc, rows, path);
  for (int n = 0; n < batch; ++n)  // sample n's P x C_out block -> C_out x P
    detail::transpose(rows.data() + std::size_t(n) * P * O, P, O, c.data() + std::size_t(n) * O * P);
  return s;
}

void hdqt_conv_forward(GemmContext& gc, HdqtConvScratch& scratch, const ConvGeometry& g, const Matrix& x, const Matrix& w, std::span<const float> bias,
                       const HdqtConfig& cfg, const HdqtStepContext& ctx, Matrix& y, HdqtConvState& st,
                       HdqtLayerStats& stats) {
  validate(g);
  const int N = x.rows, P = g.positions(), K = g.patch(), O = g.out_channels;
  if (x.cols != g.in_size() || w.rows != O || w.cols != K || (!bias.empty() && int(bias.size()) != O))
    throw ConfigError(fmt::format("layer{}: X is {} x {} (C*H*W = {} expected), W is {} x {} ({} x {} expected), "
                                  "bias has {} (0 or {} expected)",
                                  ctx.layer, x.rows, x.cols, g.in_size(), w.rows, w.cols, O, K, bias.size(), O));
  check_batch(N, x.v.size(), std::size_t(g.in_size()), "X", ctx.layer);
  QuantizedTensor& xq = scratch.xq;
  QuantizedTensor& wq = scratch.wq;
  quantize_role(x.v, cfg, ctx, QuantRole::fwd_x, xq);  // NCHW, before im2col (R22)
  quantize_role(w.v, cfg, ctx, QuantRole::fwd_w, wq);

  std::vector<std::int32_t>& acc = scratch.acc;
  acc.resize(std::size_t(N) * O * P);
  stats[int(GemmRole::fwd)].merge(conv_gemm(gc, scratch, g, N, operand(xq, cfg.q(QuantRole::fwd_x)),
                                            operand(wq, cfg.q(QuantRole::fwd_w)), cfg.acc(GemmRole::fwd), acc));
  y.reshape(N, O * P);
  const std::array<float, 2> factors{xq.params.scale, wq.params.scale};
  dequantize(acc, factors, y.v);
  if (!bias.empty())
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < O; ++o) {
        float* row = y.v.data() + (std::size_t(n) * O + o) * P;
        for (int p = 0; p < P; ++p) row[p] = row[p] + bias[o];
      }

  st.geometry = g, st.batch = N, st.has_bias = !bias.empty();
  detail::keep_forward_operands(x.v, xq, wq, st);
}

namespace {

// §9 step 3 up to D ((N*P) x K, f32): the dX GEMM(s) before col2im.
void backward_dx_columns(GemmContext& gc, HdqtConvScratch& scratch, const Matrix& g, const HdqtConvState& st, const HdqtConfig& cfg, const HdqtStepContext& ctx,
                         HdqtLayerStats& stats, std::vector<float>& d) {
  const ConvGeometry& geo = st.geometry;
  const int N = st.batch, P = geo.positions(), K = geo.patch(), O = geo.out_channels;
  const HadamardPlan h = plan_hadamard(O, cfg.hadamard);
  const int Op = h.padded_length;

  // W' = H_O Wq (exact), quantized once for every sample (R24).
  QuantizedTensor& wh = scratch.wh;
  detail::hadamard_along_rows_dim(st.wq, O, K, Op, h.block, scratch.widened, scratch.wh_f);
  quantize_role(scratch.wh_f, cfg, ctx, QuantRole::bwd_w_dx, wh);

  // G' = Gm zero-padded to (N*P) x O', FWHT along C_out.
  std::vector<float>& gm = scratch.gm;
  gm.assign(std::size_t(N) * P * Op, 0.0f);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o) {
      const float* src = g.v.data() + (std::size_t(n) * O + o) * P;
      float* dst = gm.data() + std::size_t(n) * P * Op + o;
      for (int p = 0; p < P; ++p) dst[std::size_t(p) * Op] = src[p];
    }
  hadamard_rows_f32(gm, N * P, Op, h.block);

  const QuantConfig& qg = cfg.q(QuantRole::bwd_g_dx);
  const QuantConfig& qw = cfg.q(QuantRole::bwd_w_dx);
  const AccumulatorConfig& acc_cfg = cfg.acc(GemmRole::bwd_dx);
  QuantizedTensor& gh = scratch.gh;
  std::vector<std::int32_t>& acc = scratch.acc;
  d.resize(std::size_t(N) * P * K);
  const float inv_b = 1.0f / float(h.block);
  if (cfg.conv_mapping == ConvMapping::whole_batch) {
    quantize_role(gm, cfg, ctx, QuantRole::bwd_g_dx, gh);
    acc.resize(d.size());
    stats[int(GemmRole::bwd_dx)].merge(
        gemm(gc, {N * P, K, Op}, operand(gh, qg), operand(wh, qw), acc_cfg, acc));
    const std::array<float, 4> factors{gh.params.scale, wh.params.scale, st.pw.scale, inv_b};
    dequantize(acc, factors, d);
    return;
  }
  // per_sample: sample n's rows, their own scale, one GEMM each (R26).
  const std::size_t slice = std::size_t(P) * Op, out = std::size_t(P) * K;
  acc.resize(out);
  for (int n = 0; n < N; ++n) {
    quantize_role_slice(std::span(gm).subspan(n * slice, slice), n * slice, n, cfg, ctx, QuantRole::bwd_g_dx, gh);
    stats[int(GemmRole::bwd_dx)].merge(
        gemm(gc, {P, K, Op}, operand(gh, qg), operand(wh, qw), acc_cfg, acc));
    const std::array<float, 4> factors{gh.params.scale, wh.params.scale, st.pw.scale, inv_b};
    dequantize(acc, factors, std::span(d).subspan(n * out, out));
  }
}

// One dW GEMM of §9 step 4: G'' (O x Lp, f32, already transformed) and the
// transformed columns X' (Lp x K, f32 holding exact integers), quantized as
// the tensor or slice starting at the given random-bit indices; `out`
// (O x K) receives ((((f32)C * s5) * s4) * sx) * (1/b).
void dw_gemm(GemmContext& gc, HdqtConvScratch& scratch, std::span<const float> g2, std::span<const float> xh_f, int O, int K, int Lp, int block, int sample,
             std::uint64_t g_first, std::uint64_t x_first, const HdqtConvState& st, const HdqtConfig& cfg,
             const HdqtStepContext& ctx, HdqtLayerStats& stats, std::span<float> out) {
  QuantizedTensor& xh = scratch.xh;
  QuantizedTensor& ghh = scratch.ghh;
  if (sample < 0) {
    quantize_role(xh_f, cfg, ctx, QuantRole::bwd_x_dw, xh);
    quantize_role(g2, cfg, ctx, QuantRole::bwd_g_dw, ghh);
  } else {
    quantize_role_slice(xh_f, x_first, sample, cfg, ctx, QuantRole::bwd_x_dw, xh);
    quantize_role_slice(g2, g_first, sample, cfg, ctx, QuantRole::bwd_g_dw, ghh);
  }
  std::vector<std::int32_t>& acc = scratch.acc;
  acc.resize(std::size_t(O) * K);
  stats[int(GemmRole::bwd_dw)].merge(gemm(gc, {O, K, Lp}, operand(ghh, cfg.q(QuantRole::bwd_g_dw)),
                                          operand(xh, cfg.q(QuantRole::bwd_x_dw)), cfg.acc(GemmRole::bwd_dw), acc));
  const std::array<float, 4> factors{ghh.params.scale, xh.params.scale, st.px.scale, 1.0f / float(block)};
  dequantize(acc, factors, out);
}

}  // namespace

void hdqt_conv_backward(GemmContext& gc, HdqtConvScratch& scratch, const Matrix& g, const HdqtConvState& st, const HdqtConfig& cfg, const HdqtStepContext& ctx,
                        Matrix* dx, Matrix& dw, std::vector<float>& db, HdqtLayerStats& stats) {
  const ConvGeometry& geo = st.geometry;
  const int N = st.batch, P = geo.positions(), K = geo.patch(), O = geo.out_channels;
  if (g.rows != N || g.cols != O * P)
    throw ConfigError(fmt::format("layer{}: G is {} x {}, expected {} x {}", ctx.layer, g.rows, g.cols, N, O * P));

  if (dx) {
    backward_dx_columns(gc, scratch, g, st, cfg, ctx, stats, scratch.dcol);
    const std::size_t block = std::size_t(P) * K;
    dx->reshape(N, geo.in_size());
    for (int n = 0; n < N; ++n)
      col2im(geo, std::span(scratch.dcol).subspan(n * block, block), dx->row(n));
    if (cfg.ste == Ste::clipped)
      for (std::size_t i = 0; i < dx->v.size(); ++i)
        if (st.x_clipped[i]) dx->v[i] = 0.0f;
  }

  dw.reshape(O, K);
  std::vector<float>& g2 = scratch.g2;
  if (cfg.conv_mapping == ConvMapping::whole_batch) {
    // One contraction over the batch's N*P positions.
    const HadamardPlan h = plan_hadamard(N * P, cfg.hadamard);
    const int Lp = h.padded_length;
    im2col_batch(geo, N, st.xq, scratch.cols);
    detail::hadamard_along_rows_dim(scratch.cols, N * P, K, Lp, h.block, scratch.widened, scratch.xh_f);
    g2.assign(std::size_t(O) * Lp, 0.0f);  // G''[o][n*P + p] = G[n][o][p]
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < O; ++o)
        std::copy_n(g.v.data() + (std::size_t(n) * O + o) * P, P, g2.data() + std::size_t(o) * Lp + std::size_t(n) * P);
    hadamard_rows_f32(g2, O, Lp, h.block);
    dw_gemm(gc, scratch, g2, scratch.xh_f, O, K, Lp, h.block, -1, 0, 0, st, cfg, ctx, stats, dw.v);
  } else {
    // Per sample over its P positions; partial dW summed in f32, n ascending (R25).
    const HadamardPlan h = plan_hadamard(P, cfg.hadamard);
    const int Pp = h.padded_length;
    const std::size_t in = std::size_t(geo.in_size());
    std::vector<std::int16_t>& cols = scratch.cols;
    cols.resize(std::size_t(P) * K);
    std::vector<float>& part = scratch.part;
    part.resize(std::size_t(O) * K);
    std::fill(dw.v.begin(), dw.v.end(), 0.0f);
    for (int n = 0; n < N; ++n) {
      im2col(geo, std::span<const std::int16_t>(st.xq).subspan(n * in, in), cols);
      detail::hadamard_along_rows_dim(cols, P, K, Pp, h.block, scratch.widened, scratch.xh_f);
      g2.assign(std::size_t(O) * Pp, 0.0f);
      for (int o = 0; o < O; ++o)
        std::copy_n(g.v.data() + (std::size_t(n) * O + o) * P, P, g2.data() + std::size_t(o) * Pp);
      hadamard_rows_f32(g2, O, Pp, h.block);
      dw_gemm(gc, scratch, g2, scratch.xh_f, O, K, Pp, h.block, n, std::uint64_t(n) * O * Pp, std::uint64_t(n) * Pp * K, st, cfg,
              ctx, stats, part);
      for (std::size_t i = 0; i < part.size(); ++i) dw.v[i] = dw.v[i] + part[i];
    }
  }

  db.clear();
  if (st.has_bias) {
    db.assign(std::size_t(O), 0.0f);
    for (int n = 0; n < N; ++n)
      for (int o = 0; o < O; ++o) {
        const float* row = g.v.data() + (std::size_t(n) * O + o) * P;
        for (int p = 0; p < P; ++p) db[o] += row[p];
      }
  }
}

}  // namespace hdq
