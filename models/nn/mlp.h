// The network both engines train: an MLP of linear layers with ReLU between
// them, f32 master weights, and the pieces of training that are plain f32 in
// every engine (initialization, softmax cross-entropy, SGD). The quantized
// forward/backward lives in models/hdqt/, the float one in golden/.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace hdq {

class Graph;  // models/nn/network.h

// Row-major f32 matrix.
struct Matrix {
  int rows = 0, cols = 0;
  std::vector<float> v;

  Matrix() = default;
  Matrix(int r, int c) : rows(r), cols(c), v(std::size_t(r) * std::size_t(c), 0.0f) {}
  // New shape, contents unspecified (for outputs that are written whole); no
  // allocation when the storage is large enough already.
  void reshape(int r, int c) {
    rows = r, cols = c;
    v.resize(std::size_t(r) * std::size_t(c));
  }
  float& at(int r, int c) { return v[std::size_t(r) * cols + c]; }
  float at(int r, int c) const { return v[std::size_t(r) * cols + c]; }
  std::span<float> row(int r) { return {v.data() + std::size_t(r) * cols, std::size_t(cols)}; }
  std::span<const float> row(int r) const { return {v.data() + std::size_t(r) * cols, std::size_t(cols)}; }
};

// widths = {inputs, hidden..., outputs}; layer l maps widths[l] -> widths[l+1].
struct MlpSpec {
  std::vector<int> widths;
  int layers() const { return int(widths.size()) - 1; }
};

// The parameters of a network. Without a graph, the MLP: layer l has W[l]
// O x I (O = widths[l+1], I = widths[l]) and b[l] with O entries. With a
// graph (models/nn/network.h), w, b and running per parameter layer as
// network.h states.
struct MlpParams {
  std::vector<Matrix> w;
  std::vector<std::vector<float>> b;
  // Per layer: BatchNorm's running mean then running variance, empty for
  // other layers (and for MLPs). In gradients: the running statistics after
  // the training forward (Sgd::step installs them).
  std::vector<std::vector<float>> running{};
  std::shared_ptr<const Graph> graph{};  // null: the MLP of w and b
};

// Same shapes as MlpParams.
using MlpGrads = MlpParams;

// PyTorch nn.Linear's default initialization, with our own random stream:
// every weight and bias of layer l is U(-1/sqrt(I), 1/sqrt(I)), drawn as
// init_uniform(seed, l, 1/sqrt(I), W[l], b[l]).
MlpParams init_mlp(const MlpSpec& spec, std::uint64_t seed);

// The draws of layer l: every value of w (row-major) and then of b is
// (2u - 1) * bound with u = top 24 bits of mix64((seed ^ mix64(l)) + i * gamma) / 2^24,
// i = 1, 2, ... (gamma = 0x9e3779b97f4a7c15).
void init_uniform(std::uint64_t seed, int layer, float bound, std::span<float> w, std::span<float> b);

MlpGrads zeros_like(const MlpParams& p);

// Softmax cross-entropy over the active classes only (one head over all
// classes seen so far: inactive logits take no part and get zero gradient).
// Per row, in f32: mx = max of active logits (ascending class index);
// s = sum of exp(z_c - mx) over active c ascending; loss_r = log(s) - (z_y - mx);
// dlogits[r][c] = (exp(z_c - mx) / s - [c == y]) / B.
// Returns the mean loss, summed over rows in batch order then divided by B.
float softmax_cross_entropy(const Matrix& logits, std::span<const int> labels, std::span<const bool> active,
                            Matrix* dlogits);

// Knowledge distillation on the classes in `mask` (Hinton et al. 2015, in the
// form LwF, iCaRL and BiC use in PyCIL, no T^2 factor): per row,
// p = softmax(teacher / T), log q = log_softmax(student / T),
// loss_r = -sum_c p_c log q_c; d loss / d student_c = (q_c - p_c) / (T B).
// Per row in f32, classes ascending: z / T is one division; max, exp-sums and
// log as in softmax_cross_entropy; loss_r summed left to right. When dstudent
// is given, weight * gradient is added to it (one multiply, one add, rounded
// each). Returns the unweighted mean loss (rows in batch order, then / B).
float distillation(const Matrix& student, const Matrix& teacher, std::span<const bool> mask, float temperature,
                   float weight, Matrix* dstudent);

// Arg-max over active classes (lowest index wins ties).
int predict_class(std::span<const float> logits, std::span<const bool> active);

struct SgdConfig {
  float lr = 0.01f;
  float momentum = 0.9f;
  float weight_decay = 0.0f;
};

// SGD as PyTorch: d = g + wd * w; buf = d on the first step, else mu * buf + d;
// w = w - lr * buf. Every operation one f32 rounding, weights and biases alike.
// BatchNorm running statistics are not trained: step() installs the
// gradients' `running` (those of the training forward) where it is non-empty.
class Sgd {
 public:
  explicit Sgd(SgdConfig cfg) : cfg_(cfg) {}
  void step(MlpParams& p, const MlpGrads& g);
  void set_lr(float lr) { cfg_.lr = lr; }
  float lr() const { return cfg_.lr; }
  // Forget the momentum buffers (e.g. at a task boundary when configured).
  void reset() { buf_.w.clear(); buf_.b.clear(); }

 private:
  SgdConfig cfg_;
  MlpParams buf_;
};

// 64-bit FNV-1a over the bits of every weight, bias and running statistic,
// layer by layer (w[l], b[l], running[l]): the run signature printed at the
// end of training.
std::uint64_t signature(const MlpParams& p);

}  // namespace hdq
