#include "sim/blocks/block_module.h"

#include <fmt/format.h>

#include "models/common/errors.h"

namespace hdq::npu {

void Context::charge_sram(std::uint64_t bytes) const {
  CostCell& c = cell();
  c.sram_bytes += bytes;
  c.energy_pj[int(EnergyKind::sram)] += double(bytes) * config->energy.sram_byte();
}

void Context::charge_dram(std::uint64_t bytes) const {
  CostCell& c = cell();
  c.dram_bytes += bytes;
  c.energy_pj[int(EnergyKind::dram)] += double(bytes) * config->energy.dram_byte();
}

void TlmMemoryPort::transport(tlm::tlm_command cmd, std::uint64_t addr, std::uint8_t* data, std::size_t len) {
  if (len == 0) return;
  tlm::tlm_generic_payload gp;
  gp.set_command(cmd);
  gp.set_address(addr);
  gp.set_data_ptr(data);
  gp.set_data_length(static_cast<unsigned int>(len));
  gp.set_streaming_width(static_cast<unsigned int>(len));
  gp.set_byte_enable_ptr(nullptr);
  gp.set_dmi_allowed(false);
  gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;  // memory time is part of the command's cost model
  socket_->b_transport(gp, delay);
  if (gp.is_response_error())
    throw ConfigError(fmt::format("{}: {} of {} bytes at {:#x} failed: {}", target_,
                                  cmd == tlm::TLM_READ_COMMAND ? "read" : "write", len, addr,
                                  gp.get_response_string()));
}

std::uint8_t* TlmMemoryPort::direct(std::uint64_t addr, std::uint64_t len) {
  if (!dmi_valid_) {
    tlm::tlm_generic_payload gp;
    gp.set_address(addr);
    gp.set_command(tlm::TLM_READ_COMMAND);
    dmi_valid_ = socket_->get_direct_mem_ptr(gp, dmi_) && dmi_.is_read_write_allowed();
    if (!dmi_valid_) throw ConfigError(fmt::format("{}: no direct memory access granted", target_));
  }
  if (addr < dmi_.get_start_address() || len > dmi_.get_end_address() + 1 - addr)
    throw ConfigError(fmt::format("{}: access [{:#x}, {:#x}) is outside its {} bytes", target_, addr, addr + len,
                                  dmi_.get_end_address() + 1));
  return dmi_.get_dmi_ptr() + (addr - dmi_.get_start_address());
}

std::uint8_t* TlmMemoryPort::charged(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                                     std::uint64_t row_bytes) {
  std::uint8_t* p = direct(addr, block_span(pitch, rows, row_bytes));
  if (kind_ == EnergyKind::sram) ctx_.charge_sram(rows * row_bytes);
  else ctx_.charge_dram(rows * row_bytes);
  return p;
}

void TlmMemoryPort::read(std::uint64_t addr, std::span<std::uint8_t> out) {
  transport(tlm::TLM_READ_COMMAND, addr, out.data(), out.size());
}

void TlmMemoryPort::write(std::uint64_t addr, std::span<const std::uint8_t> in) {
  // TLM's data pointer is non-const; a write only reads from it.
  transport(tlm::TLM_WRITE_COMMAND, addr, const_cast<std::uint8_t*>(in.data()), in.size());
}

BlockModule::BlockModule(const sc_core::sc_module_name& name, Unit unit, const Context& ctx)
    : sc_core::sc_module(name), command("command"), sram("sram"), ctx_(ctx),
      sram_port_(sram, "sram", ctx, EnergyKind::sram), unit_(unit) {
  command.register_b_transport(this, &BlockModule::b_transport);
  sram.register_invalidate_direct_mem_ptr(this, &BlockModule::invalidate_sram);
}

void BlockModule::b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time& delay) {
  CommandResult* result = nullptr;
  gp.get_extension(result);
  if (gp.get_command() != tlm::TLM_WRITE_COMMAND || gp.get_data_length() != kCommandBytes || !result) {
    gp.set_response_status(tlm::TLM_COMMAND_ERROR_RESPONSE);
    return;
  }
  Command c;
  std::memcpy(&c, gp.get_data_ptr(), kCommandBytes);
  try {
    if (c.header.unit != unit_) throw ConfigError(fmt::format("command {} sent to the wrong block", c.header.id));
    result->cycles = execute(c);
    delay += ctx_.cycles(result->cycles);
    gp.set_response_status(tlm::TLM_OK_RESPONSE);
  } catch (const NumericError& e) {
    result->error = e.what();
    result->numeric = true;
    gp.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
  } catch (const std::exception& e) {
    result->error = e.what();
    gp.set_response_status(tlm::TLM_GENERIC_ERROR_RESPONSE);
  }
}

}  // namespace hdq::npu
