#include "sim/npu.h"

#include <cstdlib>
#include <utility>

#include "sim/blocks/dma.h"
#include "sim/blocks/dram.h"
#include "sim/blocks/hadamard_unit.h"
#include "sim/blocks/mac_array.h"
#include "sim/blocks/quantizer_unit.h"
#include "sim/blocks/sram.h"
#include "sim/blocks/vector_unit.h"
#include "sim/host/host.h"

namespace hdq::npu {

namespace {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kOwnThread = true;  // npu.h: the kernel's stack switching stays off the caller's thread
#else
constexpr bool kOwnThread = false;
#endif
}  // namespace

struct Npu::Top : sc_core::sc_module {
  Dram dram;
  Sram sram;
  CommandProcessor cp;
  Dma dma;
  MacArray mac_array;
  HadamardUnit hadamard_unit;
  QuantizerUnit quantizer_unit;
  VectorUnit vector_unit;
  Host host;

  Top(const sc_core::sc_module_name& name, const Context& ctx)
      : sc_core::sc_module(name), dram("dram", ctx), sram("sram", ctx), cp("command_processor", ctx),
        dma("dma", ctx), mac_array("mac_array", ctx), hadamard_unit("hadamard_unit", ctx),
        quantizer_unit("quantizer_unit", ctx), vector_unit("vector_unit", ctx), host("host", cp.irq) {
    host.mmio.bind(cp.mmio);
    host.dram.bind(dram.socket);
    cp.dram.bind(dram.socket);
    cp.units[int(Unit::dma)].bind(dma.command);
    cp.units[int(Unit::mac_array)].bind(mac_array.command);
    cp.units[int(Unit::hadamard)].bind(hadamard_unit.command);
    cp.units[int(Unit::quantizer)].bind(quantizer_unit.command);
    cp.units[int(Unit::vector)].bind(vector_unit.command);
    dma.dram.bind(dram.socket);
    dma.sram.bind(sram.socket);
    mac_array.sram.bind(sram.socket);
    hadamard_unit.sram.bind(sram.socket);
    quantizer_unit.sram.bind(sram.socket);
    vector_unit.sram.bind(sram.socket);
  }
};

Npu::Npu() {
  if (kOwnThread) thread_ = std::thread(&Npu::simulation_thread, this);
  on_simulation_thread([this] {
    setenv("SYSTEMC_DISABLE_COPYRIGHT_MESSAGE", "1", 0);  // keep stdout for the program's own output
    top_ = std::make_unique<Top>("npu", ctx_);
  });
}

Npu::~Npu() {
  if (!kOwnThread) {
    top_.reset();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(task_mutex_);
    stop_ = true;
  }
  task_cv_.notify_all();
  thread_.join();
}

Npu& Npu::instance() {
  static Npu npu;
  return npu;
}

void Npu::simulation_thread() {
  std::unique_lock<std::mutex> lock(task_mutex_);
  for (;;) {
    task_cv_.wait(lock, [this] { return stop_ || (task_ && !task_done_); });
    if (stop_) break;
    try {
      task_();
    } catch (...) {
      task_error_ = std::current_exception();
    }
    task_done_ = true;
    task_cv_.notify_all();
  }
  top_.reset();
}

void Npu::on_simulation_thread(std::function<void()> task) {
  if (!kOwnThread) {
    task();
    return;
  }
  std::unique_lock<std::mutex> lock(task_mutex_);
  task_ = std::move(task);
  task_done_ = false;
  task_error_ = nullptr;
  task_cv_.notify_all();
  task_cv_.wait(lock, [this] { return task_done_; });
  task_ = nullptr;
  if (task_error_) std::rethrow_exception(std::exchange(task_error_, nullptr));
}

void Npu::run(Job& job, const NpuConfig& cfg, Ledger& ledger, ActivityObserver* observer, const void* owner,
              const void* runner) {
  if (owner) owner_ = owner;
  runner_ = runner;
  // The job's own buffers the host reads back are the host's (Context::HostWindow).
  std::vector<Context::HostWindow> windows;
  for (const HostRead& r : job.reads)
    if (r.mapped) windows.push_back({r.addr, r.bytes.size(), r.bytes.data()});
  for (const HostWrite& w : job.loads)  // (read-only: the DMA refuses to write them)
    if (w.mapped) windows.push_back({w.addr, w.bytes.size(), const_cast<std::uint8_t*>(w.bytes.data()), false});
  on_simulation_thread([&] {
    ctx_.config = &cfg;
    ctx_.ledger = &ledger;
    ctx_.host_windows = windows;
    struct Unmap {  // also when the run throws
      Context& ctx;
      ~Unmap() { ctx.host_windows = {}; }
    } unmap{ctx_};
    top_->sram.configure(cfg);
    top_->dram.reserve(job.dram_bytes);
    top_->cp.set_observer(observer);
    top_->host.submit(job);
    sc_core::sc_start();
    top_->cp.set_observer(nullptr);
    if (job.failed && job.error.empty()) {
      job.error = top_->cp.error_text();
      job.numeric_error = top_->cp.error_is_numeric();
    }
  });
}

}  // namespace hdq::npu
