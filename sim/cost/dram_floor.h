// The compulsory DRAM traffic of one training step for a given SRAM size: a
// lower bound for any schedule of the step on this NPU, reported beside the
// scheduled traffic (`dram_floor_bytes_per_step` in estimate.json).
//
// What any schedule must move between DRAM and the chip:
// - the step's inputs, once: the batch X (f32, B x I), the labels (int32) and
//   the active-class flags (one byte per class);
// - the record area (quantizer scales, GEMM statistics, loss, bias
//   gradients) written back once for the host;
// - the persistent state: f32 master weights and biases and their momentum,
//   read and written once, or, when it fits beside the record area, kept on
//   chip across steps (the planner does: docs/npu.md, "Across jobs"); then
//   what the step keeps live from its forward pass to its backward (the
//   packed Xq of every layer and Wq of every layer but the first) and the
//   SRAM does not hold beside the state comes back at least once
//   (`live_rereads`). The cheaper of the two. (This asked for the state, the
//   live set with Wq of layer 0 and the widest f32 activation to fit together
//   before: a schedule that keeps the state and spills or recomputes the rest
//   moves less, so that was no lower bound.)
// - when the state does not stay, a second read of the part of a layer's f32
//   W that the SRAM cannot hold (W bytes - (SRAM - record area)): the next
//   forward quantizes W with a scale that needs max|W| over the whole updated
//   tensor, so W cannot be rounded in the pass that updates it; at most an
//   SRAM's worth of it can wait on chip, the rest must come back. (This
//   counted the whole W before: a schedule that keeps the tail on chip moves
//   less, so that was no lower bound.)
// - likewise a second read of the part of the batch X that the SRAM cannot
//   hold: Q(X; fwd_x) of the first layer needs max|X| of the whole batch
//   before it rounds any element. (Missing before, though just as compulsory.)
// Intermediate tensors that do not fit (activations, gradients) are not
// counted, so for SRAMs far below the step's footprint the bound is loose.
// - the command queue: the command processor fetches every descriptor from
//   DRAM (128 bytes each). This term is the compared schedule's own program
//   (FloorInputs::commands), not a bound over schedules: it makes the floor
//   and the scheduled traffic, which includes the fetches, comparable.
// Not compulsory, so not counted: dW, the forward outputs and logits that the
// host reads for the driver (a device training on its own does not need them;
// the model's host transfers are free).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sim/blocks/command.h"

namespace hdq::npu {

struct FloorInputs {
  std::vector<int> widths;  // I, hidden..., classes
  std::uint64_t batch = 0;
  int operand_bits = 4;           // packed Xq and Wq
  std::uint64_t record_bytes = 0;  // the step's record area
  std::uint64_t sram_bytes = 0;
  std::uint64_t commands = 0;  // the schedule's commands per step (their descriptor fetches)
};

struct DramFloor {
  std::uint64_t inputs = 0, records = 0, state = 0, weight_rereads = 0, input_rereads = 0, live_rereads = 0,
                commands = 0;
  bool state_on_chip = false;
  std::uint64_t total() const {
    return inputs + records + state + weight_rereads + input_rereads + live_rereads + commands;
  }
};

inline DramFloor dram_floor(const FloorInputs& f) {
  DramFloor d;
  const std::uint64_t B = f.batch, classes = std::uint64_t(f.widths.back());
  d.inputs = B * std::uint64_t(f.widths.front()) * 4 + B * 4 + classes;
  d.records = f.record_bytes;
  d.commands = kCommandBytes * f.commands;
  // What of a tensor the SRAM cannot hold beside the record area.
  const std::uint64_t room = f.sram_bytes > f.record_bytes ? f.sram_bytes - f.record_bytes : 0;
  auto beyond = [&](std::uint64_t bytes) { return bytes > room ? bytes - room : 0; };
  d.input_rereads = beyond(B * std::uint64_t(f.widths.front()) * 4);
  std::uint64_t state = 0, live = 0, rereads = 0;
  auto packed = [&](std::uint64_t rows, std::uint64_t cols) { return rows * ((cols * std::uint64_t(f.operand_bits) + 7) / 8); };
  for (std::size_t l = 0; l + 1 < f.widths.size(); ++l) {
    const std::uint64_t I = std::uint64_t(f.widths[l]), O = std::uint64_t(f.widths[l + 1]);
    state += 2 * 4 * (O * I + O);  // W and b, and their momentum
    live += packed(B, I) + (l > 0 ? packed(O, I) : 0);
    rereads += beyond(4 * O * I);
  }
  if (state + f.record_bytes <= f.sram_bytes) {
    const std::uint64_t beside = f.sram_bytes - f.record_bytes - state;
    const std::uint64_t spill = live > beside ? live - beside : 0;
    d.state_on_chip = spill <= 2 * state + rereads;
    if (d.state_on_chip) d.live_rereads = spill;
  }
  if (!d.state_on_chip) {
    d.state = 2 * state;  // each read once and written once
    d.weight_rereads = rereads;
  }
  return d;
}

}  // namespace hdq::npu
