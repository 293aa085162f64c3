#include <fmt/format.h>

#include "models/common/errors.h"
#include "engines/engine.h"

namespace hdq {

void check_slot(int slot) {
  if (slot != kEvalSlot && (slot < 0 || slot >= kTrainSlots))
    throw ConfigError(fmt::format("engine: slot {} is not kEvalSlot or 0..{}", slot, kTrainSlots - 1));
}

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

}  // namespace hdq
