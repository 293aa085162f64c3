#include "sim/config/npu_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace hdq::npu {
namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> keys;
  std::stringstream ss(path);
  for (std::string k; std::getline(ss, k, '.');) keys.push_back(k);
  return keys;
}

void set_path(YAML::Node node, const std::vector<std::string>& keys, std::size_t i, const YAML::Node& value) {
  if (i + 1 == keys.size()) {
    node[keys[i]] = value;
    return;
  }
  if (!node[keys[i]] || !node[keys[i]].IsMap()) node[keys[i]] = YAML::Node(YAML::NodeType::Map);
  set_path(node[keys[i]], keys, i + 1, value);
}

// Reads fields by dotted path and turns every problem into
// "file:line: field: what" (or "file: --set field: what" for an override).
class Reader {
 public:
  // `overridden`: the paths set on the command line, each with the key as written there.
  Reader(YAML::Node root, std::string file, std::map<std::string, std::string> overridden)
      : root_(std::move(root)), file_(std::move(file)), overridden_(std::move(overridden)) {}

  std::optional<YAML::Node> find(const std::string& path) const {
    YAML::Node n = root_;
    for (const auto& k : split_path(path)) {
      if (!n.IsMap()) return std::nullopt;
      const YAML::Node child = n[k];
      if (!child) return std::nullopt;
      n.reset(child);
    }
    return n;
  }

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    if (overridden_.count(path)) throw NpuConfigError(fmt::format("{}: --set {}: {}", file_, overridden_.at(path), what));
    const auto n = find(path);
    if (n && n->Mark().line >= 0) throw NpuConfigError(fmt::format("{}:{}: {}: {}", file_, n->Mark().line + 1, path, what));
    throw NpuConfigError(fmt::format("{}: {}: {}", file_, path, what));
  }

  template <typename T>
  void read(const std::string& path, T& out) {
    used_.insert(path);
    const auto n = find(path);
    if (!n) return;
    try {
      out = n->as<T>();
    } catch (const YAML::Exception&) {
      fail(path, fmt::format("'{}' is not a valid {}", n->IsScalar() ? n->Scalar() : "(not a scalar)",
                             std::is_integral_v<T> ? "integer" : std::is_floating_point_v<T> ? "number" : "string"));
    }
  }

  // An integer field in [lo, hi].
  template <typename T>
  void read_int(const std::string& path, T& out, long long lo, long long hi) {
    read(path, out);
    if (static_cast<long long>(out) < lo || static_cast<long long>(out) > hi)
      fail(path, fmt::format("{} is outside the allowed range {}..{}", out, lo, hi));
  }

  // A number > 0 (or >= 0 when zero_ok).
  void read_positive(const std::string& path, double& out, bool zero_ok = false) {
    read(path, out);
    if (!(zero_ok ? out >= 0.0 : out > 0.0)) fail(path, fmt::format("{} must be {} 0", out, zero_ok ? ">=" : ">"));
  }

  void reject_unknown() const { walk(root_, ""); }

 private:
  void walk(const YAML::Node& n, const std::string& prefix) const {
    if (!n.IsMap()) return;
    for (const auto& kv : n) {
      const std::string key = kv.first.as<std::string>();
      const std::string path = prefix.empty() ? key : prefix + "." + key;
      if (used_.count(path)) continue;
      if (!kv.second.IsMap()) {
        if (overridden_.count(path))
          throw NpuConfigError(fmt::format("{}: --set {}: unknown field", file_, overridden_.at(path)));
        throw NpuConfigError(
            fmt::format("{}:{}: {}: unknown field (see docs/npu.md)", file_, kv.first.Mark().line + 1, path));
      }
      walk(kv.second, path);
    }
  }

  YAML::Node root_;
  std::string file_;
  std::map<std::string, std::string> overridden_;
  std::set<std::string> used_;
};

bool is_pow2(long long v) { return v > 0 && (v & (v - 1)) == 0; }

NpuConfig parse_tree(YAML::Node root, const std::string& file, const std::vector<std::string>& overrides) {
  if (!root.IsMap()) throw NpuConfigError(fmt::format("{}: an NPU config is a YAML mapping of fields", file));
  std::map<std::string, std::string> overridden;
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) throw NpuConfigError(fmt::format("--set '{}': expected key=value", o));
    const std::string key = o.substr(0, eq);
    const std::string path = key.rfind("npu.", 0) == 0 ? key.substr(4) : key;  // as hdqsim's --set npu.<key>
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::Exception& e) {
      throw NpuConfigError(fmt::format("--set {}: value is not valid YAML: {}", key, e.msg));
    }
    set_path(root, split_path(path), 0, value);
    overridden[path] = key;
  }

  Reader r(root, file, overridden);
  NpuConfig c;
  c.file = file;
  r.read("name", c.name);
  r.read_positive("clock_mhz", c.clock_mhz);

  auto& m = c.mac_array;
  r.read_int("mac_array.rows", m.rows, 1, 4096);
  r.read_int("mac_array.cols", m.cols, 1, 4096);
  r.read("mac_array.dataflow", m.dataflow);
  if (m.dataflow != "output_stationary")
    r.fail("mac_array.dataflow", fmt::format("'{}' is not modelled (supported: output_stationary)", m.dataflow));
  r.read_int("mac_array.max_operand_bits", m.max_operand_bits, 2, 8);
  r.read_int("mac_array.max_acc_bits", m.max_acc_bits, 2, 32);
  r.read_int("mac_array.max_outer_bits", m.max_outer_bits, 2, 32);
  if (m.max_outer_bits < m.max_acc_bits)
    r.fail("mac_array.max_outer_bits",
           fmt::format("{} is below mac_array.max_acc_bits = {}", m.max_outer_bits, m.max_acc_bits));

  r.read_int("sram.size_bytes", c.sram.size_bytes, 1024, 1ll << 32);  // descriptors hold 32-bit SRAM addresses
  r.read_int("sram.banks", c.sram.banks, 1, 1024);
  r.read_int("sram.bank_width_bytes", c.sram.bank_width_bytes, 1, 1024);
  if (c.sram.size_bytes % std::uint64_t(c.sram.banks * c.sram.bank_width_bytes) != 0)
    r.fail("sram.size_bytes", fmt::format("{} is not a multiple of banks x bank_width_bytes = {}", c.sram.size_bytes,
                                          c.sram.banks * c.sram.bank_width_bytes));
  // The array reads R + C operands per cycle (one byte each at 8 bits).
  if (c.sram.banks * c.sram.bank_width_bytes < m.rows + m.cols)
    r.fail("sram.banks", fmt::format("{} banks x {} B = {} B/cycle cannot feed the {} x {} array (needs {} B/cycle)",
                                     c.sram.banks, c.sram.bank_width_bytes, c.sram.banks * c.sram.bank_width_bytes,
                                     m.rows, m.cols, m.rows + m.cols));

  r.read_int("dma.bytes_per_cycle", c.dma.bytes_per_cycle, 1, 1 << 16);
  r.read_int("dma.latency_cycles", c.dma.latency_cycles, 0, 1 << 20);
  r.read_int("dram.size_bytes", c.dram.size_bytes, 1024, 1ll << 40);
  r.read_int("dram.bytes_per_cycle", c.dram.bytes_per_cycle, 1, 1 << 16);
  r.read_int("dram.latency_cycles", c.dram.latency_cycles, 0, 1 << 20);

  r.read_int("hadamard_unit.points", c.hadamard_unit.points, 2, 1 << 16);
  if (!is_pow2(c.hadamard_unit.points))
    r.fail("hadamard_unit.points", fmt::format("{} is not a power of two", c.hadamard_unit.points));
  r.read_int("quantizer_unit.lanes", c.quantizer_unit.lanes, 1, 1 << 16);
  r.read_int("vector_unit.lanes", c.vector_unit.lanes, 1, 1 << 16);
  r.read_int("command_processor.dispatch_cycles", c.command_processor.dispatch_cycles, 0, 1 << 20);
  r.read_int("simulation.quantum_cycles", c.simulation.quantum_cycles, 1, 1 << 30);

  EnergyTable& e = c.energy;
  r.read_positive("energy.technology_nm", e.technology_nm);
  r.read_positive("energy.dynamic_scale", e.dynamic_scale);
  r.read_positive("energy.int_mul_8b_pj", e.int_mul_8b_pj, true);
  r.read_positive("energy.int_add_8b_pj", e.int_add_8b_pj, true);
  r.read_positive("energy.int_add_32b_pj", e.int_add_32b_pj, true);
  if (e.int_add_32b_pj < e.int_add_8b_pj)
    r.fail("energy.int_add_32b_pj", fmt::format("{} is below energy.int_add_8b_pj = {}", e.int_add_32b_pj, e.int_add_8b_pj));
  if (e.add_pj(2) < 0.0)
    r.fail("energy.int_add_8b_pj", "the line through the 8-bit and 32-bit adds goes negative at 2 bits");
  r.read_positive("energy.f32_add_pj", e.f32_add_pj, true);
  r.read_positive("energy.f32_mul_pj", e.f32_mul_pj, true);
  r.read_positive("energy.sram_pj_per_byte", e.sram_pj_per_byte, true);
  r.read_positive("energy.dram_pj_per_byte", e.dram_pj_per_byte, true);
  r.read_positive("energy.random_bit_pj", e.random_bit_pj, true);
  r.read_positive("energy.hadamard_add_pj", e.hadamard_add_pj, true);
  r.read_positive("energy.leakage_pj_per_cycle", e.leakage_pj_per_cycle, true);

  r.reject_unknown();
  return c;
}

}  // namespace

NpuConfig parse_npu_config(const std::string& yaml_text, const std::string& file,
                           const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw NpuConfigError(fmt::format("{}:{}: not valid YAML: {}", file, e.mark.line + 1, e.msg));
  }
  return parse_tree(root, file, overrides);
}

NpuConfig load_npu_config(const std::string& file, const std::vector<std::string>& overrides) {
  std::ifstream in(file);
  if (!in) throw NpuConfigError(fmt::format("{}: cannot open the NPU config file", file));
  std::stringstream text;
  text << in.rdbuf();
  return parse_npu_config(text.str(), file, overrides);
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
