#include "engines/functional_engine.h"

#include "models/common/errors.h"

namespace hdq {

const std::vector<Matrix>& FunctionalEngine::forward(const MlpParams& p, const Matrix& x, const NetCall& call) {
  check_slot(call.slot);
  const bool training = call.slot != kEvalSlot;
  HdqtOverflow* stats = training ? &overflow_ : nullptr;
  const std::vector<Matrix>* out = nullptr;
  if (p.graph) {
    HdqtGraphTrace& trace = training ? graph_traces_[std::size_t(call.slot)] : graph_eval_;
    hdqt_graph_forward(ctx_, conv_scratch_, p, x, run_, call.step, call.net, training && !call.frozen, trace, stats);
    out = &trace.graph.outputs;
  } else {
    HdqtTrace& trace = training ? traces_[std::size_t(call.slot)] : eval_;
    hdqt_forward(ctx_, p, x, run_, call.step, call.net, trace, stats);
    out = &trace.pre;
  }
  if (call.slot == 0) last_outputs_ = out;
  return *out;
}

void FunctionalEngine::backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) {
  check_slot(call.slot);
  if (call.slot == kEvalSlot) throw ConfigError("engine: backward() needs a training slot");
  if (call.slot == 0) dout_ = dout;  // copy-assign: no allocation once the shape is known
  const auto s = std::size_t(call.slot);
  if (p.graph)
    hdqt_graph_backward(ctx_, conv_scratch_, p, graph_traces_[s], dout, run_, call.step, call.net, grads, overflow_,
                        graph_scratch_);
  else
    hdqt_backward(ctx_, p, traces_[s], dout, run_, call.step, call.net, grads, overflow_);
}

}  // namespace hdq
