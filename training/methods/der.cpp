// DER, dynamically expandable representation (Yan et al., CVPR 2021, as in
// PyCIL): task t trains a new feature extractor (the hidden layers of the
// scenario's MLP, or a layer graph's trunk: its conv trunk) while the
// extractors of tasks < t stay frozen (BatchNorm on running statistics); the
// classifier reads the concatenation of every extractor's features (relu of
// its output). From task 1 on an auxiliary head on the new features alone
// classifies the new classes plus one "old" class; loss = CE(seen classes) +
// CE(aux). Exemplars: the herding memory of iCaRL on the concatenated
// features, joined to the task's rows. PyCIL's pruning mask and the original
// paper's balanced classifier fine-tuning are not modelled.
//
// How the classifier maps onto HDQT GEMMs: during task t the logits are
//   new_(x)[first C outputs] + head_(concat of the frozen features),
// where new_ is one MLP (the new extractor, then a last layer whose C +
// |new| + 1 outputs are the new features' classifier block and the aux head),
// so the gradient reaches the new extractor through that network's own
// backward; head_ is one linear layer over the frozen features (its own
// GEMM). Both blocks carry a bias: the sum is a reparametrization of one
// bias. At the end of a task the new block (and its bias) is folded into
// head_, which then covers every extractor. Network ids: new_ 0, head_ 1,
// extractor k 2 + k.
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "models/quantizer/random_bits.h"
#include "training/methods/kinds.h"

namespace hdq {
namespace {

class Der final : public Method {
 public:
  explicit Der(const RunSetup& run) : Method(run), memory_(run.s.continual.replay_capacity) {}

  void begin_task(Engine& e, int t, std::uint64_t step) override {
    Method::begin_task(e, t, step);
    const auto exemplars = memory_rows(memory_);
    rows_.insert(rows_.end(), exemplars.begin(), exemplars.end());
    aux_ = t > 0 ? int(run_.tasks[std::size_t(t)].size()) + 1 : 0;
    // Task 0 is the scenario's plain network (same initial weights as naive).
    new_ = init_network(run_, run_.classes + aux_, t == 0 ? run_.s.seed : keyed(run_.s.seed, kInitTag, std::uint64_t(t)));
    sgd_new_.emplace(run_.s.train.sgd);
    sgd_head_.emplace(run_.s.train.sgd);
  }

  std::size_t planned_rows(int t) const override {
    return Method::planned_rows(t) + (t > 0 ? std::size_t(memory_.budget()) : 0);
  }

  StepLoss gradients(Engine& e, const Matrix& x, std::span<const int> y, std::uint64_t step,
                     std::vector<MlpGrads>& grads) override {
    const int classes = run_.classes;
    const bool old = !extractors_.empty();
    grads.resize(old ? 2 : 1);
    const NetCall call{step, 0, 0}, head_call{step, 1, 1};
    const Matrix zn = e.forward(new_, x, call).back();
    Matrix logits = columns(zn, 0, classes);
    if (old) add(logits, e.forward(head_, frozen_features(e, x, step, 2), head_call).back());
    Matrix dlogits;
    StepLoss loss{softmax_cross_entropy(logits, y, seen(), &dlogits), 0.0f};
    Matrix dzn(zn.rows, zn.cols);
    for (int r = 0; r < zn.rows; ++r) std::copy_n(dlogits.row(r).begin(), classes, dzn.row(r).begin());
    if (aux_ > 0) {
      // Aux labels: 0 for an old class, 1 + position in the task's class list for a new one.
      const auto& task_classes = run_.tasks[std::size_t(task_)];
      std::vector<int> aux_y(y.size(), 0);
      for (std::size_t r = 0; r < y.size(); ++r)
        for (std::size_t i = 0; i < task_classes.size(); ++i)
          if (y[r] == task_classes[i]) aux_y[r] = int(i) + 1;
      ClassMask all(aux_);
      for (int c = 0; c < aux_; ++c) all.set(c);
      Matrix daux;
      loss.total += softmax_cross_entropy(columns(zn, classes, aux_), aux_y, all.span(), &daux);
      for (int r = 0; r < zn.rows; ++r) std::copy_n(daux.row(r).begin(), aux_, dzn.row(r).begin() + classes);
    }
    e.backward(new_, call, dzn, grads[0]);
    if (old) e.backward(head_, head_call, dlogits, grads[1]);
    return loss;
  }

  void apply(const std::vector<MlpGrads>& grads, float lr, std::span<const std::size_t>) override {
    sgd_new_->set_lr(lr);
    sgd_new_->step(new_, grads[0]);
    if (grads.size() > 1) {
      sgd_head_->set_lr(lr);
      sgd_head_->step(head_, grads[1]);
    }
  }

  void end_task(Engine& e, int, std::uint64_t step) override {
    const int classes = run_.classes;
    // The new extractor freezes; its classifier block (first C rows of the
    // last layer, aux rows dropped) joins head_ as new columns, biases added.
    Matrix block(classes, new_.w.back().cols);
    std::copy_n(new_.w.back().v.begin(), block.v.size(), block.v.begin());
    std::vector<float> bias(new_.b.back().begin(), new_.b.back().begin() + classes);
    extractors_.push_back(trunk_of(new_));
    new_ = {};
    if (head_.w.empty()) {
      head_ = {{std::move(block)}, {std::move(bias)}};
    } else {
      const Matrix& w = head_.w[0];
      Matrix merged(classes, w.cols + block.cols);
      for (int r = 0; r < classes; ++r) {
        std::copy(w.row(r).begin(), w.row(r).end(), merged.row(r).begin());
        std::copy(block.row(r).begin(), block.row(r).end(), merged.row(r).begin() + w.cols);
      }
      head_.w[0] = std::move(merged);
      for (int c = 0; c < classes; ++c) head_.b[0][std::size_t(c)] += bias[std::size_t(c)];
    }
    update_memory(memory_, [&](const Matrix& x) {
      Matrix f = frozen_features(e, x, step, kEvalSlot);
      l2_normalize_rows(f);
      return f;
    });
  }

  void scores(Engine& e, const Matrix& x, std::uint64_t step, int, Matrix& out) override {
    const int classes = run_.classes;
    out = Matrix(x.rows, classes);
    if (!head_.w.empty()) out = e.forward(head_, frozen_features(e, x, step, kEvalSlot), {step, 1, kEvalSlot}).back();
    if (!new_.w.empty()) add(out, columns(e.forward(new_, x, {step, 0, kEvalSlot}).back(), 0, classes));
  }

  const MlpParams& primary_network() const override { return new_; }

  std::uint64_t signature() const override {
    std::uint64_t h = 0;
    for (const auto& p : extractors_) h = mix64(h ^ hdq::signature(p));
    if (!head_.w.empty()) h = mix64(h ^ hdq::signature(head_));
    if (!new_.w.empty()) h = mix64(h ^ hdq::signature(new_));
    return h;
  }

 private:
  ExemplarMemory memory_;
  std::vector<MlpParams> extractors_;  // frozen, one per finished task
  MlpParams head_;                     // classes x (sum of the frozen extractors' widths)
  MlpParams new_;                      // the current task's network (empty between tasks)
  int aux_ = 0;                        // aux outputs of new_ (0 in task 0)
  std::optional<Sgd> sgd_new_, sgd_head_;

  // relu of every frozen extractor's output, concatenated (extractors ascending);
  // a training slot counts the passes in the overflow statistics.
  Matrix frozen_features(Engine& e, const Matrix& x, std::uint64_t step, int slot) const {
    int width = 0;
    for (const auto& p : extractors_) width += p.graph ? int(p.graph->output().size()) : p.w.back().rows;
    Matrix f(x.rows, width);
    int at = 0;
    for (std::size_t k = 0; k < extractors_.size(); ++k) {
      const Matrix& out = e.forward(extractors_[k], x, {step, 2 + int(k), slot, true}).back();
      for (int r = 0; r < x.rows; ++r)
        for (int j = 0; j < out.cols; ++j) f.at(r, at + j) = std::max(out.at(r, j), 0.0f);
      at += out.cols;
    }
    return f;
  }

  static Matrix columns(const Matrix& m, int first, int count) {
    Matrix out(m.rows, count);
    for (int r = 0; r < m.rows; ++r) std::copy_n(m.row(r).begin() + first, count, out.row(r).begin());
    return out;
  }

  static void add(Matrix& acc, const Matrix& m) {
    for (std::size_t i = 0; i < acc.v.size(); ++i) acc.v[i] += m.v[i];
  }
};

}  // namespace

std::unique_ptr<Method> make_der(const RunSetup& run) { return std::make_unique<Der>(run); }

}  // namespace hdq
