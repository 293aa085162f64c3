// The float golden model's 2-D convolution: direct loops over the NCHW /
// OIHW tensors of models/nn/conv.h, no im2col, no quantization. Written for
// T = float (the golden model) and T = double (tests take f64 finite
// differences of the same loops). Padded taps are skipped: their products
// would be +-0, and adding +-0 to a sum started at +0 changes no bit.
//
// Reduction orders (every operation rounds once in T, no FMA):
//   forward   Y[n][o][oy][ox] = (sum from +0 over c, i, j ascending of
//             X[n][c][oy*sh - ph + i][ox*sw - pw + j] * W[o][c][i][j]) + bias[o]
//             (one add of the bias after the sum; none without bias)
//   dX        dX[n][c][y][x] = sum from +0 over o ascending, then (i, j) row-major,
//             of G[n][o][oy][ox] * W[o][c][i][j] for the (oy, ox) whose window
//             puts tap (i, j) on (y, x)
//   dW        dW[o][c][i][j] = sum from +0 over n ascending, then (oy, ox) row-major,
//             of G[n][o][oy][ox] * X[n][c][oy*sh - ph + i][ox*sw - pw + j]
//   db        db[o] = sum from +0 over n ascending, then (oy, ox) row-major, of G[n][o][oy][ox]
#pragma once

#include <span>

#include "models/nn/conv.h"

namespace hdq::golden {

// x: batch x C*H_in*W_in, w: C_out x K, bias: C_out values or empty, y: batch x C_out*P.
template <typename T>
void conv2d_forward(const ConvGeometry& g, int batch, std::span<const T> x, std::span<const T> w,
                    std::span<const T> bias, std::span<T> y);

// dy: batch x C_out*P. dx (batch x C*H_in*W_in) is skipped when empty; db is
// skipped when empty (a layer without bias).
template <typename T>
void conv2d_backward(const ConvGeometry& g, int batch, std::span<const T> x, std::span<const T> w,
                     std::span<const T> dy, std::span<T> dx, std::span<T> dw, std::span<T> db);

}  // namespace hdq::golden
