// The MAC array's GEMM on the verilated RTL (mac_array.impl: rtl,
// docs/npu.md "RTL in the loop"): rtl/mac_array.sv, cycle-stepped through
// rtl/driver/mac_array_driver.h, computes C and the statistics of a command
// in place of hdq::gemm. The MacArray block (mac_array.h) stays the TLM
// shell: it unpacks the operands, calls this, and charges the cost model's
// cycles and energy as for impl: model.
//
// Verilator parameters are fixed when the program is built, so the build
// verilates the array at a list of geometries (CMake cache variable
// HDQSIM_RTL_ARRAYS, rtl/CMakeLists.txt), each at the widths the NPU config
// allows at most (8-bit operand ports, W <= 32, Wo <= 32, 48-bit exact tile
// sums); mode, range, W, Wo, t and signedness are run-time inputs. A config
// whose rows x cols is not in the list, or a build without Verilator, is a
// ConfigError when the config is read (sim/config/npu_config.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/accumulator/gemm.h"

namespace hdq::npu {

// What one command's GEMM did on the RTL.
struct RtlGemmRun {
  GemmStats stats;            // the array's counters (tile_results: M * N * ceil(K / t), from the shape)
  std::uint64_t cycles = 0;   // clock cycles, the reset cycle included
  std::uint64_t folds = 0;    // ceil(M / R) * ceil(N / C)
};

class RtlMacArray {
 public:
  virtual ~RtlMacArray() = default;
  // C (m x n, Wo-bit values) = A B with the contract's accumulation (§5), one
  // reset cycle then ceil(M/R) ceil(N/C) folds of K + 2R + C - 2 cycles.
  // Throws NumericError if the array's fold timing breaks its design (fold_done
  // late or missing).
  virtual RtlGemmRun gemm(GemmShape shape, IntOperand a, IntOperand b, const AccumulatorConfig& acc,
                          std::span<std::int32_t> c) = 0;
};

// One verilated array of this build.
struct RtlArrayVariant {
  int rows = 0, cols = 0;
  int bug = 0;  // rtl/pe.sv's BUG parameter: 0, or a test-only broken variant
  std::unique_ptr<RtlMacArray> (*make)() = nullptr;
};
// Every verilated array of this build (empty: the build has no Verilator).
const std::vector<RtlArrayVariant>& rtl_array_variants();
// The correct (BUG = 0) geometries, "4x4, 16x16"; "" when there is none.
std::string rtl_array_geometries();
// The variant rows x cols with `bug`, or nullptr.
const RtlArrayVariant* find_rtl_array(int rows, int cols, int bug);

}  // namespace hdq::npu
