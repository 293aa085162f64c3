// Exemplar memory of iCaRL, BiC and DER (Rebuffi et al., CVPR 2017, Alg. 4-5):
// a fixed total budget M of training samples; with k classes seen each class
// keeps m = floor(M / k) samples, chosen by herding so that its list is ordered
// and shrinking to a smaller m keeps the best prefix. Samples are held as row
// indices into the training split (the memory holds those samples' data).
#pragma once

#include <cstddef>
#include <map>
#include <vector>

#include "models/nn/mlp.h"

namespace hdq {

// Scales every row to unit L2 norm (an all-zero row stays zero): the squared
// norm is summed in double over the columns ascending, each entry is divided
// by its f32 square root.
void l2_normalize_rows(Matrix& m);

// Herding over L2-normalized feature rows: mu = mean of all rows; pick k
// (k = 1..m) is the not yet picked row i minimizing ||mu - (S + phi_i) / k||,
// S the sum of the rows picked before, computed as maximizing
// (mu - S/k) . phi_i - ||phi_i||^2 / (2k) (the same order: the squared
// distance expanded, terms without phi_i dropped, times k/2); ties go to the
// lowest row. Sums and dot products in double, columns ascending. Returns
// min(m, rows) row numbers in pick order.
std::vector<std::size_t> herding(const Matrix& normalized_features, int m);

class ExemplarMemory {
 public:
  explicit ExemplarMemory(int budget) : budget_(budget) {}
  int budget() const { return budget_; }
  // Per-class quota with `classes` classes seen.
  int quota(int classes) const { return classes > 0 ? budget_ / classes : 0; }
  std::size_t size() const;
  // Keeps the first m samples of every class.
  void shrink(int m);
  // Stores class c's exemplars (training rows in herding order), replacing any.
  void set_class(int c, std::vector<std::size_t> rows) { rows_[c] = std::move(rows); }
  // Class -> its rows in herding order, classes ascending.
  const std::map<int, std::vector<std::size_t>>& classes() const { return rows_; }

 private:
  int budget_;
  std::map<int, std::vector<std::size_t>> rows_;
};

}  // namespace hdq
