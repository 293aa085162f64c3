// Command processor: memory-mapped registers, a command queue in DRAM, and
// the sequencing of the blocks.
//
// Registers (32-bit, byte offsets from the base of `mmio`):
//   offset name           access reset meaning
//   0x00   CTRL           W      0     bit 0 START: run QUEUE_COUNT commands from QUEUE_BASE
//   0x04   STATUS         R/W    0     bit 0 BUSY, bit 1 DONE, bit 2 ERROR; writing clears DONE and ERROR
//   0x08   QUEUE_BASE_LO  R/W    0     DRAM byte address of command 0 (low 32 bits)
//   0x0c   QUEUE_BASE_HI  R/W    0     (high 32 bits)
//   0x10   QUEUE_COUNT    R/W    0     commands in the queue (128 bytes each, sim/blocks/command.h)
//   0x14   ERROR_COMMAND  R      0     id of the command that failed (valid with ERROR)
//   0x18   COMPLETED      R      0     commands completed by the last run
// When the run ends (all commands done, or one failed), STATUS gets DONE
// (and ERROR) and the `irq` event fires. A failed command stops the queue:
// nothing after it runs, so the host finds no results of that run. The text
// of the failure is a modelling convenience read with error_text().
//
// Sequencing (loosely timed; times in cycles from the start of the run):
//   issue_i = max(issue_{i-1} + dispatch_cycles, start of the previous command
//             of the same unit)   -- in-order decode; each unit holds one
//             command waiting behind the one it runs
//   start_i = max(issue_i, the unit's previous end, the end of every earlier
//             command with a conflicting access)   -- Access in command.h:
//             overlapping ranges of the same memory, one of them written
//   end_i   = start_i + the busy cycles the block returns
// So the DMA streams the next tile while the MAC array works on the current
// one when the host double-buffers (sim/host/step_program.h), and a hazard on
// any buffer orders two commands. A command's descriptor fetch (128 bytes)
// is charged as DRAM traffic and assumed prefetched during decode. The run
// takes the largest end; each command is charged the part of that makespan
// it adds (end_i - max(end_j, j < i), if positive), so the cells of the
// ledger sum to the run's cycles, and leakage follows that time. The functions
// of the blocks run when the command is issued, in queue order, which the
// hazard rule makes equivalent to any order the times describe. The kernel
// time follows the issue time through a tlm_quantumkeeper, synchronising once
// per simulation.quantum_cycles, and reaches the makespan at the end.
#pragma once

#include <array>
#include <string>
#include <vector>
#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>
#include <tlm_utils/simple_target_socket.h>
#include <tlm_utils/tlm_quantumkeeper.h>

#include "sim/blocks/block_module.h"

namespace hdq::npu {

namespace cp_reg {
inline constexpr std::uint64_t kCtrl = 0x00, kStatus = 0x04, kQueueBaseLo = 0x08, kQueueBaseHi = 0x0c,
                               kQueueCount = 0x10, kErrorCommand = 0x14, kCompleted = 0x18;
inline constexpr std::uint32_t kStart = 1u;                            // CTRL
inline constexpr std::uint32_t kBusy = 1u, kDone = 2u, kError = 4u;    // STATUS
}  // namespace cp_reg

// Who sees each command's activity (the VCD writer). Commands are reported in
// queue order, so their start times are not monotonic; end_of_run() says no
// command of this run will start earlier than `now`.
class ActivityObserver {
 public:
  virtual ~ActivityObserver() = default;
  virtual void command(Unit unit, std::uint32_t id, const sc_core::sc_time& start, const sc_core::sc_time& end) = 0;
  virtual void end_of_run() = 0;
};

// The accesses of a command, from its block's descriptor.
void footprint(const Command& c, Footprint& f);

class CommandProcessor final : public sc_core::sc_module {
 public:
  tlm_utils::simple_target_socket<CommandProcessor> mmio;
  tlm_utils::simple_initiator_socket<CommandProcessor> dram;
  // One per Unit, in Unit order: dma, mac_array, hadamard, quantizer, vector.
  std::array<tlm_utils::simple_initiator_socket<CommandProcessor>, kUnits> units;
  sc_core::sc_event irq;

  CommandProcessor(const sc_core::sc_module_name& name, const Context& ctx);
  const std::string& error_text() const { return error_text_; }
  bool error_is_numeric() const { return error_numeric_; }
  void set_observer(ActivityObserver* o) { observer_ = o; }

 private:
  void b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  void run();

  struct InFlight {
    Access access;
    std::uint64_t end = 0;
  };

  const Context& ctx_;
  ActivityObserver* observer_ = nullptr;
  std::vector<InFlight> in_flight_;
  Footprint footprint_;
  sc_core::sc_event start_;
  tlm_utils::tlm_quantumkeeper keeper_;
  std::uint32_t status_ = 0, count_ = 0, error_command_ = 0, completed_ = 0;
  std::uint64_t base_ = 0;
  std::string error_text_;
  bool error_numeric_ = false;
};

}  // namespace hdq::npu
