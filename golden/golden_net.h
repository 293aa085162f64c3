// The float golden model of layer graphs (models/nn/network.h): conv layers
// are golden::conv2d_forward / conv2d_backward (direct loops, golden/conv.h),
// linear layers golden::linear_forward / linear_backward (golden.h), the
// other layers the f32 passes of models/nn/graph_passes.h. No quantization.
#pragma once

#include "golden/golden.h"
#include "models/nn/graph_passes.h"

namespace hdq::golden {

// Forward of the graph network p on x; BatchNorm uses batch statistics when
// batch_stats. trace.outputs is the Engine's view.
void graph_forward(Context& ctx, const MlpParams& p, const Matrix& x, bool batch_stats, GraphTrace& trace);

// Gradients of every parameter layer from dout = dL/d(output) through the
// trace of a training forward.
void graph_backward(Context& ctx, const MlpParams& p, const GraphTrace& trace, const Matrix& dout, MlpGrads& grads,
                    GraphScratch& scratch);

}  // namespace hdq::golden
