// Layer graphs (models/nn/network.h) trained with HDQT layers (functional
// engine): conv layers are HDQT convolutions (hdqt_conv.h, docs/contract.md
// §9), linear layers HDQT linear layers (§6), everything else the f32 passes
// of models/nn/graph_passes.h. Parameter layer l of network `net` is HDQT
// layer net * kLayersPerNet + l (random streams) and counts its GEMM
// statistics in overflow.layers[l] (empty for BatchNorm layers).
#pragma once

#include <cstdint>
#include <vector>

#include "models/hdqt/hdqt_conv.h"
#include "models/hdqt/hdqt_mlp.h"
#include "models/nn/graph_passes.h"

namespace hdq {

// What the backward pass needs from the forward pass of one graph network.
struct HdqtGraphTrace {
  GraphTrace graph;
  std::vector<HdqtConvState> conv;      // per parameter layer (conv layers)
  std::vector<HdqtLayerState> linear;   // per parameter layer (linear layers)
};

// Forward of graph network `net` at global step `step`; BatchNorm uses batch
// statistics when batch_stats. Adds the GEMM statistics to `overflow` when
// non-null (training passes). trace.graph.outputs is the Engine's view.
void hdqt_graph_forward(HdqtContext& hc, HdqtConvScratch& cs, const MlpParams& p, const Matrix& x, const HdqtRun& run,
                        std::uint64_t step, int net, bool batch_stats, HdqtGraphTrace& trace, HdqtOverflow* overflow);

// Backward from dout = dL/d(output) through the trace of the training forward
// with the same (step, net).
void hdqt_graph_backward(HdqtContext& hc, HdqtConvScratch& cs, const MlpParams& p, const HdqtGraphTrace& trace,
                         const Matrix& dout, const HdqtRun& run, std::uint64_t step, int net, MlpGrads& grads,
                         HdqtOverflow& overflow, GraphScratch& scratch);

}  // namespace hdq
