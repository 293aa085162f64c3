#include "golden/conv.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

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
  // Each output receives its products in ascending (c, i, j), then the bias.
  // The C_out outputs of one position are independent: they run side by side
  // over W transposed to K x C_out and a positions x C_out accumulator per
  // sample (the inner loop vectorizes across o), transposed back at the end.
  const std::size_t P = std::size_t(OH) * OW, K = std::size_t(C) * kh * kw;
  std::vector<T> wt(K * O), acc(P * O);
  for (int o = 0; o < O; ++o)
    for (std::size_t k = 0; k < K; ++k) wt[k * O + o] = w[o * K + k];
  for (int n = 0; n < batch; ++n) {
    std::fill(acc.begin(), acc.end(), T(0));
    for (int c = 0; c < C; ++c) {
      const T* in = x.data() + (std::size_t(n) * C + c) * H * W;
      for (int i = 0; i < kh; ++i) {
        const Span ry = valid_outputs(i, g.stride_h, g.pad_h, H, OH);
        for (int j = 0; j < kw; ++j) {
          const Span rx = valid_outputs(j, g.stride_w, g.pad_w, W, OW);
          const T* wk = wt.data() + ((std::size_t(c) * kh + i) * kw + j) * O;
          for (int oy = ry.lo; oy < ry.hi; ++oy) {
            const T* in_row = in + std::size_t(oy * g.stride_h - g.pad_h + i) * W;
            for (int ox = rx.lo; ox < rx.hi; ++ox) {
              const T xv = in_row[ox * g.stride_w - g.pad_w + j];
              T* a = acc.data() + (std::size_t(oy) * OW + ox) * O;
              for (int o = 0; o < O; ++o) a[o] = a[o] + xv * wk[o];
            }
          }
        }
      }
    }
    for (int o = 0; o < O; ++o) {
      T* out = y.data() + (std::size_t(n) * O + o) * P;
      for (std::size_t p = 0; p < P; ++p) out[p] = acc[p * O + o];
      if (!bias.empty())
        for (std::size_t p = 0; p < P; ++p) out[p] = out[p] + bias[o];
    }
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
    // Each dX element receives its terms in ascending o, then (i, j) (one
    // position per tap at most). The C input channels of one cell are
    // independent: they run side by side over W reordered to C_out x (i, j) x C
    // and a cells x C accumulator per sample (the inner loop vectorizes
    // across c), transposed back at the end.
    const std::size_t HW = std::size_t(H) * W, taps = std::size_t(kh) * kw;
    std::vector<T> wr(std::size_t(O) * taps * C), acc(HW * C);
    for (int o = 0; o < O; ++o)
      for (int c = 0; c < C; ++c)
        for (std::size_t t = 0; t < taps; ++t)
          wr[(std::size_t(o) * taps + t) * C + c] = w[(std::size_t(o) * C + c) * taps + t];
    for (int n = 0; n < batch; ++n) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (int o = 0; o < O; ++o) {
        const T* gout = dy.data() + (std::size_t(n) * O + o) * OH * OW;
        for (int i = 0; i < kh; ++i) {
          const Span ry = valid_outputs(i, g.stride_h, g.pad_h, H, OH);
          for (int j = 0; j < kw; ++j) {
            const Span rx = valid_outputs(j, g.stride_w, g.pad_w, W, OW);
            const T* wc = wr.data() + (std::size_t(o) * taps + std::size_t(i) * kw + j) * C;
            for (int oy = ry.lo; oy < ry.hi; ++oy) {
              const std::size_t yy = std::size_t(oy * g.stride_h - g.pad_h + i);
              for (int ox = rx.lo; ox < rx.hi; ++ox) {
                const T gv = gout[std::size_t(oy) * OW + ox];
                T* a = acc.data() + (yy * W + std::size_t(ox * g.stride_w - g.pad_w + j)) * C;
                for (int c = 0; c < C; ++c) a[c] = a[c] + gv * wc[c];
              }
            }
          }
        }
      }
      for (int c = 0; c < C; ++c) {
        T* din = dx.data() + (std::size_t(n) * C + c) * HW;
        for (std::size_t q = 0; q < HW; ++q) din[q] = acc[q * C + c];
      }
    }
  }

  // dW: one running sum per weight, over n, then positions. The sums of the
  // C_out weights of one tap (c, i, j) are independent: they run side by side
  // over G transposed to positions x C_out (the inner loop vectorizes across
  // o), each in the stated order.
  const std::size_t P = std::size_t(OH) * OW;
  std::vector<T> gt(std::size_t(batch) * P * O);
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < O; ++o) {
      const T* gout = dy.data() + (std::size_t(n) * O + o) * P;
      T* dst = gt.data() + std::size_t(n) * P * O + o;
      for (std::size_t p = 0; p < P; ++p) dst[p * O] = gout[p];
    }
  std::vector<T> acc(static_cast<std::size_t>(O));
  for (int c = 0; c < C; ++c)
    for (int i = 0; i < kh; ++i) {
      const Span ry = valid_outputs(i, g.stride_h, g.pad_h, H, OH);
      for (int j = 0; j < kw; ++j) {
        const Span rx = valid_outputs(j, g.stride_w, g.pad_w, W, OW);
        std::fill(acc.begin(), acc.end(), T(0));
        for (int n = 0; n < batch; ++n) {
          const T* in = x.data() + (std::size_t(n) * C + c) * H * W;
          for (int oy = ry.lo; oy < ry.hi; ++oy) {
            const T* in_row = in + std::size_t(oy * g.stride_h - g.pad_h + i) * W;
            for (int ox = rx.lo; ox < rx.hi; ++ox) {
              const T xv = in_row[ox * g.stride_w - g.pad_w + j];
              const T* gp = gt.data() + (std::size_t(n) * P + std::size_t(oy) * OW + ox) * O;
              for (int o = 0; o < O; ++o) acc[o] = acc[o] + gp[o] * xv;
            }
          }
        }
        for (int o = 0; o < O; ++o) dw[((std::size_t(o) * C + c) * kh + i) * kw + j] = acc[o];
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
