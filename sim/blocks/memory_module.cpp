#include "sim/blocks/memory_module.h"

namespace hdq::npu {

MemoryModule::MemoryModule(const sc_core::sc_module_name& name, EnergyKind kind, const Context& ctx)
    : sc_core::sc_module(name), socket("socket"), kind_(kind), ctx_(ctx), store_(std::string(this->name()), 0) {
  socket.register_b_transport(this, &MemoryModule::b_transport);
  socket.register_transport_dbg(this, &MemoryModule::transport_dbg);
  socket.register_get_direct_mem_ptr(this, &MemoryModule::get_direct_mem_ptr);
}

void MemoryModule::resize(std::uint64_t bytes) {
  store_.resize(bytes);
  if (dmi_granted_)  // (grants exist only once the simulation runs, when the socket's bindings are complete)
    for (unsigned i = 0; i < socket.size(); ++i) socket[i]->invalidate_direct_mem_ptr(0, ~sc_dt::uint64{0});
  dmi_granted_ = false;
}

bool MemoryModule::get_direct_mem_ptr(int, tlm::tlm_generic_payload&, tlm::tlm_dmi& dmi) {
  if (store_.size() == 0) return false;
  dmi.set_dmi_ptr(store_.data());
  dmi.set_start_address(0);
  dmi.set_end_address(store_.size() - 1);
  dmi.allow_read_write();
  dmi.set_read_latency(sc_core::SC_ZERO_TIME);  // time comes from the blocks' cost model
  dmi.set_write_latency(sc_core::SC_ZERO_TIME);
  dmi_granted_ = true;
  return true;
}

bool MemoryModule::move(tlm::tlm_generic_payload& gp) {
  const std::uint64_t addr = gp.get_address(), len = gp.get_data_length();
  if (gp.get_byte_enable_ptr() || gp.get_streaming_width() < len) {
    gp.set_response_status(tlm::TLM_BYTE_ENABLE_ERROR_RESPONSE);
    return false;
  }
  if (addr > store_.size() || len > store_.size() - addr) {
    gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
    return false;
  }
  if (gp.is_read()) std::memcpy(gp.get_data_ptr(), store_.data() + addr, len);
  else if (gp.is_write()) std::memcpy(store_.data() + addr, gp.get_data_ptr(), len);
  gp.set_response_status(tlm::TLM_OK_RESPONSE);
  return true;
}

void MemoryModule::b_transport(int, tlm::tlm_generic_payload& gp, sc_core::sc_time&) {
  if (!move(gp)) return;
  if (kind_ == EnergyKind::sram) ctx_.charge_sram(gp.get_data_length());
  else ctx_.charge_dram(gp.get_data_length());
}

unsigned int MemoryModule::transport_dbg(int, tlm::tlm_generic_payload& gp) {
  return move(gp) ? gp.get_data_length() : 0;
}

}  // namespace hdq::npu
