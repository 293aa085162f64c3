// Class-incremental training: classes split into tasks (seeded class order),
// one head over all classes seen so far (inactive logits are masked out of the
// softmax and the prediction), a method (training/methods/: naive, er, joint,
// lwf, icarl, bic, der) deciding the networks, losses and memory.
//
// Everything an engine does not own is fixed here so that two engines given
// the same scenario see the same initial weights, batches, replay samples and
// learning rates:
// - init: init_network(network, sample shape, classes, seed) (models/nn/network.h);
//   a fresh SGD optimizer (momentum buffers) per task;
// - epoch e of task t visits the method's training rows of the task (the
//   task's samples in dataset order, then any exemplars) in a Fisher-Yates
//   permutation keyed by (seed, t, e); batches of `batch`, the last one shorter;
// - lr = lr0 * gamma^(number of milestones <= e), restarting each task;
// - ER: every step adds replay_batch samples drawn uniformly (with replacement)
//   from the buffer, keyed by (seed, step); after the step the new samples
//   enter the reservoir (Vitter's algorithm R, keyed by (seed, samples seen));
// - evaluation: test samples of each seen task, in dataset order, in chunks of
//   `batch` (the quantized forward's scale depends on the chunk), arg-max over
//   the seen classes; after every task each of the method's classifiers,
//   during a task (epoch curve) its head.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "datasets/datasets.h"
#include "engines/engine.h"
#include "training/scenario.h"

namespace hdq {

struct EpochRecord {
  int task = 0, epoch = 0;
  std::uint64_t steps = 0;  // global steps done at the end of this epoch
  double mean_loss = 0;
  double mean_distill_loss = 0;  // unweighted distillation term (lwf, icarl, bic), 0 without one
  double seen_accuracy = 0;  // test accuracy over all classes seen so far, percent
  double lr = 0;
  double elapsed_s = 0;
};

// Comparison of the engine with a float reference on the same weights and batch.
struct AlignmentRecord {
  std::uint64_t step = 0;
  int task = 0;
  std::vector<double> weight_grad_cosine;  // per layer: cos(dW_engine, dW_float)
  // Per layer: cos(dW_engine, float backward of the engine's own forward
  // activations and dL/dlogits): the backward's quantization alone (empty for
  // engines that do not keep their dL/dlogits, and for layer graphs).
  std::vector<double> backward_grad_cosine;
  std::vector<double> output_sqnr_db;      // per layer: SQNR of the forward output Y vs float
  std::vector<HdqtLayerStats> overflow;    // per layer: this step's GEMM statistics (quantized engines)
};

struct ContinualResult {
  std::vector<std::vector<int>> tasks;       // class ids of each task
  std::vector<std::vector<double>> acc;      // acc[t][j]: accuracy (%) on task j after task t, j <= t
  double final_avg_accuracy = 0;             // mean_j acc[T-1][j]
  double avg_incremental_accuracy = 0;       // mean_t (mean_{j<=t} acc[t][j])
  double forgetting = 0;                     // mean_{j<T-1} (max_{t<T-1} acc[t][j] - acc[T-1][j])
  double backward_transfer = 0;              // mean_{j<T-1} (acc[T-1][j] - acc[j][j])
  std::uint64_t steps = 0;
  std::uint64_t signature = 0;               // signature(final weights)
  std::vector<EpochRecord> curve;
  std::vector<AlignmentRecord> alignment;
  // The method's mechanism records (training/methods/method.h) and its other
  // classifiers' summaries ("nme_final_avg_accuracy", ...); distill_loss_mean
  // is the mean distillation term over the epochs of tasks >= 1.
  std::map<std::string, double> extra_metrics;
  double wall_s = 0;
};

struct ContinualOptions {
  Engine* reference = nullptr;  // when set: alignment against it every scenario.compare_every steps
  std::function<void(const EpochRecord&, std::uint64_t total_steps)> on_epoch;  // progress
};

ContinualResult run_continual(const Scenario& s, const datasets::TrainTest& data, Engine& engine,
                              const ContinualOptions& opt = {});

// The one JSON form of a training result, used by metrics.json, sweep points
// and compare cells: final_avg_accuracy, avg_incremental_accuracy, forgetting,
// backward_transfer, acc_matrix (acc), tasks, steps, signature (16 hex
// digits), extra_metrics. Only what the same bits reproduce: wall time and
// the engine's own statistics are the caller's to add beside it.
nlohmann::json result_json(const ContinualResult& r);

// The data a scenario names, loaded and (if configured) standardized.
datasets::TrainTest load_scenario_data(const Scenario& s);

}  // namespace hdq
