// Reports of NPU costs per training step: the table `hdqsim estimate` prints,
// and the JSON and CSV it writes. Every number is the ledger's total divided
// by the number of steps; rows are layer x phase, columns the blocks.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "sim/config/npu_config.h"
#include "sim/cost/ledger.h"

namespace hdq::npu {

// The per-step table (cycles by unit, energy by block, MAC-array utilization).
std::string estimate_table(const Ledger& ledger, std::uint64_t steps, const NpuConfig& cfg);
// Top level: cycles_per_step, energy_pj_per_step, energy_uj_per_step,
// time_us_per_step, mac_utilization (MACs per PE-cycle over the whole step),
// mac_utilization_busy (while the array runs), mac_array_vs_f32_macs (the
// array's energy over the same MACs at the table's f32 multiply + add),
// `npu_defaults_taken` (the config fields left to their documented defaults,
// field -> value), then `phases`, `step` (per-block totals) and the layer x
// phase `breakdown`.
nlohmann::json estimate_json(const Ledger& ledger, std::uint64_t steps, const NpuConfig& cfg);
// One row per layer x phase, then one total row per phase and the step total.
std::string estimate_csv(const Ledger& ledger, std::uint64_t steps, const NpuConfig& cfg);

}  // namespace hdq::npu
