#include "sim/report/estimate.h"

#include <fmt/format.h>

#include "sim/cost/roofline.h"

namespace hdq::npu {
namespace {

struct Row {
  std::string layer;
  std::string phase;
  const CostCell* cell;
};

std::vector<Row> rows(const Ledger& ledger, std::vector<CostCell>& totals) {
  std::vector<Row> out;
  for (std::size_t l = 0; l < ledger.cells().size(); ++l)
    for (int p = 0; p < kPhases; ++p)
      if (ledger.cells()[l][p].commands > 0) out.push_back({std::to_string(l), std::string(name(Phase(p))), &ledger.cells()[l][p]});
  totals.clear();
  totals.reserve(kPhases + 1);
  for (int p = 0; p < kPhases; ++p) totals.push_back(ledger.phase_total(Phase(p)));
  totals.push_back(ledger.total());
  for (int p = 0; p < kPhases; ++p) out.push_back({"all", std::string(name(Phase(p))), &totals[std::size_t(p)]});
  out.push_back({"all", "step", &totals.back()});
  return out;
}

double per(std::uint64_t v, std::uint64_t steps) { return double(v) / double(steps ? steps : 1); }
double per(double v, std::uint64_t steps) { return v / double(steps ? steps : 1); }

}  // namespace

std::string estimate_table(const Ledger& ledger, std::uint64_t steps, const NpuConfig& cfg) {
  std::vector<CostCell> totals;
  const auto rs = rows(ledger, totals);
  const int R = cfg.mac_array.rows, C = cfg.mac_array.cols;
  // Columns: layer, phase | cycles, MAC% | busy cycles per unit | energy per block, total (nJ).
  std::string head = fmt::format("{:>5} {:<11} | {:>9} {:>5} |", "layer", "phase", "cycles", "MAC%");
  for (int u = 0; u < kUnits; ++u) head += fmt::format(" {:>9}", name(Unit(u)));
  head += " |";
  for (int k = 0; k < kEnergyKinds; ++k) head += fmt::format(" {:>9}", name(EnergyKind(k)));
  head += fmt::format(" {:>10}", "total");
  // A line of group titles, each centred over its columns (between the bars).
  std::string s(head.size(), ' ');
  const char* titles[] = {"per step", "busy cycles per step", "energy per step, nJ"};
  std::size_t from = head.find('|');
  for (const char* title : titles) {
    const std::size_t to = std::min(head.find('|', from + 1), head.size());
    const std::string t(title);
    s.replace(from + 1 + (to - from - 1 - t.size()) / 2, t.size(), t);
    from = to;
  }
  s = s.substr(0, s.find_last_not_of(' ') + 1) + "\n" + head + "\n";
  for (const Row& r : rs) {
    const CostCell& c = *r.cell;
    if (r.layer == "all" && r.phase == "forward") s += std::string(head.size(), '-') + "\n";
    s += fmt::format("{:>5} {:<11} | {:>9.0f} {:>5.1f} |", r.layer, r.phase, per(c.cycles(), steps),
                     100.0 * c.mac_utilization(R, C));
    for (int u = 0; u < kUnits; ++u) s += fmt::format(" {:>9.0f}", per(c.unit_cycles[u], steps));
    s += " |";
    for (int k = 0; k < kEnergyKinds; ++k) s += fmt::format(" {:>9.1f}", per(c.energy_pj[k], steps) / 1e3);
    s += fmt::format(" {:>10.1f}\n", per(c.energy(), steps) / 1e3);
  }
  const CostCell& t = totals.back();
  s += fmt::format(
      "\nper step: {:.0f} cycles = {:.1f} us at {} MHz, {:.3f} uJ; MAC array {:.1f}% utilized over the step "
      "({:.1f}% while busy); {:.0f} commands\n",
      per(t.cycles(), steps), per(t.cycles(), steps) * cfg.cycle_ns() / 1e3, cfg.clock_mhz,
      per(t.energy(), steps) / 1e6, t.cycles() ? 100.0 * double(t.macs) / (double(t.cycles()) * R * C) : 0.0,
      100.0 * t.mac_utilization(R, C), per(t.commands, steps));
  if (t.rtl_commands)
    s += fmt::format("MAC array on the verilated RTL: {:.0f} cycles per step measured over {:.0f} folds "
                     "(the cost model's busy cycles: {:.0f}; docs/npu.md, \"RTL in the loop\")\n",
                     per(t.rtl_cycles, steps), per(t.rtl_folds, steps), per(t.unit_cycles[int(Unit::mac_array)], steps));
  s += fmt::format("\nroofline of the GEMM phases (ridge {:.1f} MACs per DRAM byte: {} x {} MACs over {} bytes per cycle):\n"
                   "{:>5} {:<11} | {:>12} {:>10} {:>10} | {:<22} {:>8}\n",
                   double(R) * C / cfg.dram.bytes_per_cycle, R, C, cfg.dram.bytes_per_cycle, "layer", "phase",
                   "MACs/byte", "compute", "memory", "bound", "attained");
  for (const Row& r : rs) {
    const CostCell& c = *r.cell;
    if (r.layer == "all" || c.macs == 0) continue;
    const Roofline f = roofline(per(c.macs, steps), per(c.dram_bytes, steps), per(c.cycles(), steps), cfg);
    s += fmt::format("{:>5} {:<11} | {:>12.1f} {:>10.0f} {:>10.0f} | {:<22} {:>7.1f}%\n", r.layer, r.phase, f.intensity,
                     f.compute_cycles, f.memory_cycles,
                     fmt::format("{} x{:.2f}", f.compute_bound ? "compute" : "bandwidth", f.factor), 100.0 * f.attained);
  }
  return s;
}

nlohmann::json estimate_json(const Ledger& ledger, std::uint64_t steps, const NpuConfig& cfg) {
  std::vector<CostCell> totals;
  const auto rs = rows(ledger, totals);
  const int R = cfg.mac_array.rows, C = cfg.mac_array.cols;
  auto cell_json = [&](const CostCell& c) {
    nlohmann::json units = nlohmann::json::object(), energy = nlohmann::json::object();
    for (int u = 0; u < kUnits; ++u) units[std::string(name(Unit(u)))] = per(c.unit_cycles[u], steps);
    units["command_processor"] = per(c.dispatch_cycles, steps);
    for (int k = 0; k < kEnergyKinds; ++k) energy[std::string(name(EnergyKind(k)))] = per(c.energy_pj[k], steps);
    return nlohmann::json{{"cycles", per(c.cycles(), steps)},
                          {"energy_pj", per(c.energy(), steps)},
                          {"busy_cycles", units},
                          {"energy_pj_by_block", energy},
                          {"macs", per(c.macs, steps)},
                          {"mac_utilization_busy", c.mac_utilization(R, C)},
                          {"sram_bytes", per(c.sram_bytes, steps)},
                          {"dram_bytes", per(c.dram_bytes, steps)},
                          {"commands", per(c.commands, steps)}};
  };
  const CostCell& t = totals.back();
  nlohmann::json j{{"steps", steps},
                   {"cycles_per_step", per(t.cycles(), steps)},
                   {"energy_pj_per_step", per(t.energy(), steps)},
                   {"energy_uj_per_step", per(t.energy(), steps) / 1e6},
                   {"time_us_per_step", per(t.cycles(), steps) * cfg.cycle_ns() / 1e3},
                   {"mac_utilization", t.cycles() ? double(t.macs) / (double(t.cycles()) * R * C) : 0.0},
                   {"mac_utilization_busy", t.mac_utilization(R, C)},
                   // The MAC array's energy against the same MACs in f32 (multiply + add from the table).
                   {"mac_array_vs_f32_macs", t.macs ? t.energy_pj[int(EnergyKind::mac_array)] /
                                                          (double(t.macs) * (cfg.energy.f32_mul() + cfg.energy.f32_add()))
                                                    : 0.0}};
  nlohmann::json phases = nlohmann::json::object(), breakdown = nlohmann::json::array();
  for (int p = 0; p < kPhases; ++p) phases[std::string(name(Phase(p)))] = cell_json(totals[std::size_t(p)]);
  j["npu_defaults_taken"] = cfg.defaults_taken;  // fields the config left to docs/npu.md's defaults
  if (t.rtl_commands)  // mac_array.impl: rtl: what the verilated array measured, beside the cost model's busy cycles
    j["mac_array_rtl"] = {{"commands", per(t.rtl_commands, steps)},
                          {"folds", per(t.rtl_folds, steps)},
                          {"rtl_cycles", per(t.rtl_cycles, steps)},
                          {"model_busy_cycles", per(t.unit_cycles[int(Unit::mac_array)], steps)}};
  j["phases"] = phases;
  j["step"] = cell_json(t);
  for (const Row& r : rs)
    if (r.layer != "all") {
      nlohmann::json row = cell_json(*r.cell);
      row["layer"] = std::stoi(r.layer);
      row["phase"] = r.phase;
      if (r.cell->macs > 0) {  // a GEMM phase: its roofline position
        const Roofline f = roofline(per(r.cell->macs, steps), per(r.cell->dram_bytes, steps), per(r.cell->cycles(), steps), cfg);
        row["roofline"] = {{"macs_per_dram_byte", f.intensity}, {"ridge_macs_per_dram_byte", f.ridge},
                           {"compute_cycles", f.compute_cycles}, {"memory_cycles", f.memory_cycles},
                           {"bound", f.compute_bound ? "compute" : "bandwidth"}, {"factor", f.factor},
                           {"attained", f.attained}};
      }
      breakdown.push_back(row);
    }
  j["breakdown"] = breakdown;
  return j;
}

std::string estimate_csv(const Ledger& ledger, std::uint64_t steps, const NpuConfig& cfg) {
  std::vector<CostCell> totals;
  const auto rs = rows(ledger, totals);
  std::string s = "layer,phase,cycles,mac_utilization_busy";
  for (int u = 0; u < kUnits; ++u) s += fmt::format(",cycles_{}", name(Unit(u)));
  s += ",cycles_command_processor";
  for (int k = 0; k < kEnergyKinds; ++k) s += fmt::format(",energy_pj_{}", name(EnergyKind(k)));
  s += ",energy_pj,macs,sram_bytes,dram_bytes\n";
  for (const Row& r : rs) {
    const CostCell& c = *r.cell;
    s += fmt::format("{},{},{:.1f},{:.4f}", r.layer, r.phase, per(c.cycles(), steps),
                     c.mac_utilization(cfg.mac_array.rows, cfg.mac_array.cols));
    for (int u = 0; u < kUnits; ++u) s += fmt::format(",{:.1f}", per(c.unit_cycles[u], steps));
    s += fmt::format(",{:.1f}", per(c.dispatch_cycles, steps));
    for (int k = 0; k < kEnergyKinds; ++k) s += fmt::format(",{:.3f}", per(c.energy_pj[k], steps));
    s += fmt::format(",{:.3f},{:.1f},{:.1f},{:.1f}\n", per(c.energy(), steps), per(c.macs, steps),
                     per(c.sram_bytes, steps), per(c.dram_bytes, steps));
  }
  return s;
}

}  // namespace hdq::npu
