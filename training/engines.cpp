#include <fmt/format.h>

#include "models/common/errors.h"
#include "training/engine.h"

namespace hdq {

namespace {

void check_slot(int slot) {
  if (slot != kEvalSlot && (slot < 0 || slot >= kTrainSlots))
    throw ConfigError(fmt::format("engine: slot {} is not kEvalSlot or 0..{}", slot, kTrainSlots - 1));
}

}  // namespace

const std::vector<Matrix>& Engine::forward(const MlpParams&, const Matrix&, const NetCall&) {
  throw ConfigError(fmt::format("the {} engine runs softmax cross-entropy steps only (methods naive, er, joint)", name()));
}

void Engine::backward(const MlpParams&, const NetCall&, const Matrix&, MlpGrads&) {
  throw ConfigError(fmt::format("the {} engine runs softmax cross-entropy steps only (methods naive, er, joint)", name()));
}

float Engine::gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels, std::span<const bool> active,
                        std::uint64_t step, MlpGrads& grads) {
  const NetCall call{step, 0, 0};
  const float loss = softmax_cross_entropy(forward(p, x, call).back(), labels, active, &dlogits_);
  backward(p, call, dlogits_, grads);
  return loss;
}

void Engine::logits(const MlpParams& p, const Matrix& x, std::uint64_t step, Matrix& out) {
  out = forward(p, x, {step, 0, kEvalSlot}).back();
}

const std::vector<Matrix>& FunctionalEngine::forward(const MlpParams& p, const Matrix& x, const NetCall& call) {
  check_slot(call.slot);
  const bool training = call.slot != kEvalSlot;
  HdqtTrace& trace = training ? traces_[std::size_t(call.slot)] : eval_;
  hdqt_forward(p, x, run_, call.step, call.net, trace, training ? &overflow_ : nullptr);
  return trace.pre;
}

void FunctionalEngine::backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) {
  check_slot(call.slot);
  if (call.slot == kEvalSlot) throw ConfigError("engine: backward() needs a training slot");
  if (call.slot == 0) dout_ = dout;  // copy-assign: no allocation once the shape is known
  hdqt_backward(p, traces_[std::size_t(call.slot)], dout, run_, call.step, call.net, grads, overflow_);
}

const std::vector<Matrix>& GoldenEngine::forward(const MlpParams& p, const Matrix& x, const NetCall& call) {
  check_slot(call.slot);
  const bool training = call.slot != kEvalSlot;
  golden::Activations& saved = training ? saved_[std::size_t(call.slot)] : eval_;
  golden::forward(p, x, logits_, &saved, threads_);
  if (training) inputs_[std::size_t(call.slot)] = x;
  return saved.pre;
}

void GoldenEngine::backward(const MlpParams& p, const NetCall& call, const Matrix& dout, MlpGrads& grads) {
  check_slot(call.slot);
  if (call.slot == kEvalSlot) throw ConfigError("engine: backward() needs a training slot");
  const auto s = std::size_t(call.slot);
  golden::backward(p, inputs_[s], saved_[s], dout, grads, threads_);
}

}  // namespace hdq
