// The golden engine: the float model (golden/) behind the Engine interface.
#pragma once

#include <string>
#include <vector>

#include "engines/engine.h"
#include "golden/golden.h"
#include "golden/golden_net.h"

namespace hdq {

// Float training of the same network (golden/): no quantization at all, MLPs
// (golden.h) and layer graphs (golden_net.h). Owns the golden model's context
// its passes compute with (`threads` threads for every matrix product, the
// scratch), so one engine is used from one thread at a time.
class GoldenEngine final : public Engine {
 public:
  explicit GoldenEngine(int threads)
      : ctx_(threads), saved_(kTrainSlots), inputs_(kTrainSlots), graph_traces_(kTrainSlots) {}
  std::string name() const override { return "golden"; }
  bool has_passes() const override { return true; }
  const std::vector<Matrix>& forward(const MlpParams& p, const Matrix& x, const NetCall& call) override;
  void backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) override;
  const std::vector<Matrix>& last_layer_outputs() const override { return *last_outputs_; }

 private:
  golden::Context ctx_;
  std::vector<golden::Activations> saved_;  // per training slot (MLPs)
  std::vector<Matrix> inputs_;              // per training slot: x of the forward (an MLP's backward needs it)
  std::vector<GraphTrace> graph_traces_;    // per training slot (layer graphs)
  golden::Activations eval_;
  GraphTrace graph_eval_;
  GraphScratch graph_scratch_;
  Matrix logits_;
  const std::vector<Matrix>* last_outputs_ = &saved_[0].pre;  // slot 0's last training forward
};

}  // namespace hdq
