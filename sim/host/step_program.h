// The host driver's job: turn one training step (or one forward pass) of an
// HDQT MLP into a command queue for the NPU, with every tensor placed in DRAM
// and every tile placed in SRAM. Pure C++ (no SystemC): the Job it returns is
// data, run by the host module (sim/host/host.h).
//
// The decomposition follows the functional engine operation for operation
// (models/hdqt/hdqt_linear.cpp, hdqt_mlp.cpp; docs/contract.md §6), so the
// NPU produces the same bits:
//   forward, per layer l:  Q(X; fwd_x) [+ clip mask], Q(W; fwd_w),
//                          GEMM_fwd with the dequantize + bias (+ ReLU) epilogue
//   loss:                  softmax cross-entropy -> G of the last layer
//   backward_dx (l > 0):   W' = H_O Wq, Q(W'), G' = G H_O, Q(G'),
//                          GEMM_dx with dequantize + STE mask + ReLU' epilogue
//   backward_dw:           X' = H_B Xq, Q(X'), G'' = G^T H_B, Q(G''),
//                          GEMM_dw with dequantize; db = column sums of G
//   update:                SGD on W and b with the device's momentum buffers
// A residency planner decides per job which tensors stay in SRAM between
// operations, and the program fuses Hadamard + max + quantize, the SGD update
// into dW's write-back and ReLU' into a 1-bit mask; what is not resident
// streams through SRAM in the largest chunks that fit (docs/npu.md,
// "Residency and fusion"). A step whose smallest chunk does not fit is a
// ConfigError naming sram.size_bytes, raised here, before anything runs.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "models/hdqt/hdqt_mlp.h"
#include "sim/blocks/command.h"
#include "sim/blocks/mac_array.h"
#include "sim/config/npu_config.h"

namespace hdq::npu {

struct HostWrite {
  std::uint64_t addr = 0;
  std::span<const std::uint8_t> bytes;
  // An input of the job's own that no command writes and no later job reads:
  // the run maps the DRAM bytes onto `bytes`, read-only (blocks/block_module.h
  // Context::HostWindow), instead of loading them.
  bool mapped = false;
};
struct HostRead {
  std::uint64_t addr = 0;
  std::span<std::uint8_t> bytes;
  // No later job reads these DRAM bytes (a buffer of the job's own): the run
  // maps them onto `bytes` (blocks/block_module.h Context::HostWindow), so
  // the host's loads and the copies there use `bytes` and nothing is read back.
  bool mapped = false;
};

// One run of the command queue: what the host loads, the queue, what it reads
// back when the run succeeds, and the outcome.
struct Job {
  std::vector<HostWrite> loads;
  std::vector<Command> commands;
  std::uint64_t queue_addr = 0;
  std::uint64_t dram_bytes = 0;  // DRAM footprint of the job
  // What it would be if no tensor reused the range of one whose readers had
  // all run (docs/npu.md "Layer graphs": DRAM reuse within a job).
  std::uint64_t dram_bytes_without_reuse = 0;
  // [tensors_addr, dram_bytes): the job's own tensors and queue, above the
  // device's persistent momentum buffers (which every job places alike).
  std::uint64_t tensors_addr = 0;
  std::vector<HostRead> reads;
  std::vector<std::uint8_t> staging;  // host-side bytes the loads point into (labels, active classes)
  std::vector<int> resident;          // the residency candidates the plan kept in SRAM (planner ids)
  // The device's training state (W, b and their momentum) is in SRAM at
  // state_layout()'s addresses when the job ends (a training step kept it, or
  // a pass planned below it).
  bool state_on_chip = false;
  // The step reduced max |W| of every updated weight into the carry records
  // (StepResults::carry) for the next step's Q(W) (StepSettings::carried_w_max).
  bool carries_w_max = false;
  // Layers (bits) whose updated W the step rounded into the next step's Wq
  // (with the next step's random key), kept in DRAM (StepSettings::carried_wq).
  std::uint32_t carries_wq = 0;
  // DRAM bytes the next step saves by them (W read by its Q(W) less Wq read):
  // the planner credits them to this job.
  std::uint64_t carry_credit = 0;

  bool failed = false;
  bool numeric_error = false;
  std::uint32_t failed_command = 0;
  std::string error;
};

// Where a training step's results land: the job's reads fill the tensors and
// the copy of the SRAM record area; decode_records() unpacks the latter.
struct StepResults {
  MlpGrads grads;
  std::vector<Matrix> outputs;  // forward output Y of every layer (the last is the logits)
  float loss = 0.0f;
  std::vector<GemmStats> stats;  // 3 per layer, GemmRole order: this step's GEMM statistics
  MlpParams device_params;       // weights after the device's update (when requested)

  std::vector<std::uint8_t> records;  // the record area as read back
  std::uint64_t stats_offset = 0, loss_offset = 0;
  // Per layer x GemmRole: a GEMM of the job initialized the record. The others
  // (layer 0's dX) are stale SRAM bytes, decoded as zero statistics.
  std::vector<bool> stats_written;
  std::vector<std::uint64_t> db_offsets;
  // The carry records as read back (Job::carries_w_max): one QuantRecord per
  // layer, max |W| of the updated weights (or `nonfinite`).
  std::vector<std::uint8_t> carry;
};

// Every carry record of r is finite (its max |W| may serve the next step).
bool carry_finite(const StepResults& r);

// Fills loss, stats (3 per layer of db_offsets) and, when grads are sized,
// the bias gradients from the record area.
void decode_records(StepResults& r);

// Where the device's persistent training state is when a job starts
// (docs/npu.md, "Across jobs"). The device owns its momentum; the driver's
// weights are authoritative, so resident W and b serve a step only when they
// equal the driver's bit for bit (`weights_current`, checked by the engine).
struct DeviceState {
  bool on_chip = false;          // W, b and momentum at state_layout()'s SRAM addresses (else momentum in its DRAM home)
  bool weights_current = false;  // on chip and equal to the job's weights
};

// The SRAM a training step keeps its state in across steps, at the top of the
// SRAM, per layer W, b, momentum of W, momentum of b; `lo` is its lowest byte.
struct StateLayout {
  std::vector<std::uint64_t> w, b, mw, mb;
  std::uint64_t lo = 0;
};
StateLayout state_layout(std::uint64_t sram_bytes, const MlpParams& p);

struct StepSettings {
  const NpuConfig* npu = nullptr;
  const HdqtConfig* hdqt = nullptr;
  std::uint64_t seed = 0;
  SgdConfig sgd;
  bool first_update = true;        // the device's momentum buffers are not yet initialized
  bool read_device_params = false;  // read the updated weights back (the engine's check of resident weights, tests)
  int net = 0;                      // network id of the random streams (hdqt_mlp.h kLayersPerNet)
  std::uint64_t dram_base = 0;      // the job's tensors start at or above this DRAM address
  DeviceState state = {};           // the device's training state when the job starts
  // A pass (forward, backward, evaluation) plans below state_layout()'s SRAM
  // when the state is on chip and this is set; else it may use all of the
  // SRAM and first writes the state's momentum to its DRAM home.
  bool spare_state = false;
  // A training step whose state is not on chip: the carry records in DRAM
  // hold max |W| (and the sign) of exactly these weights, reduced in the
  // previous step's update (Job::carries_w_max), all finite, so Q(W; fwd_w)
  // finalizes from them and reads W once, to round. The engine sets it only
  // after comparing the weights bit for bit (docs/npu.md, "Across jobs").
  bool carried_w_max = false;
  // With carried_w_max, the layers (bits) whose Wq for this step the previous
  // step rounded (Job::carries_wq; this step is the one after it): the
  // forward reads it instead of quantizing W.
  std::uint32_t carried_wq = 0;
};

// DRAM bytes the job's commands move: its DMA copies with a DRAM end and
// the queue's descriptor fetches (host copies cost nothing: dma.h).
std::uint64_t job_dram_bytes(const Job& job);

// Bytes of a training step's record area in SRAM (quantizer and GEMM records,
// loss, bias-gradient accumulators) for an MLP of these widths; one DMA
// writes it back to DRAM at the end of the step.
std::uint64_t record_area_bytes(std::span<const int> widths);

// Throws ConfigError naming the NPU config field when the HDQT config needs
// what the NPU lacks (operand or accumulator bits beyond the array's).
void check_supported(const NpuConfig& npu, const HdqtConfig& hdqt);

// One training step at global step `step`: forward, loss, backward, update.
// `results` must outlive the job's run; its buffers are sized here (kept when
// they already have the right shapes).
Job build_training_step(const StepSettings& s, const MlpParams& p, const Matrix& x, std::span<const int> labels,
                        std::span<const bool> active, std::uint64_t step, StepResults& results);

// The engine passes (Engine::forward / backward) as separate jobs, for the
// methods that build their own losses. A training forward pass keeps in DRAM
// what its backward pass needs (packed Xq and Wq, clip masks, pre-activations)
// and its record area (the forward scales); `saved` describes them and
// `saved.top` is the end of its DRAM region, which later jobs must stay above
// (StepSettings::dram_base) until the backward pass has run. Results: the
// forward output Y of every layer, and the forward GEMMs' statistics when
// training. An evaluation pass (train = false) keeps nothing.
struct SavedForward;
struct SavedForwardDeleter {
  void operator()(SavedForward* p) const;
};
using SavedForwardPtr = std::unique_ptr<SavedForward, SavedForwardDeleter>;
// [lo, top): the DRAM a kept forward pass occupies until its backward.
std::uint64_t saved_lo(const SavedForward& saved);
std::uint64_t saved_top(const SavedForward& saved);

Job build_forward(const StepSettings& s, const MlpParams& p, const Matrix& x, std::uint64_t step, bool train,
                  StepResults& results, SavedForwardPtr* saved);
// The backward pass from dout = dL/dY of the last layer: gradients of every
// parameter (dX of layer 0 is not computed) and the backward GEMMs'
// statistics. No update: the driver applies the optimizer.
Job build_backward(const StepSettings& s, const MlpParams& p, const SavedForward& saved, const Matrix& dout,
                   std::uint64_t step, StepResults& results);

// Layer graphs (p.graph, models/nn/network.h; docs/npu.md "Layer graphs"):
// one training step (forward, loss, backward, the device's SGD update of
// every weight and bias) and an evaluation forward pass, bit-identical to the
// functional engine. ConfigError naming conv_mapping when it is not
// whole_batch (the mapping the NPU executes). Results as for MLPs;
// outputs are those of every parameter layer (then the network's when its
// last node has none), grads carry p.graph and p.running.
Job build_graph_step(const StepSettings& s, const MlpParams& p, const Matrix& x, std::span<const int> labels,
                     std::span<const bool> active, std::uint64_t step, StepResults& results);
// A graph's training forward pass (kept for its backward as build_forward's;
// batch_stats false: a frozen pass, BatchNorm on its running statistics, which
// no backward may follow) and the backward pass from dL/d(output): gradients
// of every parameter, BatchNorm's running statistics after the forward, no
// update.
Job build_graph_forward(const StepSettings& s, const MlpParams& p, const Matrix& x, std::uint64_t step,
                        bool batch_stats, StepResults& results, SavedForwardPtr* saved);
Job build_graph_backward(const StepSettings& s, const MlpParams& p, const SavedForward& saved, const Matrix& dout,
                         std::uint64_t step, StepResults& results);
// decode_records for a graph's training step; the statistics of GEMMs it
// does not run (dX of a layer reading the network input) are zero.
void decode_graph_records(const MlpParams& p, StepResults& results);
Job build_graph_eval(const StepSettings& s, const MlpParams& p, const Matrix& x, std::uint64_t step,
                     StepResults& results);

}  // namespace hdq::npu
