#include "training/continual.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>

#include "data/synthetic.h"
#include "golden/compare.h"
#include "models/quantizer/random_bits.h"

namespace hdq {
namespace {

// Stream tags keep the driver's random choices apart from each other.
enum : std::uint64_t { kShuffleTag = 1, kReplayPickTag = 2, kReservoirTag = 3 };

std::uint64_t keyed(std::uint64_t seed, std::uint64_t tag, std::uint64_t a, std::uint64_t b = 0) {
  return mix64(seed ^ mix64(tag ^ mix64(a ^ mix64(b))));
}

std::uint64_t below(std::uint64_t key, std::uint64_t i, std::uint64_t n) {
  return mix64(key + (i + 1) * 0x9e3779b97f4a7c15ULL) % n;
}

std::vector<std::size_t> permutation(std::size_t n, std::uint64_t key) {
  std::vector<std::size_t> p(n);
  std::iota(p.begin(), p.end(), 0);
  for (std::size_t i = n; i > 1; --i) std::swap(p[i - 1], p[below(key, i, i)]);
  return p;
}

void gather(const data::Dataset& ds, std::span<const std::size_t> rows, Matrix& x, std::vector<int>& y,
            std::size_t at = 0) {
  const std::size_t d = ds.dim();
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto src = ds.row(rows[r]);
    std::copy(src.begin(), src.end(), x.v.begin() + (at + r) * d);
    y[at + r] = ds.labels[rows[r]];
  }
}

// Reservoir of training samples for experience replay (features + labels).
struct Replay {
  std::size_t capacity = 0;
  std::size_t dim = 0;
  std::uint64_t seen = 0;
  std::vector<float> x;
  std::vector<int> y;
  std::size_t size() const { return y.size(); }
  void offer(std::span<const float> features, int label, std::uint64_t key) {
    ++seen;
    if (capacity == 0) return;
    if (y.size() < capacity) {
      x.insert(x.end(), features.begin(), features.end());
      y.push_back(label);
      return;
    }
    const std::uint64_t j = below(key, seen, seen);
    if (j < capacity) {
      std::copy(features.begin(), features.end(), x.begin() + j * dim);
      y[j] = label;
    }
  }
};

double accuracy(Engine& e, const MlpParams& p, const data::Dataset& test, std::span<const bool> active, int batch,
                std::uint64_t step) {
  if (test.size() == 0) return 0.0;
  std::size_t correct = 0;
  Matrix x, logits;
  std::vector<int> y;
  std::vector<std::size_t> rows;
  for (std::size_t start = 0; start < test.size(); start += std::size_t(batch)) {
    const std::size_t n = std::min<std::size_t>(std::size_t(batch), test.size() - start);
    rows.resize(n);
    std::iota(rows.begin(), rows.end(), start);
    x = Matrix(int(n), int(test.dim()));
    y.assign(n, 0);
    gather(test, rows, x, y);
    e.logits(p, x, step, logits);
    for (std::size_t r = 0; r < n; ++r) correct += predict_class(logits.row(int(r)), active) == y[r];
  }
  return 100.0 * double(correct) / double(test.size());
}

// Counters of one step: the cumulative statistics after it minus those before
// (max_abs_tile_sum is a running maximum and stays cumulative).
HdqtLayerStats step_delta(const HdqtLayerStats& after, const HdqtLayerStats& before) {
  HdqtLayerStats d = after;
  for (int r = 0; r < kGemmRoles; ++r) {
    d[r].products -= before[r].products;
    d[r].clamped_tiles -= before[r].clamped_tiles;
    d[r].changed_steps -= before[r].changed_steps;
    d[r].outer_overflows -= before[r].outer_overflows;
    d[r].tile_results -= before[r].tile_results;
  }
  return d;
}

// The reference engine's gradients on the same weights and batch, compared per
// layer; `before` holds the engine's overflow statistics before this step.
AlignmentRecord align(Engine& reference, const Engine& engine, const MlpParams& p, const Matrix& x,
                      std::span<const int> y, std::span<const bool> active, std::uint64_t step, int task,
                      const MlpGrads& grads, MlpGrads& reference_grads, const HdqtOverflow& before) {
  reference.gradients(p, x, y, active, step, reference_grads);
  AlignmentRecord a{step, task, {}, {}, {}};
  if (const HdqtOverflow* after = engine.overflow_stats())
    for (std::size_t l = 0; l < after->layers.size(); ++l)
      a.overflow.push_back(step_delta(after->layers[l], l < before.layers.size() ? before.layers[l] : HdqtLayerStats{}));
  for (std::size_t l = 0; l < p.w.size(); ++l) {
    a.weight_grad_cosine.push_back(golden::cosine(grads.w[l].v, reference_grads.w[l].v));
    a.output_sqnr_db.push_back(
        golden::sqnr_db(reference.last_layer_outputs()[l].v, engine.last_layer_outputs()[l].v));
  }
  return a;
}

}  // namespace

ContinualResult run_continual(const Scenario& s, const data::TrainTest& data, Engine& engine,
                              const ContinualOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const int classes = data.train.num_classes;
  MlpSpec spec{{int(data.train.dim())}};
  for (int h : s.hidden) spec.widths.push_back(h);
  spec.widths.push_back(classes);
  MlpParams params = init_mlp(spec, s.seed);

  ContinualResult res;
  res.tasks = data::split_into_tasks(classes, s.continual.classes_per_task, s.continual.class_order_seed);
  const int T = int(res.tasks.size());
  std::vector<data::Dataset> train_of(T), test_of(T);
  for (int t = 0; t < T; ++t) {
    std::vector<int> train_classes = res.tasks[t];
    if (s.continual.method == "joint")  // everything seen so far
      for (int j = 0; j < t; ++j) train_classes.insert(train_classes.end(), res.tasks[j].begin(), res.tasks[j].end());
    train_of[t] = data::subset_by_classes(data.train, train_classes);
    test_of[t] = data::subset_by_classes(data.test, res.tasks[t]);
  }
  const int B = s.train.batch;
  const bool replay = s.continual.method == "er";
  const int replay_batch = s.continual.replay_batch ? s.continual.replay_batch : B;
  std::uint64_t total_steps = 0;
  for (int t = 0; t < T; ++t) total_steps += std::uint64_t(s.train.epochs) * ((train_of[t].size() + B - 1) / B);

  Replay memory;
  memory.capacity = std::size_t(replay ? s.continual.replay_capacity : 0);
  memory.dim = data.train.dim();
  const auto active_buf = std::make_unique<bool[]>(std::size_t(classes));  // all false
  const std::span<const bool> active(active_buf.get(), std::size_t(classes));
  std::uint64_t step = 0;
  MlpGrads grads = zeros_like(params), reference_grads = zeros_like(params);
  Matrix x;
  std::vector<int> y;
  for (int t = 0; t < T; ++t) {
    for (int c : res.tasks[t]) active_buf[c] = true;
    Sgd sgd(s.train.sgd);
    const data::Dataset& train = train_of[t];
    for (int e = 0; e < s.train.epochs; ++e) {
      float lr = s.train.sgd.lr;
      for (int m : s.train.milestones)
        if (e >= m) lr *= s.train.gamma;
      sgd.set_lr(lr);
      const auto order = permutation(train.size(), keyed(s.seed, kShuffleTag, std::uint64_t(t), std::uint64_t(e)));
      double loss_sum = 0;
      int batches = 0;
      for (std::size_t start = 0; start < order.size(); start += std::size_t(B)) {
        const std::size_t n = std::min<std::size_t>(std::size_t(B), order.size() - start);
        const std::size_t r = replay ? std::min<std::size_t>(std::size_t(replay_batch), memory.size()) : 0;
        x = Matrix(int(n + r), int(train.dim()));
        y.assign(n + r, 0);
        gather(train, std::span(order).subspan(start, n), x, y);
        const std::uint64_t pick_key = keyed(s.seed, kReplayPickTag, step);
        for (std::size_t i = 0; i < r; ++i) {
          const std::size_t j = below(pick_key, i, memory.size());
          std::copy_n(memory.x.begin() + j * memory.dim, memory.dim, x.v.begin() + (n + i) * memory.dim);
          y[n + i] = memory.y[j];
        }
        const bool compare = opt.reference && s.compare_every > 0 && step % std::uint64_t(s.compare_every) == 0;
        HdqtOverflow before;
        if (compare && engine.overflow_stats()) before = *engine.overflow_stats();
        const float loss = engine.gradients(params, x, y, active, step, grads);
        if (compare)
          res.alignment.push_back(align(*opt.reference, engine, params, x, y, active, step, t, grads, reference_grads, before));
        sgd.step(params, grads);
        ++step;
        loss_sum += loss;
        ++batches;
        if (replay)
          for (std::size_t i = 0; i < n; ++i)
            memory.offer(train.row(order[start + i]), train.labels[order[start + i]],
                         keyed(s.seed, kReservoirTag, memory.seen));
      }
      EpochRecord rec{t, e, step, loss_sum / std::max(batches, 1), 0.0, lr, 0.0};
      std::size_t seen_test = 0;
      for (int j = 0; j <= t; ++j) {
        rec.seen_accuracy += accuracy(engine, params, test_of[j], active, B, step) * double(test_of[j].size());
        seen_test += test_of[j].size();
      }
      rec.seen_accuracy /= double(std::max<std::size_t>(seen_test, 1));
      rec.elapsed_s = elapsed();
      res.curve.push_back(rec);
      if (opt.on_epoch) opt.on_epoch(rec, total_steps);
    }
    res.acc.emplace_back();
    for (int j = 0; j <= t; ++j) res.acc[t].push_back(accuracy(engine, params, test_of[j], active, B, step));
  }

  // Summary metrics (definitions in continual.h).
  const auto& last = res.acc.back();
  res.final_avg_accuracy = std::accumulate(last.begin(), last.end(), 0.0) / double(T);
  for (int t = 0; t < T; ++t)
    res.avg_incremental_accuracy += std::accumulate(res.acc[t].begin(), res.acc[t].end(), 0.0) / double(t + 1) / T;
  if (T > 1) {
    for (int j = 0; j + 1 < T; ++j) {
      double best = 0;
      for (int t = j; t + 1 < T; ++t) best = std::max(best, res.acc[t][j]);
      res.forgetting += (best - last[j]) / double(T - 1);
      res.backward_transfer += (last[j] - res.acc[j][j]) / double(T - 1);
    }
  }
  res.steps = step;
  res.signature = signature(params);
  res.wall_s = elapsed();
  return res;
}

data::TrainTest load_scenario_data(const Scenario& s) {
  data::TrainTest d;
  const DataSpec& spec = s.data;
  if (spec.dataset == "fashion-mnist") {
    d = spec.path.empty() ? data::load_fashion_mnist("/usr/share/datasets/fashion-mnist", spec.limit_train, spec.limit_test)
                          : data::load_fashion_mnist(spec.path, spec.limit_train, spec.limit_test);
  } else if (spec.dataset == "synthetic") {
    const SyntheticSpec& y = spec.synthetic;
    data::SyntheticSpec g;
    g.classes = y.classes;
    g.channels = y.channels;
    g.steps = y.steps;
    g.train_per_class = y.train_per_class;
    g.test_per_class = y.test_per_class;
    g.noise = y.noise;
    g.seed = s.seed;
    d = data::make_synthetic(g);
  } else if (spec.dataset == "uci-har") {
    d = data::load_uci_har(spec.path);
  } else {
    d = data::load_csv_pair(spec.path, spec.test_path);
  }
  // Limits for the formats whose loader does not take them: keep the first samples.
  auto limit = [](data::Dataset& ds, int n) {
    if (n <= 0 || std::size_t(n) >= ds.size()) return;
    ds.features.resize(std::size_t(n) * ds.dim());
    ds.labels.resize(std::size_t(n));
  };
  if (spec.dataset != "fashion-mnist") {
    limit(d.train, spec.limit_train);
    limit(d.test, spec.limit_test);
  }
  if (spec.standardize) data::standardize(d);
  return d;
}

}  // namespace hdq
