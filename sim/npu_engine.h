// The NPU engine: HDQT training steps executed as command queues on the
// SystemC TLM-2.0 model of the edge NPU (sim/npu.h), bit-identical to the
// functional engine (weights, logits, overflow counters), with cycles and
// energy by layer x phase x block.
//
// gradients() runs one whole step on the device: forward, loss, both
// backward GEMMs and the SGD update on the device's copy of the weights with
// its momentum buffers, so the update's cost is that of the hardware. The
// Engine interface leaves the optimizer to the driver: the driver's weights
// are loaded at every step (the host's own transfers cost nothing) and are
// authoritative; the device's update uses `sgd` as given (lr of the
// scenario, no schedule or per-task reset), which changes nothing the driver
// sees. Tests read the device's updated weights to check the update program
// against hdq::Sgd. Layer graphs (convolutional networks) run through
// step_program.h build_graph_step, build_graph_eval and the passes
// build_graph_forward / build_graph_backward.
//
// When the plan keeps the device's state (W, b, momentum) in SRAM across
// steps, this engine owns it until another engine's job runs: each step the
// driver's weights are compared with the device's (read back by host copies,
// free); equal, the step uses the resident copies and loads nothing; not
// equal (the driver changed them), the step loads the driver's W and b into
// the resident state (charged). Passes and evaluations plan below a resident
// state, or, when they do not fit there, write its momentum to DRAM first.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "sim/config/npu_config.h"
#include "sim/cost/ledger.h"
#include "sim/host/step_program.h"
#include "engines/engine.h"

namespace hdq::npu {

class VcdWriter;

class NpuEngine final : public Engine {
 public:
  NpuEngine(NpuConfig npu, const HdqtConfig& cfg, std::uint64_t seed, SgdConfig sgd);
  ~NpuEngine() override;
  std::string name() const override { return "npu"; }
  // The passes run as separate jobs (step_program.h build_forward /
  // build_backward): every method runs on the NPU. gradients() stays one
  // fused job with the device's own SGD update.
  bool has_passes() const override { return true; }
  const std::vector<Matrix>& forward(const MlpParams& p, const Matrix& x, const NetCall& call) override;
  void backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) override;
  float gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels, std::span<const bool> active,
                  std::uint64_t step, MlpGrads& grads) override;
  void logits(const MlpParams& p, const Matrix& x, std::uint64_t step, Matrix& out) override;
  const std::vector<Matrix>& last_layer_outputs() const override { return outputs_; }
  const HdqtOverflow* overflow_stats() const override { return &overflow_; }
  // Mean cycles and energy of the steady-state training steps so far (those of
  // warm-up steps only while there is no other; nullopt before the first).
  std::optional<StepCost> cost_per_step() const override;

  const NpuConfig& config() const { return npu_; }
  // Cycles and energy of the gradients() calls (training steps) in steady
  // state, of the warm-up steps apart (a first update after the device's
  // momentum buffers were (re)initialized: it reads no momentum), and of all
  // logits() calls.
  const Ledger& train_costs() const { return train_; }
  std::uint64_t train_steps() const { return steps_; }
  const Ledger& warmup_costs() const { return warmup_; }
  std::uint64_t warmup_steps() const { return warmup_steps_; }
  // Training steps whose forward used a Wq rounded by the step before (docs/npu.md "Across jobs").
  std::uint64_t carried_wq_steps() const { return carried_wq_steps_; }
  const Ledger& eval_costs() const { return eval_; }

  // Dumps block activity of every following call into a VCD file, finished by close_vcd().
  void trace_vcd(const std::string& path);
  void close_vcd();

  // Read the device's weights after its update in every gradients() call.
  void keep_device_params(bool on) { keep_device_params_ = on; }
  const MlpParams& device_params() const { return device_params_; }

 private:
  void run(Job& job, Ledger& total, bool training);
  // Layer graphs (step_program.h build_graph_step, build_graph_eval).
  float graph_gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels, std::span<const bool> active,
                        std::uint64_t step, MlpGrads& grads);
  const std::vector<Matrix>& graph_eval(const MlpParams& p, const Matrix& x, const NetCall& call);
  // A pass job built by build(settings) at a free DRAM base: below a resident
  // state if it fits there, else over it (the state's momentum goes home).
  Job place_pass(int free_slot, StepSettings s, const std::function<Job(const StepSettings&)>& build);
  // Adds the statistics of GEMM roles first..last of every layer.
  void merge_overflow(const std::vector<GemmStats>& stats, GemmRole first, GemmRole last);

  NpuConfig npu_;
  HdqtConfig cfg_;
  std::uint64_t seed_;
  SgdConfig sgd_;
  bool first_update_ = true;
  DeviceState state_;         // where the device's state is after the last job of this engine
  MlpParams device_state_;    // the device's W and b after its last update, while on chip or carry_
  bool carry_ = false;        // the carry records in DRAM hold max |W| of device_state_'s W, finite
  std::uint32_t carry_wq_ = 0;     // and these layers' Wq (bits), rounded for step carry_step_
  std::uint64_t carry_step_ = 0;
  std::uint64_t carried_wq_steps_ = 0;
  bool keep_device_params_ = false;
  HdqtOverflow overflow_;
  std::vector<Matrix> outputs_;
  StepResults results_;  // buffers the next step's results land in
  MlpParams device_params_;
  Ledger train_, warmup_, eval_;
  std::uint64_t steps_ = 0, warmup_steps_ = 0;

  // Training forward passes kept for their backward, per slot.
  struct Slot {
    SavedForwardPtr saved;
    std::uint64_t step = 0;
    int net = 0;
    std::vector<Matrix> outputs;
  };
  std::vector<Slot> slots_;
  std::vector<Matrix> eval_outputs_;
  std::optional<std::uint64_t> last_pass_step_;  // steps of pass-based training, counted once each
  // Builds a job with build(dram_base) at the lowest base where its tensors
  // overlap no kept forward pass but `free_slot`'s: first fit over the gaps
  // between them (a job's size is known once built; building is cheap).
  Job place(int free_slot, const std::function<Job(std::uint64_t)>& build) const;
  std::unique_ptr<VcdWriter> vcd_;
};

}  // namespace hdq::npu
