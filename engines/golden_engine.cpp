#include "engines/golden_engine.h"

#include "models/common/errors.h"

namespace hdq {

const std::vector<Matrix>& GoldenEngine::forward(const MlpParams& p, const Matrix& x, const NetCall& call) {
  check_slot(call.slot);
  const bool training = call.slot != kEvalSlot;
  golden::Activations& saved = training ? saved_[std::size_t(call.slot)] : eval_;
  golden::forward(ctx_, p, x, logits_, &saved);
  if (training) inputs_[std::size_t(call.slot)] = x;
  return saved.pre;
}

void GoldenEngine::backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) {
  check_slot(call.slot);
  if (call.slot == kEvalSlot) throw ConfigError("engine: backward() needs a training slot");
  const auto s = std::size_t(call.slot);
  golden::backward(ctx_, p, inputs_[s], saved_[s], dout, grads);
}

}  // namespace hdq
