#include "models/hdqt/layer_ops.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"

namespace hdq::detail {

TensorName tensor_name(const HdqtStepContext& ctx, QuantRole r, int sample) {
  TensorName n;
  const auto written = sample < 0
                           ? fmt::format_to_n(n.text.data(), n.text.size(), "layer{}.{}", ctx.layer, name(r))
                           : fmt::format_to_n(n.text.data(), n.text.size(), "layer{}.{}[{}]", ctx.layer, name(r), sample);
  n.size = std::min(n.text.size(), written.size);
  return n;
}

RandomStream stream(const HdqtStepContext& ctx, QuantRole r) {
  return {ctx.seed, 8 * std::uint64_t(ctx.layer) + std::uint64_t(r), ctx.step};
}

void quantize_role(std::span<const float> x, const HdqtConfig& cfg, const HdqtStepContext& ctx, QuantRole r,
                   QuantizedTensor& out) {
  quantize(x, cfg.q(r), stream(ctx, r), tensor_name(ctx, r).view(), out);
}

void quantize_role_slice(std::span<const float> x, std::uint64_t first_index, int sample, const HdqtConfig& cfg,
                         const HdqtStepContext& ctx, QuantRole r, QuantizedTensor& out) {
  out.params = choose_scale(x, cfg.q(r), tensor_name(ctx, r, sample).view());
  out.q.resize(x.size());
  quantize_span(x, first_index, out.params, cfg.q(r), stream(ctx, r).key(), out.q);
}

void hadamard_along_rows_dim(std::span<const std::int16_t> a, int rows, int cols, int padded_rows, int block,
                             std::vector<std::int32_t>& widened, std::vector<float>& out) {
  const std::size_t filled = std::size_t(rows) * cols, total = std::size_t(padded_rows) * cols;
  widened.resize(total);
  std::copy(a.begin(), a.begin() + std::ptrdiff_t(filled), widened.begin());
  std::fill(widened.begin() + std::ptrdiff_t(filled), widened.end(), 0);
  hadamard_columns_i32(widened, padded_rows, cols, block);
  out.resize(total);
  bool exact = true;
  for (std::size_t i = 0; i < total; ++i) {
    exact &= widened[i] <= (1 << 24) && widened[i] >= -(1 << 24);
    out[i] = float(widened[i]);
  }
  if (!exact) throw NumericError("integer Hadamard result exceeds 2^24 (not exact in f32)");
}

}  // namespace hdq::detail
