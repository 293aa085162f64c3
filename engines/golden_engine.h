// The golden engine: the float model (golden/) behind the Engine interface.
#pragma once

#include <string>
#include <vector>

#include "engines/engine.h"
#include "golden/golden.h"

namespace hdq {

// Float training of the same network (golden/): no quantization at all.
// Owns the golden model's context its passes compute with (`threads` threads
// for every matrix product, the scratch), so one engine is used from one
// thread at a time.
class GoldenEngine final : public Engine {
 public:
  explicit GoldenEngine(int threads) : ctx_(threads), saved_(kTrainSlots), inputs_(kTrainSlots) {}
  std::string name() const override { return "golden"; }
  bool has_passes() const override { return true; }
  const std::vector<Matrix>& forward(const MlpParams& p, const Matrix& x, const NetCall& call) override;
  void backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) override;
  const std::vector<Matrix>& last_layer_outputs() const override { return saved_[0].pre; }

 private:
  golden::Context ctx_;
  std::vector<golden::Activations> saved_;  // per training slot
  std::vector<Matrix> inputs_;              // per training slot: x of the forward (backward needs it)
  golden::Activations eval_;
  Matrix logits_;
};

}  // namespace hdq
