// Forward and backward passes through a layer graph (network.h), shared by
// the engines: the non-GEMM layers run here in f32 (cnn_layers.h), the conv
// and linear layers through the engine's GemmLayerOps (HDQT layers in the
// functional engine, models/hdqt/hdqt_net.h; golden convolution and matmul
// in the golden model, golden/golden_net.h).
//
// Forward: nodes in order. relu(v) = v > 0 or NaN ? v : +0. BatchNorm uses
// batch statistics when the pass is a training pass (`batch_stats`), its
// running statistics otherwise; a training pass updates a copy of the running
// statistics (cnn_layers.h), handed on as the gradients' `running`.
// Flatten copies. Shortcut (option A) writes x[c - pad][oy*s][ox*s], zeros elsewhere.
//
// Backward: nodes in reverse order from dL/d(output); a node's gradient is
// the sum of its consumers' contributions, added in the order the consumers
// are visited (reverse node order; an add node gives input a's then input b's),
// the first one copied, each later one added with one f32 rounding. relu passes
// the gradient where its input > 0 (else +0); flatten and add pass it
// unchanged; the shortcut's input gradient is dy at the sampled cells of the
// kept channels, +0 elsewhere; pooling and BatchNorm as cnn_layers.h states;
// conv and linear layers through the ops (dX is not computed for a layer that
// reads the network input). Backward needs a training pass (batch statistics).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/nn/cnn_layers.h"
#include "models/nn/mlp.h"
#include "models/nn/network.h"

namespace hdq {

// What a forward pass keeps (its backward reads it).
struct GraphTrace {
  Matrix input;                              // the network input (a copy)
  std::vector<Matrix> act;                   // every node's output
  // Engine::forward's view: per parameter layer its output, then the
  // network's output when the last node has no parameters.
  std::vector<Matrix> outputs;
  std::vector<BatchNormSaved<float>> bn;           // per node: batchnorm of a training pass
  std::vector<std::vector<std::int32_t>> argmax;   // per node: max_pool
  std::vector<std::vector<float>> running;         // per parameter layer: running statistics after the pass
  bool batch_stats = false;
};

// Buffers of the backward pass (every node's gradient), reused from call to
// call; no result depends on what they held before.
struct GraphScratch {
  std::vector<Matrix> grad;
  std::vector<bool> has;
  Matrix tmp;
};

// The conv and linear layers of an engine. Node n's parameter layer is n.param.
class GemmLayerOps {
 public:
  virtual ~GemmLayerOps() = default;
  // y (N x C_out*P, or N x O) from x; b empty: no bias.
  virtual void forward(const LayerNode& n, const Matrix& x, const Matrix& w, std::span<const float> b, Matrix& y) = 0;
  // dW, db (empty without bias) and, when dx is non-null, dX from g = dL/dy;
  // x and w are the forward's input and weights.
  virtual void backward(const LayerNode& n, const Matrix& x, const Matrix& w, const Matrix& g, Matrix* dx, Matrix& dw,
                        std::vector<float>& db) = 0;
};

// Throws ConfigError unless p has a graph and parameters of its shapes, and x
// is N x C*H*W of its input.
void check_graph_params(const MlpParams& p);

void graph_forward(GemmLayerOps& ops, const MlpParams& p, const Matrix& x, bool batch_stats, GraphTrace& t);

// g receives the gradients of every parameter layer (shapes of p) and the
// running statistics of the pass.
void graph_backward(GemmLayerOps& ops, const MlpParams& p, const GraphTrace& t, const Matrix& dout, MlpGrads& g,
                    GraphScratch& scratch);

}  // namespace hdq
