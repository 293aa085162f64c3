// NPU config files: the built-in default, and errors that name the file, the
// line and the field (or the --set key), before anything runs.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>

#include <algorithm>
#include <map>

#include "models/hdqt/hdqt_config.h"
#include "sim/blocks/rtl_mac_array.h"
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

// The built-in config with the one occurrence of `from` replaced by `to`: a
// complete file (every required field) that differs in one place.
std::string edited(const std::string& from, const std::string& to) {
  std::string t = default_npu_config_text();
  const auto at = t.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  EXPECT_EQ(t.find(from, at + 1), std::string::npos) << from << " occurs twice";
  return t.replace(at, from.size(), to);
}

// 1-based line of the first occurrence of `what` in `text`.
int line_of(const std::string& text, const std::string& what) {
  return 1 + int(std::count(text.begin(), text.begin() + std::ptrdiff_t(text.find(what)), '\n'));
}

// `text` without the whole lines holding each of `pieces` (each occurs once).
std::string without_lines(std::string text, std::initializer_list<const char*> pieces) {
  for (const char* piece : pieces) {
    const auto at = text.find(piece);
    EXPECT_NE(at, std::string::npos) << piece;
    const auto begin = text.rfind('\n', at) + 1, end = text.find('\n', at);  // rfind: npos + 1 = 0 on line 1
    text.erase(begin, end - begin + 1);
  }
  return text;
}

// The message for a complete file edited in one place, with `file:line` of
// the line holding `at` (default: the edit).
void expect_error_at(const std::string& from, const std::string& to, const std::string& message, std::string at = "") {
  const std::string t = edited(from, to);
  EXPECT_EQ(error_of(t), fmt::format("t.yaml:{}: {}", line_of(t, at.empty() ? to : at), message));
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

// Horowitz's three points are met exactly, 64 KiB lies a fifth of the way
// (in log capacity) from 32 KB to 1 MB, so at 20 * (100/20)^(1/5); beyond the
// points the nearest segment's slope continues (4 KB: 10 / sqrt(2), as
// energy doubles over the two octaves 8 KB -> 32 KB).
TEST(NpuConfig, SramAccessEnergyFollowsCapacity) {
  EXPECT_NEAR(sram_access_64b_pj(8192), 10, 1e-12);
  EXPECT_NEAR(sram_access_64b_pj(32768), 20, 1e-12);
  EXPECT_NEAR(sram_access_64b_pj(1048576), 100, 1e-12);
  EXPECT_NEAR(sram_access_64b_pj(65536), 20 * std::pow(5.0, 0.2), 1e-12);
  EXPECT_NEAR(sram_access_64b_pj(4096), 10 / std::sqrt(2.0), 1e-12);
  // from_capacity takes one bank: 512 KiB in 8 banks is 64 KiB; 4 MiB in 8 is 512 KiB.
  EXPECT_NEAR(default_npu_config().energy.sram_pj_per_byte, sram_access_64b_pj(65536) / 8, 1e-12);
  const NpuConfig big = default_npu_config({"sram.size_bytes=4194304"});
  EXPECT_NEAR(big.energy.sram_pj_per_byte, sram_access_64b_pj(524288) / 8, 1e-12);
  EXPECT_GT(big.energy.sram_pj_per_byte, default_npu_config().energy.sram_pj_per_byte);
  // A number still fixes it.
  EXPECT_EQ(default_npu_config({"energy.sram_pj_per_byte=2.5"}).energy.sram_pj_per_byte, 2.5);
  try {
    default_npu_config({"energy.sram_pj_per_byte=capacity"});
    ADD_FAILURE() << "a word other than from_capacity was accepted";
  } catch (const NpuConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'capacity' is neither a number of pJ nor from_capacity"), std::string::npos) << e.what();
  }
  EXPECT_THROW(default_npu_config({"energy.sram_pj_per_byte=-1"}), NpuConfigError);  // a number, but negative
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
  expect_error_at("rows: 16", "rows: 0", "mac_array.rows: 0 is outside the allowed range 1..4096");
  expect_error_at("clock_mhz: 500", "clock_mhz: -5", "clock_mhz: -5 must be > 0");
  expect_error_at("points: 32", "points: 24", "hadamard_unit.points: 24 is not a power of two");
  expect_error_at("banks: 8", "banks: lots", "sram.banks: 'lots' is not a valid integer");
  expect_error_at("dataflow: auto", "dataflow: row_stationary",
                  "mac_array.dataflow: 'row_stationary' is not one of: output_stationary, weight_stationary, auto");
  // 2 banks x 8 B = 16 B/cycle cannot feed 16 + 16 operand bytes per cycle.
  expect_error_at("banks: 8", "banks: 2",
                  "sram.banks: 2 banks x 8 B = 16 B/cycle cannot feed the 16 x 16 array (needs 32 B/cycle)");
  expect_error_at("size_bytes: 524288", "size_bytes: 100000",
                  "sram.size_bytes: 100000 is not a multiple of banks x bank_width_bytes = 64");
  expect_error_at("int_add_8b_pj: 0.03", "int_add_8b_pj: 0.5",
                  "energy.int_add_32b_pj: 0.1 is below energy.int_add_8b_pj = 0.5", "int_add_32b_pj:");
  expect_error_at("max_outer_bits: 32", "max_outer_bits: 12", "mac_array.max_outer_bits: 12 is below mac_array.max_acc_bits = 32");
  expect_error_at("impl: model", "impl: verilog", "mac_array.impl: 'verilog' is not one of: model, rtl");
  // Numbers must be finite; the message names the field.
  expect_error_at("dram_pj_per_byte: 162.5", "dram_pj_per_byte: .inf", "energy.dram_pj_per_byte: '.inf' is not a finite number");
  expect_error_at("clock_mhz: 500", "clock_mhz: .nan", "clock_mhz: '.nan' is not a finite number");
}

// Every field without a documented default is required (docs/npu.md); a
// --set counts as giving it.
TEST(NpuConfig, FieldsWithoutADefaultAreRequired) {
  EXPECT_EQ(error_of(without_lines(default_npu_config_text(), {"clock_mhz: 500"})), "t.yaml: clock_mhz: missing; this field has no default (see docs/npu.md)");
  EXPECT_EQ(error_of(without_lines(default_npu_config_text(), {"size_bytes: 524288"})),
            "t.yaml: sram.size_bytes: missing; this field has no default (see docs/npu.md)");
  EXPECT_EQ(error_of(without_lines(default_npu_config_text(), {"technology_nm:"})),
            "t.yaml: energy.technology_nm: missing; this field has no default (see docs/npu.md)");
  EXPECT_EQ(error_of("name: x\nmac_array:\n  rows: 8\n"), "t.yaml: clock_mhz: missing; this field has no default (see docs/npu.md)");
  EXPECT_EQ(parse_npu_config(without_lines(default_npu_config_text(), {"clock_mhz: 500"}), "t.yaml", {"npu.clock_mhz=250"})
                .clock_mhz,
            250);
}

// mac_array.impl: rtl needs a verilated array of the config's rows x cols:
// a build without Verilator has none, a build with it has the geometries of
// HDQSIM_RTL_ARRAYS (sim/CMakeLists.txt). Either way 3 x 5 is refused with the
// key named, before anything runs.
TEST(NpuConfig, ImplRtlNeedsAVerilatedArrayOfTheConfigsGeometry) {
  const std::string t = edited("impl: model", "impl: rtl");
  const std::string at = fmt::format("t.yaml:{}: mac_array.impl: ", line_of(t, "impl: rtl"));
  const std::string got = error_of(t, {"mac_array.rows=3", "mac_array.cols=5"});
  if (rtl_array_variants().empty())
    EXPECT_EQ(got, at + "rtl needs the verilated MAC array, and this build has none: Verilator was not found when "
                        "the build was configured (scripts/setup.sh installs it; then reconfigure)");
  else
    EXPECT_EQ(got, at + "rtl: this build verilated the array at " + rtl_array_geometries() +
                        " only (CMake cache variable HDQSIM_RTL_ARRAYS), not at mac_array.rows x cols = 3x5");
}

// The five documented defaults, taken and recorded when the file leaves them out.
TEST(NpuConfig, DocumentedDefaultsAreRecorded) {
  EXPECT_TRUE(default_npu_config().defaults_taken.empty());  // the built-in file gives every field
  EXPECT_EQ(defaults_note(default_npu_config()), "");
  const NpuConfig d = parse_npu_config(without_lines(default_npu_config_text(), {"dataflow:"}), "cfg/small.yaml");
  EXPECT_EQ(d.mac_array.dataflow, "output_stationary");
  EXPECT_EQ(d.defaults_taken, (std::map<std::string, std::string>{{"mac_array.dataflow", "output_stationary"}}));
  EXPECT_EQ(defaults_note(d),
            "NPU config cfg/small.yaml: mac_array.dataflow not given, documented default output_stationary (docs/npu.md)\n");
  const NpuConfig i = parse_npu_config(without_lines(default_npu_config_text(), {"impl: model"}), "cfg/small.yaml");
  EXPECT_EQ(i.mac_array.impl, "model");
  EXPECT_EQ(i.defaults_taken, (std::map<std::string, std::string>{{"mac_array.impl", "model"}}));
  const std::string rest =
      without_lines(default_npu_config_text(), {"name: edge-npu", "simulation:", "quantum_cycles:", "dynamic_scale:"});
  const NpuConfig c = parse_npu_config(rest, "cfg/small.yaml");
  // name: the file's stem; quantum 100000 and scale 1 as docs/npu.md lists them.
  EXPECT_EQ(c.name, "small");
  EXPECT_EQ(c.simulation.quantum_cycles, 100000);
  EXPECT_EQ(c.energy.dynamic_scale, 1.0);
  EXPECT_EQ(c.defaults_taken, (std::map<std::string, std::string>{{"energy.dynamic_scale", "1"},
                                                                  {"name", "small"},
                                                                  {"simulation.quantum_cycles", "100000"}}));
}

TEST(NpuConfig, UnknownFieldsAndBadOverridesAreErrors) {
  const std::string full = default_npu_config_text();
  const std::string typo = edited("  bank_width_bytes: 8 ", "  bank_width_bytes: 8\n  sise_bytes: 4 ");
  EXPECT_EQ(error_of(typo), fmt::format("t.yaml:{}: sram.sise_bytes: unknown field (see docs/npu.md)", line_of(typo, "sise_bytes")));
  EXPECT_EQ(error_of(full, {"dma.bytes_per_cycle=0"}),
            "t.yaml: --set dma.bytes_per_cycle: 0 is outside the allowed range 1..65536");
  EXPECT_EQ(error_of(full, {"dma.speed=3"}), "t.yaml: --set dma.speed: unknown field");
  EXPECT_EQ(error_of(full, {"npu.dma.speed=3"}), "t.yaml: --set npu.dma.speed: unknown field");
  // The prefix alone leaves an empty path (found by fuzz_npu_config: it indexed an empty key list).
  EXPECT_EQ(error_of(full, {"npu.=3"}), "t.yaml: --set npu.: unknown field");
  EXPECT_EQ(error_of("- a list\n"), "t.yaml: an NPU config is a YAML mapping of fields");
  EXPECT_NE(error_of("a: [unclosed\n").find("t.yaml:"), std::string::npos);
  EXPECT_THROW(load_npu_config("/nonexistent/npu.yaml"), NpuConfigError);
  // A key given twice: yaml-cpp would keep the first silently.
  const std::string twice = edited("clock_mhz: 500", "clock_mhz: 500\nclock_mhz: 800");
  EXPECT_EQ(error_of(twice), fmt::format("t.yaml:{}: clock_mhz: duplicate key (first given on line {})",
                                         line_of(twice, "clock_mhz: 800"), line_of(twice, "clock_mhz: 500")));
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
