// DMA: 2-D copies between DRAM and SRAM (either direction, or within one).
//
// Descriptor (opcode kDmaCopy = 1), 48 bytes:
//   src, dst            byte addresses in their spaces
//   src_pitch, dst_pitch bytes from one row to the next
//   rows, row_bytes     the block copied: rows x row_bytes
//   src_space, dst_space 0 = DRAM, 1 = SRAM
// Cost: one transfer of rows x row_bytes (sim/cost/cycles.h dma_cycles):
// dma.latency_cycles (+ dram.latency_cycles when DRAM is an end), then the
// bytes at the narrowest of the DMA, DRAM and SRAM bandwidths. A contiguous
// block moves in one read and one write transaction, a strided one in one
// per row (the model moves the bytes by DMI).
//
// kDmaHostCopy = 2 (same descriptor) is the host's own transfer, not the
// NPU's: a result the simulator's driver reads (every layer's output, the
// weight gradients for its optimizer) copied out of SRAM into the DRAM buffer
// the host reads back, when the schedule keeps it on chip. Like the host's
// loads it costs nothing (no cycles, energy or traffic: debug transport); it
// is ordered like the store it stands for. A device training on its own would
// not make it (docs/npu.md, "Residency and fusion").
//
// A copy whose DRAM block lies in a buffer the job maps onto the host's
// (Context::HostWindow) uses the host's bytes instead (charged alike); a
// block partly in one is a ConfigError.
#pragma once

#include <vector>

#include "sim/blocks/block_module.h"

namespace hdq::npu {

inline constexpr std::uint32_t kDmaCopy = 1, kDmaHostCopy = 2;

struct DmaDescriptor {
  std::uint64_t src = 0, dst = 0;
  std::uint64_t src_pitch = 0, dst_pitch = 0;
  std::uint32_t rows = 0, row_bytes = 0;
  Space src_space = Space::dram, dst_space = Space::sram;

  std::uint64_t bytes() const { return std::uint64_t(rows) * row_bytes; }
  bool touches_dram() const { return src_space == Space::dram || dst_space == Space::dram; }
  // The source and destination ranges (first to last byte of the block).
  void accesses(Footprint& f) const;
};

// The function: copy the block (memmove per row, or once when contiguous).
class DmaCore {
 public:
  void run(const DmaDescriptor& d, MemoryPort& dram, MemoryPort& sram);
};

// The TLM shell: BlockModule's command and SRAM sockets plus one to DRAM.
class Dma final : public BlockModule {
 public:
  tlm_utils::simple_initiator_socket<Dma> dram;

  Dma(const sc_core::sc_module_name& name, const Context& ctx);

 private:
  std::uint64_t execute(const Command& c) override;
  void host_copy(const DmaDescriptor& d);
  // Where DRAM [addr, addr + len) is: in a host window (Context::HostWindow),
  // or null when none overlaps it; a ConfigError when one holds part of it,
  // or when `write` and it is a read-only one.
  const Context::HostWindow* window(std::uint64_t addr, std::uint64_t len, bool write = false) const;
  friend class WindowedDram;
  void invalidate_dram(sc_dt::uint64, sc_dt::uint64) { dram_port_.invalidate(); }

  TlmMemoryPort dram_port_;
  DmaCore core_;
};

}  // namespace hdq::npu
