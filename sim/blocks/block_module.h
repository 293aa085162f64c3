// What every TLM shell of a block shares: the context (config and ledger),
// a MemoryPort over an initiator socket, the extension that carries a
// command's outcome back to the command processor, and the base module of the
// compute blocks (a command target socket plus an SRAM initiator socket).
#pragma once

#include <span>
#include <string>
#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>

#include "sim/blocks/command.h"
#include "sim/blocks/memory.h"
#include "sim/config/npu_config.h"
#include "sim/cost/ledger.h"

namespace hdq::npu {

// Shared by all modules of one NPU; the engine points it at its config and ledger.
struct Context {
  const NpuConfig* config = nullptr;
  Ledger* ledger = nullptr;

  const NpuConfig& cfg() const { return *config; }
  CostCell& cell() const { return ledger->current(); }
  sc_core::sc_time cycles(std::uint64_t n) const { return sc_core::sc_time(double(n) * config->cycle_ns(), sc_core::SC_NS); }
  // Memory traffic not carried by a transaction of its own: the MAC array's
  // operand re-streams (SRAM), the command processor's descriptor fetches (DRAM).
  void charge_sram(std::uint64_t bytes) const;
  void charge_dram(std::uint64_t bytes) const;

  // A DRAM buffer of the running job that no later job reads, mapped for the
  // job onto a host buffer: one the host reads back at the end (the host's
  // loads, host copies (dma.h kDmaHostCopy) and the DMA's copies there use
  // it, and nothing is read back), or, read-only, the source of a load that
  // nothing writes (the DMA reads it; nothing is loaded). A simulation
  // shortcut, like DMI: the bits and costs are those of the DRAM bytes.
  struct HostWindow {
    std::uint64_t addr = 0, bytes = 0;
    std::uint8_t* host = nullptr;
    bool writable = true;  // false: a load's source, never written
  };
  std::span<const HostWindow> host_windows;
};

// Filled by the block that executes a command: its busy cycles, or the error
// that stopped it (the block also sets TLM_GENERIC_ERROR_RESPONSE).
struct CommandResult : tlm::tlm_extension<CommandResult> {
  std::uint64_t cycles = 0;
  std::string error;
  bool numeric = false;  // a NumericError (a value the contract forbids) rather than a ConfigError

  tlm::tlm_extension_base* clone() const override { return new CommandResult(*this); }
  void copy_from(const tlm::tlm_extension_base& other) override { *this = static_cast<const CommandResult&>(other); }
};

// A memory behind an initiator socket: read/write by b_transport (the target
// charges the bytes), direct access by DMI (granted for the whole memory,
// cached until the target invalidates it; this port charges the bytes to the
// ledger as the target would). An error becomes a ConfigError naming the target.
class TlmMemoryPort final : public MemoryPort {
 public:
  TlmMemoryPort(tlm::tlm_initiator_socket<>& socket, std::string target, const Context& ctx, EnergyKind kind)
      : socket_(socket), target_(std::move(target)), ctx_(ctx), kind_(kind) {}
  void read(std::uint64_t addr, std::span<std::uint8_t> out) override;
  void write(std::uint64_t addr, std::span<const std::uint8_t> in) override;
  const std::uint8_t* read_block(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                                 std::uint64_t row_bytes) override {
    return charged(addr, pitch, rows, row_bytes);
  }
  std::uint8_t* write_block(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                            std::uint64_t row_bytes) override {
    return charged(addr, pitch, rows, row_bytes);
  }
  // `len` bytes at `addr` by DMI, charged nothing: the host's own transfers
  // (dma.h kDmaHostCopy), which the model moves as debug transport would.
  std::uint8_t* uncharged(std::uint64_t addr, std::uint64_t len) { return direct(addr, len); }
  // The owning module forwards its socket's invalidate_direct_mem_ptr here.
  void invalidate() { dmi_valid_ = false; }

 private:
  void transport(tlm::tlm_command cmd, std::uint64_t addr, std::uint8_t* data, std::size_t len);
  std::uint8_t* direct(std::uint64_t addr, std::uint64_t len);
  std::uint8_t* charged(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows, std::uint64_t row_bytes);
  tlm::tlm_initiator_socket<>& socket_;
  std::string target_;
  const Context& ctx_;
  EnergyKind kind_;
  tlm::tlm_dmi dmi_;
  bool dmi_valid_ = false;
};

// A compute block: takes one Command per b_transport on `command`, reads and
// writes its operands in SRAM through `sram`.
class BlockModule : public sc_core::sc_module {
 public:
  tlm_utils::simple_target_socket<BlockModule> command;
  tlm_utils::simple_initiator_socket<BlockModule> sram;

  BlockModule(const sc_core::sc_module_name& name, Unit unit, const Context& ctx);

 protected:
  // Runs the command's function and charges its energy; returns its busy cycles.
  virtual std::uint64_t execute(const Command& c) = 0;

  const Context& ctx_;
  TlmMemoryPort sram_port_;

 private:
  void b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  void invalidate_sram(sc_dt::uint64, sc_dt::uint64) { sram_port_.invalidate(); }
  Unit unit_;
};

}  // namespace hdq::npu
