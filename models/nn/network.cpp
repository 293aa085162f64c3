#include "models/nn/network.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>

#include "models/common/errors.h"

namespace hdq {

std::string_view name(LayerKind k) {
  switch (k) {
    case LayerKind::conv: return "conv";
    case LayerKind::linear: return "linear";
    case LayerKind::batchnorm: return "batchnorm";
    case LayerKind::relu: return "relu";
    case LayerKind::max_pool: return "max_pool";
    case LayerKind::avg_pool: return "avg_pool";
    case LayerKind::global_avg_pool: return "global_avg_pool";
    case LayerKind::flatten: return "flatten";
    case LayerKind::add: return "add";
    case LayerKind::shortcut: return "shortcut";
  }
  return "?";
}

Graph::Graph(ImageShape input) : input_(input) {
  require_in_range("network input channels", input.c, 1, 1 << 24);
  require_in_range("network input height", input.h, 1, 1 << 24);
  require_in_range("network input width", input.w, 1, 1 << 24);
  require_tensor_elements("network input (C x H x W)", {input.c, input.h, input.w});
}

void Graph::check_input(int in, const char* what) const {
  if (in < kNetworkInput || in >= int(nodes_.size()))
    throw ConfigError(fmt::format("network node {} ({}): input {} is not an earlier node", nodes_.size(), what, in));
}

int Graph::push(LayerNode n) {
  try {
    require_tensor_elements("output (C x H x W)", {n.out.c, n.out.h, n.out.w});
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("network node {} ({}): {}", nodes_.size(), name(n.kind), e.what()));
  }
  nodes_.push_back(n);
  return int(nodes_.size()) - 1;
}

int Graph::conv(int in, int out_channels, int kernel, int stride, int pad, bool bias) {
  check_input(in, "conv");
  LayerNode n{.kind = LayerKind::conv, .a = in, .in = shape(in), .bias = bias};
  n.conv = {n.in.c, n.in.h, n.in.w, out_channels, kernel, kernel, stride, stride, pad, pad};
  try {
    validate(n.conv);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("network node {} (conv on {} x {} x {}): {}", nodes_.size(), n.in.c, n.in.h, n.in.w,
                                  e.what()));
  }
  n.out = {out_channels, n.conv.out_h(), n.conv.out_w()};
  n.param = params_++;
  return push(n);
}

int Graph::linear(int in, int outputs) {
  check_input(in, "linear");
  require_in_range("network linear outputs", outputs, 1, 1 << 20);
  LayerNode n{.kind = LayerKind::linear, .a = in, .in = shape(in), .out = {outputs, 1, 1}};
  n.param = params_++;
  return push(n);
}

int Graph::batchnorm(int in) {
  check_input(in, "batchnorm");
  LayerNode n{.kind = LayerKind::batchnorm, .a = in, .in = shape(in), .out = shape(in)};
  n.param = params_++;
  return push(n);
}

int Graph::relu(int in) {
  check_input(in, "relu");
  return push({.kind = LayerKind::relu, .a = in, .in = shape(in), .out = shape(in)});
}

namespace {
LayerNode pool_node(LayerKind kind, int in, ImageShape s, int kernel, int stride, std::size_t index) {
  LayerNode n{.kind = kind, .a = in, .in = s};
  n.pool = {s.c, s.h, s.w, kernel, kernel, stride, stride, 0, 0};
  try {
    validate(n.pool);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("network node {} ({} on {} x {} x {}): {}", index, name(kind), s.c, s.h, s.w,
                                  e.what()));
  }
  n.out = {s.c, n.pool.out_h(), n.pool.out_w()};
  return n;
}
}  // namespace

int Graph::max_pool(int in, int kernel, int stride) {
  check_input(in, "max_pool");
  return push(pool_node(LayerKind::max_pool, in, shape(in), kernel, stride, nodes_.size()));
}

int Graph::avg_pool(int in, int kernel, int stride) {
  check_input(in, "avg_pool");
  return push(pool_node(LayerKind::avg_pool, in, shape(in), kernel, stride, nodes_.size()));
}

int Graph::global_avg_pool(int in) {
  check_input(in, "global_avg_pool");
  const ImageShape s = shape(in);
  return push({.kind = LayerKind::global_avg_pool, .a = in, .in = s, .out = {s.c, 1, 1}});
}

int Graph::flatten(int in) {
  check_input(in, "flatten");
  const ImageShape s = shape(in);
  return push({.kind = LayerKind::flatten, .a = in, .in = s, .out = {int(s.size()), 1, 1}});
}

int Graph::add(int a, int b) {
  check_input(a, "add");
  check_input(b, "add");
  const ImageShape sa = shape(a), sb = shape(b);
  if (sa.c != sb.c || sa.h != sb.h || sa.w != sb.w)
    throw ConfigError(fmt::format("network node {} (add): inputs of shapes {} x {} x {} and {} x {} x {}",
                                  nodes_.size(), sa.c, sa.h, sa.w, sb.c, sb.h, sb.w));
  return push({.kind = LayerKind::add, .a = a, .b = b, .in = sa, .out = sa});
}

int Graph::shortcut(int in, int out_channels, int stride) {
  check_input(in, "shortcut");
  const ImageShape s = shape(in);
  require_in_range("network shortcut stride", stride, 1, 1 << 24);
  if (out_channels < s.c || (out_channels - s.c) % 2 != 0)
    throw ConfigError(fmt::format("network node {} (shortcut): {} output channels from {}: option A pads an even "
                                  "number of zero channels",
                                  nodes_.size(), out_channels, s.c));
  LayerNode n{.kind = LayerKind::shortcut, .a = in, .in = s,
              .out = {out_channels, (s.h - 1) / stride + 1, (s.w - 1) / stride + 1}};
  n.stride = stride;
  n.pad_before = (out_channels - s.c) / 2;
  return push(n);
}

Graph Graph::trunk() const {
  if (nodes_.empty() || nodes_.back().kind != LayerKind::linear || nodes_.back().param != params_ - 1)
    throw ConfigError("network: the feature extractor is the graph without its last node, which must be the linear classifier");
  Graph t = *this;
  t.nodes_.pop_back();
  --t.params_;
  if (t.nodes_.empty()) throw ConfigError("network: a graph of one linear layer has no feature extractor");
  return t;
}

const std::vector<std::string>& network_presets() {
  static const std::vector<std::string> p{"cnn-small", "resnet20", "resnet32"};
  return p;
}

namespace {

// He et al.'s basic block: conv-BN-relu-conv-BN, + shortcut, relu.
int basic_block(Graph& g, int x, int channels, int stride) {
  const ImageShape in = g.shape(x);
  int y = g.relu(g.batchnorm(g.conv(x, channels, 3, stride, 1, false)));
  y = g.batchnorm(g.conv(y, channels, 3, 1, 1, false));
  const int skip = (stride != 1 || in.c != channels) ? g.shortcut(x, channels, stride) : x;
  return g.relu(g.add(y, skip));
}

Graph cifar_resnet(ImageShape input, int classes, int blocks_per_stage) {
  Graph g(input);
  int x = g.relu(g.batchnorm(g.conv(kNetworkInput, 16, 3, 1, 1, false)));
  const int widths[3] = {16, 32, 64};
  for (int stage = 0; stage < 3; ++stage)
    for (int b = 0; b < blocks_per_stage; ++b) x = basic_block(g, x, widths[stage], stage > 0 && b == 0 ? 2 : 1);
  g.linear(g.flatten(g.global_avg_pool(x)), classes);
  return g;
}

Graph cnn_small(ImageShape input, int classes) {
  if (input.h < 4 || input.w < 4)
    throw ConfigError(fmt::format("an image of at least 4 x 4 (two 2 x 2 poolings), the data's is {} x {}", input.h,
                                  input.w));
  Graph g(input);
  int x = g.max_pool(g.relu(g.conv(kNetworkInput, 16, 3, 1, 1, true)), 2, 2);
  x = g.max_pool(g.relu(g.conv(x, 32, 3, 1, 1, true)), 2, 2);
  g.linear(g.flatten(x), classes);
  return g;
}

}  // namespace

std::shared_ptr<const Graph> network_preset(std::string_view name, ImageShape input, int classes) {
  try {
    if (name == "cnn-small") return std::make_shared<const Graph>(cnn_small(input, classes));
    if (name == "resnet20") return std::make_shared<const Graph>(cifar_resnet(input, classes, 3));
    if (name == "resnet32") return std::make_shared<const Graph>(cifar_resnet(input, classes, 5));
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("network.preset {} on {} x {} x {} samples: {}", name, input.c, input.h, input.w,
                                  e.what()));
  }
  throw ConfigError(fmt::format("network.preset '{}' is not one of: {}", name, fmt::join(network_presets(), ", ")));
}

ImageShape image_shape(std::span<const std::size_t> s, std::string_view what) {
  const auto fits = [](std::size_t v) { return v >= 1 && v <= (std::size_t(1) << 24); };
  if (s.size() == 3 && fits(s[0]) && fits(s[1]) && fits(s[2])) return {int(s[0]), int(s[1]), int(s[2])};
  if (s.size() == 2 && fits(s[0]) && fits(s[1])) return {1, int(s[0]), int(s[1])};
  throw ConfigError(fmt::format("{} needs images (a sample shape C x H x W or H x W); the data's samples have "
                                "shape {{{}}}",
                                what, fmt::join(s, ", ")));
}

MlpParams init_graph(std::shared_ptr<const Graph> g, std::uint64_t seed) {
  MlpParams p;
  for (const LayerNode& n : g->nodes()) {
    if (n.param < 0) continue;
    Matrix w;
    std::vector<float> b, running;
    if (n.kind == LayerKind::batchnorm) {
      w = Matrix(1, n.in.c);
      std::fill(w.v.begin(), w.v.end(), 1.0f);
      b.assign(std::size_t(n.in.c), 0.0f);
      running.assign(2 * std::size_t(n.in.c), 0.0f);
      std::fill(running.begin() + n.in.c, running.end(), 1.0f);
    } else {
      const long long fan_in = n.kind == LayerKind::conv ? n.conv.patch() : n.in.size();
      require_tensor_elements(fmt::format("network: the weights of layer {} ({})", n.param, name(n.kind)),
                              {n.out.c, fan_in});
      w = Matrix(n.out.c, int(fan_in));
      if (n.bias) b.resize(std::size_t(n.out.c));
      init_uniform(seed, n.param, 1.0f / std::sqrt(float(fan_in)), w.v, b);
    }
    p.w.push_back(std::move(w));
    p.b.push_back(std::move(b));
    p.running.push_back(std::move(running));
  }
  p.graph = std::move(g);
  return p;
}

MlpParams init_network(const NetworkSpec& net, std::span<const std::size_t> sample_shape, int classes,
                       std::uint64_t seed) {
  if (net.is_graph())
    return init_graph(network_preset(net.preset, image_shape(sample_shape, "network.preset " + net.preset), classes),
                      seed);
  std::size_t features = 1;
  for (std::size_t d : sample_shape) features *= d;
  MlpSpec spec{{int(features)}};
  spec.widths.insert(spec.widths.end(), net.hidden.begin(), net.hidden.end());
  spec.widths.push_back(classes);
  return init_mlp(spec, seed);
}

}  // namespace hdq
