#include "training/exemplars.h"

#include <cmath>

namespace hdq {

void l2_normalize_rows(Matrix& m) {
  for (int r = 0; r < m.rows; ++r) {
    auto row = m.row(r);
    double sq = 0;
    for (float v : row) sq += double(v) * double(v);
    if (sq == 0) continue;
    const float norm = std::sqrt(float(sq));
    for (float& v : row) v /= norm;
  }
}

std::vector<std::size_t> herding(const Matrix& phi, int m) {
  const std::size_t n = std::size_t(phi.rows), d = std::size_t(phi.cols);
  std::vector<double> mu(d, 0.0), sum(d, 0.0), target(d), norm2(n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) {
      mu[j] += phi.v[i * d + j];
      norm2[i] += double(phi.v[i * d + j]) * phi.v[i * d + j];
    }
  for (double& v : mu) v /= double(n);
  std::vector<bool> picked(n, false);
  std::vector<std::size_t> order;
  const std::size_t want = std::min(n, std::size_t(std::max(m, 0)));
  for (std::size_t k = 1; k <= want; ++k) {
    for (std::size_t j = 0; j < d; ++j) target[j] = mu[j] - sum[j] / double(k);
    std::size_t best = n;
    double best_score = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (picked[i]) continue;
      double s = 0;
      for (std::size_t j = 0; j < d; ++j) s += target[j] * phi.v[i * d + j];
      s -= norm2[i] / (2.0 * double(k));
      if (best == n || s > best_score) best = i, best_score = s;
    }
    picked[best] = true;
    order.push_back(best);
    for (std::size_t j = 0; j < d; ++j) sum[j] += phi.v[best * d + j];
  }
  return order;
}

std::size_t ExemplarMemory::size() const {
  std::size_t n = 0;
  for (const auto& [c, rows] : rows_) n += rows.size();
  return n;
}

void ExemplarMemory::shrink(int m) {
  for (auto& [c, rows] : rows_)
    if (rows.size() > std::size_t(m)) rows.resize(std::size_t(m));
}

}  // namespace hdq
