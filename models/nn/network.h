// Networks beyond the MLP: a layer graph of convolution, linear, BatchNorm,
// ReLU, pooling, flatten, residual add and the option-A shortcut, with the
// named presets of docs/scenarios.md (`network.preset`), and the one place
// that turns a scenario's network (MLP widths or a preset) into parameters.
//
// Parameters (mlp.h MlpParams) are numbered by parameter layer: the conv,
// linear and batchnorm nodes in node order, layer l owning w[l], b[l] and
// running[l]:
//   conv       w = C_out x K (OIHW, models/nn/conv.h), b = C_out values or none
//   linear     w = O x I, b = O values (I = C*H*W of the input: a flattened NCHW tensor)
//   batchnorm  w = 1 x C (gamma), b = C values (beta), running = the running
//              mean (C values) then the running variance (C values)
// The parameter layer index is also the HDQT layer index (random streams,
// docs/contract.md §3; overflow statistics), so a graph has at most
// kLayersPerNet (hdqt_mlp.h: 64) parameter layers.
//
// Initialization (init_graph) draws, for conv and linear layer l, every weight
// and then every bias as init_mlp does for layer l (mlp.h) with bound
// 1/sqrt(fan_in), fan_in = K (conv) or I (linear): PyTorch's default
// nn.Conv2d / nn.Linear initialization with our random stream. BatchNorm:
// gamma 1, beta 0, running mean 0, running variance 1 (PyTorch's defaults).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "models/nn/cnn_layers.h"
#include "models/nn/conv.h"
#include "models/nn/mlp.h"

namespace hdq {

// One sample's shape: C x H x W (NCHW rows, models/nn/conv.h). A linear
// layer's or a global pooling's output is C x 1 x 1.
struct ImageShape {
  int c = 1, h = 1, w = 1;
  long long size() const { return 1LL * c * h * w; }
};

enum class LayerKind { conv, linear, batchnorm, relu, max_pool, avg_pool, global_avg_pool, flatten, add, shortcut };
std::string_view name(LayerKind k);

// One node of a graph. Inputs name earlier nodes; kNetworkInput is the
// network's input.
inline constexpr int kNetworkInput = -1;
struct LayerNode {
  LayerKind kind = LayerKind::relu;
  int a = kNetworkInput;   // input
  int b = kNetworkInput;   // add: the second input
  int param = -1;          // conv, linear, batchnorm: the parameter layer
  ImageShape in{}, out{};  // in: the shape of input a
  ConvGeometry conv{};     // conv
  PoolGeometry pool{};     // max_pool, avg_pool
  bool bias = true;        // conv, linear
  int stride = 1;          // shortcut
  int pad_before = 0;      // shortcut: zero channels before the input's channels
};

// A layer graph in topological order (every node's inputs come before it); the
// last node is the network's output. Builders check shapes and throw
// ConfigError naming the node ("network node 3 (conv): ...").
class Graph {
 public:
  explicit Graph(ImageShape input);

  // Convolution with a square kernel, equal stride and padding on both axes.
  int conv(int in, int out_channels, int kernel, int stride, int pad, bool bias);
  // Linear layer over the flattened input (C*H*W features).
  int linear(int in, int outputs);
  int batchnorm(int in);
  int relu(int in);
  int max_pool(int in, int kernel, int stride);
  int avg_pool(int in, int kernel, int stride);
  int global_avg_pool(int in);
  // C x H x W -> (C*H*W) x 1 x 1; moves no data (NCHW rows are PyTorch's flatten order).
  int flatten(int in);
  // Element-wise a + b (equal shapes).
  int add(int a, int b);
  // He et al.'s option-A shortcut: y[c][oy][ox] = x[c - pad_before][oy*stride][ox*stride]
  // for c - pad_before in 0..C_in-1, else 0, with pad_before = (out_channels - C_in) / 2
  // (the zero channels split evenly, as x[:, :, ::2, ::2] padded on both sides).
  int shortcut(int in, int out_channels, int stride);

  ImageShape input() const { return input_; }
  const std::vector<LayerNode>& nodes() const { return nodes_; }
  ImageShape shape(int node) const { return node == kNetworkInput ? input_ : nodes_[std::size_t(node)].out; }
  int param_layers() const { return params_; }
  // The output of the network (the last node).
  ImageShape output() const { return nodes_.back().out; }
  // The graph without its last node, which must be a linear layer (the
  // classifier): the feature extractor of DER, iCaRL's and BiC's features.
  Graph trunk() const;

 private:
  int push(LayerNode n);
  void check_input(int in, const char* what) const;
  ImageShape input_;
  std::vector<LayerNode> nodes_;
  int params_ = 0;
};

// The presets, in the order docs list them: cnn-small, resnet20, resnet32.
const std::vector<std::string>& network_presets();

// Preset `name` for samples of shape `input` and `classes` outputs; a
// ConfigError naming network.preset for an unknown name or an input the
// preset cannot take.
//   cnn-small   conv3x3-16 (pad 1) relu maxpool2 conv3x3-32 (pad 1) relu maxpool2
//               flatten linear (for 1 x 28 x 28: 16 x 28 x 28, 16 x 14 x 14, 32 x 14 x 14,
//               32 x 7 x 7 = 1568 features); H, W >= 4
//   resnet20/32 He et al. 2016 CIFAR ResNet-6n+2 (n = 3, 5): conv3x3-16 (no bias)
//               BN relu, three stages of n basic blocks with 16, 32, 64 channels
//               (the first block of stages 2 and 3 has stride 2), global average
//               pooling, linear. Basic block: conv3x3 (stride s, no bias) BN relu
//               conv3x3 BN, add the shortcut (identity, or option A where the
//               shape changes), relu.
std::shared_ptr<const Graph> network_preset(std::string_view name, ImageShape input, int classes);

// A sample shape of a data set (datasets.h Dataset::shape) as an image:
// {C, H, W}, or {H, W} as one channel (Fashion-MNIST's {28, 28}; the synthetic
// windows' {channels, steps}). ConfigError naming `what` for another rank.
ImageShape image_shape(std::span<const std::size_t> sample_shape, std::string_view what);

// The parameters of a graph (initialization above); p.graph = g.
MlpParams init_graph(std::shared_ptr<const Graph> g, std::uint64_t seed);

// A scenario's network: an MLP of `hidden` widths, or (preset non-empty) a
// named layer graph.
struct NetworkSpec {
  std::vector<int> hidden{256, 256};
  std::string preset;
  bool is_graph() const { return !preset.empty(); }
};

// The initial parameters of `net` for samples of `sample_shape` and `classes`
// outputs: init_mlp of {features, hidden..., classes}, or init_graph of the preset.
MlpParams init_network(const NetworkSpec& net, std::span<const std::size_t> sample_shape, int classes,
                       std::uint64_t seed);

}  // namespace hdq
