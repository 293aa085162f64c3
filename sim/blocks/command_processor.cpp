#include "sim/blocks/command_processor.h"

#include <algorithm>

#include "sim/blocks/dma.h"
#include "sim/blocks/hadamard_unit.h"
#include "sim/blocks/mac_array.h"
#include "sim/blocks/quantizer_unit.h"
#include "sim/blocks/vector_unit.h"

namespace hdq::npu {

namespace {
tlm_utils::simple_initiator_socket<CommandProcessor> unit_socket(Unit u) {
  return tlm_utils::simple_initiator_socket<CommandProcessor>(sc_core::sc_gen_unique_name(std::string("to_").append(name(u)).c_str()));
}
}  // namespace

void footprint(const Command& c, Footprint& f) {
  switch (c.header.unit) {
    case Unit::dma: c.as<DmaDescriptor>().accesses(f); break;
    case Unit::mac_array: c.as<MacDescriptor>().accesses(f); break;
    case Unit::hadamard: c.as<HadamardDescriptor>().accesses(c.header.opcode, f); break;
    case Unit::quantizer: c.as<QuantizerDescriptor>().accesses(c.header.opcode, f); break;
    case Unit::vector:
      if (is_layer_op(c.header.opcode)) c.as<LayerDescriptor>().accesses(c.header.opcode, f);
      else c.as<VectorDescriptor>().accesses(c.header.opcode, f);
      break;
  }
}

CommandProcessor::CommandProcessor(const sc_core::sc_module_name& name, const Context& ctx)
    : sc_core::sc_module(name), mmio("mmio"), dram("dram"),
      units{unit_socket(Unit::dma), unit_socket(Unit::mac_array), unit_socket(Unit::hadamard),
            unit_socket(Unit::quantizer), unit_socket(Unit::vector)},
      ctx_(ctx) {
  mmio.register_b_transport(this, &CommandProcessor::b_transport);
  SC_HAS_PROCESS(CommandProcessor);
  SC_THREAD(run);
}

void CommandProcessor::b_transport(tlm::tlm_generic_payload& gp, sc_core::sc_time&) {
  using namespace cp_reg;
  if (gp.get_data_length() != 4 || gp.get_byte_enable_ptr()) {
    gp.set_response_status(tlm::TLM_BURST_ERROR_RESPONSE);
    return;
  }
  std::uint32_t v = 0;
  if (gp.is_write()) std::memcpy(&v, gp.get_data_ptr(), 4);
  const bool busy = status_ & kBusy;
  switch (gp.get_address()) {
    case kCtrl:
      if (gp.is_read()) break;
      if ((v & kStart) && !busy) {
        status_ = kBusy;
        start_.notify(sc_core::SC_ZERO_TIME);
      }
      gp.set_response_status(tlm::TLM_OK_RESPONSE);
      return;
    case kStatus:
      if (gp.is_write()) status_ &= kBusy;
      else v = status_;
      break;
    case kQueueBaseLo:
    case kQueueBaseHi: {
      const int shift = gp.get_address() == kQueueBaseHi ? 32 : 0;
      if (gp.is_write() && !busy) base_ = (base_ & ~(0xffffffffull << shift)) | (std::uint64_t(v) << shift);
      else v = std::uint32_t(base_ >> shift);
      break;
    }
    case kQueueCount:
      if (gp.is_write() && !busy) count_ = v;
      else v = count_;
      break;
    case kErrorCommand:
    case kCompleted:
      if (gp.is_write()) {
        gp.set_response_status(tlm::TLM_COMMAND_ERROR_RESPONSE);  // read-only
        return;
      }
      v = gp.get_address() == kErrorCommand ? error_command_ : completed_;
      break;
    default:
      gp.set_response_status(tlm::TLM_ADDRESS_ERROR_RESPONSE);
      return;
  }
  if (gp.is_read()) std::memcpy(gp.get_data_ptr(), &v, 4);
  gp.set_response_status(tlm::TLM_OK_RESPONSE);
}

void CommandProcessor::run() {
  using namespace cp_reg;
  for (;;) {
    wait(start_);
    completed_ = 0;
    error_text_.clear();
    error_numeric_ = false;
    tlm::tlm_global_quantum::instance().set(ctx_.cycles(std::uint64_t(ctx_.cfg().simulation.quantum_cycles)));
    keeper_.reset();
    const sc_core::sc_time run_start = sc_core::sc_time_stamp();
    const double leak = ctx_.cfg().energy.leakage_pj_per_cycle;
    const std::uint64_t dispatch = std::uint64_t(ctx_.cfg().command_processor.dispatch_cycles);
    std::array<std::uint64_t, kUnits> unit_end{}, unit_start{};
    std::uint64_t issue = 0, makespan = 0, synced = 0;
    in_flight_.clear();
    bool failed = false;
    for (std::uint32_t i = 0; i < count_ && !failed; ++i) {
      Command c;
      tlm::tlm_generic_payload gp;
      gp.set_command(tlm::TLM_READ_COMMAND);
      gp.set_address(base_ + std::uint64_t(i) * kCommandBytes);
      gp.set_data_ptr(reinterpret_cast<unsigned char*>(&c));
      gp.set_data_length(kCommandBytes);
      gp.set_streaming_width(kCommandBytes);
      if (dram->transport_dbg(gp) != kCommandBytes || int(c.header.unit) >= kUnits) {
        error_command_ = i;
        error_text_ = "command processor: cannot fetch or decode command " + std::to_string(i);
        failed = true;
        break;
      }
      ctx_.ledger->set_tag(c.header.layer, c.header.phase);
      if (c.header.unit == Unit::dma && c.header.opcode == kDmaHostCopy) {
        // The host's own copy (dma.h): in queue order, but no fetch, dispatch or time.
        CommandResult result;
        gp.set_command(tlm::TLM_WRITE_COMMAND);
        gp.set_address(0);
        gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
        gp.set_extension(&result);
        sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
        units[int(Unit::dma)]->b_transport(gp, delay);
        gp.clear_extension(&result);
        if (gp.is_response_error()) {
          error_command_ = c.header.id;
          error_text_ = result.error.empty() ? "command " + std::to_string(c.header.id) + ": " + gp.get_response_string()
                                             : result.error;
          failed = true;
        } else {
          ++completed_;
        }
        continue;
      }
      ctx_.charge_dram(kCommandBytes);
      CostCell& cell = ctx_.cell();
      ++cell.commands;
      cell.dispatch_cycles += dispatch;

      // When it can start: in-order issue, its unit, and every hazard.
      const int u = int(c.header.unit);
      issue = std::max(issue + dispatch, unit_start[u]);
      std::uint64_t start = std::max(issue, unit_end[u]);
      footprint_.clear();
      footprint(c, footprint_);
      for (const Access& a : footprint_)
        for (const InFlight& f : in_flight_)
          if (f.access.space == a.space && (a.write || f.access.write) && a.addr < f.access.addr + f.access.bytes &&
              f.access.addr < a.addr + a.bytes)
            start = std::max(start, f.end);

      CommandResult result;
      gp.set_command(tlm::TLM_WRITE_COMMAND);
      gp.set_address(0);
      gp.set_response_status(tlm::TLM_INCOMPLETE_RESPONSE);
      gp.set_extension(&result);
      sc_core::sc_time delay = ctx_.cycles(start - synced);  // annotated from the kernel's time
      units[u]->b_transport(gp, delay);
      gp.clear_extension(&result);
      if (gp.is_response_error()) {
        error_command_ = c.header.id;
        error_text_ = result.error.empty() ? "command " + std::to_string(c.header.id) + ": " + gp.get_response_string()
                                           : result.error;
        error_numeric_ = result.numeric;
        failed = true;
      }
      const std::uint64_t end = start + result.cycles;
      unit_start[u] = start;
      unit_end[u] = end;
      const std::uint64_t added = end > makespan ? end - makespan : 0;
      makespan = std::max(makespan, end);
      cell.unit_cycles[u] += result.cycles;
      cell.elapsed_cycles += added;
      cell.energy_pj[int(EnergyKind::leakage)] += double(added) * leak;
      for (const Access& a : footprint_) in_flight_.push_back({a, end});
      std::erase_if(in_flight_, [&](const InFlight& f) { return f.end <= issue; });  // nothing starts before `issue`
      if (observer_) observer_->command(c.header.unit, c.header.id, run_start + ctx_.cycles(start), run_start + ctx_.cycles(end));
      keeper_.set(ctx_.cycles(issue - synced));
      if (keeper_.need_sync()) {
        keeper_.sync();
        synced = issue;
      }
      if (!failed) ++completed_;
    }
    keeper_.set(ctx_.cycles(makespan - synced));
    keeper_.sync();
    if (observer_) observer_->end_of_run();
    status_ = kDone | (failed ? kError : 0u);
    irq.notify(sc_core::SC_ZERO_TIME);
  }
}

}  // namespace hdq::npu
