// The NPU top: the blocks as SystemC modules and their TLM-2.0 wiring.
//
//   host --mmio--> command_processor --units[5]--> dma, mac_array,
//     |                 |                          hadamard_unit,
//     +--dram (debug)   +--dram (queue fetch)      quantizer_unit, vector_unit
//                                                   |  (each --sram--> sram)
//   dma --dram--> dram, dma --sram--> sram
//
// SystemC elaborates once per process, so there is one NPU per process,
// built on first use; each run points it at the caller's config and ledger
// (timing and energy are data, so one elaborated model serves any config).
// Callers on several threads take turns: acquire() serializes them.
//
// Under a sanitizer the kernel lives on a thread of its own (elaboration,
// sc_start, and the SystemC processes' coroutines): SystemC switches stacks
// without telling AddressSanitizer (or ThreadSanitizer), which then loses
// track of the thread it runs on; on a thread of its own that confusion
// cannot reach the caller's stack. Otherwise it runs on the calling thread
// (callers take turns, acquire()): a job then costs no thread hand-over,
// whose wake-up latency dominated the wall time of short jobs on a loaded
// machine. The coroutines return to whichever thread called sc_start.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "sim/blocks/command_processor.h"
#include "sim/cost/ledger.h"
#include "sim/host/step_program.h"

namespace hdq::npu {

class Npu {
 public:
  static Npu& instance();
  ~Npu();
  // Exclusive use of the NPU until the lock is released.
  [[nodiscard]] std::unique_lock<std::mutex> acquire() { return std::unique_lock<std::mutex>(mutex_); }
  // With the lock held: runs `job` on the model configured by `cfg`, charging
  // `ledger`; `observer` (may be null) sees every command; `owner`, when not
  // null, becomes the owner of the device's persistent buffers (the momentum).
  // `runner`: who submits the job (null for anonymous jobs).
  void run(Job& job, const NpuConfig& cfg, Ledger& ledger, ActivityObserver* observer, const void* owner,
           const void* runner = nullptr);
  // Whether `owner` ran last, i.e. the persistent buffers hold its values.
  bool last_owner_is(const void* owner) const { return owner_ == owner; }
  // Whether `runner` submitted the last job of all: nobody else has touched
  // the SRAM and DRAM since (what it keeps on chip across jobs is intact).
  bool last_runner_is(const void* runner) const { return runner_ == runner; }

 private:
  Npu();
  // Runs `task` on the simulation thread (or inline, see above) and waits; its
  // exception is rethrown here.
  void on_simulation_thread(std::function<void()> task);
  void simulation_thread();

  struct Top;
  Context ctx_;
  std::unique_ptr<Top> top_;
  const void* owner_ = nullptr;
  const void* runner_ = nullptr;
  std::mutex mutex_;  // acquire()

  std::mutex task_mutex_;
  std::condition_variable task_cv_;
  std::function<void()> task_;
  std::exception_ptr task_error_;
  bool task_done_ = false, stop_ = false;
  std::thread thread_;  // last: it starts once everything it uses exists (sanitizer builds only)
};

}  // namespace hdq::npu
