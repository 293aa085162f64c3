// Pieces the HDQT layers (linear, docs/contract.md §6; convolution, §9) build
// their passes from: quantizer keying and tensor names, the exact integer
// Hadamard transform of a forward operand, transposes and GEMM operands.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "models/hdqt/hdqt_linear.h"

namespace hdq::detail {

// "layer<l>.<role>", or "layer<l>.<role>[n]" for sample n's slice, formatted
// without allocating (for error messages).
struct TensorName {
  std::array<char, 48> text{};
  std::size_t size = 0;
  std::string_view view() const { return {text.data(), size}; }
};
TensorName tensor_name(const HdqtStepContext& ctx, QuantRole r, int sample = -1);

// The random stream of role r of the context's layer (§3: 8 * layer + role).
RandomStream stream(const HdqtStepContext& ctx, QuantRole r);

// Q(x; r) of the whole tensor x, into `out` (its storage reused).
void quantize_role(std::span<const float> x, const HdqtConfig& cfg, const HdqtStepContext& ctx, QuantRole r,
                   QuantizedTensor& out);

// Q(x; r) of sample n's slice x of a larger tensor (§9 per-sample scales):
// the slice's own scale; random-bit indices first_index, first_index + 1, ...
void quantize_role_slice(std::span<const float> x, std::uint64_t first_index, int sample, const HdqtConfig& cfg,
                         const HdqtStepContext& ctx, QuantRole r, QuantizedTensor& out);

// The integer Hadamard transform of the int16 matrix `a` (rows x cols) along
// its rows dimension, zero-padded to padded_rows, into `out` as f32
// (padded_rows x cols); `widened` is int32 scratch. NumericError unless
// every result is an integer of at most 24 bits (exact in f32, R21).
void hadamard_along_rows_dim(std::span<const std::int16_t> a, int rows, int cols, int padded_rows, int block,
                             std::vector<std::int32_t>& widened, std::vector<float>& out);

// out (cols x rows) = in (rows x cols) transposed, in 16 x 16 blocks (both
// sides touch a few cache lines per block instead of one per element).
template <typename T>
void transpose(const T* in, int rows, int cols, T* out) {
  constexpr int kBlock = 16;
  for (int r0 = 0; r0 < rows; r0 += kBlock)
    for (int c0 = 0; c0 < cols; c0 += kBlock)
      for (int r = r0; r < std::min(rows, r0 + kBlock); ++r)
        for (int c = c0; c < std::min(cols, c0 + kBlock); ++c)
          out[std::size_t(c) * rows + r] = in[std::size_t(r) * cols + c];
}

// Keeps in `st` (HdqtLayerState or HdqtConvState) what the backward needs of
// the forward's quantized operands: copies of xq and wq with their scales
// (copies, so the state's buffers keep their layer's size) and the 0/1 mask of
// the elements of x the fwd_x clamp changed (for the clipped STE).
template <typename State>
void keep_forward_operands(std::span<const float> x, const QuantizedTensor& xq, const QuantizedTensor& wq, State& st) {
  st.x_clipped.resize(x.size());
  const float lo = xq.params.is_unsigned ? 0.0f : -xq.params.mx;
  for (std::size_t i = 0; i < x.size(); ++i) st.x_clipped[i] = x[i] > xq.params.mx || x[i] < lo;
  st.xq.assign(xq.q.begin(), xq.q.end());
  st.px = xq.params;
  st.wq.assign(wq.q.begin(), wq.q.end());
  st.pw = wq.params;
}

// The GEMM operand of a tensor quantized under `q`: operand_bits(q) wide (the
// quantizer's bits, or wider for luq, whose integers reach +-2^E).
inline IntOperand operand(const QuantizedTensor& t, const QuantConfig& q) {
  return {t.q, operand_bits(q), t.params.is_unsigned};
}

}  // namespace hdq::detail
