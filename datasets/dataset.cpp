// Dataset invariants, standardization, class subsets, class order and tasks
// (formulas in data/datasets.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "datasets/datasets.h"
#include "models/common/splitmix64.h"
#include "models/common/errors.h"

namespace hdq::datasets {

std::size_t Dataset::dim() const {
  return std::accumulate(shape.begin(), shape.end(), std::size_t{1}, std::multiplies<>());
}

void Dataset::validate() const {
  if (shape.empty()) throw ConfigError(fmt::format("dataset '{}': empty feature shape", name));
  if (features.size() != size() * dim())
    throw ConfigError(fmt::format("dataset '{}': {} feature values for {} samples of dimension {}", name,
                                  features.size(), size(), dim()));
  for (std::size_t i = 0; i < size(); ++i)
    if (labels[i] < 0 || labels[i] >= num_classes)
      throw ConfigError(fmt::format("dataset '{}': label {} of sample {} is outside 0..{}", name, labels[i], i,
                                    num_classes - 1));
  if (!class_names.empty() && class_names.size() != static_cast<std::size_t>(num_classes))
    throw ConfigError(fmt::format("dataset '{}': {} class names for {} classes", name, class_names.size(), num_classes));
}

FeatureStats feature_stats(const Dataset& train) {
  train.validate();
  const std::size_t n = train.size(), d = train.dim();
  if (n == 0) throw ConfigError(fmt::format("feature_stats: dataset '{}' has no samples", train.name));
  FeatureStats s{std::vector<double>(d, 0.0), std::vector<double>(d, 0.0)};
  // Loops run i outer, j inner for locality; each feature j still has its own
  // accumulator fed in sample order i = 0..N-1, which is the stated order.
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) s.mean[j] += static_cast<double>(train.features[i * d + j]);
  for (std::size_t j = 0; j < d; ++j) s.mean[j] /= static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) {
      const double c = static_cast<double>(train.features[i * d + j]) - s.mean[j];
      s.stddev[j] += c * c;
    }
  for (std::size_t j = 0; j < d; ++j) {
    s.stddev[j] = std::sqrt(s.stddev[j] / static_cast<double>(n));
    if (s.stddev[j] == 0.0) s.stddev[j] = 1.0;  // constant feature: x' = x - mean (= 0 on train)
  }
  return s;
}

void apply_standardization(Dataset& ds, const FeatureStats& stats) {
  ds.validate();
  const std::size_t d = ds.dim();
  if (stats.mean.size() != d || stats.stddev.size() != d)
    throw ConfigError(fmt::format("apply_standardization: statistics for {} features, dataset '{}' has {}",
                                  stats.mean.size(), ds.name, d));
  for (std::size_t i = 0; i < ds.size(); ++i)
    for (std::size_t j = 0; j < d; ++j) {
      float& x = ds.features[i * d + j];
      x = static_cast<float>((static_cast<double>(x) - stats.mean[j]) / stats.stddev[j]);
    }
}

FeatureStats standardize(TrainTest& split) {
  FeatureStats s = feature_stats(split.train);
  apply_standardization(split.train, s);
  apply_standardization(split.test, s);
  return s;
}

Dataset subset_by_classes(const Dataset& ds, const std::vector<int>& classes) {
  ds.validate();
  std::vector<bool> keep(static_cast<std::size_t>(ds.num_classes), false);
  for (int c : classes) {
    if (c < 0 || c >= ds.num_classes)
      throw ConfigError(fmt::format("subset_by_classes: class {} is outside 0..{} of dataset '{}'", c,
                                    ds.num_classes - 1, ds.name));
    if (keep[static_cast<std::size_t>(c)])
      throw ConfigError(fmt::format("subset_by_classes: class {} is listed twice", c));
    keep[static_cast<std::size_t>(c)] = true;
  }
  Dataset out;
  out.name = ds.name;
  out.shape = ds.shape;
  out.num_classes = ds.num_classes;
  out.class_names = ds.class_names;
  for (std::size_t i = 0; i < ds.size(); ++i) {
    if (!keep[static_cast<std::size_t>(ds.labels[i])]) continue;
    out.labels.push_back(ds.labels[i]);
    const auto r = ds.row(i);
    out.features.insert(out.features.end(), r.begin(), r.end());
  }
  return out;
}

std::vector<int> class_order(int num_classes, std::uint64_t seed) {
  if (num_classes < 1) throw ConfigError(fmt::format("class_order: num_classes = {} must be >= 1", num_classes));
  std::vector<int> order(static_cast<std::size_t>(num_classes));
  std::iota(order.begin(), order.end(), 0);
  SplitMix64 g(seed);
  for (std::size_t i = order.size() - 1; i >= 1; --i) {
    const std::size_t j = uniform_below(g, i + 1);
    std::swap(order[i], order[j]);
  }
  return order;
}

std::vector<std::vector<int>> split_into_tasks(int num_classes, int classes_per_task, std::uint64_t seed) {
  if (classes_per_task < 1)
    throw ConfigError(fmt::format("split_into_tasks: classes_per_task = {} must be >= 1", classes_per_task));
  const std::vector<int> order = class_order(num_classes, seed);
  std::vector<std::vector<int>> tasks;
  for (std::size_t start = 0; start < order.size(); start += static_cast<std::size_t>(classes_per_task)) {
    const std::size_t end = std::min(order.size(), start + static_cast<std::size_t>(classes_per_task));
    tasks.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start), order.begin() + static_cast<std::ptrdiff_t>(end));
  }
  return tasks;
}

}  // namespace hdq::datasets
