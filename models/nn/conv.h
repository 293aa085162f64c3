// 2-D convolution geometry and the im2col / col2im index maps of
// docs/contract.md §9, as small pure functions shared by every engine.
//
// Layout (§9): activations NCHW, a batch of N samples of C x H x W being the
// row-major matrix N x (C*H*W), element (n, c, y, x) at column (c*H + y)*W + x
// (also PyTorch's flatten order, so a flatten moves no data); weights OIHW,
// C_out x K with K = C * kh * kw and k = (c * kh + i) * kw + j.
//   H_out = floor((H_in + 2 pad_h - kh) / stride_h) + 1   (likewise W_out)
//   P = H_out * W_out positions, p = oy * W_out + ox
//   im2col(T)[p][k] = T[c][oy*stride_h - pad_h + i][ox*stride_w - pad_w + j],
//                     0 outside the input (zero padding)       (one sample: P x K)
//   col2im(D)[c][y][x] = f32 sum from +0 of D[p][k] over the (p, k) that im2col
//                     maps onto (c, y, x), p ascending (one k per p at most).
#pragma once

#include <cstdint>
#include <span>

namespace hdq {

struct ConvGeometry {
  int in_channels = 1, in_h = 1, in_w = 1;  // C, H_in, W_in
  int out_channels = 1;                     // C_out
  int kernel_h = 1, kernel_w = 1;           // kh, kw
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;

  int out_h() const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int out_w() const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
  int positions() const { return out_h() * out_w(); }                   // P
  int patch() const { return in_channels * kernel_h * kernel_w; }       // K
  int in_size() const { return in_channels * in_h * in_w; }             // C * H_in * W_in
  int out_size() const { return out_channels * positions(); }           // C_out * P
};

// ConfigError naming the field ("conv.<field>") unless every size is >= 1,
// padding >= 0, the kernel fits the padded input (H_out, W_out >= 1) and
// every product above stays below 2^31.
void validate(const ConvGeometry& g);

// One sample: x (C x H_in x W_in) -> cols (P x K). Padded taps become 0.
void im2col(const ConvGeometry& g, std::span<const std::int16_t> x, std::span<std::int16_t> cols);

// One sample: cols (P x K) -> x (C x H_in x W_in), overwritten, in the order
// stated above (a scatter-add visiting p ascending).
void col2im(const ConvGeometry& g, std::span<const float> cols, std::span<float> x);

}  // namespace hdq
