#include "sim/blocks/dma.h"

#include <fmt/format.h>

#include "models/common/errors.h"
#include "sim/cost/cycles.h"

namespace hdq::npu {

void DmaDescriptor::accesses(Footprint& f) const {
  if (rows == 0) return;
  f.push_back({src_space, false, src, (rows - 1) * src_pitch + row_bytes});
  f.push_back({dst_space, true, dst, (rows - 1) * dst_pitch + row_bytes});
}

void DmaCore::run(const DmaDescriptor& d, MemoryPort& dram, MemoryPort& sram) {
  if (d.rows == 0) return;
  MemoryPort& src = d.src_space == Space::dram ? dram : sram;
  MemoryPort& dst = d.dst_space == Space::dram ? dram : sram;
  const std::uint8_t* from = src.read_block(d.src, d.src_pitch, d.rows, d.row_bytes);
  std::uint8_t* to = dst.write_block(d.dst, d.dst_pitch, d.rows, d.row_bytes);
  const bool contiguous = (d.src_pitch == d.row_bytes && d.dst_pitch == d.row_bytes) || d.rows == 1;
  if (contiguous) {
    std::memmove(to, from, d.bytes());
    return;
  }
  for (std::uint32_t r = 0; r < d.rows; ++r) std::memmove(to + r * d.dst_pitch, from + r * d.src_pitch, d.row_bytes);
}

Dma::Dma(const sc_core::sc_module_name& name, const Context& ctx)
    : BlockModule(name, Unit::dma, ctx), dram("dram"), dram_port_(dram, "dram", ctx, EnergyKind::dram) {
  dram.register_invalidate_direct_mem_ptr(this, &Dma::invalidate_dram);
}

void Dma::host_copy(const DmaDescriptor& d) {
  if (d.rows == 0) return;
  TlmMemoryPort& src = d.src_space == Space::dram ? dram_port_ : sram_port_;
  TlmMemoryPort& dst = d.dst_space == Space::dram ? dram_port_ : sram_port_;
  const std::uint8_t* from = src.uncharged(d.src, MemoryPort::block_span(d.src_pitch, d.rows, d.row_bytes));
  std::uint8_t* to = dst.uncharged(d.dst, MemoryPort::block_span(d.dst_pitch, d.rows, d.row_bytes));
  for (std::uint32_t r = 0; r < d.rows; ++r) std::memmove(to + r * d.dst_pitch, from + r * d.src_pitch, d.row_bytes);
}

std::uint64_t Dma::execute(const Command& c) {
  if (c.header.opcode == kDmaHostCopy) {
    host_copy(c.as<DmaDescriptor>());
    return 0;
  }
  if (c.header.opcode != kDmaCopy) throw ConfigError(fmt::format("dma: command {} has opcode {}", c.header.id, c.header.opcode));
  const DmaDescriptor d = c.as<DmaDescriptor>();
  core_.run(d, dram_port_, sram_port_);
  return dma_cycles(d.bytes(), d.touches_dram(), ctx_.cfg());
}

}  // namespace hdq::npu
