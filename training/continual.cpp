#include "training/continual.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <numeric>

#include "datasets/cifar.h"
#include "datasets/synthetic.h"
#include "golden/compare.h"
#include "golden/golden.h"
#include "training/methods/method.h"

namespace hdq {
namespace {

void gather(const datasets::Dataset& ds, std::span<const std::size_t> rows, Matrix& x, std::vector<int>& y) {
  const std::size_t d = ds.dim();
  x = Matrix(int(rows.size()), int(d));
  y.resize(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto src = ds.row(rows[r]);
    std::copy(src.begin(), src.end(), x.v.begin() + r * d);
    y[r] = ds.labels[rows[r]];
  }
}

// Test accuracy (%) of one classifier of the method over the seen classes.
double accuracy(Engine& e, Method& method, int classifier, const datasets::Dataset& test, int batch, std::uint64_t step) {
  if (test.size() == 0) return 0.0;
  std::size_t correct = 0;
  Matrix x, scores;
  std::vector<int> y;
  std::vector<std::size_t> rows;
  for (std::size_t start = 0; start < test.size(); start += std::size_t(batch)) {
    const std::size_t n = std::min<std::size_t>(std::size_t(batch), test.size() - start);
    rows.resize(n);
    std::iota(rows.begin(), rows.end(), start);
    gather(test, rows, x, y);
    method.scores(e, x, step, classifier, scores);
    for (std::size_t r = 0; r < n; ++r) correct += predict_class(scores.row(int(r)), method.seen()) == y[r];
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

// The method's loss on the reference engine with the same weights and batch,
// its gradients compared per layer with the engine's (first network);
// `before` holds the engine's overflow statistics before this step.
AlignmentRecord align(Engine& reference, const Engine& engine, Method& method, const Matrix& x, std::span<const int> y,
                      std::uint64_t step, int task, const MlpGrads& grads, std::vector<MlpGrads>& reference_grads,
                      const HdqtOverflow& before) {
  AlignmentRecord a{step, task, {}, {}, {}, {}};
  const MlpParams& p = method.primary_network();
  // The float backward through the engine's own activations exists for MLPs
  // (golden.h); a layer graph's float backward needs its own forward's state.
  if (const Matrix* dout = engine.last_dout(); dout && !p.graph) {
    // Before the reference runs: the engine's slot-0 forward is the method's primary network on x.
    golden::Activations act{engine.last_layer_outputs(), {}};
    for (std::size_t l = 0; l + 1 < act.pre.size(); ++l) {
      act.post.push_back(act.pre[l]);
      for (float& v : act.post.back().v) v = std::max(v, 0.0f);
    }
    MlpGrads float_backward;
    golden::Context ctx;
    golden::backward(ctx, p, x, act, *dout, float_backward);
    for (std::size_t l = 0; l < grads.w.size(); ++l)
      a.backward_grad_cosine.push_back(golden::cosine(grads.w[l].v, float_backward.w[l].v));
  }
  method.gradients(reference, x, y, step, reference_grads);
  if (const HdqtOverflow* after = engine.overflow_stats())
    for (std::size_t l = 0; l < after->layers.size(); ++l)
      a.overflow.push_back(step_delta(after->layers[l], l < before.layers.size() ? before.layers[l] : HdqtLayerStats{}));
  for (std::size_t l = 0; l < grads.w.size(); ++l) {
    a.weight_grad_cosine.push_back(golden::cosine(grads.w[l].v, reference_grads[0].w[l].v));
    a.output_sqnr_db.push_back(
        golden::sqnr_db(reference.last_layer_outputs()[l].v, engine.last_layer_outputs()[l].v));
  }
  return a;
}

struct Summary {
  double final_avg = 0, avg_incremental = 0, forgetting = 0, backward_transfer = 0;
};

// Definitions in continual.h (ContinualResult).
Summary summarize(const std::vector<std::vector<double>>& acc) {
  Summary m;
  const int T = int(acc.size());
  const auto& last = acc.back();
  m.final_avg = std::accumulate(last.begin(), last.end(), 0.0) / double(T);
  for (int t = 0; t < T; ++t)
    m.avg_incremental += std::accumulate(acc[t].begin(), acc[t].end(), 0.0) / double(t + 1) / T;
  for (int j = 0; j + 1 < T; ++j) {
    double best = 0;
    for (int t = j; t + 1 < T; ++t) best = std::max(best, acc[t][j]);
    m.forgetting += (best - last[j]) / double(T - 1);
    m.backward_transfer += (last[j] - acc[j][j]) / double(T - 1);
  }
  return m;
}

}  // namespace

ContinualResult run_continual(const Scenario& s, const datasets::TrainTest& data, Engine& engine,
                              const ContinualOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const int classes = data.train.num_classes;
  RunSetup run{s, data.train, classes, {}};
  run.tasks = datasets::split_into_tasks(classes, s.continual.classes_per_task, s.continual.class_order_seed);
  const auto method = make_method(run, engine);
  if (opt.reference) check_method(run, *opt.reference);

  ContinualResult res;
  res.tasks = run.tasks;
  const int T = int(res.tasks.size());
  std::vector<datasets::Dataset> test_of(T);
  for (int t = 0; t < T; ++t) test_of[t] = datasets::subset_by_classes(data.test, res.tasks[t]);
  const int B = s.train.batch;
  std::uint64_t total_steps = 0;
  for (int t = 0; t < T; ++t) total_steps += std::uint64_t(s.train.epochs) * ((method->planned_rows(t) + B - 1) / B);

  const auto names = method->classifiers();
  const int head = int(std::ranges::find(names, "head") - names.begin());
  std::vector<std::vector<std::vector<double>>> acc(names.size());  // per classifier
  std::uint64_t step = 0;
  std::vector<MlpGrads> grads, reference_grads;
  Matrix x;
  std::vector<int> y;
  std::vector<std::size_t> batch_rows;
  for (int t = 0; t < T; ++t) {
    method->begin_task(engine, t, step);
    const std::vector<std::size_t>& rows = method->train_rows();
    for (int e = 0; e < s.train.epochs; ++e) {
      float lr = s.train.sgd.lr;
      for (int m : s.train.milestones)
        if (e >= m) lr *= s.train.gamma;
      const auto order = permutation(rows.size(), keyed(s.seed, kShuffleTag, std::uint64_t(t), std::uint64_t(e)));
      double loss_sum = 0, distill_sum = 0;
      int batches = 0;
      for (std::size_t start = 0; start < order.size(); start += std::size_t(B)) {
        const std::size_t n = std::min<std::size_t>(std::size_t(B), order.size() - start);
        batch_rows.resize(n);
        for (std::size_t i = 0; i < n; ++i) batch_rows[i] = rows[order[start + i]];
        gather(data.train, batch_rows, x, y);
        method->extend_batch(x, y, step);
        const bool compare = opt.reference && s.compare_every > 0 && step % std::uint64_t(s.compare_every) == 0;
        HdqtOverflow before;
        if (compare && engine.overflow_stats()) before = *engine.overflow_stats();
        const StepLoss loss = method->gradients(engine, x, y, step, grads);
        if (compare)
          res.alignment.push_back(align(*opt.reference, engine, *method, x, y, step, t, grads[0], reference_grads, before));
        method->apply(grads, lr, batch_rows);
        ++step;
        loss_sum += loss.total;
        distill_sum += loss.distill;
        ++batches;
      }
      EpochRecord rec{t, e, step, loss_sum / std::max(batches, 1), distill_sum / std::max(batches, 1), 0.0, lr, 0.0};
      std::size_t seen_test = 0;
      for (int j = 0; j <= t; ++j) {
        rec.seen_accuracy += accuracy(engine, *method, head, test_of[j], B, step) * double(test_of[j].size());
        seen_test += test_of[j].size();
      }
      rec.seen_accuracy /= double(std::max<std::size_t>(seen_test, 1));
      rec.elapsed_s = elapsed();
      res.curve.push_back(rec);
      if (opt.on_epoch) opt.on_epoch(rec, total_steps);
    }
    method->end_task(engine, t, step);
    for (std::size_t i = 0; i < names.size(); ++i) {
      acc[i].emplace_back();
      for (int j = 0; j <= t; ++j) acc[i][t].push_back(accuracy(engine, *method, int(i), test_of[j], B, step));
    }
  }

  res.acc = acc[0];
  const Summary m = summarize(res.acc);
  res.final_avg_accuracy = m.final_avg;
  res.avg_incremental_accuracy = m.avg_incremental;
  res.forgetting = m.forgetting;
  res.backward_transfer = m.backward_transfer;
  res.extra_metrics = method->records();
  for (std::size_t i = 1; i < names.size(); ++i) {
    const Summary x = summarize(acc[i]);
    res.extra_metrics[names[i] + "_final_avg_accuracy"] = x.final_avg;
    res.extra_metrics[names[i] + "_avg_incremental_accuracy"] = x.avg_incremental;
    res.extra_metrics[names[i] + "_forgetting"] = x.forgetting;
  }
  if (T > 1) {
    double d = 0;
    for (std::size_t i = 0; i < res.curve.size(); ++i)
      if (res.curve[i].task > 0) d += res.curve[i].mean_distill_loss;
    res.extra_metrics["distill_loss_mean"] = d / double(res.curve.size() - std::size_t(s.train.epochs));
  }
  res.steps = step;
  res.signature = method->signature();
  res.wall_s = elapsed();
  return res;
}

namespace {

// What the data must offer the scenario, checked before anything trains:
// every task of the split has training and test samples, and the network the
// data implies (input width from the samples, output width from the classes)
// stays within the tensor limit (models/common/errors.h).
void check_data_fits(const Scenario& s, const datasets::TrainTest& d) {
  d.train.validate();
  d.test.validate();
  const std::string data = s.data.path.empty() ? s.data.dataset : fmt::format("{} ({})", s.data.dataset, s.data.path);
  const int classes = d.train.num_classes;
  if (s.continual.classes_per_task > classes)
    throw ScenarioError(fmt::format("{}: continual.classes_per_task = {} is more than the {} classes of {}: "
                                    "there would be a single task",
                                    s.file, s.continual.classes_per_task, classes, data));
  std::vector<std::size_t> train_count(std::size_t(classes), 0), test_count(std::size_t(classes), 0);
  for (auto y : d.train.labels) ++train_count[std::size_t(y)];
  for (auto y : d.test.labels) ++test_count[std::size_t(y)];
  const auto tasks = datasets::split_into_tasks(classes, s.continual.classes_per_task, s.continual.class_order_seed);
  for (std::size_t t = 0; t < tasks.size(); ++t) {
    std::size_t train = 0, test = 0;
    for (int c : tasks[t]) train += train_count[std::size_t(c)], test += test_count[std::size_t(c)];
    auto none = [&](const char* split, int limit, const char* key) {
      throw ScenarioError(fmt::format("{}: task {} (classes {}) has no {} samples in {}{}", s.file, t,
                                      fmt::join(tasks[t], ", "), split, data,
                                      limit > 0 ? fmt::format(" (with {} = {})", key, limit) : ""));
    };
    if (train == 0) none("training", s.data.limit_train, "data.limit_train");
    if (test == 0) none("test", s.data.limit_test, "data.limit_test");
  }
  try {
    if (s.network.is_graph()) {
      // The preset must take the data's images; every node's activations of a step must fit.
      const auto graph = network_preset(s.network.preset,
                                        image_shape(d.train.shape, "network.preset " + s.network.preset), classes);
      for (const LayerNode& n : graph->nodes())
        require_tensor_elements(fmt::format("network.preset {}: the activations of node {} ({}) of a step "
                                            "((batch + replay_batch) x C x H x W)",
                                            s.network.preset, &n - graph->nodes().data(), name(n.kind)),
                                {step_rows(s), n.out.c, n.out.h, n.out.w});
    } else {
      std::vector<long long> widths{static_cast<long long>(d.train.dim())};
      widths.insert(widths.end(), s.network.hidden.begin(), s.network.hidden.end());
      widths.push_back(classes);
      for (std::size_t l = 0; l + 1 < widths.size(); ++l)
        require_tensor_elements(fmt::format("network: the weights of layer {} ({} x {})", l, widths[l + 1], widths[l]),
                                {widths[l + 1], widths[l]});
    }
    require_tensor_elements("batch: the input rows of a step (batch + replay_batch) x features",
                            {step_rows(s), static_cast<long long>(d.train.dim())});
  } catch (const ConfigError& e) {
    throw ScenarioError(fmt::format("{}: {}", s.file, e.what()));
  }
}

}  // namespace

datasets::TrainTest load_scenario_data(const Scenario& s) {
  datasets::TrainTest d;
  const DataSpec& spec = s.data;
  if (spec.dataset == "fashion-mnist") {
    d = spec.path.empty() ? datasets::load_fashion_mnist("/usr/share/datasets/fashion-mnist", spec.limit_train, spec.limit_test)
                          : datasets::load_fashion_mnist(spec.path, spec.limit_train, spec.limit_test);
  } else if (spec.dataset == "synthetic") {
    const SyntheticSpec& y = spec.synthetic;
    datasets::SyntheticSpec g;
    g.classes = y.classes;
    g.channels = y.channels;
    g.steps = y.steps;
    g.train_per_class = y.train_per_class;
    g.test_per_class = y.test_per_class;
    g.noise = y.noise;
    g.image_channels = y.image_channels;
    g.seed = s.seed;
    d = datasets::make_synthetic(g);
  } else if (spec.dataset == "uci-har") {
    d = datasets::load_uci_har(spec.path);
  } else if (spec.dataset == "cifar10") {
    d = datasets::load_cifar10(spec.path.empty() ? datasets::kCifar10Dir : spec.path, std::size_t(spec.limit_train),
                               std::size_t(spec.limit_test));
  } else if (spec.dataset == "cifar100") {
    d = datasets::load_cifar100(spec.path.empty() ? datasets::kCifar100Dir : spec.path,
                                spec.cifar100_labels == "coarse" ? datasets::CifarLabels::coarse
                                                                 : datasets::CifarLabels::fine,
                                std::size_t(spec.limit_train), std::size_t(spec.limit_test));
  } else {
    d = datasets::load_csv_pair(spec.path, spec.test_path);
  }
  // Limits for the formats whose loader does not take them: keep the first samples.
  auto limit = [](datasets::Dataset& ds, int n) {
    if (n <= 0 || std::size_t(n) >= ds.size()) return;
    ds.features.resize(std::size_t(n) * ds.dim());
    ds.labels.resize(std::size_t(n));
  };
  if (spec.dataset != "fashion-mnist" && spec.dataset != "cifar10" && spec.dataset != "cifar100") {
    limit(d.train, spec.limit_train);
    limit(d.test, spec.limit_test);
  }
  check_data_fits(s, d);
  if (spec.standardize) datasets::standardize(d);
  return d;
}

nlohmann::json result_json(const ContinualResult& r) {
  return {{"final_avg_accuracy", r.final_avg_accuracy},
          {"avg_incremental_accuracy", r.avg_incremental_accuracy},
          {"forgetting", r.forgetting},
          {"backward_transfer", r.backward_transfer},
          {"acc_matrix", r.acc},
          {"tasks", r.tasks},
          {"steps", r.steps},
          {"signature", fmt::format("{:016x}", r.signature)},
          {"extra_metrics", r.extra_metrics}};
}

}  // namespace hdq
