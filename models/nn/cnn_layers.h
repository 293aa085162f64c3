// The non-GEMM layers of convolutional networks: max pooling, average
// pooling, global average pooling, BatchNorm and the residual add. They are
// plain floating-point work (docs/contract.md §6 "non-GEMM work", §9) that
// every engine runs the same way, so they live here beside softmax and SGD.
// Each function is written for T = float (what the engines run) and T = double
// (tests take f64 finite differences of the very same loops).
//
// Tensors are NCHW (models/nn/conv.h): batch x (C*H*W), element (n, c, y, x)
// at (n*C + c)*H*W + y*W + x. Every operation rounds once in T; reduction
// orders are stated per function. "Windows ascending" means output positions
// (c, oy, ox) in row-major order, sample by sample.
//
// Flatten has no function: an NCHW tensor stored as batch x (C*H*W) already is
// its PyTorch flatten (N x C*H*W, c slowest), so a linear layer reads it as is.
//
// Residual add: y = a + b, one rounding per element; its backward hands dL/dy
// unchanged to both branches (no arithmetic).
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

namespace hdq {

struct PoolGeometry {
  int channels = 1, in_h = 1, in_w = 1;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;

  int out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
  int in_size() const { return channels * in_h * in_w; }
  int out_size() const { return channels * out_h() * out_w(); }
};

// ConfigError naming the field ("pool.<field>") unless sizes are >= 1 and
// 0 <= pad <= kernel / 2 (PyTorch's rule: every window holds an input cell).
void validate(const PoolGeometry& g);

// Max pooling. Window (oy, ox) covers rows oy*stride_h - pad_h + i and columns
// ox*stride_w - pad_w + j, (i, j) row-major; cells outside the input are never
// chosen (PyTorch pads with -inf). y = the first in-bounds cell, then each
// later cell v replaces it when v > y: ties go to the first cell in (i, j)
// order. argmax (batch x C*H_out*W_out) receives the chosen cell's index
// within its sample (c*H_in + y)*W_in + x.
template <typename T>
void max_pool_forward(const PoolGeometry& g, int batch, std::span<const T> x, std::span<T> y,
                      std::span<std::int32_t> argmax);
// dx = +0, then for every window ascending dx[argmax] = dx[argmax] + dy: a
// cell chosen by several (overlapping) windows sums their gradients in
// ascending window order.
template <typename T>
void max_pool_backward(const PoolGeometry& g, int batch, std::span<const std::int32_t> argmax, std::span<const T> dy,
                       std::span<T> dx);

// Average pooling, PyTorch's default count_include_pad = true: y = (sum of
// the in-bounds cells from +0, (i, j) row-major) / (kh*kw), one division.
template <typename T>
void avg_pool_forward(const PoolGeometry& g, int batch, std::span<const T> x, std::span<T> y);
// dx = +0, then for every window ascending: d = dy / (kh*kw) (one division),
// each in-bounds cell (i, j row-major) dx = dx + d.
template <typename T>
void avg_pool_backward(const PoolGeometry& g, int batch, std::span<const T> dy, std::span<T> dx);

// Global average pooling, NCHW (batch x C*HW) -> batch x C:
// y[n][c] = (sum over the HW cells row-major from +0) / HW, one division.
template <typename T>
void global_avg_pool_forward(int batch, int channels, int hw, std::span<const T> x, std::span<T> y);
// dx[n][c][*] = dy[n][c] / HW (one division, the same value for every cell).
template <typename T>
void global_avg_pool_backward(int batch, int channels, int hw, std::span<const T> dy, std::span<T> dx);

// BatchNorm2d as in PyTorch (momentum 0.1 and eps 1e-5 are its defaults).
// Statistics per channel c over its M = batch * hw values, in the order
// n ascending, then the cells row-major ("channel order"):
//   mean   = (sum from +0 of x) / M
//   sq     = sum from +0 of (x - mean) * (x - mean)           (two passes)
//   var    = sq / M (biased, for normalizing); var_u = sq / (M - 1) (unbiased)
//   invstd = 1 / sqrt(var + eps)
//   xhat   = (x - mean) * invstd;  y = xhat * gamma + beta
//   running_mean = momentum * mean  + (1 - momentum) * running_mean
//   running_var  = momentum * var_u + (1 - momentum) * running_var
// ((1 - momentum) rounded once; each product and the sum rounded once.)
// Training needs M >= 2 (ConfigError otherwise, as PyTorch refuses it).
struct BatchNormSpec {
  int batch = 1, channels = 1, hw = 1;  // hw = H * W
  double momentum = 0.1;                // converted to T once
  double eps = 1e-5;                    // converted to T once
};

// What the training forward keeps for the backward pass.
template <typename T>
struct BatchNormSaved {
  std::vector<T> invstd;  // per channel
  std::vector<T> xhat;    // batch x C*HW
};

template <typename T>
void batchnorm_forward_train(const BatchNormSpec& s, std::span<const T> x, std::span<const T> gamma,
                             std::span<const T> beta, std::span<T> running_mean, std::span<T> running_var,
                             std::span<T> y, BatchNormSaved<T>& saved);

// Evaluation with the running statistics: invstd = 1 / sqrt(running_var + eps)
// per channel; y = ((x - running_mean) * invstd) * gamma + beta.
template <typename T>
void batchnorm_forward_eval(const BatchNormSpec& s, std::span<const T> x, std::span<const T> gamma,
                            std::span<const T> beta, std::span<const T> running_mean, std::span<const T> running_var,
                            std::span<T> y);

// Backward of the training forward (batch statistics), per channel in
// channel order:
//   dbeta  = sum from +0 of dy;  dgamma = sum from +0 of dy * xhat
//   k = gamma * invstd;  mg = dbeta / M;  mgx = dgamma / M
//   dx = k * ((dy - mg) - xhat * mgx)
template <typename T>
void batchnorm_backward(const BatchNormSpec& s, const BatchNormSaved<T>& saved, std::span<const T> gamma,
                        std::span<const T> dy, std::span<T> dx, std::span<T> dgamma, std::span<T> dbeta);

// The ReLU of a layer graph: y = v when v > 0 or v is NaN, else +0.
template <typename T>
void relu_forward(std::span<const T> x, std::span<T> y) {
  for (std::size_t j = 0; j < y.size(); ++j) {
    const T v = x[j];
    y[j] = (v > T(0) || v != v) ? v : T(0);
  }
}
// Its backward: dx = dy where the input x > 0, else +0.
template <typename T>
void relu_backward(std::span<const T> x, std::span<const T> dy, std::span<T> dx) {
  for (std::size_t j = 0; j < dx.size(); ++j) dx[j] = x[j] > T(0) ? dy[j] : T(0);
}

// The passes batchnorm_forward_train and batchnorm_backward are made of, on
// a chunk of samples (s.batch = the chunk's samples; m = batch * hw of the
// whole batch): running them over the chunks of a batch in sample order, each
// accumulator zeroed first, gives the bits of the whole-batch functions (each
// channel's sums run n ascending, then the cells), which is how the NPU's
// vector unit streams BatchNorm through its SRAM.
//   bn_sum        sum[c] = sum[c] + x
//   bn_mean       mean = sum / M
//   bn_sq         sq[c] = sq[c] + (x - mean) * (x - mean)
//   bn_stats      invstd = 1 / sqrt(sq / M + eps); the running statistics' update
//   bn_normalize  xhat = (x - mean) * invstd; y = xhat * gamma + beta
//   bn_grad_sums  sum_g[c] = sum_g[c] + dy (dbeta); sum_gx[c] = sum_gx[c] + dy * xhat (dgamma)
//   bn_grad_dx    dx = k * ((dy - mg) - xhat * mgx), k = gamma * invstd, mg = sum_g / M, mgx = sum_gx / M
template <typename T>
void bn_sum(const BatchNormSpec& s, std::span<const T> x, std::span<T> sum);
template <typename T>
void bn_mean(long long m, std::span<const T> sum, std::span<T> mean);
template <typename T>
void bn_sq(const BatchNormSpec& s, std::span<const T> x, std::span<const T> mean, std::span<T> sq);
template <typename T>
void bn_stats(const BatchNormSpec& s, long long m, std::span<const T> mean, std::span<const T> sq, std::span<T> invstd,
              std::span<T> running_mean, std::span<T> running_var);
template <typename T>
void bn_normalize(const BatchNormSpec& s, std::span<const T> x, std::span<const T> mean, std::span<const T> invstd,
                  std::span<const T> gamma, std::span<const T> beta, std::span<T> xhat, std::span<T> y);
template <typename T>
void bn_grad_sums(const BatchNormSpec& s, std::span<const T> dy, std::span<const T> xhat, std::span<T> sum_g,
                  std::span<T> sum_gx);
template <typename T>
void bn_grad_dx(const BatchNormSpec& s, long long m, std::span<const T> sum_g, std::span<const T> sum_gx,
                std::span<const T> gamma, std::span<const T> invstd, std::span<const T> dy, std::span<const T> xhat,
                std::span<T> dx);

// He et al.'s option-A shortcut (network.h Graph::shortcut) on `batch`
// samples: y = +0, then y[c + pad_before][oy][ox] = x[c][oy*stride][ox*stride];
// its backward dx = +0, then dx at the sampled cells = dy (no arithmetic).
struct ShortcutGeometry {
  int in_c = 1, in_h = 1, in_w = 1, out_c = 1, out_h = 1, out_w = 1, stride = 1, pad_before = 0;
};
template <typename F>
void for_each_shortcut_cell(const ShortcutGeometry& g, int batch, F&& f) {
  const std::size_t in_size = std::size_t(g.in_c) * g.in_h * g.in_w, out_size = std::size_t(g.out_c) * g.out_h * g.out_w;
  for (int s = 0; s < batch; ++s)
    for (int c = 0; c < g.in_c; ++c)
      for (int oy = 0; oy < g.out_h; ++oy)
        for (int ox = 0; ox < g.out_w; ++ox)
          f(s * out_size + (std::size_t(c + g.pad_before) * g.out_h + oy) * g.out_w + ox,
            s * in_size + (std::size_t(c) * g.in_h + oy * g.stride) * g.in_w + ox * g.stride);
}
template <typename T>
void shortcut_forward(const ShortcutGeometry& g, int batch, std::span<const T> x, std::span<T> y) {
  std::fill(y.begin(), y.end(), T(0));
  for_each_shortcut_cell(g, batch, [&](std::size_t o, std::size_t i) { y[o] = x[i]; });
}
template <typename T>
void shortcut_backward(const ShortcutGeometry& g, int batch, std::span<const T> dy, std::span<T> dx) {
  std::fill(dx.begin(), dx.end(), T(0));
  for_each_shortcut_cell(g, batch, [&](std::size_t o, std::size_t i) { dx[i] = dy[o]; });
}

// y = a + b element-wise.
template <typename T>
void residual_add(std::span<const T> a, std::span<const T> b, std::span<T> y);

}  // namespace hdq
