// The MLP trained with HDQT layers (functional engine): every linear layer is
// an HDQT layer (hdqt_linear.h), ReLU between layers in f32, softmax
// cross-entropy on the logits (mlp.h).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/hdqt/hdqt_linear.h"
#include "models/training/mlp.h"

namespace hdq {

struct HdqtRun {
  const HdqtConfig* cfg = nullptr;
  std::uint64_t seed = 0;
  int threads = 1;
};

// Per layer, the overflow statistics of its three GEMMs (accumulated over calls).
struct HdqtOverflow {
  std::vector<HdqtLayerStats> layers;
  void merge(const HdqtOverflow& o);
};

// Forward and backward of one batch at global step `step`: fills `grads`
// (dX of layer 0 is not computed: nothing consumes it), adds the GEMM
// statistics to `overflow`, returns the mean loss. `layer_outputs`, when
// non-null, receives every layer's forward output Y (the last is the logits).
float hdqt_gradients(const MlpParams& p, const Matrix& x, std::span<const int> labels, std::span<const bool> active,
                     const HdqtRun& run, std::uint64_t step, MlpGrads& grads, HdqtOverflow& overflow,
                     std::vector<Matrix>* layer_outputs = nullptr);

// Forward only (evaluation). Random bits, if a forward role rounds
// stochastically, use `step`.
void hdqt_logits(const MlpParams& p, const Matrix& x, const HdqtRun& run, std::uint64_t step, Matrix& logits);

}  // namespace hdq
