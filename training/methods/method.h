// A class-incremental learning method: the networks it trains, the loss of a
// step, what it keeps between tasks (a replay or exemplar memory, a teacher,
// bias layers) and how it classifies. The driver (training/continual.h) owns
// the task sequence, batching, learning-rate schedule and evaluation.
//
// Methods (continual.method):
// - naive, er, joint, lwf, icarl, bic: one MLP, described as a recipe in
//   single_net.cpp (which loss terms, which memory, which classifier);
// - der: one feature extractor per task, der.cpp.
// Every matmul of every network runs through the engine's forward/backward
// (the HDQT layer in the functional engine); losses, distillation, bias
// layers, herding and class means are f32/host math stated where they are.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "datasets/datasets.h"
#include "engines/engine.h"
#include "training/exemplars.h"
#include "training/scenario.h"

namespace hdq {

// What the driver fixes for a run and shares with the method.
struct RunSetup {
  const Scenario& s;
  const datasets::Dataset& train;              // the whole training split
  int classes = 0;                         // outputs of the head: the data's classes
  std::vector<std::vector<int>> tasks;     // class ids of each task
};

// Class flags over all classes (bool[] because predict_class takes span<const bool>).
class ClassMask {
 public:
  explicit ClassMask(int classes) : n_(std::size_t(classes)), flags_(std::make_unique<bool[]>(n_)) {}
  void set(int c, bool on = true) { flags_[std::size_t(c)] = on; }
  bool operator[](int c) const { return flags_[std::size_t(c)]; }
  std::span<const bool> span() const { return {flags_.get(), n_}; }
  int count() const;

 private:
  std::size_t n_;
  std::unique_ptr<bool[]> flags_;
};

// The loss of one step and its distillation term (unweighted mean KD; 0 without one).
struct StepLoss {
  float total = 0;
  float distill = 0;
};

class Method {
 public:
  explicit Method(const RunSetup& run);
  virtual ~Method() = default;

  // Start of task t: the training rows of its epochs (train_rows()) and any
  // state the task needs (teacher snapshot, new extractor, held-out split).
  virtual void begin_task(Engine& e, int t, std::uint64_t step);
  // Indices into RunSetup::train that the epochs of the current task visit.
  const std::vector<std::size_t>& train_rows() const { return rows_; }
  // Number of training rows task t will visit (for progress before the task starts).
  virtual std::size_t planned_rows(int t) const;
  // Rows the method appends to a batch of the current task's rows (er's replay).
  virtual void extend_batch(Matrix& /*x*/, std::vector<int>& /*y*/, std::uint64_t /*step*/) const {}
  // Loss and gradients of one step on engine e, one MlpGrads per trainable
  // network (the first is the one gradient alignment compares). Does not
  // change the method, so a reference engine can evaluate the same loss.
  virtual StepLoss gradients(Engine& e, const Matrix& x, std::span<const int> y, std::uint64_t step,
                             std::vector<MlpGrads>& grads) = 0;
  // Applies a step's gradients (SGD on every trainable network); `rows` are
  // the training rows of the batch's first rows (before extend_batch).
  virtual void apply(const std::vector<MlpGrads>& grads, float lr, std::span<const std::size_t> rows) = 0;
  // End of task t (memory update, bias-layer stage).
  virtual void end_task(Engine& /*e*/, int /*t*/, std::uint64_t /*step*/) {}

  // Classifiers evaluated after every task; the first fills the accuracy
  // matrix, the others are reported as extra metrics "<name>_...". "head"
  // (arg-max of the network's output) is always one of them.
  virtual std::vector<std::string> classifiers() const { return {"head"}; }
  // Per-class scores of x (arg-max over seen classes predicts) for classifier i.
  virtual void scores(Engine& e, const Matrix& x, std::uint64_t step, int classifier, Matrix& out) = 0;
  // Signature of every trained parameter (final weights).
  virtual std::uint64_t signature() const = 0;
  // The network whose gradients come first from gradients() (it runs in slot 0 on the batch x).
  virtual const MlpParams& primary_network() const = 0;

  std::span<const bool> seen() const { return seen_.span(); }
  // Mechanism records (memory size, loss terms, bias-layer values) for reports and tests.
  const std::map<std::string, double>& records() const { return records_; }

 protected:
  const RunSetup& run_;
  int task_ = -1;
  ClassMask seen_, old_, new_;  // classes of tasks <= t, < t, == t
  std::vector<std::size_t> rows_;
  std::map<std::string, double> records_;

  // Training rows of the given classes, in dataset order.
  std::vector<std::size_t> rows_of(const ClassMask& classes) const;
  // Data of the given training rows.
  void gather(std::span<const std::size_t> rows, Matrix& x, std::vector<int>* y = nullptr) const;

  // Per-sample features for herding and class means: f(x) on chunks of
  // `batch` training rows (the quantized forward's scale depends on the chunk).
  using FeatureFn = std::function<Matrix(const Matrix& x)>;
  Matrix features_of(std::span<const std::size_t> rows, const FeatureFn& f) const;
  // End of a task: every class shrinks to the new quota, each new class gets
  // its quota by herding on f; records memory_samples_task<t> and memory_max_samples.
  void update_memory(ExemplarMemory& memory, const FeatureFn& f);
  // The exemplars' rows, classes ascending, herding order.
  static std::vector<std::size_t> memory_rows(const ExemplarMemory& memory);
};

// The scenario's network (network.h init_network) with `outputs` outputs.
MlpParams init_network(const RunSetup& run, int outputs, std::uint64_t seed);
// The network without its last layer (the classifier): an MLP's hidden
// layers, a layer graph's trunk (network.h Graph::trunk). Its output is the
// features of DER's extractors and of iCaRL's and BiC's herding.
MlpParams trunk_of(const MlpParams& p);

// Throws ConfigError, naming the scenario file and field, when the method
// cannot run on engine e (methods beyond naive/er/joint need forward/backward
// passes) or with this run (an exemplar budget below one per class).
void check_method(const RunSetup& run, const Engine& e);
// The method a scenario names, after check_method.
std::unique_ptr<Method> make_method(const RunSetup& run, const Engine& e);

// Keys of the driver's own random choices and the methods' (stream tags keep them apart).
enum : std::uint64_t { kShuffleTag = 1, kReplayPickTag = 2, kReservoirTag = 3, kHoldOutTag = 4, kInitTag = 5 };
std::uint64_t keyed(std::uint64_t seed, std::uint64_t tag, std::uint64_t a, std::uint64_t b = 0);
// A number below n from the i-th draw of a key.
std::uint64_t below(std::uint64_t key, std::uint64_t i, std::uint64_t n);
// Fisher-Yates permutation of 0..n-1 on the draws of a key.
std::vector<std::size_t> permutation(std::size_t n, std::uint64_t key);

}  // namespace hdq
