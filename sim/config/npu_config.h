// The NPU configuration: clock, block sizes, bandwidths, latencies and the
// energy table. Pure data, read from a YAML file (sim/configs/edge-npu.yaml is
// the default, built into the binary); every field and its meaning is in
// docs/npu.md. Errors name the file, the line and the field
// ("file:line: field: problem"), like scenario files, and nothing runs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "models/common/errors.h"

namespace hdq::npu {

struct NpuConfigError : ConfigError {
  using ConfigError::ConfigError;
};

// Energy per event in pJ at `technology_nm`; `dynamic_scale` multiplies every
// dynamic entry (use it to move the table to another node), leakage is given
// for the target directly. How each entry scales with bit width is fixed
// here and documented in the YAML file:
//   multiply of a x b bits: int_mul_8b_pj * (a * b) / 64  (array multiplier area ~ a*b)
//   add of w bits: linear in w through (8, int_add_8b_pj) and (32, int_add_32b_pj)
//   register of w bits written: w * reg_bit_pj
// A 64-bit SRAM access at 45 nm against the capacity of the macro it reads
// (M. Horowitz, ISSCC 2014: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ): straight
// lines in log(energy) over log(capacity) between the points, extrapolated
// with the nearest segment's slope. A 64 KiB bank: 20 * 5^(1/5) = 27.59 pJ.
double sram_access_64b_pj(double capacity_bytes);

struct EnergyTable {
  double technology_nm = 45;
  double dynamic_scale = 1.0;
  double int_mul_8b_pj = 0.2;
  double int_add_8b_pj = 0.03;
  double int_add_32b_pj = 0.1;
  double f32_add_pj = 0.9;
  double f32_mul_pj = 3.7;
  // Given in pJ, or `from_capacity` in the file: sram_access_64b_pj(one bank's bytes) / 8.
  double sram_pj_per_byte = 27.5946 / 8;
  double dram_pj_per_byte = 162.5;
  double random_bit_pj = 1.6;
  double hadamard_add_pj = 0.9;
  double reg_bit_pj = 0.0038;
  double leakage_pj_per_cycle = 10.0;

  double mul_pj(int a_bits, int b_bits) const { return dynamic_scale * int_mul_8b_pj * double(a_bits * b_bits) / 64.0; }
  double add_pj(int bits) const {
    return dynamic_scale * (int_add_8b_pj + (int_add_32b_pj - int_add_8b_pj) * double(bits - 8) / 24.0);
  }
  double reg_pj(int bits) const { return dynamic_scale * reg_bit_pj * double(bits); }
  double f32_add() const { return dynamic_scale * f32_add_pj; }
  double f32_mul() const { return dynamic_scale * f32_mul_pj; }
  double sram_byte() const { return dynamic_scale * sram_pj_per_byte; }
  double dram_byte() const { return dynamic_scale * dram_pj_per_byte; }
  double random_bit() const { return dynamic_scale * random_bit_pj; }
  double hadamard_add() const { return dynamic_scale * hadamard_add_pj; }
};

// Every field of a config file is required except five with documented
// defaults (docs/npu.md): `name` (the file's stem), `mac_array.dataflow`
// (output_stationary), `mac_array.impl` (model), `simulation.quantum_cycles`
// (100000, no effect on results) and `energy.dynamic_scale` (1: the table as
// given). The initializers are the edge NPU's values (sim/configs/edge-npu.yaml).
struct NpuConfig {
  std::string file;  // where it was read from (messages)
  std::map<std::string, std::string> defaults_taken;  // field -> value, for the defaulted fields the file leaves out
  std::string name = "edge-npu";
  double clock_mhz = 500;

  struct MacArray {
    int rows = 16;  // R
    int cols = 16;  // C
    // output_stationary | weight_stationary | auto: per GEMM the dataflow
    // with fewer cycles (sim/cost/dataflow.h), output_stationary on a tie.
    std::string dataflow = "output_stationary";
    // model: hdq::gemm computes each command; rtl: the verilated rtl/mac_array.sv
    // at rows x cols (sim/blocks/rtl_mac_array.h). The same bits, cycles and
    // energy either way (the cost model's); rtl also records the RTL's cycles.
    std::string impl = "model";
    // TEST ONLY, not a config file key: rtl/pe.sv's BUG parameter of the
    // verilated array impl: rtl runs (0: the design; tests set 1 to check that
    // a broken array is caught in the loop).
    int rtl_bug = 0;
    int max_operand_bits = 8;
    int max_acc_bits = 32;    // widest tile accumulator the PEs have
    int max_outer_bits = 32;  // widest outer accumulator
  } mac_array;

  struct Sram {
    std::uint64_t size_bytes = 512 * 1024;
    int banks = 8;
    int bank_width_bytes = 8;  // bytes per bank per cycle
  } sram;

  struct Dma {
    int bytes_per_cycle = 16;
    int latency_cycles = 16;  // per transfer (descriptor set-up and first beat)
  } dma;

  struct Dram {
    std::uint64_t size_bytes = 256ull << 20;
    int bytes_per_cycle = 8;
    int latency_cycles = 100;
  } dram;

  struct HadamardUnit {
    int points = 32;  // a fixed-size FWHT: log2(points) butterfly stages per pass, points elements per cycle
  } hadamard_unit;

  struct Lanes {
    int lanes = 16;  // elements per cycle
  };
  Lanes quantizer_unit;
  Lanes vector_unit;

  struct CommandProcessor {
    int dispatch_cycles = 4;  // decode and issue of one descriptor (after its fetch from DRAM)
  } command_processor;

  struct Simulation {
    int quantum_cycles = 100000;  // tlm_quantumkeeper quantum: a modelling knob, not hardware
  } simulation;

  EnergyTable energy;

  // Silicon area of the blocks' building parts, um^2 at energy.technology_nm
  // (sim/cost/area.h composes the blocks; sources in the YAML file).
  struct Area {
    double int_mul_8b_um2 = 282;   // 8 x 8-bit multiply; a x b bits scale by a * b / 64
    double int_add_8b_um2 = 36;    // w-bit adds: linear in w through 8 and 32 bits
    double int_add_32b_um2 = 137;
    double f32_add_um2 = 4184;
    double f32_mul_um2 = 7700;
    double reg_bit_um2 = 4.522;    // one flip-flop
    double sram_bit_um2 = 0.346;   // one 6T cell
    double sram_array_efficiency = 0.7;  // cells / (cells + periphery)
  } area;

  double cycle_ns() const { return 1000.0 / clock_mhz; }
};

// Reads `file`, applies overrides ("a.b=value" or "npu.a.b=value", YAML
// value; errors name the key as given), validates.
NpuConfig load_npu_config(const std::string& file, const std::vector<std::string>& overrides = {});
// The same from YAML text; `file` is only used in messages.
NpuConfig parse_npu_config(const std::string& yaml_text, const std::string& file,
                           const std::vector<std::string>& overrides = {});
// One line per field left to its documented default ("NPU config FILE:
// FIELD not given, documented default VALUE (docs/npu.md)"), for the commands
// to print; empty when the file gives every field.
std::string defaults_note(const NpuConfig& c);
// The default configuration (sim/configs/edge-npu.yaml, built into the program).
NpuConfig default_npu_config(const std::vector<std::string>& overrides = {});
// The text of the built-in default file.
const std::string& default_npu_config_text();
// `file` with `overrides`, or the default config when `file` is empty.
NpuConfig npu_config_or_default(const std::string& file, const std::vector<std::string>& overrides = {});

// Command-line overrides: "npu.<key>=value" addresses the NPU config (in
// `npu`, as given), everything else the scenario.
struct SplitOverrides {
  std::vector<std::string> scenario, npu;
};
SplitOverrides split_overrides(const std::vector<std::string>& overrides);

}  // namespace hdq::npu
