#include "sim/cost/dataflow.h"

namespace hdq::npu {

std::string_view short_name(Dataflow d) { return d == Dataflow::output_stationary ? "os" : "ws"; }
std::string_view long_name(Dataflow d) {
  return d == Dataflow::output_stationary ? "output_stationary" : "weight_stationary";
}

Dataflow choose_dataflow(std::string_view configured, std::uint64_t m, std::uint64_t n, std::uint64_t k, int rows,
                         int cols) {
  if (configured == long_name(Dataflow::output_stationary)) return Dataflow::output_stationary;
  if (configured == long_name(Dataflow::weight_stationary)) return Dataflow::weight_stationary;
  return compute_cycles(Dataflow::weight_stationary, m, n, k, rows, cols) <
                 compute_cycles(Dataflow::output_stationary, m, n, k, rows, cols)
             ? Dataflow::weight_stationary
             : Dataflow::output_stationary;
}

Utilization utilization(Dataflow d, std::uint64_t m, std::uint64_t n, std::uint64_t k, int rows, int cols) {
  const FoldGeometry g = fold_geometry(d, m, n, k, rows, cols);
  if (g.folds() == 0) return {};
  const double pes = double(rows) * double(cols);
  const bool os = d == Dataflow::output_stationary;
  // The fold's extent along the array's rows is a piece of M (os) or of K (ws).
  const std::uint64_t row_extent = os ? m : k, t = os ? k : m;
  const double fold_cycles = os ? double(g.cycles_per_fold) : double(g.cycles_per_fold + std::uint64_t(cols) - 1);
  double mapping = 0, compute = 0;
  for (std::uint64_t fr = 0; fr < g.row_folds; ++fr) {
    const std::uint64_t r0 = fr * std::uint64_t(rows);
    const std::uint64_t used_rows = row_extent - r0 < std::uint64_t(rows) ? row_extent - r0 : std::uint64_t(rows);
    for (std::uint64_t fc = 0; fc < g.col_folds; ++fc) {
      const std::uint64_t c0 = fc * std::uint64_t(cols);
      const std::uint64_t used_cols = n - c0 < std::uint64_t(cols) ? n - c0 : std::uint64_t(cols);
      const double used = double(used_rows * used_cols);
      mapping += used / pes;
      compute += used * double(t) / (pes * fold_cycles);
    }
  }
  const double folds = double(g.folds());
  return {double(m) * double(n) * double(k) / (double(g.cycles()) * pes), mapping / folds, compute / folds};
}

}  // namespace hdq::npu
