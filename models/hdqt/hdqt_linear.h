// One HDQT linear layer, one training step (docs/contract.md §6).
//
// Layer l has X (B x I), W (O x I), bias (O). With Q(.; role) the quantizer of
// that role (random stream 8 * l + role, step = global optimizer step):
// Forward
//   Xq, sx = Q(X; fwd_x)   Wq, sw = Q(W; fwd_w)
//   Y = ((f32)GEMM_fwd(Xq, Wq^T) * sx) * sw + bias
// Backward, G = dL/dY (B x O)
//   dX: W' = H_O Wq (exact ints, along O)      W'q, s3 = Q(W'; bwd_w_dx)
//       G' = G H_O  (f32 FWHT along O)         G'q, s2 = Q(G'; bwd_g_dx)
//       dX = ((((f32)GEMM_dx(G'q, W'q) * s2) * s3) * sw) * (1/b_O), then the STE mask
//   dW: X' = H_B Xq (exact ints, along B)      X'q, s4 = Q(X'; bwd_x_dw)
//       G'' = G^T H_B (f32 FWHT along B, O x B) G''q, s5 = Q(G''; bwd_g_dw)
//       dW = ((((f32)GEMM_dw(G''q, X'q) * s5) * s4) * sx) * (1/b_B)
//   db = column sums of G, batch index ascending (f32)
// With Hadamard padding, O (for dX) and B (for dW) are zero-padded to the
// planned length first; quantizer maxima, random-bit indices and the GEMM
// contraction all see the padded shape.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "models/hdqt/hdqt_config.h"
#include "models/nn/mlp.h"

namespace hdq {

// What the forward pass keeps for the backward pass.
struct HdqtLayerState {
  int batch = 0, in = 0, out = 0;
  std::vector<std::int16_t> xq;  // B x I
  QuantParams px;
  std::vector<std::int16_t> wq;  // O x I
  QuantParams pw;
  std::vector<std::uint8_t> x_clipped;  // B x I, 0/1: the fwd_x clamp changed X (for the clipped STE)
};

// Overflow statistics of the three GEMMs of one layer.
using HdqtLayerStats = std::array<GemmStats, kGemmRoles>;

// Which layer at which step: the random stream of each quantizer role.
struct HdqtStepContext {
  std::uint64_t seed = 0;
  std::uint64_t step = 0;  // global optimizer step, from 0
  int layer = 0;           // 0-based index of HDQT layers in forward order
};

// The buffers of the layer passes (quantized operands, transposes, Hadamard
// buffers, accumulators) and of the MLP passes around them (hdqt_mlp.h),
// reused from call to call so that a training step allocates nothing once
// they have grown to its shapes; no result depends on what they held before.
struct HdqtScratch {
  QuantizedTensor xq, wq, qh, ghq;
  std::vector<std::int16_t> wqt;
  std::vector<std::int32_t> acc, widened;
  std::vector<float> q_hadamard, g_hadamard;
  Matrix gt;
  Matrix act, g_below, dx;  // hdqt_mlp.cpp: a layer's ReLU output, dL/dY below, dX
};

// What HDQT passes compute with: the GEMM context (its thread pool and
// workspaces) and the passes' scratch. Owned by the caller (the functional
// engine) and passed down; one calling thread at a time, like GemmContext.
struct HdqtContext {
  explicit HdqtContext(int threads = 1) : gemm(threads) {}  // threads of every GEMM: 1..256
  GemmContext gemm;
  HdqtScratch scratch;
};

// y (B x O) from x (B x I); fills `state` for the backward pass.
void hdqt_linear_forward(HdqtContext& hc, const Matrix& x, const Matrix& w, std::span<const float> bias,
                         const HdqtConfig& cfg, const HdqtStepContext& ctx, Matrix& y, HdqtLayerState& state,
                         HdqtLayerStats& stats);

// dW (O x I), db (O) and, when dx is non-null, dX (B x I) from G (B x O).
void hdqt_linear_backward(HdqtContext& hc, const Matrix& g, const HdqtLayerState& state, const HdqtConfig& cfg,
                          const HdqtStepContext& ctx, Matrix* dx, Matrix& dw, std::vector<float>& db,
                          HdqtLayerStats& stats);

}  // namespace hdq
