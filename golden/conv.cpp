#include "golden/conv.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"

namespace hdq::golden {
namespace {

void check(const ConvGeometry& g, int batch, std::size_t x, std::size_t w, std::size_t y, const char* what) {
  validate(g);
  if (batch < 1 || x != std::size_t(batch) * g.in_size() || w != std::size_t(g.out_channels) * g.patch() ||
      y != std::size_t(batch) * g.out_size())
    throw ConfigError(fmt::format("golden {}: batch {} with {} inputs, {} weights, {} outputs does not fit the "
                                  "geometry (C*H*W = {}, C_out x K = {} x {}, C_out*P = {})",
                                  what, batch, x, w, y, g.in_size(), g.out_channels, g.patch(), g.out_size()));
}

// The output range [lo, hi) of positions along one axis whose tap `t` lands
// inside the input: o*stride - pad + t in [0, in).
struct Span {
  int lo, hi;
};
Span valid_outputs(int t, int stride, int pad, int in, int out) {
  // smallest o with o*stride >= pad - t, largest with o*stride <= in - 1 + pad - t
  const int a = pad - t, b = in - 1 + pad - t;
  const int lo = a <= 0 ? 0 : (a + stride - 1) / stride;
  const int hi = b < 0 ? 0 : std::min(out, b / stride + 1);
  return {lo, std::max(lo, hi)};
}

}  // namespace

template <typename T>
void conv2d_forward(const ConvGeometry& g, int batch, std::span<const T> x, std::span<const T> w,
                    std::span<const T> bias, std::span<T> y) {
  check(g, batch, x.size(), w.size(), y.size(), "conv2d_forward");
  if (!bias.empty() && bias.size() != std::size_t(g.out_channels))
    throw ConfigError(fmt::format("golden conv2d_forward: {} biases for {} output channels", bias.size(),
                                  g.out_channels));
  const int C = g.in_channels, O = g.out_channels, H = g.in_h, W = g.in_w, OH = g.out_h(), OW = g.out_w();
  const int kh = g.kernel_h, kw = g.kernel_w;
  std::fill(y.begin(), y.end(), T(0));
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < O; ++o) {
      T* out = y.data() + (std::size_t(n) * O + o) * OH * OW;
      // (c, i, j) outermost: each output receives its products in ascending (c, i, j).
      for (int c = 0; c < C; ++c)
        for (int i = 0; i < kh; ++i) {
          const Span ry = valid_outputs(i, g.stride_h, g.pad_h, H, OH);
          for (int j = 0; j < kw; ++j) {
            const Span rx = valid_outputs(j, g.stride_w, g.pad_w, W, OW);
            const T wv = w[((std::size_t(o) * C + c) * kh + i) * kw + j];
            const T* in = x.data() + (std::size_t(n) * C + c) * H * W;
            for (int oy = ry.lo; oy < ry.hi; ++oy) {
              const T* in_row = in + std::size_t(oy * g.stride_h - g.pad_h + i) * W;
              T* out_row = out + std::size_t(oy) * OW;
              for (int ox = rx.lo; ox < rx.hi; ++ox)
                out_row[ox] = out_row[ox] + in_row[ox * g.stride_w - g.pad_w + j] * wv;
            }
          }
        }
      if (!bias.empty())
        for (int p = 0; p < OH * OW; ++p) out[p] = out[p] + bias[o];
    }
}

template <typename T>
void conv2d_backward(const ConvGeometry& g, int batch, std::span<const T> x, std::span<const T> w,
                     std::span<const T> dy, std::span<T> dx, std::span<T> dw, std::span<T> db) {
  check(g, batch, x.size(), w.size(), dy.size(), "conv2d_backward");
  if (dw.size() != w.size() || (!dx.empty() && dx.size() != x.size()) ||
      (!db.empty() && db.size() != std::size_t(g.out_channels)))
    throw ConfigError(fmt::format("golden conv2d_backward: dx {}, dw {}, db {} values for {} inputs, {} weights, {} "
                                  "output channels",
                                  dx.size(), dw.size(), db.size(), x.size(), w.size(), g.out_channels));
  const int C = g.in_channels, O = g.out_channels, H = g.in_h, W = g.in_w, OH = g.out_h(), OW = g.out_w();
  const int kh = g.kernel_h, kw = g.kernel_w;

  if (!dx.empty()) {
    std::fill(dx.begin(), dx.end(), T(0));
    // (o, i, j) outer, positions inner: each dX element receives its terms in
    // ascending o, then (i, j) (one position per tap at most).
    for (int n = 0; n < batch; ++n)
      for (int o = 0; o < O; ++o) {
        const T* gout = dy.data() + (std::size_t(n) * O + o) * OH * OW;
        for (int c = 0; c < C; ++c) {
          T* din = dx.data() + (std::size_t(n) * C + c) * H * W;
          for (int i = 0; i < kh; ++i) {
            const Span ry = valid_outputs(i, g.stride_h, g.pad_h, H, OH);
            for (int j = 0; j < kw; ++j) {
              const Span rx = valid_outputs(j, g.stride_w, g.pad_w, W, OW);
              const T wv = w[((std::size_t(o) * C + c) * kh + i) * kw + j];
              for (int oy = ry.lo; oy < ry.hi; ++oy) {
                T* din_row = din + std::size_t(oy * g.stride_h - g.pad_h + i) * W;
                const T* g_row = gout + std::size_t(oy) * OW;
                for (int ox = rx.lo; ox < rx.hi; ++ox) {
                  T& cell = din_row[ox * g.stride_w - g.pad_w + j];
                  cell = cell + g_row[ox] * wv;
                }
              }
            }
          }
        }
      }
  }

  // dW: one running sum per weight, over n, then positions.
  std::fill(dw.begin(), dw.end(), T(0));
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < O; ++o) {
      const T* gout = dy.data() + (std::size_t(n) * O + o) * OH * OW;
      for (int c = 0; c < C; ++c) {
        const T* in = x.data() + (std::size_t(n) * C + c) * H * W;
        for (int i = 0; i < kh; ++i) {
          const Span ry = valid_outputs(i, g.stride_h, g.pad_h, H, OH);
          for (int j = 0; j < kw; ++j) {
            const Span rx = valid_outputs(j, g.stride_w, g.pad_w, W, OW);
            T s = dw[((std::size_t(o) * C + c) * kh + i) * kw + j];
            for (int oy = ry.lo; oy < ry.hi; ++oy) {
              const T* in_row = in + std::size_t(oy * g.stride_h - g.pad_h + i) * W;
              const T* g_row = gout + std::size_t(oy) * OW;
              for (int ox = rx.lo; ox < rx.hi; ++ox) s = s + g_row[ox] * in_row[ox * g.stride_w - g.pad_w + j];
            }
            dw[((std::size_t(o) * C + c) * kh + i) * kw + j] = s;
          }
        }
      }
    }

  if (!db.empty()) {
    std::fill(db.begin(), db.end(), T(0));
    for (int n = 0; n < batch; ++n)
      for (int o = 0; o < O; ++o) {
        const T* gout = dy.data() + (std::size_t(n) * O + o) * OH * OW;
        for (int p = 0; p < OH * OW; ++p) db[o] = db[o] + gout[p];
      }
  }
}

template void conv2d_forward<float>(const ConvGeometry&, int, std::span<const float>, std::span<const float>,
                                    std::span<const float>, std::span<float>);
template void conv2d_forward<double>(const ConvGeometry&, int, std::span<const double>, std::span<const double>,
                                     std::span<const double>, std::span<double>);
template void conv2d_backward<float>(const ConvGeometry&, int, std::span<const float>, std::span<const float>,
                                     std::span<const float>, std::span<float>, std::span<float>, std::span<float>);
template void conv2d_backward<double>(const ConvGeometry&, int, std::span<const double>, std::span<const double>,
                                      std::span<const double>, std::span<double>, std::span<double>,
                                      std::span<double>);

}  // namespace hdq::golden
