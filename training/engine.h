// What the continual-learning driver needs from a training engine: gradients
// of a batch and logits for evaluation. The optimizer (f32 SGD) is shared and
// applied by the driver. Engines: functional (HDQT, models/hdqt/) and golden
// (float, golden/).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "models/hdqt/hdqt_mlp.h"
#include "models/training/mlp.h"

namespace hdq {

// Cycles and energy of one training step, for engines that model hardware.
struct StepCost {
  double cycles = 0;
  double energy_pj = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string name() const = 0;
  // Mean loss of the batch; grads of every parameter. `step` is the global optimizer step.
  virtual float gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels,
                          std::span<const bool> active, std::uint64_t step, MlpGrads& grads) = 0;
  virtual void logits(const MlpParams& p, const Matrix& x, std::uint64_t step, Matrix& out) = 0;
  // Per-layer forward outputs (pre-activations) of the last gradients() call.
  virtual const std::vector<Matrix>& last_layer_outputs() const = 0;
  // GEMM overflow statistics accumulated over all gradients() calls (quantized engines).
  virtual const HdqtOverflow* overflow_stats() const { return nullptr; }
  // Mean cost of a training step so far (hardware models).
  virtual std::optional<StepCost> cost_per_step() const { return std::nullopt; }
};

// HDQT training, bit-exact (NUMERICS.md). Accumulates GEMM overflow statistics.
class FunctionalEngine final : public Engine {
 public:
  FunctionalEngine(const HdqtConfig& cfg, std::uint64_t seed, int threads) : cfg_(cfg), run_{&cfg_, seed, threads} {}
  std::string name() const override { return "functional"; }
  float gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels, std::span<const bool> active,
                  std::uint64_t step, MlpGrads& grads) override;
  void logits(const MlpParams& p, const Matrix& x, std::uint64_t step, Matrix& out) override;
  const std::vector<Matrix>& last_layer_outputs() const override { return outputs_; }
  const HdqtOverflow* overflow_stats() const override { return &overflow_; }

 private:
  HdqtConfig cfg_;
  HdqtRun run_;
  HdqtOverflow overflow_;
  std::vector<Matrix> outputs_;
};

// Float training of the same network (golden/): no quantization at all.
class GoldenEngine final : public Engine {
 public:
  explicit GoldenEngine(int threads) : threads_(threads) {}
  std::string name() const override { return "golden"; }
  float gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels, std::span<const bool> active,
                  std::uint64_t step, MlpGrads& grads) override;
  void logits(const MlpParams& p, const Matrix& x, std::uint64_t step, Matrix& out) override;
  const std::vector<Matrix>& last_layer_outputs() const override { return outputs_; }

 private:
  int threads_;
  std::vector<Matrix> outputs_;
};

}  // namespace hdq
