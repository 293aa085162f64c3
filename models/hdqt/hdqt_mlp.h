// The MLP trained with HDQT layers (functional engine): every linear layer is
// an HDQT layer (hdqt_linear.h), ReLU between layers in f32, no activation
// after the last layer. Forward and backward are separate so that any loss on
// the outputs (softmax cross-entropy, distillation, ...) can drive the backward.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "models/hdqt/hdqt_linear.h"
#include "models/nn/mlp.h"

namespace hdq {

struct HdqtRun {
  const HdqtConfig* cfg = nullptr;
  std::uint64_t seed = 0;
};

// Per layer, the overflow statistics of its three GEMMs (accumulated over calls).
struct HdqtOverflow {
  std::vector<HdqtLayerStats> layers;
  void merge(const HdqtOverflow& o);
  // The inner-event rate of the GEMMs of `roles` over every layer: each
  // role's statistics merged over the layers, then hdq::inner_event_rate of
  // those (models/accumulator/gemm.h). One role: docs/contract.md §5's rate
  // of the role's merged statistics.
  double inner_event_rate(std::initializer_list<GemmRole> roles) const;
};

// What the backward pass needs from the forward pass of one network.
struct HdqtTrace {
  std::vector<Matrix> pre;  // Y of every layer (before ReLU); the last is the network's output
  std::vector<HdqtLayerState> states;
};

// Layers per network in the random-stream numbering: layer l of network n is
// HDQT layer n * kLayersPerNet + l (HdqtStepContext::layer), so networks
// trained in one step (e.g. DER's extractors and heads) draw independent bits.
// Network 0 numbers its layers 0, 1, ... as a lone MLP does.
inline constexpr int kLayersPerNet = 64;

// Forward of network `net` at global step `step`, computed with hc. Adds the
// GEMM statistics of layer l to overflow->layers[l] when overflow is non-null
// (training passes).
void hdqt_forward(HdqtContext& hc, const MlpParams& p, const Matrix& x, const HdqtRun& run, std::uint64_t step,
                  int net, HdqtTrace& trace, HdqtOverflow* overflow);

// Backward from dout = dL/d(output) (B x widths[L]) through the trace of the
// forward pass with the same (step, net): fills `grads` (dX of layer 0 is not
// computed: nothing consumes it) and adds the GEMM statistics to `overflow`.
void hdqt_backward(HdqtContext& hc, const MlpParams& p, const HdqtTrace& trace, const Matrix& dout,
                   const HdqtRun& run, std::uint64_t step, int net, MlpGrads& grads, HdqtOverflow& overflow);

}  // namespace hdq
