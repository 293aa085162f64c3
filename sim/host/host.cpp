#include "sim/host/host.h"

#include <cstring>

#include "sim/blocks/command_processor.h"

namespace hdq::npu {

Host::Host(const sc_core::sc_module_name& name, sc_core::sc_event& irq)
    : sc_core::sc_module(name), mmio("mmio"), dram("dram"), irq_(irq) {
  SC_HAS_PROCESS(Host);
  SC_THREAD(run);
}

void Host::submit(Job& job) {
  job_ = &job;
  go_.notify(sc_core::SC_ZERO_TIME);
}

void Host::run() {
  for (;;) {
    while (!job_) wait(go_);
    execute(*job_);
    job_ = nullptr;
    sc_core::sc_pause();
  }
}

const HostRead* Host::mapped(const Job& job, std::uint64_t addr, std::uint64_t len) {
  for (const HostRead& r : job.reads) {
    if (!r.mapped) continue;
    if (addr >= r.addr && addr - r.addr <= r.bytes.size() && len <= r.bytes.size() - (addr - r.addr)) return &r;
    if (addr < r.addr + r.bytes.size() && r.addr < addr + len)
      throw std::runtime_error("host: a load is partly in a mapped buffer");
  }
  return nullptr;
}

void Host::debug(tlm::tlm_command cmd, std::uint64_t addr, std::uint8_t* data, std::size_t len) {
  tlm::tlm_generic_payload gp;
  gp.set_command(cmd);
  gp.set_address(addr);
  gp.set_data_ptr(data);
  gp.set_data_length(static_cast<unsigned int>(len));
  gp.set_streaming_width(static_cast<unsigned int>(len));
  if (dram->transport_dbg(gp) != len) throw std::runtime_error("host: debug access to DRAM failed");
}

void Host::write_register(std::uint64_t addr, std::uint32_t v) {
  tlm::tlm_generic_payload gp;
  gp.set_command(tlm::TLM_WRITE_COMMAND);
  gp.set_address(addr);
  gp.set_data_ptr(reinterpret_cast<unsigned char*>(&v));
  gp.set_data_length(4);
  gp.set_streaming_width(4);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  mmio->b_transport(gp, delay);
  if (gp.is_response_error()) throw std::runtime_error("host: register write failed: " + gp.get_response_string());
}

std::uint32_t Host::read_register(std::uint64_t addr) {
  std::uint32_t v = 0;
  tlm::tlm_generic_payload gp;
  gp.set_command(tlm::TLM_READ_COMMAND);
  gp.set_address(addr);
  gp.set_data_ptr(reinterpret_cast<unsigned char*>(&v));
  gp.set_data_length(4);
  gp.set_streaming_width(4);
  sc_core::sc_time delay = sc_core::SC_ZERO_TIME;
  mmio->b_transport(gp, delay);
  if (gp.is_response_error()) throw std::runtime_error("host: register read failed: " + gp.get_response_string());
  return v;
}

void Host::execute(Job& job) {
  try {
    for (const HostWrite& w : job.loads) {
      if (w.mapped) continue;  // the DMA reads the source itself
      if (const HostRead* m = mapped(job, w.addr, w.bytes.size()))  // the DRAM bytes are the host's own
        std::memcpy(m->bytes.data() + (w.addr - m->addr), w.bytes.data(), w.bytes.size());
      else
        debug(tlm::TLM_WRITE_COMMAND, w.addr, const_cast<std::uint8_t*>(w.bytes.data()), w.bytes.size());
    }
    debug(tlm::TLM_WRITE_COMMAND, job.queue_addr, reinterpret_cast<std::uint8_t*>(job.commands.data()),
          job.commands.size() * kCommandBytes);
    write_register(cp_reg::kQueueBaseLo, std::uint32_t(job.queue_addr));
    write_register(cp_reg::kQueueBaseHi, std::uint32_t(job.queue_addr >> 32));
    write_register(cp_reg::kQueueCount, std::uint32_t(job.commands.size()));
    write_register(cp_reg::kCtrl, cp_reg::kStart);
    wait(irq_);
    const std::uint32_t status = read_register(cp_reg::kStatus);
    write_register(cp_reg::kStatus, 0);  // acknowledge
    if (status & cp_reg::kError) {
      job.failed = true;
      job.failed_command = read_register(cp_reg::kErrorCommand);
      return;
    }
    for (const HostRead& r : job.reads)  // (the mapped ones are in place)
      if (!r.mapped) debug(tlm::TLM_READ_COMMAND, r.addr, r.bytes.data(), r.bytes.size());
  } catch (const std::exception& e) {
    job.failed = true;
    job.error = e.what();
  }
}

}  // namespace hdq::npu
