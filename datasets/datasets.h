// The data layer for class-incremental training runs.
//
// A Dataset is N samples of D features (row-major f32) with integer labels in
// 0..num_classes-1. Loaders: Fashion-MNIST (IDX, gzip or plain), the UCI-HAR
// text layout, a generic CSV file and the seeded "synthetic" sensor windows
// (data/synthetic.h). Helpers: per-feature standardization fitted on the train
// split, class subsets and the seeded class order / task split.
//
// Errors: a missing, unreadable or malformed file throws DataError naming the
// path (and the line for text formats) and the expected format. A bad call
// (classes out of range, zero classes per task, inconsistent Dataset) throws
// hdq::ConfigError (models/common/errors.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace hdq::datasets {

struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Dataset {
  std::string name;                      // "fashion-mnist", "uci-har", "synthetic", CSV: file stem
  std::vector<std::size_t> shape;        // feature shape of one sample, D = product (e.g. {28, 28})
  std::vector<float> features;           // N x D, row-major: sample i is features[i*D, (i+1)*D)
  std::vector<std::int32_t> labels;      // N labels, 0 <= label < num_classes
  int num_classes = 0;
  std::vector<std::string> class_names;  // empty, or num_classes names (index = label)

  std::size_t size() const { return labels.size(); }  // N
  std::size_t dim() const;                             // D = product of shape
  std::span<const float> row(std::size_t i) const { return {features.data() + i * dim(), dim()}; }
  // Throws ConfigError unless: shape non-empty, features.size() == N * D,
  // every label in 0..num_classes-1, class_names empty or num_classes long.
  void validate() const;
};

struct TrainTest {
  Dataset train;
  Dataset test;
};

// ---------------------------------------------------------------------------
// IDX classification data (format: data/idx.h).
//
// images: magic 0x00000803 (unsigned byte, 3-D: N x rows x cols), row-major
// pixels; labels: magic 0x00000801 (unsigned byte, 1-D: N). Each file may be
// gzip-compressed or plain. Checks: magic, dimensions, N(images) == N(labels),
// label < num_classes, exact file length. Pixels become x / 255.0f (one f32
// division, so 0 -> 0.0f and 255 -> 1.0f exactly); shape = {rows, cols}.
Dataset load_idx_classification(const std::filesystem::path& images, const std::filesystem::path& labels,
                                int num_classes, const std::string& name);

// Fashion-MNIST (Debian package dataset-fashion-mnist). Reads
// <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, or the same names
// without .gz when the .gz file is absent. Images must be 28 x 28, labels
// 0..9, class_names are the ten Fashion-MNIST article names. limit_train /
// limit_test > 0 keep only the first that many samples of a split (the whole
// file is still read and validated); 0 keeps all (60000 / 10000).
// Every DataError says "install the Debian package dataset-fashion-mnist".
TrainTest load_fashion_mnist(const std::filesystem::path& dir = "/usr/share/datasets/fashion-mnist",
                             std::size_t limit_train = 0, std::size_t limit_test = 0);

// ---------------------------------------------------------------------------
// UCI-HAR text layout: <dir>/train/X_train.txt, <dir>/train/y_train.txt,
// <dir>/test/X_test.txt, <dir>/test/y_test.txt, or (flat layout, used when
// <dir>/train/X_train.txt does not exist) the same four files directly in <dir>.
// X: one sample per line, whitespace-separated decimal floats (e.g.
// "2.8858451e-001"), every row of both X files the same length D. y: one
// integer >= 1 per line (1-based class), stored as label = y - 1.
// num_classes = largest y in train and test. Blank lines are skipped (in X and
// y alike). Shape = {D}. Errors name the file and the 1-based line.
TrainTest load_uci_har(const std::filesystem::path& dir);

// ---------------------------------------------------------------------------
// CSV: one sample per line, "f_1,...,f_D,label" with D >= 1.
//  * Delimiter ',' only; spaces/tabs around fields and a trailing '\r' are
//    ignored; one pair of surrounding double quotes is stripped from a field
//    (no quoted commas). Blank lines are skipped.
//  * Header: the first non-blank line is a header iff none of its fields is a
//    number; a header must have as many fields as the data rows.
//  * Labels: either every label is an integer (then it must be >= 0 and
//    num_classes = largest label + 1), or no label is an integer: then labels
//    are class names, numbered 0, 1, ... in order of first appearance, and
//    class_names holds them. Mixing the two is an error.
//  * Features must be finite numbers. Shape = {D}. name = file stem.
// Errors name the file and the 1-based line.
Dataset load_csv(const std::filesystem::path& path);
// Train and test files with one shared label space: class names are numbered
// in order of first appearance in train, then test; num_classes is the same
// for both (largest over the two files); D must agree.
TrainTest load_csv_pair(const std::filesystem::path& train, const std::filesystem::path& test);

// ---------------------------------------------------------------------------
// Per-feature standardization: x' = f32((x - mean_j) / std_j) evaluated in f64
// (x converted to f64 exactly, one rounding to f32 at the end).
// Reduction order, for each feature j separately, samples in index order
// i = 0, 1, ..., N-1 with a sequential f64 accumulator (two passes):
//   mean_j = (sum_i x_ij) / N
//   std_j  = sqrt((sum_i (x_ij - mean_j)^2) / N)      (population std)
// A feature with std_j == 0 (constant on the train split, e.g. the blank
// border pixels of Fashion-MNIST) gets std_j := 1, so it maps to x - mean.
struct FeatureStats {
  std::vector<double> mean;
  std::vector<double> stddev;
};
FeatureStats feature_stats(const Dataset& train);  // throws ConfigError if train is empty
void apply_standardization(Dataset& ds, const FeatureStats& stats);
// Fits on split.train, applies to both splits, returns the statistics.
FeatureStats standardize(TrainTest& split);

// The samples whose label is in `classes`, in their original order. Labels
// keep their original ids (num_classes and class_names are unchanged), as a
// class-incremental run with one shared output head expects. `classes` must be
// distinct ids in 0..num_classes-1 (ConfigError otherwise).
Dataset subset_by_classes(const Dataset& ds, const std::vector<int>& classes);

// A seeded permutation of 0..num_classes-1: Fisher-Yates on SplitMix64 with
// state = seed (models/common/splitmix64.h): for i = num_classes-1 down to 1,
// j = uniform_below(i + 1), swap(order[i], order[j]).
std::vector<int> class_order(int num_classes, std::uint64_t seed);

// Consecutive slices of class_order(num_classes, seed), classes_per_task each;
// when classes_per_task does not divide num_classes the LAST task is smaller
// (it holds the num_classes % classes_per_task remaining classes). Every class
// appears in exactly one task. num_classes >= 1, classes_per_task >= 1.
std::vector<std::vector<int>> split_into_tasks(int num_classes, int classes_per_task, std::uint64_t seed);

}  // namespace hdq::datasets
