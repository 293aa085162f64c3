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
  const bool contiguous = (d.src_pitch == d.row_bytes && d.dst_pitch == d.row_bytes) || d.rows == 1;
  if (contiguous) {
    std::memmove(dst.write_direct(d.dst, d.bytes()), src.read_direct(d.src, d.bytes()), d.bytes());
    return;
  }
  for (std::uint32_t r = 0; r < d.rows; ++r)
    std::memmove(dst.write_direct(d.dst + r * d.dst_pitch, d.row_bytes),
                 src.read_direct(d.src + r * d.src_pitch, d.row_bytes), d.row_bytes);
}

Dma::Dma(const sc_core::sc_module_name& name, const Context& ctx)
    : BlockModule(name, Unit::dma, ctx), dram("dram"), dram_port_(dram, "dram", ctx, EnergyKind::dram) {
  dram.register_invalidate_direct_mem_ptr(this, &Dma::invalidate_dram);
}

void Dma::host_copy(const DmaDescriptor& d) {
  std::vector<std::uint8_t> row(d.row_bytes);
  auto debug = [&](Space space, tlm::tlm_command cmd, std::uint64_t addr) {
    tlm::tlm_generic_payload gp;
    gp.set_command(cmd);
    gp.set_address(addr);
    gp.set_data_ptr(row.data());
    gp.set_data_length(d.row_bytes);
    gp.set_streaming_width(d.row_bytes);
    const unsigned int n = space == Space::dram ? dram->transport_dbg(gp) : sram->transport_dbg(gp);
    if (n != d.row_bytes) throw ConfigError(fmt::format("dma: host copy outside {}", space == Space::dram ? "dram" : "sram"));
  };
  for (std::uint32_t r = 0; r < d.rows; ++r) {
    debug(d.src_space, tlm::TLM_READ_COMMAND, d.src + r * d.src_pitch);
    debug(d.dst_space, tlm::TLM_WRITE_COMMAND, d.dst + r * d.dst_pitch);
  }
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
