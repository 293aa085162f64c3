// SRAM scratchpad: sram.size_bytes of operand, accumulator and vector
// buffers in sram.banks banks of sram.bank_width_bytes per cycle, addresses
// interleaved across the banks, so a block streaming consecutive bytes sees
// banks x bank_width bytes per cycle (the DMA's cost uses that bandwidth; the
// config loader checks it can feed the MAC array). Capacity is enforced when
// the host plans a step: a step whose smallest tiling does not fit is an
// error naming sram.size_bytes before anything runs, and an access outside
// the SRAM is an address error.
#pragma once

#include "sim/blocks/memory_module.h"

namespace hdq::npu {

class Sram final : public MemoryModule {
 public:
  Sram(const sc_core::sc_module_name& name, const Context& ctx) : MemoryModule(name, EnergyKind::sram, ctx) {}
  void configure(const NpuConfig& c) {
    if (size() != c.sram.size_bytes) resize(c.sram.size_bytes);
  }
};

}  // namespace hdq::npu
