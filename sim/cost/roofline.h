// Roofline position of a GEMM phase (one layer x phase cell of the ledger: its
// GEMM and the passes fused around it): compute-bound or bandwidth-bound, and
// by how much. Williams, Waterman, Patterson, "Roofline: an insightful visual
// performance model for multicore architectures", CACM 52(4), 2009, with
// operations counted as MACs and traffic as DRAM bytes.
#pragma once

#include <cstdint>
#include <limits>

#include "sim/config/npu_config.h"

namespace hdq::npu {

struct Roofline {
  double intensity = 0;       // MACs per DRAM byte of the cell
  double ridge = 0;           // the machine's balance: peak MACs per cycle over DRAM bytes per cycle
  double compute_cycles = 0;  // MACs at the array's peak (R x C per cycle)
  double memory_cycles = 0;   // DRAM bytes at the DRAM's peak bandwidth
  bool compute_bound = false; // intensity at or above the ridge
  // How far from the ridge: intensity / ridge when compute-bound, ridge /
  // intensity when bandwidth-bound (>= 1 either way; infinite without DRAM bytes).
  double factor = 0;
  // The larger of the two bounds over the cycles the schedule took: 1 when the
  // schedule reaches the roof.
  double attained = 0;
};

inline Roofline roofline(double macs, double dram_bytes, double cycles, const NpuConfig& c) {
  Roofline r;
  const double peak_macs = double(c.mac_array.rows) * double(c.mac_array.cols);
  const double dram_bw = double(c.dram.bytes_per_cycle);
  r.ridge = peak_macs / dram_bw;
  r.compute_cycles = macs / peak_macs;
  r.memory_cycles = dram_bytes / dram_bw;
  r.intensity = dram_bytes > 0 ? macs / dram_bytes : std::numeric_limits<double>::infinity();
  r.compute_bound = r.intensity >= r.ridge;
  r.factor = r.compute_bound ? r.intensity / r.ridge : r.ridge / r.intensity;
  const double bound = r.compute_cycles > r.memory_cycles ? r.compute_cycles : r.memory_cycles;
  r.attained = cycles > 0 ? bound / cycles : 0;
  return r;
}

}  // namespace hdq::npu
