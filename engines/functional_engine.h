// The functional engine: HDQT training on the numeric core (models/hdqt/).
#pragma once

#include <string>
#include <vector>

#include "engines/engine.h"
#include "models/hdqt/hdqt_net.h"

namespace hdq {

// HDQT training, bit-exact (docs/contract.md): MLPs (hdqt_mlp.h) and layer
// graphs (hdqt_net.h). Accumulates GEMM overflow statistics. Owns the HDQT
// context its passes compute with (`threads` threads for every GEMM, the
// workspaces and scratch), so one engine is used from one thread at a time.
class FunctionalEngine final : public Engine {
 public:
  FunctionalEngine(const HdqtConfig& cfg, std::uint64_t seed, int threads)
      : cfg_(cfg), run_{&cfg_, seed}, ctx_(threads), traces_(kTrainSlots), graph_traces_(kTrainSlots) {}
  std::string name() const override { return "functional"; }
  bool has_passes() const override { return true; }
  const std::vector<Matrix>& forward(const MlpParams& p, const Matrix& x, const NetCall& call) override;
  void backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) override;
  const std::vector<Matrix>& last_layer_outputs() const override { return *last_outputs_; }
  const Matrix* last_dout() const override { return &dout_; }
  const HdqtOverflow* overflow_stats() const override { return &overflow_; }

 private:
  HdqtConfig cfg_;
  Matrix dout_;  // slot 0's last dL/d(output)
  HdqtRun run_;
  HdqtContext ctx_;
  HdqtConvScratch conv_scratch_;
  HdqtOverflow overflow_;
  std::vector<HdqtTrace> traces_;             // per training slot (MLPs)
  std::vector<HdqtGraphTrace> graph_traces_;  // per training slot (layer graphs)
  HdqtTrace eval_;
  HdqtGraphTrace graph_eval_;
  GraphScratch graph_scratch_;
  const std::vector<Matrix>* last_outputs_ = &traces_[0].pre;  // slot 0's last training forward
};

}  // namespace hdq
