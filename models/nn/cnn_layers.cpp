#include "models/nn/cnn_layers.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "models/common/errors.h"

namespace hdq {
namespace {

void check_size(std::size_t got, std::size_t want, const char* what) {
  if (got != want) throw ConfigError(fmt::format("{}: {} values, the shape needs {}", what, got, want));
}

void check_pool(const PoolGeometry& g, int batch, std::size_t in, std::size_t out, const char* what) {
  validate(g);
  if (batch < 1) throw ConfigError(fmt::format("{}: batch = {} must be >= 1", what, batch));
  check_size(in, std::size_t(batch) * g.in_size(), what);
  check_size(out, std::size_t(batch) * g.out_size(), what);
}

void check_bn(const BatchNormSpec& s, std::size_t x, std::size_t gamma, const char* what) {
  require_in_range("batchnorm.batch", s.batch, 1, 1 << 30);
  require_in_range("batchnorm.channels", s.channels, 1, 1 << 30);
  require_in_range("batchnorm.hw", s.hw, 1, 1 << 30);
  if (!(s.eps > 0) || !(s.momentum >= 0 && s.momentum <= 1))
    throw ConfigError(fmt::format("{}: eps = {} must be > 0 and momentum = {} in [0, 1]", what, s.eps, s.momentum));
  check_size(x, std::size_t(s.batch) * s.channels * s.hw, what);
  check_size(gamma, std::size_t(s.channels), what);
}

}  // namespace

void validate(const PoolGeometry& g) {
  require_in_range("pool.channels", g.channels, 1, 1 << 24);
  require_in_range("pool.in_h", g.in_h, 1, 1 << 24);
  require_in_range("pool.in_w", g.in_w, 1, 1 << 24);
  require_in_range("pool.kernel_h", g.kernel_h, 1, g.in_h + 2LL * g.pad_h);
  require_in_range("pool.kernel_w", g.kernel_w, 1, g.in_w + 2LL * g.pad_w);
  require_in_range("pool.stride_h", g.stride_h, 1, 1 << 24);
  require_in_range("pool.stride_w", g.stride_w, 1, 1 << 24);
  require_in_range("pool.pad_h", g.pad_h, 0, g.kernel_h / 2);
  require_in_range("pool.pad_w", g.pad_w, 0, g.kernel_w / 2);
  if (1LL * g.channels * g.in_h * g.in_w >= (1LL << 31))
    throw ConfigError(fmt::format("pool: C*H*W = {} must stay below 2^31", 1LL * g.channels * g.in_h * g.in_w));
}

// Calls f(out_index, y0, y1, x0, x1) for every window of one sample, windows
// ascending; [y0, y1) x [x0, x1) is the window clipped to the input, never empty.
template <typename F>
static void for_each_window(const PoolGeometry& g, F&& f) {
  const int oh = g.out_h(), ow = g.out_w();
  std::size_t out = 0;
  for (int c = 0; c < g.channels; ++c)
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox, ++out) {
        const int ys = oy * g.stride_h - g.pad_h, xs = ox * g.stride_w - g.pad_w;
        f(c, out, std::max(ys, 0), std::min(ys + g.kernel_h, g.in_h), std::max(xs, 0),
          std::min(xs + g.kernel_w, g.in_w));
      }
}

template <typename T>
void max_pool_forward(const PoolGeometry& g, int batch, std::span<const T> x, std::span<T> y,
                      std::span<std::int32_t> argmax) {
  check_pool(g, batch, x.size(), y.size(), "max_pool_forward");
  check_size(argmax.size(), y.size(), "max_pool_forward argmax");
  const std::size_t in = g.in_size(), out = g.out_size();
  for (int n = 0; n < batch; ++n) {
    const T* xs = x.data() + n * in;
    for_each_window(g, [&](int c, std::size_t o, int y0, int y1, int x0, int x1) {
      int best = (c * g.in_h + y0) * g.in_w + x0;
      for (int yy = y0; yy < y1; ++yy)
        for (int xx = x0; xx < x1; ++xx) {
          const int i = (c * g.in_h + yy) * g.in_w + xx;
          if (xs[i] > xs[best]) best = i;
        }
      y[n * out + o] = xs[best];
      argmax[n * out + o] = best;
    });
  }
}

template <typename T>
void max_pool_backward(const PoolGeometry& g, int batch, std::span<const std::int32_t> argmax, std::span<const T> dy,
                       std::span<T> dx) {
  check_pool(g, batch, dx.size(), dy.size(), "max_pool_backward");
  check_size(argmax.size(), dy.size(), "max_pool_backward argmax");
  const std::size_t in = g.in_size(), out = g.out_size();
  std::fill(dx.begin(), dx.end(), T(0));
  for (int n = 0; n < batch; ++n)
    for (std::size_t o = 0; o < out; ++o) {
      const std::int32_t i = argmax[n * out + o];
      if (i < 0 || std::size_t(i) >= in) throw ConfigError(fmt::format("max_pool_backward: argmax {} out of range", i));
      dx[n * in + i] = dx[n * in + i] + dy[n * out + o];
    }
}

template <typename T>
void avg_pool_forward(const PoolGeometry& g, int batch, std::span<const T> x, std::span<T> y) {
  check_pool(g, batch, x.size(), y.size(), "avg_pool_forward");
  const std::size_t in = g.in_size(), out = g.out_size();
  const T divisor = T(g.kernel_h * g.kernel_w);
  for (int n = 0; n < batch; ++n) {
    const T* xs = x.data() + n * in;
    for_each_window(g, [&](int c, std::size_t o, int y0, int y1, int x0, int x1) {
      T s = T(0);
      for (int yy = y0; yy < y1; ++yy)
        for (int xx = x0; xx < x1; ++xx) s = s + xs[(c * g.in_h + yy) * g.in_w + xx];
      y[n * out + o] = s / divisor;
    });
  }
}

template <typename T>
void avg_pool_backward(const PoolGeometry& g, int batch, std::span<const T> dy, std::span<T> dx) {
  check_pool(g, batch, dx.size(), dy.size(), "avg_pool_backward");
  const std::size_t in = g.in_size(), out = g.out_size();
  const T divisor = T(g.kernel_h * g.kernel_w);
  std::fill(dx.begin(), dx.end(), T(0));
  for (int n = 0; n < batch; ++n) {
    T* ds = dx.data() + n * in;
    for_each_window(g, [&](int c, std::size_t o, int y0, int y1, int x0, int x1) {
      const T d = dy[n * out + o] / divisor;
      for (int yy = y0; yy < y1; ++yy)
        for (int xx = x0; xx < x1; ++xx) {
          T& cell = ds[(c * g.in_h + yy) * g.in_w + xx];
          cell = cell + d;
        }
    });
  }
}

template <typename T>
void global_avg_pool_forward(int batch, int channels, int hw, std::span<const T> x, std::span<T> y) {
  check_size(x.size(), std::size_t(batch) * channels * hw, "global_avg_pool_forward input");
  check_size(y.size(), std::size_t(batch) * channels, "global_avg_pool_forward output");
  if (hw < 1) throw ConfigError(fmt::format("global_avg_pool_forward: hw = {} must be >= 1", hw));
  for (std::size_t nc = 0; nc < y.size(); ++nc) {
    T s = T(0);
    for (int i = 0; i < hw; ++i) s = s + x[nc * hw + i];
    y[nc] = s / T(hw);
  }
}

template <typename T>
void global_avg_pool_backward(int batch, int channels, int hw, std::span<const T> dy, std::span<T> dx) {
  check_size(dx.size(), std::size_t(batch) * channels * hw, "global_avg_pool_backward input");
  check_size(dy.size(), std::size_t(batch) * channels, "global_avg_pool_backward output");
  if (hw < 1) throw ConfigError(fmt::format("global_avg_pool_backward: hw = {} must be >= 1", hw));
  for (std::size_t nc = 0; nc < dy.size(); ++nc) std::fill_n(dx.begin() + nc * hw, hw, dy[nc] / T(hw));
}

// Visits channel c's values in channel order: n ascending, then the cells.
template <typename F>
static void for_channel(const BatchNormSpec& s, int c, F&& f) {
  for (int n = 0; n < s.batch; ++n) {
    const std::size_t base = (std::size_t(n) * s.channels + c) * s.hw;
    for (int i = 0; i < s.hw; ++i) f(base + i);
  }
}

template <typename T>
void bn_sum(const BatchNormSpec& s, std::span<const T> x, std::span<T> sum) {
  for (int c = 0; c < s.channels; ++c) for_channel(s, c, [&](std::size_t i) { sum[c] = sum[c] + x[i]; });
}

template <typename T>
void bn_mean(long long m, std::span<const T> sum, std::span<T> mean) {
  const T M = T(m);
  for (std::size_t c = 0; c < sum.size(); ++c) mean[c] = sum[c] / M;
}

template <typename T>
void bn_sq(const BatchNormSpec& s, std::span<const T> x, std::span<const T> mean, std::span<T> sq) {
  for (int c = 0; c < s.channels; ++c)
    for_channel(s, c, [&](std::size_t i) {
      const T d = x[i] - mean[c];
      sq[c] = sq[c] + d * d;
    });
}

template <typename T>
void bn_stats(const BatchNormSpec& s, long long m, std::span<const T> mean, std::span<const T> sq, std::span<T> invstd,
              std::span<T> running_mean, std::span<T> running_var) {
  const T M = T(m), Mu = T(m - 1), eps = T(s.eps), mom = T(s.momentum), keep = T(1) - mom;
  for (int c = 0; c < s.channels; ++c) {
    const T var = sq[c] / M, var_u = sq[c] / Mu;
    invstd[c] = T(1) / std::sqrt(var + eps);
    running_mean[c] = mom * mean[c] + keep * running_mean[c];
    running_var[c] = mom * var_u + keep * running_var[c];
  }
}

template <typename T>
void bn_normalize(const BatchNormSpec& s, std::span<const T> x, std::span<const T> mean, std::span<const T> invstd,
                  std::span<const T> gamma, std::span<const T> beta, std::span<T> xhat, std::span<T> y) {
  for (int c = 0; c < s.channels; ++c)
    for_channel(s, c, [&](std::size_t i) {
      const T v = (x[i] - mean[c]) * invstd[c];
      xhat[i] = v;
      y[i] = v * gamma[c] + beta[c];
    });
}

template <typename T>
void bn_grad_sums(const BatchNormSpec& s, std::span<const T> dy, std::span<const T> xhat, std::span<T> sum_g,
                  std::span<T> sum_gx) {
  for (int c = 0; c < s.channels; ++c)
    for_channel(s, c, [&](std::size_t i) {
      sum_g[c] = sum_g[c] + dy[i];
      sum_gx[c] = sum_gx[c] + dy[i] * xhat[i];
    });
}

template <typename T>
void bn_grad_dx(const BatchNormSpec& s, long long m, std::span<const T> sum_g, std::span<const T> sum_gx,
                std::span<const T> gamma, std::span<const T> invstd, std::span<const T> dy, std::span<const T> xhat,
                std::span<T> dx) {
  const T M = T(m);
  for (int c = 0; c < s.channels; ++c) {
    const T k = gamma[c] * invstd[c], mg = sum_g[c] / M, mgx = sum_gx[c] / M;
    for_channel(s, c, [&](std::size_t i) { dx[i] = k * ((dy[i] - mg) - xhat[i] * mgx); });
  }
}

template <typename T>
void batchnorm_forward_train(const BatchNormSpec& s, std::span<const T> x, std::span<const T> gamma,
                             std::span<const T> beta, std::span<T> running_mean, std::span<T> running_var,
                             std::span<T> y, BatchNormSaved<T>& saved) {
  check_bn(s, x.size(), gamma.size(), "batchnorm_forward_train");
  check_size(beta.size(), gamma.size(), "batchnorm_forward_train beta");
  check_size(running_mean.size(), gamma.size(), "batchnorm_forward_train running_mean");
  check_size(running_var.size(), gamma.size(), "batchnorm_forward_train running_var");
  check_size(y.size(), x.size(), "batchnorm_forward_train output");
  const long long m = 1LL * s.batch * s.hw;
  if (m < 2)
    throw ConfigError("batchnorm: training needs more than one value per channel (batch * H * W >= 2)");
  const std::size_t C = std::size_t(s.channels);
  saved.invstd.resize(C);
  saved.xhat.resize(x.size());
  std::vector<T> sum(C, T(0)), mean(C), sq(C, T(0));
  bn_sum<T>(s, x, sum);
  bn_mean<T>(m, sum, mean);
  bn_sq<T>(s, x, mean, sq);
  bn_stats<T>(s, m, mean, sq, saved.invstd, running_mean, running_var);
  bn_normalize<T>(s, x, mean, saved.invstd, gamma, beta, saved.xhat, y);
}

template <typename T>
void batchnorm_forward_eval(const BatchNormSpec& s, std::span<const T> x, std::span<const T> gamma,
                            std::span<const T> beta, std::span<const T> running_mean, std::span<const T> running_var,
                            std::span<T> y) {
  check_bn(s, x.size(), gamma.size(), "batchnorm_forward_eval");
  check_size(beta.size(), gamma.size(), "batchnorm_forward_eval beta");
  check_size(running_mean.size(), gamma.size(), "batchnorm_forward_eval running_mean");
  check_size(running_var.size(), gamma.size(), "batchnorm_forward_eval running_var");
  check_size(y.size(), x.size(), "batchnorm_forward_eval output");
  const T eps = T(s.eps);
  for (int c = 0; c < s.channels; ++c) {
    const T invstd = T(1) / std::sqrt(running_var[c] + eps);
    for_channel(s, c, [&](std::size_t i) { y[i] = ((x[i] - running_mean[c]) * invstd) * gamma[c] + beta[c]; });
  }
}

template <typename T>
void batchnorm_backward(const BatchNormSpec& s, const BatchNormSaved<T>& saved, std::span<const T> gamma,
                        std::span<const T> dy, std::span<T> dx, std::span<T> dgamma, std::span<T> dbeta) {
  check_bn(s, dy.size(), gamma.size(), "batchnorm_backward");
  check_size(saved.xhat.size(), dy.size(), "batchnorm_backward saved xhat");
  check_size(saved.invstd.size(), gamma.size(), "batchnorm_backward saved invstd");
  check_size(dx.size(), dy.size(), "batchnorm_backward dx");
  check_size(dgamma.size(), gamma.size(), "batchnorm_backward dgamma");
  check_size(dbeta.size(), gamma.size(), "batchnorm_backward dbeta");
  std::fill(dbeta.begin(), dbeta.end(), T(0));
  std::fill(dgamma.begin(), dgamma.end(), T(0));
  bn_grad_sums<T>(s, dy, saved.xhat, dbeta, dgamma);
  bn_grad_dx<T>(s, 1LL * s.batch * s.hw, dbeta, dgamma, gamma, saved.invstd, dy, saved.xhat, dx);
}

template <typename T>
void residual_add(std::span<const T> a, std::span<const T> b, std::span<T> y) {
  check_size(b.size(), a.size(), "residual_add b");
  check_size(y.size(), a.size(), "residual_add output");
  for (std::size_t i = 0; i < a.size(); ++i) y[i] = a[i] + b[i];
}

#define HDQ_CNN_LAYERS(T)                                                                                           \
  template void max_pool_forward<T>(const PoolGeometry&, int, std::span<const T>, std::span<T>,                     \
                                    std::span<std::int32_t>);                                                       \
  template void max_pool_backward<T>(const PoolGeometry&, int, std::span<const std::int32_t>, std::span<const T>,   \
                                     std::span<T>);                                                                 \
  template void avg_pool_forward<T>(const PoolGeometry&, int, std::span<const T>, std::span<T>);                    \
  template void avg_pool_backward<T>(const PoolGeometry&, int, std::span<const T>, std::span<T>);                   \
  template void global_avg_pool_forward<T>(int, int, int, std::span<const T>, std::span<T>);                        \
  template void global_avg_pool_backward<T>(int, int, int, std::span<const T>, std::span<T>);                       \
  template void batchnorm_forward_train<T>(const BatchNormSpec&, std::span<const T>, std::span<const T>,            \
                                           std::span<const T>, std::span<T>, std::span<T>, std::span<T>,            \
                                           BatchNormSaved<T>&);                                                     \
  template void batchnorm_forward_eval<T>(const BatchNormSpec&, std::span<const T>, std::span<const T>,             \
                                          std::span<const T>, std::span<const T>, std::span<const T>, std::span<T>); \
  template void batchnorm_backward<T>(const BatchNormSpec&, const BatchNormSaved<T>&, std::span<const T>,           \
                                      std::span<const T>, std::span<T>, std::span<T>, std::span<T>);                \
  template void residual_add<T>(std::span<const T>, std::span<const T>, std::span<T>);                               \
  template void bn_sum<T>(const BatchNormSpec&, std::span<const T>, std::span<T>);                                   \
  template void bn_mean<T>(long long, std::span<const T>, std::span<T>);                                             \
  template void bn_sq<T>(const BatchNormSpec&, std::span<const T>, std::span<const T>, std::span<T>);               \
  template void bn_stats<T>(const BatchNormSpec&, long long, std::span<const T>, std::span<const T>, std::span<T>,   \
                            std::span<T>, std::span<T>);                                                             \
  template void bn_normalize<T>(const BatchNormSpec&, std::span<const T>, std::span<const T>, std::span<const T>,    \
                                std::span<const T>, std::span<const T>, std::span<T>, std::span<T>);                 \
  template void bn_grad_sums<T>(const BatchNormSpec&, std::span<const T>, std::span<const T>, std::span<T>,          \
                                std::span<T>);                                                                       \
  template void bn_grad_dx<T>(const BatchNormSpec&, long long, std::span<const T>, std::span<const T>,               \
                              std::span<const T>, std::span<const T>, std::span<const T>, std::span<const T>,        \
                              std::span<T>);
HDQ_CNN_LAYERS(float)
HDQ_CNN_LAYERS(double)
#undef HDQ_CNN_LAYERS

}  // namespace hdq
