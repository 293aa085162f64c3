// The host: the TLM initiator that drives the NPU through its command
// processor, as a driver on the application processor would. For each Job it
// loads the inputs and the command queue into DRAM (debug transport: the
// host's own writes cost the NPU nothing), programs QUEUE_BASE / QUEUE_COUNT,
// starts the run (CTRL.START), waits for the completion interrupt, reads
// STATUS and, when the run succeeded, reads the results back (but those
// mapped onto its buffers, HostRead::mapped: its loads there go to them too); then it pauses
// the simulation so the engine gets control back.
#pragma once

#include <systemc>
#include <tlm>
#include <tlm_utils/simple_initiator_socket.h>

#include "sim/host/step_program.h"

namespace hdq::npu {

class Host final : public sc_core::sc_module {
 public:
  tlm_utils::simple_initiator_socket<Host> mmio;  // to the command processor's registers
  tlm_utils::simple_initiator_socket<Host> dram;  // debug access to DRAM

  Host(const sc_core::sc_module_name& name, sc_core::sc_event& irq);
  // Hands `job` to the host thread; the next sc_start() runs it.
  void submit(Job& job);

 private:
  void run();
  void execute(Job& job);
  // The mapped read (HostRead::mapped) holding DRAM [addr, addr + len), or null.
  static const HostRead* mapped(const Job& job, std::uint64_t addr, std::uint64_t len);
  void debug(tlm::tlm_command cmd, std::uint64_t addr, std::uint8_t* data, std::size_t len);
  void write_register(std::uint64_t addr, std::uint32_t v);
  std::uint32_t read_register(std::uint64_t addr);

  sc_core::sc_event& irq_;
  sc_core::sc_event go_;
  Job* job_ = nullptr;
};

}  // namespace hdq::npu
