// The one-network methods as recipes (the defaults follow PyCIL, Zhou et al.
// 2023, where the paper's methods come from):
// - naive: cross-entropy over the seen classes on the task's data;
// - er: naive plus replay from a reservoir (continual.h describes the draws);
// - joint: naive on the data of every task seen so far;
// - lwf (Li & Hoiem 2017): from task 1 on, loss = CE over the new classes +
//   lwf_weight * KD(old classes) against the network as it was at the end of
//   the previous task; no memory;
// - icarl (Rebuffi et al. 2017): the task's data plus the herding exemplar
//   memory, loss = CE over the seen classes + KD(old classes); classifies by
//   the nearest mean of exemplars (NME) and also reports the head;
// - bic (Wu et al. 2019): iCaRL's data and memory minus a held-out split,
//   loss = (1 - l) CE + l KD with l = |old| / |seen|, logits of task k's
//   classes through a bias layer a_k z + b_k; after each task from 1 on, the
//   new task's (a, b) are trained on the held-out split with the network frozen.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "training/exemplars.h"
#include "training/methods/kinds.h"

namespace hdq {
namespace {

struct Recipe {
  bool joint = false;        // train on every seen class's data
  bool reservoir = false;    // er's replay
  bool exemplars = false;    // herding memory joins the training rows
  bool ce_new_only = false;  // lwf: CE over the new classes only
  enum class Kd { none, fixed, old_share } kd = Kd::none;
  bool nme = false;          // icarl's classifier
  bool bias_layers = false;  // bic
};

Recipe recipe_of(const std::string& method) {
  Recipe r;
  if (method == "er") r.reservoir = true;
  if (method == "joint") r.joint = true;
  if (method == "lwf") r.ce_new_only = true, r.kd = Recipe::Kd::fixed;
  if (method == "icarl") r.exemplars = true, r.kd = Recipe::Kd::fixed, r.nme = true;
  if (method == "bic") r.exemplars = true, r.kd = Recipe::Kd::old_share, r.bias_layers = true;
  return r;
}

class SingleNet final : public Method {
 public:
  explicit SingleNet(const RunSetup& run)
      : Method(run),
        recipe_(recipe_of(run.s.continual.method)),
        params_(init_network(run, run.classes, run.s.seed)),
        memory_(run.s.continual.replay_capacity),
        alpha_(run.tasks.size(), 1.0f),
        beta_(run.tasks.size(), 0.0f),
        task_of_class_(std::size_t(run.classes), 0),
        class_means_(std::size_t(run.classes)) {
    for (std::size_t t = 0; t < run.tasks.size(); ++t)
      for (int c : run.tasks[t]) task_of_class_[std::size_t(c)] = int(t);
  }

  void begin_task(Engine& e, int t, std::uint64_t step) override {
    Method::begin_task(e, t, step);
    sgd_.emplace(run_.s.train.sgd);
    if (recipe_.kd != Recipe::Kd::none && t > 0) teacher_ = params_;
    if (recipe_.joint) rows_ = rows_of(seen_);
    if (recipe_.exemplars) add_memory_rows(t);
  }

  std::size_t planned_rows(int t) const override {
    std::size_t n = Method::planned_rows(t);
    if (recipe_.joint)
      for (int j = 0; j < t; ++j) n += Method::planned_rows(j);
    if (recipe_.exemplars && t > 0) n += std::size_t(memory_.budget());
    return n;
  }

  void extend_batch(Matrix& x, std::vector<int>& y, std::uint64_t step) const override {
    if (!recipe_.reservoir) return;
    const std::size_t n = std::size_t(x.rows), d = std::size_t(x.cols);
    const int replay_batch = run_.s.continual.replay_batch ? run_.s.continual.replay_batch : run_.s.train.batch;
    const std::size_t r = std::min<std::size_t>(std::size_t(replay_batch), reservoir_.size());
    x.rows += int(r);
    x.v.resize(std::size_t(x.rows) * d);
    y.resize(n + r);
    const std::uint64_t pick_key = keyed(run_.s.seed, kReplayPickTag, step);
    for (std::size_t i = 0; i < r; ++i) {
      const std::size_t row = reservoir_[below(pick_key, i, reservoir_.size())];
      const auto src = run_.train.row(row);
      std::copy(src.begin(), src.end(), x.v.begin() + (n + i) * d);
      y[n + i] = run_.train.labels[row];
    }
  }

  StepLoss gradients(Engine& e, const Matrix& x, std::span<const int> y, std::uint64_t step,
                     std::vector<MlpGrads>& grads) override {
    grads.resize(1);
    const bool distill = recipe_.kd != Recipe::Kd::none && task_ > 0;
    const bool bias = recipe_.bias_layers && task_ > 0;
    // Plain cross-entropy steps are the engine's own (the NPU model runs only those).
    if (!distill && !bias && !recipe_.ce_new_only) return {e.gradients(params_, x, y, seen(), step, grads[0]), 0.0f};

    const NetCall call{step, 0, 0};
    Matrix z = e.forward(params_, x, call).back();
    if (bias) apply_bias(z);
    Matrix dz;
    const float ce = softmax_cross_entropy(z, y, recipe_.ce_new_only ? new_.span() : seen(), &dz);
    StepLoss loss{ce, 0.0f};
    if (distill) {
      Matrix zt = e.forward(teacher_, x, {step, 1, 1, true}).back();  // frozen, as PyTorch's eval()
      if (bias) apply_bias(zt);  // the teacher's layers: those of tasks < t, equal to the student's
      float weight = run_.s.continual.lwf_weight;  // lwf
      if (recipe_.kd == Recipe::Kd::fixed && !recipe_.ce_new_only) weight = 1.0f;  // icarl
      if (recipe_.kd == Recipe::Kd::old_share) {
        weight = float(old_.count()) / float(seen_.count());
        const float keep = 1.0f - weight;
        for (float& g : dz.v) g *= keep;
        loss.total = keep * ce;
      }
      loss.distill = distillation(z, zt, old_.span(), run_.s.continual.kd_temperature, weight, &dz);
      loss.total += weight * loss.distill;
    }
    if (bias)  // through z' = a_k z + b_k
      for (int r = 0; r < dz.rows; ++r)
        for (int c = 0; c < dz.cols; ++c) dz.at(r, c) *= alpha_[std::size_t(task_of_class_[std::size_t(c)])];
    e.backward(params_, call, dz, grads[0]);
    return loss;
  }

  void apply(const std::vector<MlpGrads>& grads, float lr, std::span<const std::size_t> rows) override {
    sgd_->set_lr(lr);
    sgd_->step(params_, grads[0]);
    if (recipe_.reservoir)
      for (std::size_t row : rows) offer(row);
  }

  void end_task(Engine& e, int t, std::uint64_t step) override {
    if (recipe_.exemplars) update_memory(memory_, feature_fn(e, step));
    if (recipe_.bias_layers && t > 0) train_bias_layer(e, t, step);
    if (recipe_.nme) update_class_means(e, step);
  }

  std::vector<std::string> classifiers() const override {
    if (recipe_.nme) return {"nme", "head"};
    return {"head"};
  }

  void scores(Engine& e, const Matrix& x, std::uint64_t step, int classifier, Matrix& out) override {
    if (classifiers()[std::size_t(classifier)] == "nme") return nme_scores(e, x, step, out);
    e.logits(params_, x, step, out);
    if (recipe_.bias_layers) apply_bias(out);
  }

  std::uint64_t signature() const override { return hdq::signature(params_); }
  const MlpParams& primary_network() const override { return params_; }

 private:
  Recipe recipe_;
  MlpParams params_, teacher_;
  std::optional<Sgd> sgd_;
  std::vector<std::size_t> reservoir_;  // er: training rows
  std::uint64_t offered_ = 0;           // er: rows offered to the reservoir so far
  ExemplarMemory memory_;
  std::vector<std::size_t> held_out_;   // bic: rows of the bias-layer stage of the current task
  std::vector<float> alpha_, beta_;     // bic: bias layer of each task
  std::vector<int> task_of_class_;
  std::vector<std::vector<float>> class_means_;  // icarl: per class, empty until it has exemplars

  // Vitter's algorithm R on training rows, keyed by (seed, rows offered before).
  void offer(std::size_t row) {
    const std::uint64_t key = keyed(run_.s.seed, kReservoirTag, offered_);
    ++offered_;
    const auto capacity = std::size_t(run_.s.continual.replay_capacity);
    if (capacity == 0) return;
    if (reservoir_.size() < capacity) {
      reservoir_.push_back(row);
      return;
    }
    const std::uint64_t j = below(key, offered_, offered_);
    if (j < capacity) reservoir_[j] = row;
  }

  // z'_c = a_k z_c + b_k for the classes c of task k (one f32 multiply, one add).
  void apply_bias(Matrix& z) const {
    for (int r = 0; r < z.rows; ++r)
      for (int c = 0; c < z.cols; ++c) {
        const auto k = std::size_t(task_of_class_[std::size_t(c)]);
        z.at(r, c) = alpha_[k] * z.at(r, c) + beta_[k];
      }
  }

  // The exemplars join the task's rows (classes ascending, herding order);
  // bic first holds out, per seen class, v = max(1, floor(bic_val_fraction *
  // quota)) rows: an old class's last v exemplars, a new class's first v rows
  // in a permutation keyed by (seed, task, class).
  void add_memory_rows(int t) {
    held_out_.clear();
    std::vector<bool> held(run_.train.size(), false);
    if (recipe_.bias_layers && t > 0) {
      const int v = std::max(1, int(run_.s.continual.bic_val_fraction * float(memory_.quota(seen_.count()))));
      // At most all but one of a class's rows: every class keeps one to train on.
      const auto share = [v](std::size_t n) { return n > 1 ? std::min(n - 1, std::size_t(v)) : std::size_t(0); };
      for (const auto& [c, rows] : memory_.classes())
        held_out_.insert(held_out_.end(), rows.end() - std::ptrdiff_t(share(rows.size())), rows.end());
      for (int c : run_.tasks[std::size_t(t)]) {
        ClassMask one(run_.classes);
        one.set(c);
        const auto rows = rows_of(one);
        const auto order = permutation(rows.size(), keyed(run_.s.seed, kHoldOutTag, std::uint64_t(t), std::uint64_t(c)));
        for (std::size_t i = 0; i < share(rows.size()); ++i) held_out_.push_back(rows[order[i]]);
      }
      for (std::size_t row : held_out_) held[row] = true;
      std::erase_if(rows_, [&](std::size_t row) { return held[row]; });
    }
    for (const auto& [c, rows] : memory_.classes())
      for (std::size_t row : rows)
        if (!held[row]) rows_.push_back(row);
  }

  // relu of the last hidden layer's output (an MLP), or of the trunk's output
  // (a layer graph: the network's evaluation forward without the classifier),
  // rows L2-normalized (evaluation pass).
  Matrix hidden_features(Engine& e, const Matrix& x, std::uint64_t step) const {
    Matrix f;
    if (params_.graph) {
      f = e.forward(trunk_of(params_), x, {step, 0, kEvalSlot}).back();
    } else {
      const auto& pre = e.forward(params_, x, {step, 0, kEvalSlot});
      f = pre[pre.size() - 2];
    }
    for (float& v : f.v) v = std::max(v, 0.0f);
    l2_normalize_rows(f);
    return f;
  }

  FeatureFn feature_fn(Engine& e, std::uint64_t step) const {
    return [this, &e, step](const Matrix& x) { return hidden_features(e, x, step); };
  }

  // Trains (a_t, b_t) with f32 SGD (the run's momentum and weight decay) on
  // the held-out rows' logits of the frozen network, computed once in chunks
  // of `batch` rows in a permutation keyed by (seed, task). CE over the seen
  // classes; da = sum over rows (batch order) and task t's classes
  // (ascending) of dz'_c z_c, db = the same sum of dz'_c.
  void train_bias_layer(Engine& e, int t, std::uint64_t step) {
    const int B = run_.s.train.batch;
    const auto order = permutation(held_out_.size(), keyed(run_.s.seed, kHoldOutTag, std::uint64_t(t)));
    std::vector<Matrix> logits;
    std::vector<std::vector<int>> labels;
    Matrix x;
    for (std::size_t start = 0; start < order.size(); start += std::size_t(B)) {
      std::vector<std::size_t> rows;
      for (std::size_t i = start; i < std::min(order.size(), start + std::size_t(B)); ++i) rows.push_back(held_out_[order[i]]);
      labels.emplace_back();
      gather(rows, x, &labels.back());
      logits.emplace_back();
      e.logits(params_, x, step, logits.back());
    }
    SgdConfig cfg = run_.s.train.sgd;
    if (run_.s.continual.bic_lr > 0) cfg.lr = run_.s.continual.bic_lr;
    Sgd sgd(cfg);
    MlpParams layer{{Matrix(1, 1)}, {{beta_[std::size_t(t)]}}};
    layer.w[0].v[0] = alpha_[std::size_t(t)];
    MlpGrads g{{Matrix(1, 1)}, {{0.0f}}};
    const int epochs = run_.s.continual.bic_epochs ? run_.s.continual.bic_epochs : run_.s.train.epochs;
    for (int ep = 0; ep < epochs; ++ep)
      for (std::size_t i = 0; i < logits.size(); ++i) {
        Matrix z = logits[i], dz;
        apply_bias(z);
        softmax_cross_entropy(z, labels[i], seen(), &dz);
        float da = 0.0f, db = 0.0f;
        for (int r = 0; r < z.rows; ++r)
          for (int c : run_.tasks[std::size_t(t)]) {
            da += dz.at(r, c) * logits[i].at(r, c);
            db += dz.at(r, c);
          }
        g.w[0].v[0] = da;
        g.b[0][0] = db;
        sgd.step(layer, g);
        alpha_[std::size_t(t)] = layer.w[0].v[0];
        beta_[std::size_t(t)] = layer.b[0][0];
      }
    records_[fmt::format("bic_alpha_task{}", t)] = alpha_[std::size_t(t)];
    records_[fmt::format("bic_beta_task{}", t)] = beta_[std::size_t(t)];
    records_[fmt::format("bic_held_out_task{}", t)] = double(held_out_.size());
  }

  // Mean of each class's normalized exemplar features (double, rows in
  // herding order), normalized again (iCaRL's class prototype).
  void update_class_means(Engine& e, std::uint64_t step) {
    for (const auto& [c, rows] : memory_.classes()) {
      if (rows.empty()) continue;
      const Matrix f = features_of(rows, feature_fn(e, step));
      std::vector<double> mean(std::size_t(f.cols), 0.0);
      for (int r = 0; r < f.rows; ++r)
        for (int j = 0; j < f.cols; ++j) mean[std::size_t(j)] += f.at(r, j);
      Matrix m(1, f.cols);
      for (int j = 0; j < f.cols; ++j) m.v[std::size_t(j)] = float(mean[std::size_t(j)] / double(f.rows));
      l2_normalize_rows(m);
      class_means_[std::size_t(c)] = m.v;
    }
  }

  // Score of class c: minus the squared distance (double, features ascending)
  // from the normalized feature to its class mean; -inf without exemplars.
  void nme_scores(Engine& e, const Matrix& x, std::uint64_t step, Matrix& out) const {
    const Matrix f = hidden_features(e, x, step);
    out = Matrix(x.rows, run_.classes);
    for (int r = 0; r < x.rows; ++r)
      for (int c = 0; c < out.cols; ++c) {
        const auto& mu = class_means_[std::size_t(c)];
        if (mu.empty()) {
          out.at(r, c) = -INFINITY;
          continue;
        }
        double d2 = 0;
        for (int j = 0; j < f.cols; ++j) {
          const double d = double(f.at(r, j)) - mu[std::size_t(j)];
          d2 += d * d;
        }
        out.at(r, c) = float(-d2);
      }
  }
};

}  // namespace

std::unique_ptr<Method> make_single_net(const RunSetup& run) { return std::make_unique<SingleNet>(run); }

}  // namespace hdq
