// What the continual-learning driver needs from a training engine: forward
// and backward passes of MLPs (linear layers, ReLU between them), from which
// every method builds its loss, and logits for evaluation. The optimizer (f32
// SGD) is shared and applied by the driver. Engines: functional (HDQT,
// models/hdqt/), golden (float, golden/) and the NPU model (sim/), which runs
// whole cross-entropy steps only.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "golden/golden.h"
#include "models/hdqt/hdqt_mlp.h"
#include "models/training/mlp.h"

namespace hdq {

// Cycles and energy of one training step, for engines that model hardware.
struct StepCost {
  double cycles = 0;
  double energy_pj = 0;
};

// One network pass within a training step. `net` keeps the random streams of
// networks used in the same step apart (hdqt_mlp.h kLayersPerNet). `slot`
// names where a training forward keeps what its backward needs (a step may
// train several networks); kEvalSlot: evaluation, no backward follows and no
// overflow statistics are counted.
struct NetCall {
  std::uint64_t step = 0;  // global optimizer step
  int net = 0;
  int slot = 0;
};
inline constexpr int kEvalSlot = -1;
inline constexpr int kTrainSlots = 8;

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string name() const = 0;

  // Engines whose forward()/backward() are usable; without them only
  // gradients() (softmax cross-entropy) and logits() are.
  virtual bool has_passes() const { return false; }
  // Forward of network p on x: every layer's output Y (before ReLU; the last
  // is the network's output), valid until the next forward() with the same slot.
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
  // Per-layer forward outputs of the last training forward in slot 0.
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

// HDQT training, bit-exact (NUMERICS.md). Accumulates GEMM overflow statistics.
class FunctionalEngine final : public Engine {
 public:
  FunctionalEngine(const HdqtConfig& cfg, std::uint64_t seed, int threads)
      : cfg_(cfg), run_{&cfg_, seed, threads}, traces_(kTrainSlots) {}
  std::string name() const override { return "functional"; }
  bool has_passes() const override { return true; }
  const std::vector<Matrix>& forward(const MlpParams& p, const Matrix& x, const NetCall& call) override;
  void backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) override;
  const std::vector<Matrix>& last_layer_outputs() const override { return traces_[0].pre; }
  const Matrix* last_dout() const override { return &dout_; }
  const HdqtOverflow* overflow_stats() const override { return &overflow_; }

 private:
  HdqtConfig cfg_;
  Matrix dout_;  // slot 0's last dL/d(output)
  HdqtRun run_;
  HdqtOverflow overflow_;
  std::vector<HdqtTrace> traces_;  // per training slot
  HdqtTrace eval_;
};

// Float training of the same network (golden/): no quantization at all.
class GoldenEngine final : public Engine {
 public:
  explicit GoldenEngine(int threads) : threads_(threads), saved_(kTrainSlots), inputs_(kTrainSlots) {}
  std::string name() const override { return "golden"; }
  bool has_passes() const override { return true; }
  const std::vector<Matrix>& forward(const MlpParams& p, const Matrix& x, const NetCall& call) override;
  void backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) override;
  const std::vector<Matrix>& last_layer_outputs() const override { return saved_[0].pre; }

 private:
  int threads_;
  std::vector<golden::Activations> saved_;  // per training slot
  std::vector<Matrix> inputs_;              // per training slot: x of the forward (backward needs it)
  golden::Activations eval_;
  Matrix logits_;
};

}  // namespace hdq
