// Cycles and energy of the NPU, by layer x phase x block. The command
// processor tags every command with its layer and phase before dispatching it;
// the blocks and memories add their events to the tagged cell.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace hdq::npu {

enum class Phase : std::uint8_t { forward, backward_dx, backward_dw, update };
inline constexpr int kPhases = 4;
std::string_view name(Phase p);

// Blocks that are busy for a command's cycles.
enum class Unit : std::uint8_t { dma, mac_array, hadamard, quantizer, vector };
inline constexpr int kUnits = 5;
std::string_view name(Unit u);

// Where energy goes.
enum class EnergyKind : std::uint8_t { mac_array, hadamard, quantizer, vector, sram, dram, leakage };
inline constexpr int kEnergyKinds = 7;
std::string_view name(EnergyKind k);

struct CostCell {
  std::uint64_t elapsed_cycles = 0;                  // the step's time this cell's commands add (see command_processor.h)
  std::array<std::uint64_t, kUnits> unit_cycles{};  // busy cycles of each unit
  std::uint64_t dispatch_cycles = 0;                 // command processor: decode and issue
  std::array<double, kEnergyKinds> energy_pj{};
  std::uint64_t commands = 0;
  std::uint64_t macs = 0;  // products on the MAC array
  std::uint64_t sram_bytes = 0, dram_bytes = 0;
  std::uint64_t random_bits = 0, hadamard_adds = 0;
  // mac_array.impl: rtl: GEMM commands the verilated array ran, their folds and
  // the clock cycles it took (rtl/mac_array.sv: 1 + folds x (K + 2R + C - 2)
  // per command), beside the cost model's unit_cycles.
  std::uint64_t rtl_commands = 0, rtl_folds = 0, rtl_cycles = 0;

  std::uint64_t cycles() const { return elapsed_cycles; }
  double energy() const;
  // MACs per PE-cycle while the array is busy (0 when it never ran).
  double mac_utilization(int rows, int cols) const;
  void merge(const CostCell& o);
};

class Ledger {
 public:
  void set_tag(int layer, Phase phase);
  CostCell& current();
  // One cell per layer (index) and phase; grows as layers are tagged.
  const std::vector<std::array<CostCell, kPhases>>& cells() const { return cells_; }
  CostCell total() const;
  CostCell phase_total(Phase p) const;
  void merge(const Ledger& o);
  void clear() { cells_.clear(); }

 private:
  std::vector<std::array<CostCell, kPhases>> cells_;
  int layer_ = 0;
  Phase phase_ = Phase::forward;
};

}  // namespace hdq::npu
