#include "engines/golden_engine.h"

#include "models/common/errors.h"

namespace hdq {

const std::vector<Matrix>& GoldenEngine::forward(const MlpParams& p, const Matrix& x, const NetCall& call) {
  check_slot(call.slot);
  const bool training = call.slot != kEvalSlot;
  const std::vector<Matrix>* out = nullptr;
  if (p.graph) {
    GraphTrace& trace = training ? graph_traces_[std::size_t(call.slot)] : graph_eval_;
    golden::graph_forward(ctx_, p, x, training && !call.frozen, trace);
    out = &trace.outputs;
  } else {
    golden::Activations& saved = training ? saved_[std::size_t(call.slot)] : eval_;
    golden::forward(ctx_, p, x, logits_, &saved);
    if (training) inputs_[std::size_t(call.slot)] = x;
    out = &saved.pre;
  }
  if (call.slot == 0) last_outputs_ = out;
  return *out;
}

void GoldenEngine::backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) {
  check_slot(call.slot);
  if (call.slot == kEvalSlot) throw ConfigError("engine: backward() needs a training slot");
  const auto s = std::size_t(call.slot);
  if (p.graph)
    golden::graph_backward(ctx_, p, graph_traces_[s], dout, grads, graph_scratch_);
  else
    golden::backward(ctx_, p, inputs_[s], saved_[s], dout, grads);
}

}  // namespace hdq
