#include "training/methods/method.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "models/quantizer/random_bits.h"
#include "training/methods/kinds.h"

namespace hdq {

int ClassMask::count() const { return int(std::count(flags_.get(), flags_.get() + n_, true)); }

Method::Method(const RunSetup& run)
    : run_(run), seen_(run.classes), old_(run.classes), new_(run.classes) {}

void Method::begin_task(Engine&, int t, std::uint64_t) {
  task_ = t;
  for (int c : run_.tasks[std::size_t(t)]) {
    seen_.set(c);
    new_.set(c);
  }
  if (t > 0)
    for (int c : run_.tasks[std::size_t(t) - 1]) {
      old_.set(c);
      new_.set(c, false);
    }
  rows_ = rows_of(new_);
}

std::size_t Method::planned_rows(int t) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < run_.train.size(); ++i)
    n += std::ranges::count(run_.tasks[std::size_t(t)], run_.train.labels[i]);
  return n;
}

std::vector<std::size_t> Method::rows_of(const ClassMask& classes) const {
  std::vector<std::size_t> rows;
  for (std::size_t i = 0; i < run_.train.size(); ++i)
    if (classes[run_.train.labels[i]]) rows.push_back(i);
  return rows;
}

void Method::gather(std::span<const std::size_t> rows, Matrix& x, std::vector<int>* y) const {
  const std::size_t d = run_.train.dim();
  x = Matrix(int(rows.size()), int(d));
  if (y) y->resize(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto src = run_.train.row(rows[r]);
    std::copy(src.begin(), src.end(), x.v.begin() + r * d);
    if (y) (*y)[r] = run_.train.labels[rows[r]];
  }
}

Matrix Method::features_of(std::span<const std::size_t> rows, const FeatureFn& f) const {
  const std::size_t B = std::size_t(run_.s.train.batch);
  Matrix out, x;
  for (std::size_t start = 0; start < rows.size(); start += B) {
    gather(rows.subspan(start, std::min(B, rows.size() - start)), x);
    const Matrix chunk = f(x);
    if (start == 0) out = Matrix(int(rows.size()), chunk.cols);
    std::copy(chunk.v.begin(), chunk.v.end(), out.v.begin() + start * std::size_t(chunk.cols));
  }
  return out;
}

void Method::update_memory(ExemplarMemory& memory, const FeatureFn& f) {
  const int m = memory.quota(seen_.count());
  memory.shrink(m);
  for (int c : run_.tasks[std::size_t(task_)]) {
    ClassMask one(run_.classes);
    one.set(c);
    const auto rows = rows_of(one);
    std::vector<std::size_t> picked;
    for (std::size_t i : herding(features_of(rows, f), m)) picked.push_back(rows[i]);
    memory.set_class(c, std::move(picked));
  }
  records_[fmt::format("memory_samples_task{}", task_)] = double(memory.size());
  records_["memory_max_samples"] = std::max(records_["memory_max_samples"], double(memory.size()));
}

std::vector<std::size_t> Method::memory_rows(const ExemplarMemory& memory) {
  std::vector<std::size_t> rows;
  for (const auto& [c, r] : memory.classes()) rows.insert(rows.end(), r.begin(), r.end());
  return rows;
}

MlpParams init_network(const RunSetup& run, int outputs, std::uint64_t seed) {
  return hdq::init_network(run.s.network, run.train.shape, outputs, seed);
}

MlpParams trunk_of(const MlpParams& p) {
  if (p.w.size() < 2) throw ConfigError("network: a network of one layer has no feature extractor");
  MlpParams t = p;
  t.w.pop_back();
  t.b.pop_back();
  if (p.graph) {
    t.running.pop_back();
    t.graph = std::make_shared<const Graph>(p.graph->trunk());
  }
  return t;
}

void check_method(const RunSetup& run, const Engine& e) {
  const std::string& m = run.s.continual.method;
  const bool whole_steps = m == "naive" || m == "er" || m == "joint";
  if (!whole_steps && !e.has_passes())
    throw ConfigError(fmt::format("{}: continual.method {} needs forward/backward passes, which the {} engine does not "
                                  "have (it runs naive, er and joint)",
                                  run.s.file, m, e.name()));
  const int classes = run.classes;
  if ((m == "icarl" || m == "bic" || m == "der") && run.s.continual.replay_capacity < classes)
    throw ConfigError(fmt::format("{}: continual.replay_capacity = {} is below the {} classes: {} keeps at least one "
                                  "exemplar per class",
                                  run.s.file, run.s.continual.replay_capacity, classes, m));
}

std::unique_ptr<Method> make_method(const RunSetup& run, const Engine& e) {
  check_method(run, e);
  if (run.s.continual.method == "der") return make_der(run);
  return make_single_net(run);
}

std::uint64_t keyed(std::uint64_t seed, std::uint64_t tag, std::uint64_t a, std::uint64_t b) {
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

}  // namespace hdq
