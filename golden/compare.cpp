#include "golden/compare.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "models/common/errors.h"

namespace hdq::golden {

namespace {
void check_sizes(const char* who, std::size_t a, std::size_t b) {
  if (a != b) throw ConfigError(fmt::format("{}: the vectors have {} and {} elements", who, a, b));
}
}  // namespace

double cosine(std::span<const float> a, std::span<const float> b) {
  check_sizes("cosine", a.size(), b.size());
  double dot = 0.0, na = 0.0, nb = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = b[i];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (std::isnan(dot) || std::isnan(na) || std::isnan(nb)) return std::numeric_limits<double>::quiet_NaN();
  if (na == 0.0 && nb == 0.0) return 1.0;
  if (na == 0.0 || nb == 0.0) return 0.0;
  return std::clamp(dot / (std::sqrt(na) * std::sqrt(nb)), -1.0, 1.0);
}

double sqnr_db(std::span<const float> reference, std::span<const float> test) {
  check_sizes("sqnr_db", reference.size(), test.size());
  double signal = 0.0, noise = 0.0;
  for (std::size_t i = 0; i < reference.size(); ++i) {
    const double r = reference[i], e = r - double(test[i]);  // in f64: exact whenever the exponents are within 29 of each other
    signal += r * r;
    noise += e * e;
  }
  if (std::isnan(signal) || std::isnan(noise)) return std::numeric_limits<double>::quiet_NaN();
  if (noise == 0.0) return std::numeric_limits<double>::infinity();
  if (signal == 0.0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(signal / noise);
}

}  // namespace hdq::golden
