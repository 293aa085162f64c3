// NPU config files: the built-in default, and errors that name the file, the
// line and the field (or the --set key), before anything runs.
#include <gtest/gtest.h>

#include "models/hdqt/hdqt_config.h"
#include "sim/config/npu_config.h"
#include "sim/host/step_program.h"

namespace hdq::npu {
namespace {

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_npu_config(yaml, "t.yaml", overrides);
  } catch (const NpuConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(NpuConfig, DefaultIsTheEdgeNpu) {
  const NpuConfig c = default_npu_config();
  EXPECT_EQ(c.name, "edge-npu");
  EXPECT_EQ(c.clock_mhz, 500);
  EXPECT_EQ(c.mac_array.rows, 16);
  EXPECT_EQ(c.mac_array.cols, 16);
  EXPECT_EQ(c.sram.size_bytes, 512u * 1024u);
  EXPECT_EQ(c.sram.banks, 8);
  EXPECT_EQ(c.dma.bytes_per_cycle, 16);
  EXPECT_EQ(c.dram.bytes_per_cycle, 8);
  EXPECT_EQ(c.dram.latency_cycles, 100);
  EXPECT_EQ(c.hadamard_unit.points, 32);
  EXPECT_EQ(c.quantizer_unit.lanes, 16);
  EXPECT_EQ(c.vector_unit.lanes, 16);
  EXPECT_DOUBLE_EQ(c.energy.f32_mul_pj, 3.7);
  EXPECT_DOUBLE_EQ(c.cycle_ns(), 2.0);  // 500 MHz
}

// The width scaling written in the YAML file: multiply ~ a*b, add linear in w.
TEST(NpuConfig, EnergyScalesWithBitWidth) {
  const EnergyTable e = default_npu_config().energy;
  EXPECT_DOUBLE_EQ(e.mul_pj(8, 8), 0.2);
  EXPECT_DOUBLE_EQ(e.mul_pj(4, 4), 0.05);        // (4*4)/64 of the 8-bit multiply
  EXPECT_DOUBLE_EQ(e.add_pj(8), 0.03);
  EXPECT_DOUBLE_EQ(e.add_pj(32), 0.1);
  EXPECT_NEAR(e.add_pj(16), 0.03 + 0.07 / 3, 1e-15);  // a third of the way from 8 to 32 bits
  const EnergyTable half = parse_npu_config(default_npu_config_text(), "d.yaml", {"energy.dynamic_scale=0.5"}).energy;
  EXPECT_DOUBLE_EQ(half.f32_add(), 0.45);
  EXPECT_DOUBLE_EQ(half.leakage_pj_per_cycle, e.leakage_pj_per_cycle);  // leakage is not scaled
}

TEST(NpuConfig, OverridesApplyByDottedPath) {
  const NpuConfig c = default_npu_config({"mac_array.rows=8", "sram.size_bytes=65536"});
  EXPECT_EQ(c.mac_array.rows, 8);
  EXPECT_EQ(c.sram.size_bytes, 65536u);
  const SplitOverrides s = split_overrides({"batch=4", "npu.sram.banks=4", "gemm.fwd.acc_bits=6"});
  EXPECT_EQ(s.scenario, (std::vector<std::string>{"batch=4", "gemm.fwd.acc_bits=6"}));
  EXPECT_EQ(s.npu, (std::vector<std::string>{"npu.sram.banks=4"}));
  EXPECT_EQ(default_npu_config(s.npu).sram.banks, 4);
}

TEST(NpuConfig, ImpossibleValuesNameFileLineAndField) {
  // rows is on line 3 of this text.
  EXPECT_EQ(error_of("name: x\nmac_array:\n  rows: 0\n"), "t.yaml:3: mac_array.rows: 0 is outside the allowed range 1..4096");
  EXPECT_EQ(error_of("clock_mhz: -5\n"), "t.yaml:1: clock_mhz: -5 must be > 0");
  EXPECT_EQ(error_of("hadamard_unit:\n  points: 24\n"), "t.yaml:2: hadamard_unit.points: 24 is not a power of two");
  EXPECT_EQ(error_of("sram: {banks: lots}\n"), "t.yaml:1: sram.banks: 'lots' is not a valid integer");
  EXPECT_EQ(error_of("mac_array: {dataflow: row_stationary}\n"),
            "t.yaml:1: mac_array.dataflow: 'row_stationary' is not one of: output_stationary, weight_stationary, auto");
  // 2 banks x 8 B = 16 B/cycle cannot feed 16 + 16 operand bytes per cycle.
  EXPECT_EQ(error_of("sram: {banks: 2, size_bytes: 4096}\n"),
            "t.yaml:1: sram.banks: 2 banks x 8 B = 16 B/cycle cannot feed the 16 x 16 array (needs 32 B/cycle)");
  EXPECT_EQ(error_of("sram: {size_bytes: 100000}\n"),
            "t.yaml:1: sram.size_bytes: 100000 is not a multiple of banks x bank_width_bytes = 64");
  // The 32-bit add keeps its default, so it has no line in this file.
  EXPECT_EQ(error_of("energy:\n  int_add_8b_pj: 0.5\n"),
            "t.yaml: energy.int_add_32b_pj: 0.1 is below energy.int_add_8b_pj = 0.5");
  EXPECT_EQ(error_of("mac_array:\n  max_acc_bits: 16\n  max_outer_bits: 12\n"),
            "t.yaml:3: mac_array.max_outer_bits: 12 is below mac_array.max_acc_bits = 16");
}

TEST(NpuConfig, UnknownFieldsAndBadOverridesAreErrors) {
  EXPECT_EQ(error_of("name: x\nsram:\n  sise_bytes: 4\n"), "t.yaml:3: sram.sise_bytes: unknown field (see docs/npu.md)");
  EXPECT_EQ(error_of("name: x\n", {"dma.bytes_per_cycle=0"}),
            "t.yaml: --set dma.bytes_per_cycle: 0 is outside the allowed range 1..65536");
  EXPECT_EQ(error_of("name: x\n", {"dma.speed=3"}), "t.yaml: --set dma.speed: unknown field");
  EXPECT_EQ(error_of("name: x\n", {"npu.dma.speed=3"}), "t.yaml: --set npu.dma.speed: unknown field");
  EXPECT_EQ(error_of("- a list\n"), "t.yaml: an NPU config is a YAML mapping of fields");
  EXPECT_NE(error_of("a: [unclosed\n").find("t.yaml:"), std::string::npos);
  EXPECT_THROW(load_npu_config("/nonexistent/npu.yaml"), NpuConfigError);
}

// A scenario needing more than the array has names the NPU field.
TEST(NpuConfig, UnsupportedLayerNamesTheField) {
  HdqtConfig h = hdqt_preset("npu");
  const NpuConfig c = default_npu_config({"mac_array.max_acc_bits=16"});
  EXPECT_NO_THROW(check_supported(c, h));
  h.acc(GemmRole::bwd_dw).acc_bits = 24;
  try {
    check_supported(c, h);
    FAIL();
  } catch (const NpuConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "sim/configs/edge-npu.yaml (built in): mac_array.max_acc_bits = 16: GEMM bwd_dw needs 24-bit tile accumulators");
  }
  h = hdqt_preset("npu");
  const NpuConfig narrow = default_npu_config({"mac_array.max_operand_bits=4"});
  h.q(QuantRole::bwd_x_dw).bits = 6;
  EXPECT_THROW(check_supported(narrow, h), NpuConfigError);
}

}  // namespace
}  // namespace hdq::npu
