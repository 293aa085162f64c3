#include "sim/blocks/vector_unit.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "models/common/errors.h"
#include "models/quantizer/quantizer.h"
#include "models/nn/mlp.h"
#include "sim/blocks/quantizer_unit.h"
#include "sim/cost/cycles.h"

namespace hdq::npu {
namespace {

F32Ops operator*(F32Ops o, std::uint64_t n) { return {o.adds * n, o.muls * n}; }
F32Ops operator+(F32Ops a, F32Ops b) { return {a.adds + b.adds, a.muls + b.muls}; }

// y (rows x cols) = 0 where the mask's bit is `when` (a select per element),
// as an AND of the f32 bits with all ones (kept) or zeros (+0.0f): no
// branches on the mask, which a random ReLU' pattern mispredicts.
void zero_where(std::span<const std::uint8_t> mask, std::uint64_t rows, std::uint64_t cols, bool when,
                std::span<float> y) {
  const std::uint64_t pitch = mask_pitch(cols);
  // bit -> the AND mask: when set, bit - 1 (1 -> 0, 0 -> ~0); else -bit (1 -> ~0, 0 -> 0).
  auto keep = [when](std::uint32_t bit) { return when ? bit - 1u : 0u - bit; };
  for (std::uint64_t r = 0; r < rows; ++r) {
    const std::uint8_t* m = mask.data() + r * pitch;
    float* row = y.data() + r * cols;
    const std::uint64_t whole = cols / 8 * 8;
    for (std::uint64_t c0 = 0; c0 < whole; c0 += 8) {
      const std::uint32_t byte = m[c0 / 8];
      std::uint32_t v[8];
      std::memcpy(v, row + c0, sizeof v);
      for (int j = 0; j < 8; ++j) v[j] &= keep((byte >> j) & 1u);
      std::memcpy(row + c0, v, sizeof v);
    }
    for (std::uint64_t c = whole; c < cols; ++c) {
      std::uint32_t v;
      std::memcpy(&v, row + c, 4);
      v &= keep((m[c / 8] >> (c % 8)) & 1u);
      std::memcpy(row + c, &v, 4);
    }
  }
}

}  // namespace

void VectorDescriptor::accesses(std::uint32_t opcode, Footprint& f) const {
  const std::uint64_t n = elements();
  auto read = [&](std::uint32_t a, std::uint64_t bytes) { f.push_back({Space::sram, false, a, bytes}); };
  auto write = [&](std::uint32_t a, std::uint64_t bytes) { f.push_back({Space::sram, true, a, bytes}); };
  if (opcode == kVecDequant) {
    read(src, 4 * n);
    for (int i = 0; i < factors && i < 4; ++i)
      if (factor_record[i] != kNoRecord) read(factor_record[i], sizeof(QuantRecord));
    if (flags & kVecBias) read(aux0, 4 * std::uint64_t(cols));
    if (flags & kVecClipMask) read(aux2, rows * mask_pitch(cols));
    if (flags & kVecReluGrad) read(aux3, rows * mask_pitch(cols));
    write(dst, 4 * n);
    if (flags & kVecRelu) write(aux1, 4 * n);
    if (flags & kVecReluMask) write(aux3, rows * mask_pitch(cols));
  } else if (opcode == kVecSoftmax) {
    read(src, 4 * n);
    read(aux0, 4 * std::uint64_t(rows));
    read(aux1, cols);
    write(dst, 4 * n);
    write(aux2, 4);
  } else if (opcode == kVecColumnSum) {
    read(src, 4 * n);
    write(dst, 4 * std::uint64_t(cols));
  } else if (opcode == kVecSgd) {
    read(src, 4 * n);
    write(dst, 4 * n);
    write(aux0, 4 * n);
  }
}

F32Ops VectorCore::run(std::uint32_t opcode, const VectorDescriptor& d, MemoryPort& sram) {
  const std::size_t n = d.elements();
  if (opcode == kVecDequant) {
    if (d.factors > 4) throw ConfigError(fmt::format("vector_unit: {} dequantization factors (at most 4)", d.factors));
    float factors[4];
    for (int i = 0; i < d.factors; ++i)
      factors[i] = d.factor_record[i] == kNoRecord ? d.factor_value[i]
                                                   : sram.read_struct<QuantRecord>(d.factor_record[i]).scale;
    // The int32 accumulators of each block are copied out before its f32
    // results are written (dst may be src, and one buffer is never accessed
    // as two types at once); blocks of kBlock stay in the L1 cache.
    const std::span<const std::int32_t> src = sram.in<std::int32_t>(d.src, n);
    const std::span<float> y = sram.out<float>(d.dst, n);
    constexpr std::size_t kBlock = 1024;
    std::int32_t acc[kBlock];
    for (std::size_t i0 = 0; i0 < n; i0 += kBlock) {
      const std::size_t len = std::min(kBlock, n - i0);
      std::memcpy(acc, src.data() + i0, 4 * len);
      dequantize(std::span<const std::int32_t>(acc, len), std::span<const float>(factors, d.factors), y.subspan(i0, len));
    }
    F32Ops ops{0, std::uint64_t(d.factors) * n};
    if (d.flags & kVecBias) {
      const std::span<const float> bias = sram.in<float>(d.aux0, d.cols);
      for (std::size_t r = 0; r < d.rows; ++r)
        for (std::size_t c = 0; c < d.cols; ++c) y[r * d.cols + c] = y[r * d.cols + c] + bias[c];
      ops.adds += n;
    }
    if (d.flags & kVecClipMask)
      zero_where(sram.in<std::uint8_t>(d.aux2, d.rows * mask_pitch(d.cols)), d.rows, d.cols, true, y);
    if (d.flags & kVecReluGrad)  // a select, as the clip mask
      zero_where(sram.in<std::uint8_t>(d.aux3, d.rows * mask_pitch(d.cols)), d.rows, d.cols, false, y);
    if (d.flags & kVecRelu) {
      const std::span<float> act = sram.out<float>(d.aux1, n);
      for (std::size_t i = 0; i < n; ++i) act[i] = std::max(y[i], 0.0f);
      ops.adds += n;
    }
    if (d.flags & kVecReluMask) {  // the compare of the ReLU above (or its own, without kVecRelu)
      const std::span<std::uint8_t> flags = scratch(flags_, n);
      for (std::size_t i = 0; i < n; ++i) flags[i] = y[i] > 0.0f;
      pack_mask(flags, d.rows, d.cols, sram.out<std::uint8_t>(d.aux3, d.rows * mask_pitch(d.cols)));
      if (!(d.flags & kVecRelu)) ops.adds += n;
    }
    return ops;
  }
  if (opcode == kVecSoftmax) {
    Matrix logits(int(d.rows), int(d.cols)), grad;
    sram.read_values<float>(d.src, logits.v);
    std::vector<int> labels(d.rows);
    sram.read_values<int>(d.aux0, labels);
    const std::span<const std::uint8_t> bytes = sram.in<std::uint8_t>(d.aux1, d.cols);
    const auto active = std::make_unique<bool[]>(d.cols);
    std::uint64_t active_count = 0;
    for (std::size_t c = 0; c < d.cols; ++c) active_count += active[c] = bytes[c] != 0;
    const float loss = softmax_cross_entropy(logits, labels, std::span<const bool>(active.get(), d.cols), &grad);
    sram.write_values<float>(d.dst, grad.v);
    sram.write_struct(d.aux2, loss);
    // Per row and active class: max, exp and sum; the gradient's exp, divide,
    // subtract and / B; per row log, two subtracts and the loss sum; / B once.
    const std::uint64_t a = active_count * d.rows;
    return F32Ops{5 * a + 3 * d.rows, 2 * a + 1} + kTranscendentalOps * (2 * a + d.rows);
  }
  if (opcode == kVecColumnSum) {
    const std::span<const float> g = sram.in<float>(d.src, n);
    sums_.resize(d.cols);
    if (d.flags & kVecInit) std::fill(sums_.begin(), sums_.end(), 0.0f);
    else sram.read_values<float>(d.dst, sums_);
    for (std::size_t r = 0; r < d.rows; ++r)
      for (std::size_t c = 0; c < d.cols; ++c) sums_[c] += g[r * d.cols + c];
    sram.write_values<float>(d.dst, sums_);
    return {n, 0};
  }
  if (opcode == kVecSgd) {
    const bool first = d.flags & kVecInit;
    // w and the momentum buffer are read and written (charged both ways).
    sram.in<float>(d.dst, n);
    if (!first) sram.in<float>(d.aux0, n);
    const std::span<float> w = sram.out<float>(d.dst, n), buf = sram.out<float>(d.aux0, n);
    const std::span<const float> g = sram.in<float>(d.src, n);
    for (std::size_t i = 0; i < n; ++i) {
      const float dd = g[i] + d.weight_decay * w[i];
      buf[i] = first ? dd : d.momentum * buf[i] + dd;
      w[i] = w[i] - d.lr * buf[i];
    }
    return {3 * n, 3 * n};
  }
  throw ConfigError(fmt::format("vector_unit: unknown opcode {}", opcode));
}

std::uint64_t VectorUnit::execute(const Command& c) {
  if (is_layer_op(c.header.opcode)) {  // sim/blocks/layer_ops.h
    const LayerOpCost cost = layers_.run(c.header.opcode, c.as<LayerDescriptor>(), sram_port_);
    ctx_.cell().energy_pj[int(EnergyKind::vector)] += f32_energy_pj(cost.ops, ctx_.cfg().energy);
    return lane_cycles(cost.ops.total() + cost.moves, ctx_.cfg().vector_unit.lanes);
  }
  const F32Ops ops = core_.run(c.header.opcode, c.as<VectorDescriptor>(), sram_port_);
  ctx_.cell().energy_pj[int(EnergyKind::vector)] += f32_energy_pj(ops, ctx_.cfg().energy);
  return lane_cycles(ops.total(), ctx_.cfg().vector_unit.lanes);
}

}  // namespace hdq::npu
