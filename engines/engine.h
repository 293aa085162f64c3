// What the continual-learning driver (training/) needs from a training engine: forward
// and backward passes of networks (MLPs: linear layers, ReLU between them; or
// layer graphs, models/nn/network.h, on the engines that run them), from
// which every method builds its loss, and logits for evaluation. The optimizer (f32
// SGD) is shared and applied by the driver. Three peer engines implement it:
// functional (HDQT, engines/functional_engine.h), golden (float,
// engines/golden_engine.h) and the NPU model (sim/npu_engine.h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "models/hdqt/hdqt_mlp.h"
#include "models/nn/mlp.h"

namespace hdq {

// Cycles and energy of one training step, for engines that model hardware.
struct StepCost {
  double cycles = 0;
  double energy_pj = 0;
  double mac_array_energy_pj = 0;  // the MAC array's part of energy_pj
  double dram_bytes = 0;
};

// One network pass within a training step. `net` keeps the random streams of
// networks used in the same step apart (hdqt_mlp.h kLayersPerNet). `slot`
// names where a training forward keeps what its backward needs (a step may
// train several networks); kEvalSlot: evaluation, no backward follows and no
// overflow statistics are counted.
// `frozen`: BatchNorm layers use their running statistics even in a training
// slot, as a PyTorch module in eval() mode (a distillation teacher, DER's
// frozen extractors); such a pass has no backward. MLPs have no BatchNorm.
struct NetCall {
  std::uint64_t step = 0;  // global optimizer step
  int net = 0;
  int slot = 0;
  bool frozen = false;
};
inline constexpr int kEvalSlot = -1;
inline constexpr int kTrainSlots = 8;
// Throws ConfigError unless `slot` is kEvalSlot or a training slot.
void check_slot(int slot);

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string name() const = 0;

  // Engines whose forward()/backward() are usable; without them only
  // gradients() (softmax cross-entropy) and logits() are.
  virtual bool has_passes() const { return false; }
  // Forward of network p on x, valid until the next forward() with the same
  // slot: for an MLP every layer's output Y (before ReLU); for a layer graph
  // every parameter layer's output, then the network's output when the graph
  // does not end in a parameter layer. The last is the network's output.
  virtual const std::vector<Matrix>& forward(const MlpParams& p, const Matrix& x, const NetCall& call);
  // Gradients of every parameter of p from dout = dL/d(output) of the training
  // forward() with the same call (same step, net and slot).
  virtual void backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads);

  // One plain step of network 0, slot 0: forward, softmax cross-entropy over
  // the active classes, backward. Returns the mean loss.
  virtual float gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels,
                          std::span<const bool> active, std::uint64_t step, MlpGrads& grads);
  // Output of network 0 for evaluation.
  virtual void logits(const MlpParams& p, const Matrix& x, std::uint64_t step, Matrix& out);
  // forward()'s outputs of the last training forward in slot 0.
  virtual const std::vector<Matrix>& last_layer_outputs() const = 0;
  // dL/d(output) of the last backward in slot 0, for engines that keep it
  // (the backward-only gradient comparison of continual.h).
  virtual const Matrix* last_dout() const { return nullptr; }
  // GEMM overflow statistics accumulated over all training passes (quantized
  // engines); layer l of every network counts in layers[l].
  virtual const HdqtOverflow* overflow_stats() const { return nullptr; }
  // Mean cost of a training step so far (hardware models).
  virtual std::optional<StepCost> cost_per_step() const { return std::nullopt; }

 private:
  Matrix dlogits_;  // gradients(): reused from step to step
};

}  // namespace hdq
