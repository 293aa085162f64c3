// Vector unit: f32 element-wise work with vector_unit.lanes operations per
// cycle: dequantization and the GEMM epilogues, softmax cross-entropy, the
// bias gradient and the SGD update. Each operation calls, or repeats
// operation for operation, the functional engine's f32 code, so the bits are
// the same (docs/contract.md §5-§6, models/nn/mlp.h).
//
// Opcodes (descriptor fields in use):
//   kVecDequant   src int32 rows x cols -> dst f32 (may alias src):
//                 y = (((f32)o * f0) * f1) ...; each factor i is the scale of
//                 the QuantRecord at factor_record[i], or factor_value[i] when
//                 that is kNoRecord. Then, by flags:
//                   kVecBias     y += bias[col], bias at aux0 (cols f32)
//                   kVecClipMask y = 0 where the clip mask at aux2 is set
//                   kVecReluGrad y = 0 where the ReLU mask at aux3 is clear
//                 y is written to dst, then with kVecRelu max(y, 0) to aux1
//                 and with kVecReluMask the ReLU mask (bit set where y > 0,
//                 i.e. where ReLU' = 1) to aux3: the backward keeps 1 bit per
//                 pre-activation instead of its f32 value.
//   kVecSoftmax   softmax cross-entropy of logits src (rows x cols) with
//                 labels aux0 (int32 per row) and active classes aux1 (one
//                 byte per class): gradient to dst, mean loss (f32) to aux2
//   kVecColumnSum dst[c] += src[r][c] for rows ascending (dst zeroed first
//                 with kVecInit): the bias gradient, chunk after chunk
//   kVecSgd       SGD as PyTorch on n = rows x cols values: w at dst, g at
//                 src, momentum buffer at aux0; kVecInit marks the first step
//                 (buf = d); lr, momentum, weight_decay from the descriptor
// Cost: lane_cycles(f32 operations); energy from the f32 add/multiply table.
// The layer operations of layer graphs (opcodes from kLayerFirst, their own
// descriptor) are in sim/blocks/layer_ops.h.
#pragma once

#include <vector>

#include "sim/blocks/block_module.h"
#include "sim/blocks/layer_ops.h"
#include "sim/cost/energy.h"

namespace hdq::npu {

inline constexpr std::uint32_t kVecDequant = 1, kVecSoftmax = 2, kVecColumnSum = 3, kVecSgd = 4;
inline constexpr std::uint8_t kVecBias = 1, kVecRelu = 2, kVecClipMask = 4, kVecReluGrad = 8, kVecInit = 16,
                                 kVecReluMask = 32;
inline constexpr std::uint32_t kNoRecord = 0xffffffffu;

struct VectorDescriptor {
  std::uint32_t src = 0, dst = 0;
  std::uint32_t rows = 0, cols = 0;
  std::uint32_t aux0 = 0, aux1 = 0, aux2 = 0, aux3 = 0;
  std::uint32_t factor_record[4] = {kNoRecord, kNoRecord, kNoRecord, kNoRecord};
  float factor_value[4] = {1.0f, 1.0f, 1.0f, 1.0f};
  std::uint8_t factors = 0;
  std::uint8_t flags = 0;
  float lr = 0.0f, momentum = 0.0f, weight_decay = 0.0f;

  std::uint64_t elements() const { return std::uint64_t(rows) * cols; }
  void accesses(std::uint32_t opcode, Footprint& f) const;
};

class VectorCore {
 public:
  // Returns the f32 operations performed (for cost).
  F32Ops run(std::uint32_t opcode, const VectorDescriptor& d, MemoryPort& sram);

 private:
  std::vector<float> sums_;
  std::vector<std::uint8_t> flags_;
};

class VectorUnit final : public BlockModule {
 public:
  VectorUnit(const sc_core::sc_module_name& name, const Context& ctx) : BlockModule(name, Unit::vector, ctx) {}

 private:
  std::uint64_t execute(const Command& c) override;
  VectorCore core_;
  LayerCore layers_;  // the layer operations (opcodes from kLayerFirst)
};

}  // namespace hdq::npu
