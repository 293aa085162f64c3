// Quantizer unit: per-tensor max-reduce, scale, and nearest or stochastic
// rounding with the counter-based random bits (docs/contract.md §1-§3),
// over chunks of a tensor that the DMA streams through SRAM.
//
// A tensor is quantized in two passes over its row chunks:
//   kQuantReduce   (pass 1, per chunk) the core's scale_summary of the chunk
//                  (max |x|, whether some x < 0) merged into the tensor's
//                  QuantRecord (init = 1 on the first chunk); a NaN/Inf is
//                  the core's error naming the tensor and the element's flat
//                  index
//   kQuantReduceKeep (4) kQuantReduce for a tensor whose scale a later job
//                  needs (the next step's max |W|, reduced in the update's
//                  write-back: docs/npu.md "Across jobs"): a NaN/Inf sets the
//                  record's `nonfinite` instead of failing, because the
//                  functional engine fails on it only when it quantizes the
//                  tensor, at the next step; the host then does not use the
//                  record, and that step's own Q(W) fails as the functional
//                  engine does
//   kQuantFinalizeKeep (5), with kQuantRound on such a record: the next
//                  step's Wq rounded at the end of this one; a scale the
//                  core refuses sets `nonfinite` too, and kQuantRound then
//                  writes nothing (the host does not use it)
//   kQuantFinalize the scale from the record: the core's choose_scale of the
//                  whole tensor's summary
//   kQuantRound    (pass 2, per chunk) quantize_span with the chunk's first
//                  flat index, so every element gets the random bits of its
//                  global index; packs the result (sim/blocks/memory.h) and,
//                  with write_mask, the clip mask of the fwd_x role (x outside
//                  [lo, mx]) that the clipped STE uses
// A chunk is rows x cols of the tensor; row r's first element has the flat
// index first_index + r * row_stride (row_stride 0: cols, whole rows), so a
// block of columns of a wider tensor is quantized as that tensor's elements;
// its packed rows land dst_pitch bytes apart (0: packed_pitch(cols)), e.g.
// straight into the columns of a packed tensor resident in SRAM.
// Cost: lane_cycles(elements, quantizer_unit.lanes) per pass, 1 cycle to
// finalize; energy from sim/cost/energy.h (f32 ops and random bits).
#pragma once

#include <vector>

#include "models/hdqt/hdqt_config.h"
#include "sim/blocks/block_module.h"
#include "sim/cost/energy.h"

namespace hdq::npu {

inline constexpr std::uint32_t kQuantReduce = 1, kQuantFinalize = 2, kQuantRound = 3, kQuantReduceKeep = 4,
                                 kQuantFinalizeKeep = 5;

// Per tensor, in SRAM (32 bytes).
struct QuantRecord {
  float max_abs = 0.0f;        // running max |x|
  std::uint32_t negative = 0;  // some x < 0 so far
  float scale = 0.0f;          // the finalized QuantParams (docs/contract.md §1)
  float mx = 0.0f;
  std::int32_t qmin = 0, qmax = 0;
  std::uint32_t is_unsigned = 0;
  std::uint32_t nonfinite = 0;  // kQuantReduceKeep met a NaN/Inf, or kQuantFinalizeKeep no valid scale: unusable

  QuantParams params() const { return {scale, mx, qmin, qmax, is_unsigned != 0}; }
};
static_assert(sizeof(QuantRecord) == 32);

struct QuantizerDescriptor {
  std::uint64_t first_index = 0;  // flat index of the chunk's first element in the tensor
  std::uint64_t key = 0;          // RandomStream{seed, 8 * layer + role, step}.key()
  std::uint32_t src = 0;          // f32 chunk, rows x cols, contiguous
  std::uint32_t dst = 0;          // packed rows (kQuantRound)
  std::uint32_t mask = 0;         // clip-mask rows (kQuantRound with write_mask)
  std::uint32_t record = 0;       // the tensor's QuantRecord
  std::uint32_t rows = 0, cols = 0;
  float clip = 1.0f;              // QuantConfig, field by field
  std::uint8_t bits = 4, rounding = 0, sr_bits = 16, signedness = 0, scale_mode = 0;
  std::uint8_t role = 0;          // QuantRole: names the tensor in errors ("layer<l>.<role>")
  std::uint8_t init = 0;          // kQuantReduce, kQuantReduceKeep: first chunk
  std::uint8_t write_mask = 0;    // kQuantRound: also write the clip mask
  std::uint32_t row_stride = 0;   // flat-index distance between rows (0: cols)
  std::uint32_t dst_pitch = 0;    // kQuantRound: bytes between packed rows (0: packed_pitch(cols))

  QuantConfig config() const;
  void set_config(const QuantConfig& q);
  std::uint64_t elements() const { return std::uint64_t(rows) * cols; }
  std::uint64_t stride() const { return row_stride ? row_stride : cols; }
  std::uint64_t out_pitch() const { return dst_pitch ? dst_pitch : packed_pitch(cols, bits); }
  void accesses(std::uint32_t opcode, Footprint& f) const;
};

struct QuantizerWork {
  F32Ops ops;
  std::uint64_t random_bits = 0;
  std::uint64_t cycles = 0;
};

// The function of the unit.
class QuantizerCore {
 public:
  QuantizerWork run(std::uint32_t opcode, const QuantizerDescriptor& d, int layer, int lanes, MemoryPort& sram);

 private:
  std::vector<std::int16_t> q_;
  std::vector<std::uint8_t> flags_;
};

class QuantizerUnit final : public BlockModule {
 public:
  QuantizerUnit(const sc_core::sc_module_name& name, const Context& ctx) : BlockModule(name, Unit::quantizer, ctx) {}

 private:
  std::uint64_t execute(const Command& c) override;
  QuantizerCore core_;
};

}  // namespace hdq::npu
