#include "models/nn/conv.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"

namespace hdq {

void validate(const ConvGeometry& g) {
  constexpr long long kMax = (1LL << 31) - 1;
  require_in_range("conv.in_channels", g.in_channels, 1, kMax);
  require_in_range("conv.in_h", g.in_h, 1, kMax);
  require_in_range("conv.in_w", g.in_w, 1, kMax);
  require_in_range("conv.out_channels", g.out_channels, 1, kMax);
  require_in_range("conv.kernel_h", g.kernel_h, 1, kMax);
  require_in_range("conv.kernel_w", g.kernel_w, 1, kMax);
  require_in_range("conv.stride_h", g.stride_h, 1, kMax);
  require_in_range("conv.stride_w", g.stride_w, 1, kMax);
  require_in_range("conv.pad_h", g.pad_h, 0, (1 << 20));
  require_in_range("conv.pad_w", g.pad_w, 0, (1 << 20));
  const long long padded_h = g.in_h + 2LL * g.pad_h, padded_w = g.in_w + 2LL * g.pad_w;
  if (g.kernel_h > padded_h || g.kernel_w > padded_w)
    throw ConfigError(fmt::format("conv.kernel_h x kernel_w = {} x {} exceeds the padded input {} x {}", g.kernel_h,
                                  g.kernel_w, padded_h, padded_w));
  const long long out_h = (padded_h - g.kernel_h) / g.stride_h + 1, out_w = (padded_w - g.kernel_w) / g.stride_w + 1;
  const long long in_size = 1LL * g.in_channels * g.in_h * g.in_w;
  const long long patch = 1LL * g.in_channels * g.kernel_h * g.kernel_w;
  const long long out_size = 1LL * g.out_channels * out_h * out_w;
  if (in_size > kMax || patch > kMax || out_size > kMax || padded_h > kMax || padded_w > kMax)
    throw ConfigError(fmt::format("conv: sizes C*H*W = {}, C*kh*kw = {}, C_out*P = {} must stay below 2^31", in_size,
                                  patch, out_size));
}

void im2col(const ConvGeometry& g, std::span<const std::int16_t> x, std::span<std::int16_t> cols) {
  const int oh = g.out_h(), ow = g.out_w(), K = g.patch();
  if (x.size() != std::size_t(g.in_size()) || cols.size() != std::size_t(g.positions()) * K)
    throw ConfigError(fmt::format("im2col: {} inputs and {} columns for a {} -> {} x {} geometry", x.size(),
                                  cols.size(), g.in_size(), g.positions(), K));
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      std::int16_t* row = cols.data() + (std::size_t(oy) * ow + ox) * K;
      for (int c = 0; c < g.in_channels; ++c)
        for (int i = 0; i < g.kernel_h; ++i) {
          const int y = oy * g.stride_h - g.pad_h + i;
          std::int16_t* out = row + (std::size_t(c) * g.kernel_h + i) * g.kernel_w;
          if (y < 0 || y >= g.in_h) {
            std::fill_n(out, g.kernel_w, std::int16_t{0});
            continue;
          }
          const std::int16_t* in = x.data() + (std::size_t(c) * g.in_h + y) * g.in_w;
          for (int j = 0; j < g.kernel_w; ++j) {
            const int xx = ox * g.stride_w - g.pad_w + j;
            out[j] = (xx < 0 || xx >= g.in_w) ? std::int16_t{0} : in[xx];
          }
        }
    }
}

void col2im(const ConvGeometry& g, std::span<const float> cols, std::span<float> x) {
  const int oh = g.out_h(), ow = g.out_w(), K = g.patch();
  if (x.size() != std::size_t(g.in_size()) || cols.size() != std::size_t(g.positions()) * K)
    throw ConfigError(fmt::format("col2im: {} columns and {} outputs for a {} x {} -> {} geometry", cols.size(),
                                  x.size(), g.positions(), K, g.in_size()));
  std::fill(x.begin(), x.end(), 0.0f);
  // p ascending, the outermost loops: every element receives its terms in
  // ascending p (one per p at most), as docs/contract.md §9 states.
  for (int oy = 0; oy < oh; ++oy)
    for (int ox = 0; ox < ow; ++ox) {
      const float* row = cols.data() + (std::size_t(oy) * ow + ox) * K;
      for (int c = 0; c < g.in_channels; ++c)
        for (int i = 0; i < g.kernel_h; ++i) {
          const int y = oy * g.stride_h - g.pad_h + i;
          if (y < 0 || y >= g.in_h) continue;
          const float* in = row + (std::size_t(c) * g.kernel_h + i) * g.kernel_w;
          float* out = x.data() + (std::size_t(c) * g.in_h + y) * g.in_w;
          for (int j = 0; j < g.kernel_w; ++j) {
            const int xx = ox * g.stride_w - g.pad_w + j;
            if (xx >= 0 && xx < g.in_w) out[xx] = out[xx] + in[j];
          }
        }
    }
}

}  // namespace hdq
