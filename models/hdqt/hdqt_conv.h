// One HDQT 2-D convolution layer, one training step (docs/contract.md §9).
//
// Geometry and layout in models/nn/conv.h: X is N x (C*H_in*W_in) (NCHW), W is
// C_out x K (OIHW, K = C*kh*kw), bias C_out entries or none, Y and G are
// N x (C_out*P) (NCHW, P = H_out*W_out). With Q(.; role) as in §6 (random
// stream 8 * l + role):
// Forward (both mappings)
//   Xq, sx = Q(X; fwd_x) (NCHW, before im2col)   Wq, sw = Q(W; fwd_w)
//   Y[n][o][p] = ((f32)GEMM_fwd(im2col(Xq), Wq^T)[n*P+p][o] * sx) * sw + bias[o]
// Backward, Gm[n*P+p][o] = G[n][o][p]
//   dX: W' = H_O Wq (exact, padded to O')       W'q, s3 = Q(W'; bwd_w_dx), per tensor
//       G' = Gm H_O (f32 FWHT, (N*P) x O')      G'q, s2 = Q(G'; bwd_g_dx): per tensor
//           (whole_batch) or per sample's rows (per_sample, one GEMM per sample)
//       D = ((((f32)GEMM_dx(G'q, W'q) * s2) * s3) * sw) * (1/b_O);  dX = col2im(D), STE
//   dW, whole_batch: contraction over the N*P positions of the batch (plan of N*P):
//       X' = H im2col(Xq), G'' = Gm^T H, one GEMM, per-tensor scales
//   dW, per_sample: per sample over its P positions (plan of P): X'_n, G''_n,
//       per-sample scales, dW_n dequantized, dW = sum of dW_n (f32, n ascending from +0)
//   db[o] = f32 sum of G[n][o][p], n then p ascending
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/hdqt/hdqt_linear.h"
#include "models/nn/conv.h"

namespace hdq {

// What the forward pass keeps for the backward pass.
struct HdqtConvState {
  ConvGeometry geometry;
  int batch = 0;
  bool has_bias = false;
  std::vector<std::int16_t> xq;  // N x C x H_in x W_in (im2col is redone in the backward)
  QuantParams px;
  std::vector<std::int16_t> wq;  // C_out x K
  QuantParams pw;
  std::vector<std::uint8_t> x_clipped;  // NCHW, 0/1: the fwd_x clamp changed X (for the clipped STE)
};

// Scratch buffers of the convolution passes, owned by the caller and passed
// down beside the GEMM context, reused from call to call (a training step
// allocates nothing once they have grown to its shapes); no result depends on
// what they held before.
struct HdqtConvScratch {
  QuantizedTensor xq, wq, wh, gh, xh, ghh;
  std::vector<std::int16_t> cols, wqt;
  std::vector<std::int32_t> acc, nchw, widened;
  std::vector<float> wh_f, gm, xh_f, g2, dcol, part;
};

// y (N x C_out*P) from x (N x C*H_in*W_in); bias empty (no bias) or C_out
// values. Fills `state` for the backward pass.
void hdqt_conv_forward(GemmContext& gc, HdqtConvScratch& scratch, const ConvGeometry& g, const Matrix& x, const Matrix& w, std::span<const float> bias,
                       const HdqtConfig& cfg, const HdqtStepContext& ctx, Matrix& y, HdqtConvState& state,
                       HdqtLayerStats& stats);

// dW (C_out x K), db (C_out; empty without bias) and, when dx is non-null,
// dX (N x C*H_in*W_in) from G (N x C_out*P), in cfg.conv_mapping's mapping.
void hdqt_conv_backward(GemmContext& gc, HdqtConvScratch& scratch, const Matrix& g, const HdqtConvState& state, const HdqtConfig& cfg,
                        const HdqtStepContext& ctx, Matrix* dx, Matrix& dw, std::vector<float>& db,
                        HdqtLayerStats& stats);

// The forward's integer part: C = GEMM(im2col(xq), wq^T) over a batch of
// `batch` NCHW samples, returned in NCHW order: c[(n*C_out + o)*P + p] =
// C[n*P + p][o]. xq holds batch x C*H_in*W_in values, wq C_out x K.
GemmStats conv_gemm(GemmContext& gc, HdqtConvScratch& scratch, const ConvGeometry& g, int batch, IntOperand xq,
                    IntOperand wq, const AccumulatorConfig& acc, std::span<std::int32_t> c,
                    KernelPath path = best_gemm_path());

}  // namespace hdq
