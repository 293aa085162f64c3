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

const Context::HostWindow* Dma::window(std::uint64_t addr, std::uint64_t len, bool write) const {
  for (const Context::HostWindow& w : ctx_.host_windows) {
    if (addr >= w.addr && addr - w.addr <= w.bytes && len <= w.bytes - (addr - w.addr)) {
      if (write && !w.writable)
        throw ConfigError(fmt::format("dma: a write to DRAM [{:#x}, {:#x}), a load's source that nothing writes", addr,
                                      addr + len));
      return &w;
    }
    if (addr < w.addr + w.bytes && w.addr < addr + len)
      throw ConfigError(fmt::format("dma: DRAM [{:#x}, {:#x}) is partly in the host's buffer at [{:#x}, {:#x})", addr,
                                    addr + len, w.addr, w.addr + w.bytes));
  }
  return nullptr;
}

void Dma::host_copy(const DmaDescriptor& d) {
  if (d.rows == 0) return;
  TlmMemoryPort& src = d.src_space == Space::dram ? dram_port_ : sram_port_;
  TlmMemoryPort& dst = d.dst_space == Space::dram ? dram_port_ : sram_port_;
  const std::uint64_t src_span = MemoryPort::block_span(d.src_pitch, d.rows, d.row_bytes),
                      dst_span = MemoryPort::block_span(d.dst_pitch, d.rows, d.row_bytes);
  const Context::HostWindow* v = d.src_space == Space::dram ? window(d.src, src_span) : nullptr;
  const std::uint8_t* from = v ? v->host + (d.src - v->addr) : src.uncharged(d.src, src_span);
  const Context::HostWindow* w = d.dst_space == Space::dram ? window(d.dst, dst_span, true) : nullptr;
  std::uint8_t* to = w ? w->host + (d.dst - w->addr) : dst.uncharged(d.dst, dst_span);
  for (std::uint32_t r = 0; r < d.rows; ++r) std::memmove(to + r * d.dst_pitch, from + r * d.src_pitch, d.row_bytes);
}

// DRAM as the DMA sees it during a job: blocks in a host window are the host's bytes, charged as DRAM's.
class WindowedDram final : public MemoryPort {
 public:
  WindowedDram(const Dma& dma, TlmMemoryPort& dram) : dma_(dma), dram_(dram) {}
  void read(std::uint64_t addr, std::span<std::uint8_t> out) override {
    if (out.empty()) return;
    std::memcpy(out.data(), read_block(addr, out.size(), 1, out.size()), out.size());
  }
  void write(std::uint64_t addr, std::span<const std::uint8_t> in) override {
    if (in.empty()) return;
    std::memcpy(write_block(addr, in.size(), 1, in.size()), in.data(), in.size());
  }
  const std::uint8_t* read_block(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                                 std::uint64_t row_bytes) override {
    return at(addr, dram_.read_block(addr, pitch, rows, row_bytes), block_span(pitch, rows, row_bytes));
  }
  std::uint8_t* write_block(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                            std::uint64_t row_bytes) override {
    return at(addr, dram_.write_block(addr, pitch, rows, row_bytes), block_span(pitch, rows, row_bytes), true);
  }

 private:
  template <typename P>
  P at(std::uint64_t addr, P in_dram, std::uint64_t span, bool write = false) const {
    const Context::HostWindow* w = dma_.window(addr, span, write);
    return w ? w->host + (addr - w->addr) : in_dram;
  }
  const Dma& dma_;
  TlmMemoryPort& dram_;
};

std::uint64_t Dma::execute(const Command& c) {
  if (c.header.opcode == kDmaHostCopy) {
    host_copy(c.as<DmaDescriptor>());
    return 0;
  }
  if (c.header.opcode != kDmaCopy) throw ConfigError(fmt::format("dma: command {} has opcode {}", c.header.id, c.header.opcode));
  const DmaDescriptor d = c.as<DmaDescriptor>();
  if (ctx_.host_windows.empty()) {
    core_.run(d, dram_port_, sram_port_);
  } else {
    WindowedDram dram(*this, dram_port_);
    core_.run(d, dram, sram_port_);
  }
  return dma_cycles(d.bytes(), d.touches_dram(), ctx_.cfg());
}

}  // namespace hdq::npu
