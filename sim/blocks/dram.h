// DRAM: the tensors of a training step (inputs, weights, quantized operands,
// activations, gradients), the command queue and the momentum buffers. Its
// bandwidth and latency (dram.bytes_per_cycle, dram.latency_cycles) enter the
// DMA's cost; every byte moved by b_transport costs energy.dram_pj_per_byte.
// The model backs only the bytes a step uses; a step needing more than
// dram.size_bytes is an error naming that field.
#pragma once

#include "sim/blocks/memory_module.h"

namespace hdq::npu {

class Dram final : public MemoryModule {
 public:
  Dram(const sc_core::sc_module_name& name, const Context& ctx) : MemoryModule(name, EnergyKind::dram, ctx) {}
  // Backs at least `bytes` (contents kept).
  void reserve(std::uint64_t bytes) {
    if (size() < bytes) resize(bytes);
  }
};

}  // namespace hdq::npu
