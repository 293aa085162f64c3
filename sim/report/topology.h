// SCALE-Sim interop: its GEMM topology files in, its COMPUTE_REPORT columns
// out, so architects can diff hdqsim's MAC-array timing with SCALE-Sim v2's
// on the same layers.
//
// Topology format (SCALE-Sim's `-i gemm` input): a header line, then one line
// per layer "name, M, N, K," (the trailing comma optional), C (M x N) =
// A (M x K) B (K x N). Blank lines are skipped.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/cost/dataflow.h"

namespace hdq::npu {

struct TopologyGemm {
  std::string name;
  std::uint64_t m = 0, n = 0, k = 0;
};

// Throws ConfigError naming file:line and the field for a malformed line.
std::vector<TopologyGemm> parse_topology(const std::string& text, const std::string& file);
std::vector<TopologyGemm> load_topology(const std::string& file);

// "RxC" (e.g. "16x16") -> rows, cols; ConfigError naming `field` otherwise.
void parse_array_size(const std::string& s, const std::string& field, int& rows, int& cols);
// "os" | "ws"; ConfigError naming `field` otherwise.
Dataflow parse_dataflow(const std::string& s, const std::string& field);

// COMPUTE_REPORT.csv: one row per topology line, in order, with SCALE-Sim's
// LayerID (0-based) and its utilization columns (percent), plus the shape,
// the dataflow, the folds and "Compute Cycles" (cycles without memory stalls,
// SCALE-Sim's Total Cycles - Stall Cycles).
std::string compute_report_csv(const std::vector<TopologyGemm>& layers, Dataflow d, int rows, int cols);

}  // namespace hdq::npu
