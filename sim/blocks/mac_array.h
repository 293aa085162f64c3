// MAC array: R x C PEs, int-k x int-k multipliers, W-bit tile accumulators and
// Wo-bit outer accumulators, output- or weight-stationary (sim/cost/dataflow.h).
//
// One command computes C (m x n, int32) = A (m x k) B (k x n) for operand
// panels resident in SRAM, as the folds of its dataflow (sim/cost/dataflow.h:
// output-stationary folds are R x C output tiles whose PEs keep their tile
// and outer accumulators for the whole k; weight-stationary folds hold R x C
// weights while A's rows stream through and partial sums flow down).
// Numerics: every output depends only on its row of A and column of B, so the
// folds of a command are exactly hdq::gemm over the command's panels (one
// call; tests check it against a call per fold); the GemmStats of the
// command are merged into the GEMM's statistics record (sums, max via max).
// With mac_array.impl: rtl the verilated rtl/mac_array.sv computes C and the
// statistics instead (rtl_mac_array.h), cycle by cycle; the cost below is
// the same, and the RTL's own cycles are recorded beside it (CostCell::rtl_cycles).
// Cost: compute_cycles of the command's dataflow; energy per MAC (multiply at
// the operands' bits, tile add at W) and per tile result (outer add at Wo),
// and SRAM traffic of the operand streams (array_traffic): the model moves
// each panel through TLM once and charges the re-streams of later folds and
// the partial sums a weight-stationary fold of K leaves for the next.
//
// Descriptor (opcode kMacGemm = 1): a, b, c SRAM addresses; a_record,
// b_record the operands' QuantRecords (signedness); stats the
// GemmStatsRecord (init_stats on the GEMM's first command); m, n, k; bits of A and B; b_layout (k_by_n: B stored
// k x n; n_by_k: stored transposed, rows = output columns, as W in the
// forward GEMM); the accumulator config of the GEMM role; accumulate (a
// K-chunk continuing C; docs/npu.md "K-chunked GEMMs").
//
// K-chunking (accumulate): a GEMM whose operands do not fit SRAM runs as
// commands over K-chunks [k0, k0 + kc) with kc a multiple of the tile length
// t', each continuing the outer accumulators the previous one left in C.
// Tiles never straddle a chunk, so only O carries over, and the contract's
// sum (docs/contract.md §5: O = clamp(O + P) per tile in order) is the whole
// GEMM's; the per-tile statistics merge by sum / max, and outer_overflows
// counts the clamps of the continued sum. Not on impl: rtl (the verilated
// array cannot preload O: ConfigError).
#pragma once

#include <vector>

#include <memory>

#include "models/accumulator/gemm.h"
#include "sim/cost/dataflow.h"
#include "sim/blocks/block_module.h"
#include "sim/blocks/rtl_mac_array.h"

namespace hdq::npu {

inline constexpr std::uint32_t kMacGemm = 1;
enum class BLayout : std::uint8_t { k_by_n = 0, n_by_k = 1 };

struct MacDescriptor {
  std::uint32_t a = 0, b = 0, c = 0;
  std::uint32_t a_record = 0, b_record = 0;
  std::uint32_t stats = 0;
  std::uint32_t m = 0, n = 0, k = 0;
  std::int32_t tile = 0;
  std::uint8_t a_bits = 4, b_bits = 4;
  BLayout b_layout = BLayout::k_by_n;
  std::uint8_t acc_mode = 0, acc_range = 0, acc_bits = 8, outer_bits = 32;
  std::uint8_t init_stats = 0;  // the GEMM's first command: the record starts at zero
  // A K-chunk after the first of a K-chunked GEMM: C holds the outer
  // accumulators (int32 O) of the chunks before, and this command continues
  // from them (the PEs' outer registers preloaded from C) instead of from 0.
  std::uint8_t accumulate = 0;
  Dataflow dataflow = Dataflow::output_stationary;  // timing and SRAM streams only; the bits are the same
  // Nonzero: the host's id of the B panel (a simulation hint, no hardware
  // field): commands with the same id read the same B bytes, so the core
  // reuses its unpacked B without comparing them; 0: compared byte for byte.
  std::uint64_t b_panel = 0;

  AccumulatorConfig accumulator() const;
  void set_accumulator(const AccumulatorConfig& a);
  std::uint64_t a_bytes() const;  // the A panel in SRAM
  std::uint64_t b_bytes() const;  // the B panel in SRAM
  void accesses(Footprint& f) const;
};

// GemmStats as stored in SRAM (48 bytes).
struct GemmStatsRecord {
  std::uint64_t products = 0, clamped_tiles = 0, changed_steps = 0, outer_overflows = 0;
  std::int64_t max_abs_tile_sum = 0;
  std::uint64_t tile_results = 0;

  GemmStats stats() const { return {products, clamped_tiles, changed_steps, outer_overflows, max_abs_tile_sum, tile_results}; }
  static GemmStatsRecord from(const GemmStats& s) {
    return {s.products, s.clamped_tiles, s.changed_steps, s.outer_overflows, s.max_abs_tile_sum, s.tile_results};
  }
};
static_assert(sizeof(GemmStatsRecord) == 48);

// The function of the array: the command's GEMM; returns its statistics.
// Owns the GEMM context it computes with (one thread: the model's commands
// run one at a time on the simulation thread). With `rtl` the verilated
// array computes it (and *rtl_run says how), else hdq::gemm.
//
// A simulation shortcut, not hardware: the commands of one GEMM stream A's
// row blocks past the same B panel, so the core keeps B's unpacked values
// (k x n, as gemm() takes them) with a copy of the packed bytes they came
// from, and reuses them while the next command's B panel is the same bytes
// with the same shape, layout, bits and signedness (compared byte for byte,
// so a changed panel is always unpacked again; or, when the command names
// its panel (MacDescriptor::b_panel), while the id is the same); they carry a content_id
// (models/accumulator/gemm.h) that changes with them, so gemm() also keeps
// its packed layout of B. The SRAM traffic charged is the same either way.
class MacArrayCore {
 public:
  GemmStats run(const MacDescriptor& d, MemoryPort& sram, RtlMacArray* rtl = nullptr, RtlGemmRun* rtl_run = nullptr);

 private:
  // B as gemm() takes it: from the cache, or unpacked (and transposed) into it.
  IntOperand operand_b(const MacDescriptor& d, bool is_unsigned, std::span<const std::uint8_t> packed);
  // C = the GEMM continued from the O values in o_prev_ (an accumulate command).
  GemmStats continue_gemm(GemmShape shape, IntOperand a, IntOperand b, const AccumulatorConfig& acc,
                          std::span<std::int32_t> c);

  GemmContext gemm_;
  std::vector<std::int16_t> a_, bt_;
  std::vector<std::int32_t> o_prev_;  // an accumulate command's O from C
  struct UnpackedB {
    std::vector<std::uint8_t> packed;  // (empty when unpacked for a named panel)
    std::uint64_t panel = 0;           // MacDescriptor::b_panel it was unpacked for (0: none)
    std::uint32_t n = 0, k = 0;
    std::uint8_t bits = 0;
    BLayout layout = BLayout::k_by_n;
    bool is_unsigned = false;
    std::vector<std::int16_t> values;  // k x n (scratch: the first k x n)
    std::uint64_t id = 0;              // content_id of `values`: 1, 2, ... one per unpacking
  } b_;
};

class MacArray final : public BlockModule {
 public:
  MacArray(const sc_core::sc_module_name& name, const Context& ctx) : BlockModule(name, Unit::mac_array, ctx) {}

 private:
  std::uint64_t execute(const Command& c) override;
  // The verilated array of the current config (made on first use, again when
  // the config asks for another geometry or variant).
  RtlMacArray& rtl_array(const NpuConfig& cfg);
  MacArrayCore core_;
  std::unique_ptr<RtlMacArray> rtl_;
  const RtlArrayVariant* rtl_variant_ = nullptr;
};

}  // namespace hdq::npu
