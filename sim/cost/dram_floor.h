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
//   read and written once, unless the state and what the step must keep live
//   fit in the SRAM together, in which case it can stay on chip across steps
//   (the step's live set: the packed Xq and Wq of every layer, kept from the
//   forward pass to the backward, and the widest f32 activation);
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
// Not compulsory, so not counted: dW, the forward outputs and logits that the
// host reads for the driver (a device training on its own does not need them;
// the model's host transfers are free).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace hdq::npu {

struct FloorInputs {
  std::vector<int> widths;  // I, hidden..., classes
  std::uint64_t batch = 0;
  int operand_bits = 4;           // packed Xq and Wq
  std::uint64_t record_bytes = 0;  // the step's record area
  std::uint64_t sram_bytes = 0;
};

struct DramFloor {
  std::uint64_t inputs = 0, records = 0, state = 0, weight_rereads = 0, input_rereads = 0;
  bool state_on_chip = false;
  std::uint64_t total() const { return inputs + records + state + weight_rereads + input_rereads; }
};

inline DramFloor dram_floor(const FloorInputs& f) {
  DramFloor d;
  const std::uint64_t B = f.batch, classes = std::uint64_t(f.widths.back());
  d.inputs = B * std::uint64_t(f.widths.front()) * 4 + B * 4 + classes;
  d.records = f.record_bytes;
  // What of a tensor the SRAM cannot hold beside the record area.
  const std::uint64_t room = f.sram_bytes > f.record_bytes ? f.sram_bytes - f.record_bytes : 0;
  auto beyond = [&](std::uint64_t bytes) { return bytes > room ? bytes - room : 0; };
  d.input_rereads = beyond(B * std::uint64_t(f.widths.front()) * 4);
  std::uint64_t state = 0, live = 0, widest = 0;
  auto packed = [&](std::uint64_t rows, std::uint64_t cols) { return rows * ((cols * std::uint64_t(f.operand_bits) + 7) / 8); };
  for (std::size_t l = 0; l + 1 < f.widths.size(); ++l) {
    const std::uint64_t I = std::uint64_t(f.widths[l]), O = std::uint64_t(f.widths[l + 1]);
    state += 2 * 4 * (O * I + O);  // W and b, and their momentum
    live += packed(B, I) + packed(O, I);
    widest = std::max(widest, B * O * 4);
  }
  d.state_on_chip = state + live + widest <= f.sram_bytes;
  if (!d.state_on_chip) {
    d.state = 2 * state;  // each read once and written once
    for (std::size_t l = 0; l + 1 < f.widths.size(); ++l) {
      const std::uint64_t w_bytes = 4 * std::uint64_t(f.widths[l]) * std::uint64_t(f.widths[l + 1]);
      d.weight_rereads += beyond(w_bytes);
    }
  }
  return d;
}

}  // namespace hdq::npu
