// The continual-learning methods' defining mechanisms (issue 4, acceptance 3):
// distillation and herding as pure functions, then each method on a short
// synthetic task sequence with the float and the HDQT engine.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "engines/functional_engine.h"
#include "engines/golden_engine.h"
#include "models/common/errors.h"
#include "training/continual.h"
#include "training/exemplars.h"
#include "training/methods/method.h"

namespace hdq {
namespace {

// ---- distillation ----

// Equal student and teacher logits: q = p, so the gradient (q - p) / (T B) is
// exactly zero, and the loss is the entropy of p; with two equal logits p =
// (1/2, 1/2) and the entropy is log 2 per row. Masked-out classes get nothing.
TEST(Distillation, EqualLogitsGiveEntropyAndNoGradient) {
  Matrix z(2, 3);
  z.at(0, 0) = z.at(0, 1) = 0.7f, z.at(0, 2) = 9.0f;
  z.at(1, 0) = z.at(1, 1) = -1.5f, z.at(1, 2) = -4.0f;
  const bool mask[3] = {true, true, false};
  Matrix dz(2, 3);
  const float loss = distillation(z, z, mask, 2.0f, 3.0f, &dz);
  EXPECT_NEAR(loss, std::log(2.0f), 1e-6f);
  for (float g : dz.v) EXPECT_EQ(g, 0.0f);
}

// The gradient is the derivative of the loss: central differences of the
// loss (step 1e-2, loss ~1, f32) agree with weight * analytic to ~1e-3.
TEST(Distillation, GradientMatchesFiniteDifferences) {
  Matrix s(2, 4), t(2, 4);
  const float sv[8] = {0.3f, -1.2f, 2.0f, 0.5f, 1.1f, 0.0f, -0.7f, 3.0f};
  const float tv[8] = {1.0f, 0.2f, -0.4f, 0.9f, -1.3f, 0.8f, 0.1f, 2.2f};
  s.v.assign(sv, sv + 8), t.v.assign(tv, tv + 8);
  const bool mask[4] = {true, true, true, false};
  const float T = 2.0f, weight = 0.5f;
  Matrix g(2, 4);
  distillation(s, t, mask, T, weight, &g);
  for (int i = 0; i < 8; ++i) {
    Matrix up = s, down = s;
    up.v[std::size_t(i)] += 1e-2f, down.v[std::size_t(i)] -= 1e-2f;
    const float fd = (distillation(up, t, mask, T, 1, nullptr) - distillation(down, t, mask, T, 1, nullptr)) / 2e-2f;
    EXPECT_NEAR(g.v[std::size_t(i)], weight * fd, 1e-3f) << i;
  }
  EXPECT_EQ(g.at(0, 3), 0.0f);
  EXPECT_EQ(g.at(1, 3), 0.0f);
}

// ---- herding and the memory ----

// Rows e1, e2 and (e1 + e2)/sqrt2: their mean lies on the diagonal, so the
// first pick is the diagonal row (closest to the mean); then no row repeats.
TEST(Herding, PicksTheRowNearestTheMeanFirstAndNeverRepeats) {
  Matrix f(3, 2);
  const float r = 1.0f / std::sqrt(2.0f);
  f.v = {1, 0, 0, 1, r, r};
  const auto order = herding(f, 5);  // more than the rows: every row once
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order[0], 2u);
  EXPECT_EQ(std::set<std::size_t>(order.begin(), order.end()).size(), 3u);
  EXPECT_EQ(herding(f, 1), std::vector<std::size_t>{2});
}

TEST(ExemplarMemory, QuotaAndShrinkKeepThePrefix) {
  ExemplarMemory m(10);
  EXPECT_EQ(m.quota(3), 3);  // floor(10 / 3)
  m.set_class(4, {7, 8, 9, 10, 11});
  m.set_class(1, {1, 2, 3, 4, 5});
  m.shrink(2);
  EXPECT_EQ(m.size(), 4u);
  EXPECT_EQ(m.classes().at(4), (std::vector<std::size_t>{7, 8}));
  EXPECT_EQ(m.classes().begin()->first, 1);  // classes ascending
}

// ---- methods on a short synthetic sequence ----

// 6 classes in 3 tasks of 2, 40 training samples per class, budget 30: the
// quota is 15 per class after task 0 and 7 (floor(30/4)) then 5 (30/6).
const char* kSeq = R"(name: methods
seed: 3
preset: paper
epochs: 2
batch: 16
lr: 0.05
data:
  dataset: synthetic
  synthetic: {classes: 6, channels: 3, steps: 8, train_per_class: 40, test_per_class: 16, noise: 0.5}
network: {hidden: [16]}
continual: {classes_per_task: 2, method: naive, replay_capacity: 30}
compare_every: 3
)";

ContinualResult run_method(const std::string& method, bool golden, std::vector<std::string> overrides = {}) {
  overrides.push_back("continual.method=" + method);
  const Scenario s = parse_scenario(kSeq, "methods.yaml", overrides);
  const auto data = load_scenario_data(s);
  GoldenEngine reference(1);
  if (golden) return run_continual(s, data, reference);
  FunctionalEngine e(s.hdqt, s.seed, 1);
  return run_continual(s, data, e, {.reference = &reference, .on_epoch = {}});
}

// Every method learns on both engines: final accuracy above chance (1/6 =
// 16.7%) with a margin, and the HDQT run is bit-reproducible.
TEST(Methods, EveryMethodRunsOnBothEngines) {
  for (const auto& m : continual_methods()) {
    for (bool golden : {true, false}) {
      const auto r = run_method(m, golden);
      ASSERT_EQ(r.acc.size(), 3u) << m;
      EXPECT_GT(r.final_avg_accuracy, 25.0) << m << (golden ? " golden" : " functional");
      if (!golden) {
        EXPECT_EQ(r.signature, run_method(m, false).signature) << m;
        EXPECT_FALSE(r.alignment.empty()) << m;
      }
    }
  }
}

// Exemplar memory never exceeds its budget, and holds exactly quota x seen
// classes after each task (every class has more samples than its quota).
TEST(Methods, ExemplarMemoryStaysWithinBudget) {
  for (const char* m : {"icarl", "bic", "der"}) {
    const auto r = run_method(m, false);
    EXPECT_LE(r.extra_metrics.at("memory_max_samples"), 30.0) << m;
    EXPECT_EQ(r.extra_metrics.at("memory_samples_task0"), 30.0) << m;  // 15 x 2
    EXPECT_EQ(r.extra_metrics.at("memory_samples_task1"), 28.0) << m;  // 7 x 4
    EXPECT_EQ(r.extra_metrics.at("memory_samples_task2"), 30.0) << m;  // 5 x 6
  }
}

// iCaRL reports both classifiers: NME in the accuracy matrix, the head as extras.
TEST(Methods, IcarlReportsNmeAndHead) {
  const auto r = run_method("icarl", false);
  EXPECT_TRUE(r.extra_metrics.count("head_final_avg_accuracy"));
  EXPECT_TRUE(r.extra_metrics.count("head_avg_incremental_accuracy"));
}

// A method fixture driven by hand: the golden engine, the scenario's data.
struct Driven {
  Scenario s;
  datasets::TrainTest data;
  RunSetup run;
  GoldenEngine engine{1};
  std::unique_ptr<Method> method;
  explicit Driven(const std::string& m)
      : s(parse_scenario(kSeq, "methods.yaml", {"continual.method=" + m})),
        data(load_scenario_data(s)),
        run{s, data.train, 6, datasets::split_into_tasks(6, 2, s.continual.class_order_seed)},
        method(make_method(run, engine)) {}
  void batch(std::span<const std::size_t> rows, Matrix& x, std::vector<int>& y) const {
    x = Matrix(int(rows.size()), int(data.train.dim()));
    y.clear();
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const auto src = data.train.row(rows[r]);
      std::copy(src.begin(), src.end(), x.row(int(r)).begin());
      y.push_back(data.train.labels[rows[r]]);
    }
  }
};

// LwF's loss includes the distillation term: right after task 0 (no step
// taken) the teacher equals the network, which is init_mlp's; the loss of a
// task-1 batch must be CE over the new classes + lwf_weight * KD over the old
// ones, both recomputed here from the initial weights with the float model.
TEST(Methods, LwfLossIsNewClassCrossEntropyPlusWeightedDistillation) {
  Driven d("lwf");
  d.method->begin_task(d.engine, 0, 0);
  d.method->end_task(d.engine, 0, 0);
  d.method->begin_task(d.engine, 1, 0);
  const auto& rows = d.method->train_rows();
  Matrix x;
  std::vector<int> y;
  d.batch(std::span(rows).first(16), x, y);
  std::vector<MlpGrads> grads;
  const StepLoss loss = d.method->gradients(d.engine, x, y, 0, grads);

  const MlpParams p = init_network(d.run, 6, d.s.seed);
  GoldenEngine ref(1);
  const Matrix z = ref.forward(p, x, {0, 0, 0}).back();
  auto fresh = [] { return std::make_unique<bool[]>(6); };
  const auto newc = fresh(), oldc = fresh();
  for (int c : d.run.tasks[1]) newc[c] = true;
  for (int c : d.run.tasks[0]) oldc[c] = true;
  const float ce = softmax_cross_entropy(z, y, std::span<const bool>(newc.get(), 6), nullptr);
  const float kd = distillation(z, z, std::span<const bool>(oldc.get(), 6), d.s.continual.kd_temperature, 1, nullptr);
  EXPECT_GT(kd, 0.0f);
  EXPECT_FLOAT_EQ(loss.distill, kd);
  EXPECT_FLOAT_EQ(loss.total, ce + d.s.continual.lwf_weight * kd);
}

// The run-level view of the same: the distillation term is zero in task 0
// and positive afterwards, and it changes what LwF learns.
TEST(Methods, LwfDistillsFromTaskOneOn) {
  const auto r = run_method("lwf", false);
  for (const auto& e : r.curve) {
    if (e.task == 0) {
      EXPECT_EQ(e.mean_distill_loss, 0.0);
    } else {
      EXPECT_GT(e.mean_distill_loss, 0.0);
    }
  }
  EXPECT_NE(r.signature, run_method("lwf", false, {"continual.lwf_weight=0"}).signature);
}

// BiC: the bias-layer stage after task t changes only the logits of task t's
// classes (a_t z + b_t); those of earlier tasks keep their bits.
TEST(Methods, BicStageChangesOnlyTheNewTasksLogits) {
  Driven d("bic");
  Matrix x, before, after;
  std::vector<int> y;
  std::uint64_t step = 0;
  for (int t = 0; t < 2; ++t) {
    d.method->begin_task(d.engine, t, step);
    const auto rows = d.method->train_rows();
    std::vector<MlpGrads> grads;
    for (std::size_t start = 0; start + 16 <= rows.size(); start += 16, ++step) {
      d.batch(std::span(rows).subspan(start, 16), x, y);
      d.method->gradients(d.engine, x, y, step, grads);
      d.method->apply(grads, 0.05f, std::span(rows).subspan(start, 16));
    }
    if (t == 1) d.method->scores(d.engine, x, step, 0, before);
    d.method->end_task(d.engine, t, step);
  }
  d.method->scores(d.engine, x, step, 0, after);
  const auto& rec = d.method->records();
  ASSERT_TRUE(rec.count("bic_alpha_task1"));
  EXPECT_TRUE(rec.at("bic_alpha_task1") != 1.0 || rec.at("bic_beta_task1") != 0.0);  // the stage trained
  std::set<int> task1(d.run.tasks[1].begin(), d.run.tasks[1].end());
  int changed = 0;
  for (int r = 0; r < x.rows; ++r)
    for (int c = 0; c < 6; ++c) {
      if (!task1.count(c)) EXPECT_EQ(after.at(r, c), before.at(r, c)) << r << "," << c;
      else changed += after.at(r, c) != before.at(r, c);
    }
  EXPECT_GT(changed, 0);
}

// DER's first task is the plain network: with a single task DER and naive
// see the same initial weights and batches, and DER's classifier over the
// frozen extractor computes the same logits as the network's last layer, so
// every accuracy and loss agrees.
TEST(Methods, DerFirstTaskIsThePlainNetwork) {
  const std::vector<std::string> one_task{"continual.classes_per_task=6"};
  for (bool golden : {true, false}) {
    const auto der = run_method("der", golden, one_task), naive = run_method("naive", golden, one_task);
    EXPECT_EQ(der.acc, naive.acc);
    ASSERT_EQ(der.curve.size(), naive.curve.size());
    for (std::size_t i = 0; i < der.curve.size(); ++i) EXPECT_EQ(der.curve[i].mean_loss, naive.curve[i].mean_loss);
  }
}

// Methods beyond naive/er/joint need forward/backward passes; an engine
// without them is refused up front, naming the method.
TEST(Methods, EnginesWithoutPassesAreRefused) {
  struct StepOnly : Engine {
    std::string name() const override { return "step-only"; }
    const std::vector<Matrix>& last_layer_outputs() const override { return none; }
    std::vector<Matrix> none;
  } e;
  const Scenario s = parse_scenario(kSeq, "methods.yaml", {"continual.method=lwf"});
  const auto data = load_scenario_data(s);
  try {
    run_continual(s, data, e);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("lwf"), std::string::npos) << err.what();
  }
}

// An exemplar budget below one sample per class is refused, naming the field.
TEST(Methods, ExemplarBudgetBelowOnePerClassIsRefused) {
  const Scenario s = parse_scenario(kSeq, "methods.yaml", {"continual.method=icarl", "continual.replay_capacity=5"});
  const auto data = load_scenario_data(s);
  GoldenEngine e(1);
  try {
    run_continual(s, data, e);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& err) {
    EXPECT_NE(std::string(err.what()).find("continual.replay_capacity"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace hdq
