#include "golden/golden.h"
#include "training/engine.h"

namespace hdq {

float FunctionalEngine::gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels,
                                  std::span<const bool> active, std::uint64_t step, MlpGrads& grads) {
  return hdqt_gradients(p, x, labels, active, run_, step, grads, overflow_, &outputs_);
}

void FunctionalEngine::logits(const MlpParams& p, const Matrix& x, std::uint64_t step, Matrix& out) {
  hdqt_logits(p, x, run_, step, out);
}

float GoldenEngine::gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels,
                              std::span<const bool> active, std::uint64_t, MlpGrads& grads) {
  golden::Activations saved;
  Matrix logits, dlogits;
  golden::forward(p, x, logits, &saved, threads_);
  const float loss = softmax_cross_entropy(logits, labels, active, &dlogits);
  golden::backward(p, x, saved, dlogits, grads, threads_);
  outputs_ = std::move(saved.pre);
  return loss;
}

void GoldenEngine::logits(const MlpParams& p, const Matrix& x, std::uint64_t, Matrix& out) {
  golden::forward(p, x, out, nullptr, threads_);
}

}  // namespace hdq
