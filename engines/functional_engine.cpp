#include "engines/functional_engine.h"

#include "models/common/errors.h"

namespace hdq {

const std::vector<Matrix>& FunctionalEngine::forward(const MlpParams& p, const Matrix& x, const NetCall& call) {
  check_slot(call.slot);
  const bool training = call.slot != kEvalSlot;
  HdqtTrace& trace = training ? traces_[std::size_t(call.slot)] : eval_;
  hdqt_forward(ctx_, p, x, run_, call.step, call.net, trace, training ? &overflow_ : nullptr);
  return trace.pre;
}

void FunctionalEngine::backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) {
  check_slot(call.slot);
  if (call.slot == kEvalSlot) throw ConfigError("engine: backward() needs a training slot");
  if (call.slot == 0) dout_ = dout;  // copy-assign: no allocation once the shape is known
  hdqt_backward(ctx_, p, traces_[std::size_t(call.slot)], dout, run_, call.step, call.net, grads, overflow_);
}

}  // namespace hdq
