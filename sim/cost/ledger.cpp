#include "sim/cost/ledger.h"

#include <numeric>

namespace hdq::npu {

std::string_view name(Phase p) {
  switch (p) {
    case Phase::forward: return "forward";
    case Phase::backward_dx: return "backward_dx";
    case Phase::backward_dw: return "backward_dw";
    case Phase::update: return "update";
  }
  return "?";
}

std::string_view name(Unit u) {
  switch (u) {
    case Unit::dma: return "dma";
    case Unit::mac_array: return "mac_array";
    case Unit::hadamard: return "hadamard";
    case Unit::quantizer: return "quantizer";
    case Unit::vector: return "vector";
  }
  return "?";
}

std::string_view name(EnergyKind k) {
  switch (k) {
    case EnergyKind::mac_array: return "mac_array";
    case EnergyKind::hadamard: return "hadamard";
    case EnergyKind::quantizer: return "quantizer";
    case EnergyKind::vector: return "vector";
    case EnergyKind::sram: return "sram";
    case EnergyKind::dram: return "dram";
    case EnergyKind::leakage: return "leakage";
  }
  return "?";
}

double CostCell::energy() const { return std::accumulate(energy_pj.begin(), energy_pj.end(), 0.0); }

double CostCell::mac_utilization(int rows, int cols) const {
  const std::uint64_t busy = unit_cycles[int(Unit::mac_array)];
  return busy ? double(macs) / (double(busy) * rows * cols) : 0.0;
}

void CostCell::merge(const CostCell& o) {
  elapsed_cycles += o.elapsed_cycles;
  for (int u = 0; u < kUnits; ++u) unit_cycles[u] += o.unit_cycles[u];
  for (int k = 0; k < kEnergyKinds; ++k) energy_pj[k] += o.energy_pj[k];
  dispatch_cycles += o.dispatch_cycles;
  commands += o.commands;
  macs += o.macs;
  sram_bytes += o.sram_bytes;
  dram_bytes += o.dram_bytes;
  random_bits += o.random_bits;
  hadamard_adds += o.hadamard_adds;
  rtl_commands += o.rtl_commands;
  rtl_folds += o.rtl_folds;
  rtl_cycles += o.rtl_cycles;
}

void Ledger::set_tag(int layer, Phase phase) {
  layer_ = layer;
  phase_ = phase;
  if (int(cells_.size()) <= layer) cells_.resize(std::size_t(layer) + 1);
}

CostCell& Ledger::current() {
  if (int(cells_.size()) <= layer_) cells_.resize(std::size_t(layer_) + 1);
  return cells_[std::size_t(layer_)][int(phase_)];
}

CostCell Ledger::total() const {
  CostCell t;
  for (const auto& layer : cells_)
    for (const auto& c : layer) t.merge(c);
  return t;
}

CostCell Ledger::phase_total(Phase p) const {
  CostCell t;
  for (const auto& layer : cells_) t.merge(layer[int(p)]);
  return t;
}

void Ledger::merge(const Ledger& o) {
  if (cells_.size() < o.cells_.size()) cells_.resize(o.cells_.size());
  for (std::size_t l = 0; l < o.cells_.size(); ++l)
    for (int p = 0; p < kPhases; ++p) cells_[l][p].merge(o.cells_[l][p]);
}

}  // namespace hdq::npu
