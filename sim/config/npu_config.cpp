#include "sim/config/npu_config.h"

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "models/common/input_file.h"
#include "models/common/yaml_fields.h"
#include "sim/blocks/rtl_mac_array.h"

namespace hdq::npu {
namespace {

using Reader = yaml_fields::Reader<NpuConfigError>;

// A required number > 0 (or >= 0 when zero_ok).
void need_positive(Reader& r, const std::string& path, double& out, bool zero_ok = false) {
  r.need(path, out);
  if (!(zero_ok ? out >= 0.0 : out > 0.0)) r.fail(path, fmt::format("{} must be {} 0", out, zero_ok ? ">=" : ">"));
}

// A field with a documented default (docs/npu.md) that was absent.
template <typename T>
void default_taken(NpuConfig& c, const std::string& path, const T& value) {
  c.defaults_taken[path] = fmt::format("{}", value);
}

bool is_pow2(long long v) { return v > 0 && (v & (v - 1)) == 0; }

NpuConfig parse_tree(YAML::Node root, const std::string& file, const std::vector<std::string>& overrides) {
  if (!root.IsMap()) throw NpuConfigError(fmt::format("{}: an NPU config is a YAML mapping of fields", file));
  // As hdqsim's --set npu.<key>: the prefix is optional.
  auto overridden = yaml_fields::apply_overrides<NpuConfigError>(
      root, overrides, [](const std::string& key) { return key.rfind("npu.", 0) == 0 ? key.substr(4) : key; });
  Reader r(root, file, std::move(overridden), "docs/npu.md");
  NpuConfig c;
  c.file = file;
  // Every field is required but these five, whose defaults docs/npu.md lists.
  c.name = std::filesystem::path(file).stem().string();
  if (!r.read("name", c.name)) default_taken(c, "name", c.name);
  need_positive(r, "clock_mhz", c.clock_mhz);

  auto& m = c.mac_array;
  r.need_in_range("mac_array.rows", m.rows, 1, 4096);
  r.need_in_range("mac_array.cols", m.cols, 1, 4096);
  if (!r.read("mac_array.dataflow", m.dataflow)) default_taken(c, "mac_array.dataflow", m.dataflow);
  if (m.dataflow != "output_stationary" && m.dataflow != "weight_stationary" && m.dataflow != "auto")
    r.fail("mac_array.dataflow",
           fmt::format("'{}' is not one of: output_stationary, weight_stationary, auto", m.dataflow));
  if (!r.read("mac_array.impl", m.impl)) default_taken(c, "mac_array.impl", m.impl);
  if (m.impl != "model" && m.impl != "rtl")
    r.fail("mac_array.impl", fmt::format("'{}' is not one of: model, rtl", m.impl));
  if (m.impl == "rtl" && rtl_array_variants().empty())
    r.fail("mac_array.impl", "rtl needs the verilated MAC array, and this build has none: Verilator was not found "
                             "when the build was configured (scripts/setup.sh installs it; then reconfigure)");
  if (m.impl == "rtl" && !find_rtl_array(m.rows, m.cols, 0))
    r.fail("mac_array.impl", fmt::format("rtl: this build verilated the array at {} only (CMake cache variable "
                                         "HDQSIM_RTL_ARRAYS), not at mac_array.rows x cols = {}x{}",
                                         rtl_array_geometries(), m.rows, m.cols));
  r.need_in_range("mac_array.max_operand_bits", m.max_operand_bits, 2, 8);
  r.need_in_range("mac_array.max_acc_bits", m.max_acc_bits, 2, 32);
  r.need_in_range("mac_array.max_outer_bits", m.max_outer_bits, 2, 32);
  if (m.max_outer_bits < m.max_acc_bits)
    r.fail("mac_array.max_outer_bits",
           fmt::format("{} is below mac_array.max_acc_bits = {}", m.max_outer_bits, m.max_acc_bits));

  r.need_in_range("sram.size_bytes", c.sram.size_bytes, 1024, 1ll << 32);  // descriptors hold 32-bit SRAM addresses
  r.need_in_range("sram.banks", c.sram.banks, 1, 1024);
  r.need_in_range("sram.bank_width_bytes", c.sram.bank_width_bytes, 1, 1024);
  if (c.sram.size_bytes % std::uint64_t(c.sram.banks * c.sram.bank_width_bytes) != 0)
    r.fail("sram.size_bytes", fmt::format("{} is not a multiple of banks x bank_width_bytes = {}", c.sram.size_bytes,
                                          c.sram.banks * c.sram.bank_width_bytes));
  // The array reads R + C operands per cycle (one byte each at 8 bits).
  if (c.sram.banks * c.sram.bank_width_bytes < m.rows + m.cols)
    r.fail("sram.banks", fmt::format("{} banks x {} B = {} B/cycle cannot feed the {} x {} array (needs {} B/cycle)",
                                     c.sram.banks, c.sram.bank_width_bytes, c.sram.banks * c.sram.bank_width_bytes,
                                     m.rows, m.cols, m.rows + m.cols));

  r.need_in_range("dma.bytes_per_cycle", c.dma.bytes_per_cycle, 1, 1 << 16);
  r.need_in_range("dma.latency_cycles", c.dma.latency_cycles, 0, 1 << 20);
  r.need_in_range("dram.size_bytes", c.dram.size_bytes, 1024, 1ll << 40);
  r.need_in_range("dram.bytes_per_cycle", c.dram.bytes_per_cycle, 1, 1 << 16);
  r.need_in_range("dram.latency_cycles", c.dram.latency_cycles, 0, 1 << 20);

  r.need_in_range("hadamard_unit.points", c.hadamard_unit.points, 2, 1 << 16);
  if (!is_pow2(c.hadamard_unit.points))
    r.fail("hadamard_unit.points", fmt::format("{} is not a power of two", c.hadamard_unit.points));
  r.need_in_range("quantizer_unit.lanes", c.quantizer_unit.lanes, 1, 1 << 16);
  r.need_in_range("vector_unit.lanes", c.vector_unit.lanes, 1, 1 << 16);
  r.need_in_range("command_processor.dispatch_cycles", c.command_processor.dispatch_cycles, 0, 1 << 20);
  if (!r.read_in_range("simulation.quantum_cycles", c.simulation.quantum_cycles, 1, 1 << 30))
    default_taken(c, "simulation.quantum_cycles", c.simulation.quantum_cycles);

  EnergyTable& e = c.energy;
  need_positive(r, "energy.technology_nm", e.technology_nm);
  if (!r.read("energy.dynamic_scale", e.dynamic_scale)) default_taken(c, "energy.dynamic_scale", e.dynamic_scale);
  else if (!(e.dynamic_scale > 0.0)) r.fail("energy.dynamic_scale", fmt::format("{} must be > 0", e.dynamic_scale));
  need_positive(r, "energy.int_mul_8b_pj", e.int_mul_8b_pj, true);
  need_positive(r, "energy.int_add_8b_pj", e.int_add_8b_pj, true);
  need_positive(r, "energy.int_add_32b_pj", e.int_add_32b_pj, true);
  if (e.int_add_32b_pj < e.int_add_8b_pj)
    r.fail("energy.int_add_32b_pj", fmt::format("{} is below energy.int_add_8b_pj = {}", e.int_add_32b_pj, e.int_add_8b_pj));
  if (e.add_pj(2) < 0.0)
    r.fail("energy.int_add_8b_pj", "the line through the 8-bit and 32-bit adds goes negative at 2 bits");
  need_positive(r, "energy.f32_add_pj", e.f32_add_pj, true);
  need_positive(r, "energy.f32_mul_pj", e.f32_mul_pj, true);
  // `from_capacity`: the access energy of one bank (the macro an access hits) from its size.
  if (std::string word; r.read("energy.sram_pj_per_byte", word) && word == "from_capacity")
    e.sram_pj_per_byte = sram_access_64b_pj(double(c.sram.size_bytes) / double(c.sram.banks)) / 8.0;
  else if (char* end = nullptr; !word.empty() && (std::strtod(word.c_str(), &end), *end != '\0'))
    r.fail("energy.sram_pj_per_byte", fmt::format("'{}' is neither a number of pJ nor from_capacity", word));
  else
    need_positive(r, "energy.sram_pj_per_byte", e.sram_pj_per_byte, true);
  need_positive(r, "energy.dram_pj_per_byte", e.dram_pj_per_byte, true);
  need_positive(r, "energy.random_bit_pj", e.random_bit_pj, true);
  need_positive(r, "energy.hadamard_add_pj", e.hadamard_add_pj, true);
  need_positive(r, "energy.reg_bit_pj", e.reg_bit_pj, true);
  need_positive(r, "energy.leakage_pj_per_cycle", e.leakage_pj_per_cycle, true);

  NpuConfig::Area& a = c.area;
  need_positive(r, "area.int_mul_8b_um2", a.int_mul_8b_um2);
  need_positive(r, "area.int_add_8b_um2", a.int_add_8b_um2);
  need_positive(r, "area.int_add_32b_um2", a.int_add_32b_um2);
  if (a.int_add_32b_um2 < a.int_add_8b_um2)
    r.fail("area.int_add_32b_um2", fmt::format("{} is below area.int_add_8b_um2 = {}", a.int_add_32b_um2, a.int_add_8b_um2));
  need_positive(r, "area.f32_add_um2", a.f32_add_um2);
  need_positive(r, "area.f32_mul_um2", a.f32_mul_um2);
  need_positive(r, "area.reg_bit_um2", a.reg_bit_um2);
  need_positive(r, "area.sram_bit_um2", a.sram_bit_um2);
  need_positive(r, "area.sram_array_efficiency", a.sram_array_efficiency);
  if (a.sram_array_efficiency > 1)
    r.fail("area.sram_array_efficiency", fmt::format("{} is above 1", a.sram_array_efficiency));

  r.reject_unknown();
  return c;
}

}  // namespace

double sram_access_64b_pj(double capacity_bytes) {
  constexpr double kPoints[3][2] = {{8192, 10}, {32768, 20}, {1048576, 100}};
  const int seg = capacity_bytes < kPoints[1][0] ? 0 : 1;
  const double x0 = std::log(kPoints[seg][0]), x1 = std::log(kPoints[seg + 1][0]);
  const double y0 = std::log(kPoints[seg][1]), y1 = std::log(kPoints[seg + 1][1]);
  return std::exp(y0 + (y1 - y0) * (std::log(capacity_bytes) - x0) / (x1 - x0));
}

NpuConfig parse_npu_config(const std::string& yaml_text, const std::string& file,
                           const std::vector<std::string>& overrides) {
  return parse_tree(yaml_fields::load_document<NpuConfigError>(yaml_text, file), file, overrides);
}

NpuConfig load_npu_config(const std::string& file, const std::vector<std::string>& overrides) {
  const std::string text = rethrow_input_error<NpuConfigError>(
      [&] { return read_input_file(file, kMaxConfigFileBytes, "an NPU config file"); });
  return parse_npu_config(text, file, overrides);
}

std::string defaults_note(const NpuConfig& c) {
  std::string s;
  for (const auto& [field, value] : c.defaults_taken)
    s += fmt::format("NPU config {}: {} not given, documented default {} (docs/npu.md)\n", c.file, field, value);
  return s;
}

NpuConfig default_npu_config(const std::vector<std::string>& overrides) {
  return parse_npu_config(default_npu_config_text(), "sim/configs/edge-npu.yaml (built in)", overrides);
}

NpuConfig npu_config_or_default(const std::string& file, const std::vector<std::string>& overrides) {
  return file.empty() ? default_npu_config(overrides) : load_npu_config(file, overrides);
}

SplitOverrides split_overrides(const std::vector<std::string>& overrides) {
  SplitOverrides s;
  for (const auto& o : overrides) (o.rfind("npu.", 0) == 0 ? s.npu : s.scenario).push_back(o);
  return s;
}

}  // namespace hdq::npu
