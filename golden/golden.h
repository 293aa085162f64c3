// The float golden model: the MLP of models/nn/mlp.h (linear layers,
// ReLU between them, none after the last) trained in plain f32 with no
// quantization, no Hadamard transform and no integer GEMM. It shares with the
// quantized engines only the f32 pieces of mlp.h (init, softmax
// cross-entropy, SGD).
//
// Every f32 operation rounds once (-ffp-contract=off, no FMA, no fast-math) and
// every reduction runs in the order written below, independent of the thread
// count and of the instruction set, so results are reproducible bit for bit.
//
// Layer l (l = 0 .. L-1) with input X (B x I), W = p.w[l] (O x I), b = p.b[l]:
//   forward   Y[r][o] = (sum_i X[r][i] * W[o][i]) + b[o]
//             the sum over i ascending starting from +0 (golden/matmul.h), then
//             one f32 add of the bias; next layer's input is relu(Y) for l < L-1,
//             relu(v) = v > 0 ? v : +0 (NaN passes through).
//   backward  with G = dL/dY (B x O):
//             dW[o][i] = sum_r G[r][o] * X[r][i]   r (batch) ascending from +0
//             db[o]    = sum_r G[r][o]             r ascending from +0
//             dX[r][i] = sum_o G[r][o] * W[o][i]   o ascending from +0 (not for l = 0)
//             G of layer l-1 = dX where Y_{l-1} > 0, else +0 (ReLU mask).
//   loss      hdq::softmax_cross_entropy (mlp.h) over the active classes; its
//             dlogits (already divided by B) are G of the last layer.
//
// Every pass computes with a Context owned by the caller (the golden
// engine): each matrix product splits its output blocks between the threads
// of the context's pool (the bits do not depend on their number), and its
// scratch buffers (packed operands, activations inside gradients(),
// backward's G) are reused from call to call, so a training loop allocates
// nothing per step. One calling thread at a time per context.
#pragma once

#include <span>
#include <vector>

#include "golden/matmul.h"
#include "models/nn/mlp.h"

namespace hdq::golden {

// What backward() needs from the forward pass.
struct Activations {
  // pre[l]: B x widths[l+1], Y of layer l (before ReLU); pre.back() are the logits.
  std::vector<Matrix> pre;
  // post[l] = relu(pre[l]) for l < L-1: the input of layer l+1. (The input of
  // layer 0 is x itself and is not copied.)
  std::vector<Matrix> post;
};

// What the passes compute with: the matrix products' context (thread pool,
// packing buffers) and the passes' scratch.
struct Context {
  explicit Context(int threads = 1) : matmul(threads) {}  // threads: 1..256 (ConfigError otherwise)
  MatmulContext matmul;
  Activations act;                   // forward()'s activations when the caller keeps none; gradients()'s
  Matrix logits, dlogits, gcur, gnext;  // gradients()'s logits and dL/dlogits; backward()'s G of two layers
};

// One linear layer, as the MLP's layers above: y = X W^T + bias (i ascending,
// then one add of the bias).
void linear_forward(MatmulContext& mc, const Matrix& x, const Matrix& w, std::span<const float> bias, Matrix& y);
// dW = G^T X (r ascending), db (r ascending), and when dx is non-null dX = G W
// (o ascending), from G (B x O) and the forward's X.
void linear_backward(MatmulContext& mc, const Matrix& x, const Matrix& w, const Matrix& g, Matrix* dx, Matrix& dw,
                     std::vector<float>& db);

// x is B x widths[0]; logits become B x widths[L]. Throws ConfigError on shape
// mismatches and for parameters of a layer graph (golden_net.h runs those).
void forward(Context& ctx, const MlpParams& p, const Matrix& x, Matrix& logits, Activations* saved = nullptr);

// Backward from arbitrary dL/dlogits (B x widths[L]), e.g. for distillation
// losses. x and saved must be those of the forward() call. g is resized to the
// shapes of p and overwritten.
void backward(Context& ctx, const MlpParams& p, const Matrix& x, const Activations& saved, const Matrix& dlogits,
              MlpGrads& g);

// forward + softmax_cross_entropy(active) + backward. Returns the mean loss;
// g is resized and overwritten; logits_out (if given) receives the logits.
float gradients(Context& ctx, const MlpParams& p, const Matrix& x, std::span<const int> labels,
                std::span<const bool> active, MlpGrads& g, Matrix* logits_out = nullptr);

}  // namespace hdq::golden
