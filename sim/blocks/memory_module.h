// The TLM target shared by the SRAM and DRAM models: a byte array behind a
// multi-initiator socket. b_transport moves bytes and charges them to the
// ledger (count and energy per byte); DMI grants the whole array to blocks,
// which then charge what they touch themselves (TlmMemoryPort); transport_dbg
// moves bytes for free (the host's loads and read-backs, which are outside the
// NPU). A transaction outside the memory gets TLM_ADDRESS_ERROR_RESPONSE;
// resizing invalidates every DMI grant.
#pragma once

#include <systemc>
#include <tlm>
#include <tlm_utils/multi_passthrough_target_socket.h>

#include "sim/blocks/block_module.h"

namespace hdq::npu {

class MemoryModule : public sc_core::sc_module {
 public:
  tlm_utils::multi_passthrough_target_socket<MemoryModule> socket;

  MemoryModule(const sc_core::sc_module_name& name, EnergyKind kind, const Context& ctx);
  std::uint64_t size() const { return store_.size(); }

 protected:
  void resize(std::uint64_t bytes);

 private:
  void b_transport(int id, tlm::tlm_generic_payload& gp, sc_core::sc_time& delay);
  unsigned int transport_dbg(int id, tlm::tlm_generic_payload& gp);
  bool get_direct_mem_ptr(int id, tlm::tlm_generic_payload& gp, tlm::tlm_dmi& dmi);
  bool move(tlm::tlm_generic_payload& gp);

  EnergyKind kind_;
  const Context& ctx_;
  ByteStore store_;
  bool dmi_granted_ = false;
};

}  // namespace hdq::npu
