#include "sim/host/step_program.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>

#include "models/hadamard/hadamard.h"
#include "models/nn/network.h"
#include "sim/blocks/dma.h"
#include "sim/blocks/hadamard_unit.h"
#include "sim/blocks/quantizer_unit.h"
#include "sim/blocks/vector_unit.h"

namespace hdq::npu {
namespace {

constexpr std::uint64_t kAlign = 64;
// Where Builder::host_output's copies are: above any DRAM the model has.
constexpr std::uint64_t kHostSpace = 1ull << 48;  // buffers start on 64-byte boundaries (a row across the default 8 x 8-byte banks)

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// A process-wide id per B panel (MacDescriptor::b_panel): the MAC array keeps
// one unpacked B across jobs, so ids never repeat.
std::uint64_t next_b_panel() {
  static std::atomic<std::uint64_t> next{0};
  return ++next;
}

enum class Fmt { f32, packed, mask, bytes };

// A tensor in DRAM or resident in SRAM (or a tile of one): rows x cols in a
// format. `host`: a DRAM buffer only the host reads (a layer's output, dW for
// the driver's optimizer); stores into it are host copies (dma.h kDmaHostCopy).
struct Tensor {
  std::uint64_t addr = 0;
  std::uint64_t rows = 0, cols = 0;
  Fmt fmt = Fmt::f32;
  int bits = 32;  // packed: operand bits
  Space space = Space::dram;
  bool host = false;

  bool resident() const { return space == Space::sram; }
  std::uint64_t pitch() const { return pitch_of(cols); }
  std::uint64_t pitch_of(std::uint64_t c) const {
    switch (fmt) {
      case Fmt::f32: return 4 * c;
      case Fmt::packed: return packed_pitch(c, bits);
      case Fmt::mask: return mask_pitch(c);
      case Fmt::bytes: return c;
    }
    return 0;
  }
  std::uint64_t bytes() const { return rows * pitch(); }
  // Byte offset of column c within a row (c * bits a multiple of 8 for packed, c % 8 == 0 for masks).
  std::uint64_t col_offset(std::uint64_t c) const {
    switch (fmt) {
      case Fmt::f32: return 4 * c;
      case Fmt::packed: return c * std::uint64_t(bits) / 8;
      case Fmt::mask: return c / 8;
      case Fmt::bytes: return c;
    }
    return 0;
  }
};

// What the residency planner may keep in SRAM between operations (docs/npu.md,
// "Residency and fusion"), per layer. `value`: DRAM bytes a resident byte saves
// (its write and reads); the planner gives up the lowest first.
// `state`: the master weights, biases and momentum, kept across training
// steps (each resident byte saves its read and write every step, and W's
// read for Q(W)); given up last.
enum class Keep : int { xq, wq, act, relu_mask, clip_mask, logits, grad, dx, whq, ghq, xhq, gtq, w, state, count };
constexpr int kKeepValue[int(Keep::count)] = {3, 2, 2, 2, 2, 2, 4, 4, 2, 2, 2, 2, 1, 5};
int keep_id(Keep k, int layer) { return int(k) * 1024 + layer; }
int keep_value(int id) { return kKeepValue[id / 1024]; }

// Thrown while building under a residency plan that does not fit: the
// candidate to give up (the planner rebuilds without it).
struct ResidencyFailure {
  int id;
};

// One factor of a dequantization: a QuantRecord's scale or a constant.
struct Factor {
  std::uint32_t record = kNoRecord;
  float value = 1.0f;
};

struct GemmSpec {
  GemmRole role = GemmRole::fwd;
  Tensor a;  // packed, m x k
  std::uint32_t a_record = 0;
  Tensor b;  // packed, k x n (k_by_n) or n x k (n_by_k)
  BLayout b_layout = BLayout::k_by_n;
  std::uint32_t b_record = 0;
  std::uint64_t m = 0, n = 0, k = 0;
  std::vector<Factor> factors;
  const Tensor* out = nullptr;        // f32 m x n on the device (DRAM or SRAM)
  const Tensor* host = nullptr;       // f32 m x n for the host (host copies)
  const Tensor* bias = nullptr;       // f32 1 x n
  const Tensor* act = nullptr;        // f32 m x n: max(out, 0)
  const Tensor* relu_mask = nullptr;  // mask m x n: out > 0 (ReLU' for the backward)
  const Tensor* clip_mask = nullptr;  // mask m x n (input)
  const Tensor* relu_grad = nullptr;  // mask m x n (input): ReLU' of the layer below
  // The SGD update fused into the write-back of dW (out = dW): w and its momentum buffer, m x n f32.
  const Tensor* sgd_w = nullptr;
  const Tensor* sgd_buf = nullptr;
  // With sgd_w: reduce max |W| of the updated W into this record (kQuantReduceKeep), for the next step.
  std::uint32_t keep_max = kNoRecord;
};

class Builder {
 public:
  // `training_step`: a gradients() job, which may keep the device's state on
  // chip across steps (candidate Keep::state); other jobs plan below a
  // resident state when s.spare_state, else write its momentum home first.
  Builder(const StepSettings& s, std::uint64_t step, const MlpParams& p, Job& job, const std::set<int>& off,
          bool training_step = false)
      : s_(s), cfg_(*s.npu), hdqt_(*s.hdqt), step_(step), job_(job), off_(off) {
    const std::uint64_t layers = p.w.size();
    // SRAM: the step's records first, then the streaming arena; resident
    // tensors are placed from the top down.
    std::uint64_t at = 0;
    records_ = at;
    at += layers * kQuantRoles * sizeof(QuantRecord);
    stats_ = at;
    at += layers * kGemmRoles * sizeof(GemmStatsRecord);
    stats_written_.assign(layers * kGemmRoles, false);
    loss_ = at;
    at += 16;
    for (const auto& b : p.b) {
      db_.push_back(at);
      at += align_up(4 * b.size(), 16);
    }
    scalars_bytes_ = record_bytes_ = align_up(at, kAlign);
    // A training step's carry records (max |W| for the next step) follow the
    // record area; they are not written back with it.
    carry_ = scalars_bytes_;
    if (training_step) scalars_bytes_ += align_up(layers * sizeof(QuantRecord), kAlign);
    if (scalars_bytes_ >= cfg_.sram.size_bytes)
      throw NpuConfigError(fmt::format("{}: sram.size_bytes = {} cannot even hold the step's {} bytes of records",
                                       cfg_.file, cfg_.sram.size_bytes, scalars_bytes_));
    sram_top_ = cfg_.sram.size_bytes / kAlign * kAlign;
    arena_ = sram_top_ - scalars_bytes_;
    // DRAM: the device's momentum buffers first (they persist across steps).
    for (const auto& w : p.w) momentum_w_.push_back(dram(std::uint64_t(w.rows), std::uint64_t(w.cols), Fmt::f32));
    for (const auto& b : p.b) momentum_b_.push_back(dram(1, b.size(), Fmt::f32));
    momentum_home_w_ = momentum_w_;
    momentum_home_b_ = momentum_b_;
    carry_home_ = dram(1, layers * sizeof(QuantRecord), Fmt::bytes);  // persists across steps too
    for (const auto& w : p.w) wq_home_.push_back(dram_packed(std::uint64_t(w.rows), std::uint64_t(w.cols), QuantRole::fwd_w));
    // The device's state across steps (docs/npu.md, "Across jobs").
    const StateLayout layout = state_layout(cfg_.sram.size_bytes, p);
    const int state_id = keep_id(Keep::state, 0);
    keeps_state_ = training_step && !off_.count(state_id);
    if (keeps_state_) {
      if (layout.lo < scalars_bytes_ + reserve()) throw ResidencyFailure{state_id};
      for (std::size_t l = 0; l < p.w.size(); ++l) {
        const std::uint64_t O = std::uint64_t(p.w[l].rows), I = std::uint64_t(p.w[l].cols);
        state_w_.push_back(pin(state_id, layout.w[l], O, I));
        state_b_.push_back(pin(state_id, layout.b[l], 1, O));
        momentum_w_[l] = pin(state_id, layout.mw[l], O, I);
        momentum_b_[l] = pin(state_id, layout.mb[l], 1, O);
      }
      // Momentum that is in its DRAM home comes on chip (none before the first update).
      if (!s.state.on_chip && !s.first_update)
        for (std::size_t l = 0; l < p.w.size(); ++l) {
          copy(momentum_home_w_[l], momentum_w_[l]);
          copy(momentum_home_b_[l], momentum_b_[l]);
        }
      job_.state_on_chip = true;
    } else if (s.state.on_chip && s.spare_state) {
      sram_top_ = layout.lo / kAlign * kAlign;  // plan below the resident state
      arena_ = sram_top_ - scalars_bytes_;
      job_.state_on_chip = true;
    } else if (s.state.on_chip) {  // this job needs the SRAM: the momentum goes home first
      for (std::size_t l = 0; l < p.w.size(); ++l) {
        const std::uint64_t O = std::uint64_t(p.w[l].rows);
        copy(pinned(layout.mw[l], O, std::uint64_t(p.w[l].cols)), momentum_home_w_[l]);
        copy(pinned(layout.mb[l], 1, O), momentum_home_b_[l]);
      }
    }
    if (training_step && !keeps_state_) {  // W streams from DRAM: carry max |W| to the next step
      carries_ = true;
      carried_ = s.carried_w_max;
      carried_wq_ = carried_ ? s.carried_wq : 0;
      job_.carries_w_max = true;
    }
    if (scalars_bytes_ >= sram_top_)
      throw NpuConfigError(fmt::format("{}: sram.size_bytes = {} leaves no SRAM beside the training state", cfg_.file,
                                       cfg_.sram.size_bytes));
    // Above the tensors of forward passes kept for their backward (NpuEngine's slots).
    dram_top_ = std::max(dram_top_, s.dram_base);
    unshared_top_ = std::max(unshared_top_, s.dram_base);
    job_.tensors_addr = align_up(dram_top_, kAlign);
  }

  // ---- placement
  // A DRAM tensor: first fit among the ranges given back (done() below),
  // else at the top. `fresh`: at the top, in DRAM no earlier tensor of the
  // job used (what the host loads at job start or maps onto its own bytes).
  Tensor dram(std::uint64_t rows, std::uint64_t cols, Fmt f, int bits = 32, bool fresh = false) {
    Tensor t{0, rows, cols, f, bits};
    const std::uint64_t bytes = align_up(t.bytes(), kAlign);
    unshared_top_ = align_up(unshared_top_, kAlign) + bytes;
    if (!fresh && bytes > 0 && !free_.empty()) {
      // The smallest range that holds it (the lowest on a tie), else the last
      // one when it ends at the top (the top rises by the rest).
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it)
        if (it->second >= bytes && (best == free_.end() || it->second < best->second)) best = it;
      if (best == free_.end() && std::prev(free_.end())->first + std::prev(free_.end())->second >= dram_top_)
        best = std::prev(free_.end());
      if (best != free_.end()) {
        const auto [at, size] = *best;
        free_.erase(best);
        if (size > bytes) free_.emplace(at + bytes, size - bytes);
        dram_top_ = std::max(dram_top_, at + bytes);
        t.addr = at;
        return t;
      }
    }
    t.addr = align_up(dram_top_, kAlign);
    dram_top_ = t.addr + bytes;
    return t;
  }
  Tensor dram_packed(std::uint64_t rows, std::uint64_t cols, QuantRole r) {
    return dram(rows, cols, Fmt::packed, hdqt_.q(r).bits);
  }
  // A region of `bytes` at the top for the tensors stacked() in it in turn:
  // what a training step's forward keeps for its backward, which gives them
  // back about last-in first-out, so that what it frees is one piece with
  // the free DRAM above (the largest temporaries of the backward fit there).
  void reserve_stack(std::uint64_t bytes) {
    stack_ = align_up(dram_top_, kAlign);
    stack_end_ = stack_ + bytes;
    dram_top_ = stack_end_;
  }
  Tensor stacked(std::uint64_t rows, std::uint64_t cols, Fmt f, int bits = 32) {
    Tensor t{stack_, rows, cols, f, bits};
    const std::uint64_t bytes = align_up(t.bytes(), kAlign);
    if (stack_ + bytes > stack_end_) throw std::logic_error("npu: the stack of a forward's kept tensors overflows");
    stack_ += bytes;
    unshared_top_ = align_up(unshared_top_, kAlign) + bytes;
    return t;
  }
  Tensor host(std::uint64_t rows, std::uint64_t cols) {
    Tensor t = dram(rows, cols, Fmt::f32, 32, true);
    t.host = true;
    host_tensors_.emplace_back(t.addr, t.bytes());
    return t;
  }
  // DRAM reuse within the job (docs/npu.md "Layer graphs"): a tensor shared
  // with `readers` readers gives its range back at the readers'th done(t);
  // later tensors may be placed there (the command processor orders their
  // writes after the earlier commands that read the range: DMA footprints
  // name their DRAM blocks). A tensor never shared keeps its range (what the
  // host reads back, what a later job reads). No-ops on SRAM tensors.
  void share(const Tensor& t, int readers) {
    if (t.resident() || t.bytes() == 0 || readers <= 0) return;
    if (t.host) throw std::logic_error("npu: a host tensor shared for DRAM reuse");
    readers_[t.addr] += readers;
  }
  void done(const Tensor& t) {
    const auto it = t.resident() ? readers_.end() : readers_.find(t.addr);
    if (it == readers_.end() || --it->second > 0) return;
    readers_.erase(it);
    give_back(t.addr, align_up(t.bytes(), kAlign));
  }
  // A tensor the plan may keep in SRAM (candidate `id`): resident when the
  // plan allows it and it fits above the arena's reserve, else in DRAM.
  Tensor keep(int id, std::uint64_t rows, std::uint64_t cols, Fmt f, int bits = 32) {
    Tensor t{0, rows, cols, f, bits};
    if (off_.count(id)) return dram(rows, cols, f, bits);
    const std::uint64_t bytes = align_up(t.bytes(), kAlign);
    // The highest gap between resident tensors that holds it; below the
    // lowest one the arena keeps its reserve.
    std::uint64_t top = sram_top_;
    std::optional<std::uint64_t> addr;
    for (auto it = heap_.rbegin();; ++it) {
      const std::uint64_t bottom = it == heap_.rend() ? scalars_bytes_ + reserve() : it->addr + it->bytes;
      if (top >= bottom + bytes) {
        addr = top - bytes;
        break;
      }
      if (it == heap_.rend()) break;
      top = it->addr;
    }
    if (!addr) give_up(id, bytes);
    t.addr = *addr;
    t.space = Space::sram;
    heap_.push_back({t.addr, bytes, id});
    std::sort(heap_.begin(), heap_.end(), [](const Block& x, const Block& y) { return x.addr < y.addr; });
    arena_ = lowest() - scalars_bytes_;
    job_.resident.push_back(id);
    return t;
  }
  // The device's state on chip (keeps_state()): W and b of layer l.
  bool keeps_state() const { return keeps_state_; }
  const Tensor& state_w(int l) const { return state_w_[l]; }
  const Tensor& state_b(int l) const { return state_b_[l]; }
  // A whole tensor copied by one DMA (same shape and format).
  void copy(const Tensor& from, const Tensor& to) {
    dma(from.space, from.addr, from.pitch(), to.space, to.addr, to.pitch(), from.rows, from.pitch());
  }
  // The host's own copy of t for its bookkeeping (the driver reads every
  // layer's output of a layer graph), made now: a host copy (dma.h
  // kDmaHostCopy: no cycles, energy or traffic) into `dst`, mapped for the
  // job at an address above any DRAM (kHostSpace; Context::HostWindow), so
  // it takes none of the device's DRAM and t may give its range back after
  // its device readers (docs/npu.md "Layer graphs").
  void host_output(const Tensor& t, void* dst) {
    const std::uint64_t at = host_top_;
    host_top_ = align_up(at + t.bytes(), kAlign);
    dma(t.space, t.addr, t.pitch(), Space::dram, at, t.pitch(), t.rows, t.pitch(), true);
    job_.reads.push_back({at, {static_cast<std::uint8_t*>(dst), t.bytes()}, t.bytes() > 0});
  }
  // What the host reads of t: t itself in DRAM, or a host copy of it out of SRAM.
  Tensor for_host(const Tensor& t) {
    if (!t.resident()) return t;
    const Tensor h = host(t.rows, t.cols);
    dma(Space::sram, t.addr, t.pitch(), Space::dram, h.addr, h.pitch(), t.rows, t.pitch(), true);
    return h;
  }
  Tensor keep_packed(int id, std::uint64_t rows, std::uint64_t cols, QuantRole r) {
    return keep(id, rows, cols, Fmt::packed, hdqt_.q(r).bits);
  }
  // A resident tensor's SRAM is free again (its readers are ordered before
  // later writers by the command processor's hazards).
  void release(const Tensor& t) {
    if (!t.resident()) return;
    std::erase_if(heap_, [&](const Block& b) { return b.addr == t.addr; });
    arena_ = lowest() - scalars_bytes_;
  }

  std::uint32_t record(int layer, QuantRole r) const {
    return std::uint32_t(records_ + (std::uint64_t(layer) * kQuantRoles + std::uint64_t(r)) * sizeof(QuantRecord));
  }
  std::uint32_t stats(int layer, GemmRole g) const {
    return std::uint32_t(stats_ + (std::uint64_t(layer) * kGemmRoles + std::uint64_t(g)) * sizeof(GemmStatsRecord));
  }
  // Which statistics records (layer x GemmRole) a GEMM of this job initializes;
  // the others hold whatever the SRAM held (layer 0 has no dX GEMM).
  const std::vector<bool>& stats_written() const { return stats_written_; }
  std::uint32_t loss() const { return std::uint32_t(loss_); }
  std::uint32_t db(int layer) const { return std::uint32_t(db_[layer]); }
  const Tensor& momentum_w(int l) const { return momentum_w_[l]; }
  const Tensor& momentum_b(int l) const { return momentum_b_[l]; }

  // `input`: no command writes t and no later job reads it (HostWrite::mapped).
  void load(const Tensor& t, const void* src, bool input = false) {
    if (reused(t.addr, t.bytes())) throw std::logic_error("npu: a host load into DRAM an earlier tensor of the job used");
    job_.loads.push_back({t.addr, {static_cast<const std::uint8_t*>(src), t.bytes()}, input && t.bytes() > 0});
  }
  // `own`: a DRAM buffer of this job's that no later job reads (host() tensors are).
  void read_back(std::uint64_t addr, void* dst, std::uint64_t bytes, bool own = false) {
    own = own || std::ranges::find(host_tensors_, std::pair{addr, bytes}) != host_tensors_.end();
    // (A buffer mapped onto the host's bytes for the whole job: no other tensor of the job may have used it.)
    if (own && reused(addr, bytes)) throw std::logic_error("npu: a host read mapped onto DRAM given back for reuse");
    job_.reads.push_back({addr, {static_cast<std::uint8_t*>(dst), bytes}, own && bytes > 0});
  }

  void tag(int layer, Phase phase) {
    layer_ = layer;
    phase_ = phase;
  }

  // ---- operations. Each streams what is not resident through SRAM in
  // chunks, in two slots used in turn (double buffering) and
  // software-pipelined, so the DMA loads chunk i + 1 while the blocks work on
  // chunk i (stream() below); resident tensors are worked on in place.

  // Q(src; role) -> dst (packed), and the clip mask when `mask` is given.
  // `carried`: the record already holds max |src| (the carry records), so
  // one rounding pass reads src once.
  // `next_record`: round for the next step (its random key) with this
  // record (a carry record, finalized leniently: kQuantFinalizeKeep).
  void quantize(const Tensor& src, QuantRole role, const Tensor& dst, const Tensor* mask, bool carried = false,
                std::uint32_t next_record = kNoRecord) {
    QuantizerDescriptor d = quantizer(role, next_record != kNoRecord);
    if (next_record != kNoRecord) d.record = next_record;
    const std::uint32_t finalize_op = next_record != kNoRecord ? kQuantFinalizeKeep : kQuantFinalize;
    d.cols = std::uint32_t(src.cols);
    d.write_mask = mask != nullptr;
    const std::uint64_t in_row = need(src, src.cols), out_row = need(dst, dst.cols),
                        mask_row = mask ? need(*mask, mask->cols) : 0;
    // Buffers of one chunk in a slot: the f32 rows, the packed rows, the mask rows.
    std::uint64_t rows = 0;
    auto x_at = [&](std::uint64_t r0, std::uint32_t at) { return where(src, r0, 0, src.cols, at); };
    auto q_at = [&](std::uint64_t r0, std::uint32_t at) {
      return where(dst, r0, 0, dst.cols, std::uint32_t(at + align_up(rows * in_row, kAlign)));
    };
    auto m_at = [&](std::uint64_t r0, std::uint32_t at) {
      return mask ? where(*mask, r0, 0, mask->cols, std::uint32_t(at + align_up(rows * in_row, kAlign) + align_up(rows * out_row, kAlign)))
                  : 0u;
    };
    auto chunk = [&](std::uint32_t opcode, std::uint64_t r0, std::uint64_t n, std::uint32_t at) {
      d.src = x_at(r0, at);
      d.dst = q_at(r0, at);
      d.mask = m_at(r0, at);
      d.rows = std::uint32_t(n);
      d.first_index = r0 * src.cols;
      d.init = r0 == 0;
      emit(Unit::quantizer, opcode, d);
    };
    auto fetch = [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) { copy_in(src, r0, n, 0, src.cols, at); };
    auto store = [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) {
      copy_out(dst, r0, n, 0, dst.cols, q_at(r0, at));
      if (mask) copy_out(*mask, r0, n, 0, mask->cols, m_at(r0, at));
    };
    const std::uint64_t per_row = in_row + out_row + mask_row;
    // The whole tensor in one chunk if it fits (read once), unless src
    // streams from DRAM and it runs in two chunks that both stay in the
    // slots (read once too, overlapped). At most two (overlap_cap()): the reduce
    // pass's chunks beyond the two that stay are read again. (A resident src
    // has no load to overlap.)
    const std::uint64_t halves = fit(slot_bytes(0, 2), per_row, src.rows, 1, 3, 2);
    const bool two = !src.resident() && halves > 0 && halves < src.rows && 2 * halves >= src.rows;
    if (!two && fit(slot_bytes(0, 1), per_row, src.rows, 1, 3, 1) == src.rows) {
      rows = src.rows;
      stream(src.rows, src.rows, 0, 1, fetch,
             [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) {
               if (!carried) chunk(kQuantReduce, r0, n, at);
               emit(Unit::quantizer, finalize_op, d);
               chunk(kQuantRound, r0, n, at);
             },
             store);
      return;
    }
    // Two passes over double-buffered chunks: max-reduce, the scale, round.
    // The chunks still in the slots after the first pass are rounded first,
    // without a second read (the spill: only the rest is read twice).
    int slots = 2;
    rows = fit(slot_bytes(0, 2), per_row, src.rows, 1, 3, 2);
    if (rows == 0) {
      slots = 1;
      rows = fit(slot_bytes(0, 1), per_row, src.rows, 1, 3, 2);
    }
    if (rows == 0) too_small(fmt::format("quantization of {} x {} {}", src.rows, src.cols, name(role)), 0, per_row, 3);
    if (carried) {  // one pass: the scale, then the chunks rounded as they stream
      emit(Unit::quantizer, finalize_op, d);
      stream(src.rows, rows, 0, slots, fetch, [&](std::uint64_t r0, std::uint64_t c, std::uint32_t a) { chunk(kQuantRound, r0, c, a); },
             store);
      return;
    }
    const std::uint64_t n = (src.rows + rows - 1) / rows, first = slots == 2 ? next_slot_ : 0;
    const std::uint64_t slot = slot_bytes(0, slots);
    auto at = [&](std::uint64_t i) { return arena(((first + i) % std::uint64_t(slots)) * slot); };
    // The first chunk is the short one, so the chunks kept in SRAM are whole.
    const std::uint64_t lead = src.rows - (n - 1) * rows;
    auto start = [&](std::uint64_t i) { return i == 0 ? 0 : lead + (i - 1) * rows; };
    auto count = [&](std::uint64_t i) { return i == 0 ? lead : rows; };
    stream(src.rows, rows, 0, slots, fetch, [&](std::uint64_t r0, std::uint64_t c, std::uint32_t a) { chunk(kQuantReduce, r0, c, a); },
           [](std::uint64_t, std::uint64_t, std::uint32_t) {}, lead);
    emit(Unit::quantizer, finalize_op, d);
    const std::uint64_t kept = std::min<std::uint64_t>(n, std::uint64_t(slots));
    for (std::uint64_t i = n - kept; i < n; ++i) {  // still in SRAM
      chunk(kQuantRound, start(i), count(i), at(i));
      store(start(i), count(i), at(i));
    }
    if (n > kept) {
      const std::uint64_t again = start(n - kept);
      stream(again, rows, 0, slots, fetch, [&](std::uint64_t r0, std::uint64_t c, std::uint32_t a) { chunk(kQuantRound, r0, c, a); },
             store);
    }
  }

  // The transform feeding a quantizer (docs/npu.md "Residency and fusion"):
  //   rows     G (B x O f32)  -> G' = G H_O (B x padded), chunks of rows
  //   cols_t   G (B x O f32)  -> G'' = G^T H_B (O x padded), chunks of G's columns
  //   cols_int Q (R x C packed) -> H Q (padded x C), exact, chunks of 8k columns
  // When not even one such column fits (G'' and X' of a conv layer with many
  // positions), cols_t and cols_int chunk along the transformed dimension
  // instead, in whole blocks: rows [p0, p0 + n) of the source give columns
  // [p0, p0 + n) of G'' or rows [p0, p0 + n) of H Q (the transform is block
  // diagonal, contract §4), the last chunk holding the zero padding.
  enum class Transform { rows, cols_t, cols_int };

  // Q(transform(src); role) -> dst packed, fused: the transform runs chunk by
  // chunk into SRAM and the quantizer works on the chunk there; when the
  // f32 result does not fit in one chunk, the max-reduce pass and the
  // rounding pass each recompute it (exact: the same inputs, the same
  // rounding) rather than store it.
  void hadamard_quantize(Transform kind, const Tensor& src, std::uint32_t src_record, QuantRole role, const Tensor& dst,
                         int block) {
    const bool by_rows = kind == Transform::rows;
    const std::uint64_t padded = kind == Transform::cols_int ? dst.rows : dst.cols;  // the transformed dimension
    // The chunking: `along` the transformed dimension (units: its positions,
    // chunks of whole blocks) or across it (units: rows of G for `rows`, else
    // columns of src). A chunk takes rows of src (`src_rows`, else columns
    // of all its rows) and gives a block of dst's columns (`dst_cols`, else
    // whole rows of dst).
    bool along = false, src_rows = false, dst_cols = false;
    std::uint64_t units = 0, gran = 0;
    auto chunk_along = [&](bool a) {
      along = a;
      src_rows = by_rows || a;
      dst_cols = (kind == Transform::cols_int) != a;
      units = a ? padded : by_rows ? src.rows : src.cols;
      // Packed column blocks start on a byte; chunks along start on a block.
      gran = std::lcm<std::uint64_t>(dst_cols ? 8 : 1, a ? std::uint64_t(block) : 1);
    };
    // Rows of src in the chunk of positions [u0, u0 + c) (the rest is padding).
    auto real = [&](std::uint64_t u0, std::uint64_t c) { return along ? std::min(c, src.rows - u0) : c; };
    // Per unit: the source, the f32 result, the packed result (unless written in place).
    auto src_bytes = [&](std::uint64_t n) { return src_rows ? n * need(src, src.cols) : need(src, n) * src.rows; };
    auto out_bytes = [&](std::uint64_t n) { return 4 * n * (along ? src.cols : padded); };
    auto q_bytes = [&](std::uint64_t n) {
      if (dst.resident()) return std::uint64_t(0);
      return dst_cols ? dst.rows * dst.pitch_of(n) : n * dst.pitch();
    };
    auto bytes = [&](std::uint64_t n) {
      return align_up(src_bytes(n), kAlign) + align_up(out_bytes(n), kAlign) + align_up(q_bytes(n), kAlign);
    };
    chunk_along(false);
    std::uint64_t n = std::min(units, gran);
    // Along only when a column does not fit one of two slots (along runs
    // double-buffered: the overlap rule, overlap_cap()) and, with resident tensors,
    // never would: the plans that fit (after the planner gives up resident
    // tensors) stay as they are.
    const std::uint64_t most = (cfg_.sram.size_bytes / kAlign * kAlign - scalars_bytes_) / kAlign * kAlign;
    if (!by_rows && bytes(n) > slot_bytes(0, 2) && (heap_.empty() || bytes(n) > most)) {
      chunk_along(true);
      n = std::min(units, gran);
    }
    const int slots = bytes(n) <= slot_bytes(0, 2) ? 2 : bytes(n) <= slot_bytes(0, 1) ? 1 : 0;
    if (slots == 0) too_small(fmt::format("Hadamard transform and quantization of {}", name(role)), 0, bytes(n), 3);
    // One chunk if it fits (transformed once), unless src streams from DRAM
    // and it runs in two chunks that both stay in the slots (the rounding
    // pass then works on the transform the max-reduce pass left there). At
    // most two (overlap_cap()): chunks beyond the two that stay are read and
    // transformed again. (A resident src has no load to overlap.)
    const bool fits_once = bytes(units) <= slot_bytes(0, 1);
    const std::uint64_t halves = overlap_cap(units, ceil_div(bytes(units), units), gran, 2);
    const bool two = fits_once && !src.resident() && halves < units && bytes(halves) <= slot_bytes(0, 2);
    if (two) n = halves;
    else if (fits_once) n = units;
    else {
      const std::uint64_t slot = slot_bytes(0, slots), cap = overlap_cap(units, ceil_div(bytes(units), units), gran);
      while (n + gran < units && n + gran <= cap && bytes(n + gran) <= slot) n += gran;
    }
    const bool one = n == units;
    QuantizerDescriptor q = quantizer(role);
    HadamardDescriptor h{0, 0, src_record, 0, 0, std::uint32_t(padded), std::uint32_t(block),
                         std::uint8_t(kind == Transform::cols_int ? src.bits : 0)};
    auto src_at = [&](std::uint64_t u0, std::uint64_t c, std::uint32_t at) {
      return src_rows ? where(src, u0, 0, src.cols, at) : where(src, 0, u0, c, at);
    };
    auto out_at = [&](std::uint32_t at, std::uint64_t c) { return std::uint32_t(at + align_up(src_bytes(c), kAlign)); };
    auto q_at = [&](std::uint64_t u0, std::uint64_t c, std::uint32_t at) -> std::uint32_t {
      const std::uint32_t buf = std::uint32_t(out_at(at, c) + align_up(out_bytes(c), kAlign));
      if (dst_cols) return dst.resident() ? std::uint32_t(dst.addr + dst.col_offset(u0)) : buf;
      return where(dst, u0, 0, dst.cols, buf);
    };
    auto fetch = [&](std::uint64_t u0, std::uint64_t c, std::uint32_t at) {
      if (src_rows) copy_in(src, u0, real(u0, c), 0, src.cols, at);
      else copy_in(src, 0, src.rows, u0, c, at);
    };
    auto transform = [&](std::uint64_t u0, std::uint64_t c, std::uint32_t at) {
      h.src = src_at(u0, c, at);
      h.dst = out_at(at, c);
      h.rows = std::uint32_t(src_rows ? real(u0, c) : src.rows);
      h.cols = std::uint32_t(src_rows ? src.cols : c);
      if (along) h.padded = std::uint32_t(c);  // the chunk starts on a block; its own padding
      emit(Unit::hadamard, kind == Transform::rows ? kHadamardRows : kind == Transform::cols_t ? kHadamardColsT : kHadamardColsInt, h);
    };
    auto quant = [&](std::uint32_t opcode, std::uint64_t u0, std::uint64_t c, std::uint32_t at) {
      q.src = out_at(at, c);
      q.dst = q_at(u0, c, at);
      if (dst_cols) {  // a block of columns of dst
        q.rows = std::uint32_t(dst.rows);
        q.cols = std::uint32_t(c);
        q.first_index = u0;
        q.row_stride = std::uint32_t(dst.cols);
        q.dst_pitch = std::uint32_t(dst.resident() ? dst.pitch() : 0);
      } else {  // whole rows of dst
        q.rows = std::uint32_t(c);
        q.cols = std::uint32_t(dst.cols);
        q.first_index = u0 * dst.cols;
      }
      q.init = u0 == 0;
      emit(Unit::quantizer, opcode, q);
    };
    auto store = [&](std::uint64_t u0, std::uint64_t c, std::uint32_t at) {
      if (dst_cols) {
        if (!dst.resident()) copy_out(dst, 0, dst.rows, u0, c, q_at(u0, c, at));
      } else {
        copy_out(dst, u0, c, 0, dst.cols, q_at(u0, c, at));
      }
    };
    if (one) {
      stream(units, units, 0, 1, fetch,
             [&](std::uint64_t u0, std::uint64_t c, std::uint32_t at) {
               transform(u0, c, at);
               quant(kQuantReduce, u0, c, at);
               emit(Unit::quantizer, kQuantFinalize, q);
               quant(kQuantRound, u0, c, at);
             },
             store);
      return;
    }
    const std::uint64_t first = next_slot_;  // the slot stream() starts in (two slots)
    stream(units, n, 0, slots, fetch,
           [&](std::uint64_t u0, std::uint64_t c, std::uint32_t at) {
             transform(u0, c, at);
             quant(kQuantReduce, u0, c, at);
           },
           [](std::uint64_t, std::uint64_t, std::uint32_t) {});
    emit(Unit::quantizer, kQuantFinalize, q);
    if (two) {  // both chunks' transforms are still in their slots
      for (std::uint64_t i = 0; i < 2; ++i) {
        const std::uint64_t u0 = i * n, c = i == 0 ? n : units - n;
        const std::uint32_t at = arena(((first + i) % 2) * slot_bytes(0, 2));
        quant(kQuantRound, u0, c, at);
        store(u0, c, at);
      }
      return;
    }
    stream(units, n, 0, slots, fetch,
           [&](std::uint64_t u0, std::uint64_t c, std::uint32_t at) {
             transform(u0, c, at);
             quant(kQuantRound, u0, c, at);
           },
           store);
  }

  void gemm(const GemmSpec& g) {
    const int R = cfg_.mac_array.rows, C = cfg_.mac_array.cols;
    const std::uint64_t gran = std::lcm(std::uint64_t(C), std::uint64_t(8));  // column blocks start on bytes
    // B's panel for nb columns: in place when resident and contiguous (rows of
    // an n_by_k B, or all of a k_by_n B).
    auto b_in_place = [&](std::uint64_t nb) {
      return g.b.resident() && (g.b_layout == BLayout::n_by_k || nb == g.n);
    };
    auto b_panel = [&](std::uint64_t nb) -> std::uint64_t {
      if (b_in_place(nb)) return 0;
      return g.b_layout == BLayout::n_by_k ? nb * g.b.pitch() : g.k * g.b.pitch_of(nb);
    };
    auto fixed_of = [&](std::uint64_t nb) {
      return align_up(b_panel(nb), kAlign) + (g.bias ? align_up(4 * nb, kAlign) : 0);
    };
    // C (int32, then f32 in place) lives in `out` when that is resident, else in the slot.
    const Tensor* c_home = g.out;
    auto opt = [&](const Tensor* t, std::uint64_t nb) { return t ? need(*t, nb) : 0; };
    auto per_row = [&](std::uint64_t nb) {
      return need(g.a, g.a.cols) + (c_home ? need(*c_home, nb) : 4 * nb) + opt(g.act, nb) + opt(g.relu_mask, nb) +
             opt(g.clip_mask, nb) + opt(g.relu_grad, nb) + opt(g.sgd_w, nb) + opt(g.sgd_buf, nb);
    };
    const int buffers = 8;
    const std::string what = fmt::format("GEMM {} ({} x {} x {})", name(g.role), g.m, g.n, g.k);
    // Whether the smallest whole-K tiling below would fit with nothing
    // resident (every operand streamed from DRAM): then a GEMM that does not
    // fit gives up a resident tensor (too_small), else it runs in K-chunks.
    auto whole_k_fits_alone = [&] {
      const std::uint64_t nb = std::min(g.n, gran);
      auto streamed = [&](const Tensor* t) { return t ? t->pitch_of(nb) : 0; };
      const std::uint64_t panel = g.b_layout == BLayout::n_by_k ? nb * g.b.pitch() : g.k * g.b.pitch_of(nb);
      const std::uint64_t fixed = align_up(panel, kAlign) + (g.bias ? align_up(4 * nb, kAlign) : 0);
      const std::uint64_t row = g.a.pitch() + 4 * nb + streamed(g.act) + streamed(g.relu_mask) +
                                streamed(g.clip_mask) + streamed(g.relu_grad) + streamed(g.sgd_w) + streamed(g.sgd_buf);
      const std::uint64_t alone = sram_top_ - scalars_bytes_;
      return fixed < alone && fit((alone - fixed) / kAlign * kAlign, row, g.m, std::uint64_t(R), buffers) > 0;
    };
    // All of B resident if the A rows of at least one fold fit beside it (else
    // fewer columns, and A is read once per column block); passes
    // double-buffered if they fit twice.
    std::uint64_t nb = g.n, mb = 0;
    int slots = 2;
    bool k_chunks = false;
    for (;;) {
      for (slots = 2; slots >= 1; --slots) {
        mb = fit(slot_bytes(fixed_of(nb), slots), per_row(nb), g.m, std::uint64_t(R), buffers);
        if (mb > 0) break;
      }
      if (mb > 0) break;
      const std::uint64_t smaller = (nb - 1) / gran * gran;
      if (nb <= gran || smaller == 0) {
        if (whole_k_fits_alone())
          too_small(what, fixed_of(nb), std::min<std::uint64_t>(g.m, R) * per_row(nb), buffers);
        k_chunks = true;
        break;
      }
      nb = smaller;
    }
    // The K-chunk plan (below): its chunks and block.
    const AccumulatorConfig acc = hdqt_.acc(g.role);
    const bool one_tile = std::uint64_t(tile_length(acc, int(g.k))) == g.k;  // then K cannot be cut
    const std::uint64_t kgran = std::lcm(std::uint64_t(acc.tile), std::uint64_t(8));
    // A's rows [k0, k0 + kc) (in place only when kc is all of K) and B's chunk for nb columns.
    auto a_chunk = [&](std::uint64_t rows, std::uint64_t kc) { return rows * need(g.a, kc); };
    auto b_chunk = [&](std::uint64_t cols, std::uint64_t kc) {
      return g.b_layout == BLayout::n_by_k ? cols * need(g.b, kc) : kc * need(g.b, cols);
    };
    auto chunk_bytes = [&](std::uint64_t rows, std::uint64_t cols, std::uint64_t kc) {
      return align_up(a_chunk(rows, kc), kAlign) + align_up(b_chunk(cols, kc), kAlign);
    };
    // The block's buffers (C and the epilogue's, those not in place) and the bias.
    auto block_bytes = [&](std::uint64_t rows, std::uint64_t cols) {
      auto buf = [&](const Tensor* t) { return t ? align_up(rows * need(*t, cols), kAlign) : 0; };
      return (g.bias ? align_up(4 * cols, kAlign) : 0) + (c_home ? buf(c_home) : align_up(rows * 4 * cols, kAlign)) +
             buf(g.act) + buf(g.relu_mask) + buf(g.clip_mask) + buf(g.relu_grad) + buf(g.sgd_w) + buf(g.sgd_buf);
    };
    // The largest kc (all of K, or a multiple of kgran, at most overlap_cap) whose chunks fit a slot; 0 if none.
    auto largest_kc = [&](std::uint64_t rows, std::uint64_t cols, std::uint64_t avail) -> std::uint64_t {
      auto fits = [&](std::uint64_t kc) { return chunk_bytes(rows, cols, kc) + 2 * kAlign <= avail; };
      // Bits per unit of kc, to start near the answer (pitches round up, so step down from there).
      const std::uint64_t bits = rows * std::uint64_t(g.a.bits) +
                                 (g.b_layout == BLayout::n_by_k ? cols * std::uint64_t(g.b.bits) : 8 * need(g.b, cols));
      const std::uint64_t most = overlap_cap(g.k, ceil_div(bits, 8), kgran);
      if (most == g.k && fits(g.k)) return g.k;
      std::uint64_t kc = std::min(most == g.k ? g.k - 1 : most, avail * 8 / bits) / kgran * kgran;
      while (kc > 0 && !fits(kc)) kc -= kgran;
      return kc;
    };
    // The overlap rule (overlap_cap()) for B's panel: the whole-K plan loads it
    // before any work on it, so a large streamed panel runs in K-chunks
    // instead (A and B double-buffered) when the whole C fits as one block
    // (A and B are then each read once, as with one whole-K panel), the panel
    // makes at least two chunks (4 x kOverlapBytes) and C's int32 sums, which
    // each K-chunk reads and writes again in SRAM, are no larger than it.
    if (!k_chunks && !b_in_place(nb) && b_panel(nb) >= std::max(4 * kOverlapBytes, 4 * g.m * g.n) && !one_tile) {
      const std::uint64_t block = block_bytes(g.m, g.n);
      k_chunks = block <= slot_bytes(0, 1) / 2 && largest_kc(g.m, g.n, slot_bytes(block, 2)) > 0;
    }
    // One pass's buffers in a slot (those not in place).
    struct Pass {
      std::uint32_t a, c, act, relu, clip, grad, w, buf;
    };
    std::uint64_t j0 = 0, nj = 0;
    auto pass_at = [&](std::uint64_t i0, std::uint32_t at, bool with_a = true) {
      Pass p{};
      std::uint64_t off = at;
      auto take = [&](const Tensor* t, std::uint64_t c0, std::uint64_t nc, std::uint64_t bytes_per_row) {
        const std::uint32_t a = std::uint32_t(off);
        if (t && in_place(*t, c0, nc)) return where(*t, i0, c0, nc, a);
        off += align_up(mb * bytes_per_row, kAlign);
        return a;
      };
      if (with_a) p.a = take(&g.a, 0, g.a.cols, g.a.pitch());
      p.c = take(c_home, j0, nj, 4 * nj);
      if (g.act) p.act = take(g.act, j0, nj, 4 * nj);
      if (g.relu_mask) p.relu = take(g.relu_mask, j0, nj, mask_pitch(nj));
      if (g.clip_mask) p.clip = take(g.clip_mask, j0, nj, mask_pitch(nj));
      if (g.relu_grad) p.grad = take(g.relu_grad, j0, nj, mask_pitch(nj));
      if (g.sgd_w) p.w = take(g.sgd_w, j0, nj, 4 * nj);
      if (g.sgd_buf) p.buf = take(g.sgd_buf, j0, nj, 4 * nj);
      return p;
    };

    MacDescriptor mac;
    mac.a_record = g.a_record;
    mac.b_record = g.b_record;
    mac.stats = stats(layer_, g.role);
    stats_written_[std::size_t(layer_) * kGemmRoles + std::size_t(g.role)] = true;
    mac.k = std::uint32_t(g.k);
    mac.a_bits = std::uint8_t(g.a.bits);
    mac.b_bits = std::uint8_t(g.b.bits);
    mac.b_layout = g.b_layout;
    mac.set_accumulator(hdqt_.acc(g.role));
    mac.dataflow = choose_dataflow(cfg_.mac_array.dataflow, g.m, g.n, g.k, R, C);
    VectorDescriptor v;
    v.factors = std::uint8_t(g.factors.size());
    for (std::size_t i = 0; i < g.factors.size(); ++i) {
      v.factor_record[i] = g.factors[i].record;
      v.factor_value[i] = g.factors[i].value;
    }
    v.flags = std::uint8_t((g.bias ? kVecBias : 0) | (g.act ? kVecRelu : 0) | (g.clip_mask ? kVecClipMask : 0) |
                           (g.relu_grad ? kVecReluGrad : 0) | (g.relu_mask ? kVecReluMask : 0));
    VectorDescriptor sgd = sgd_descriptor();
    bool first = true;

    // A block's inputs besides A (masks, W and its momentum for the fused update).
    auto load_block = [&](const Pass& p, std::uint64_t i0, std::uint64_t mi) {
      if (g.clip_mask) copy_in(*g.clip_mask, i0, mi, j0, nj, p.clip);
      if (g.relu_grad) copy_in(*g.relu_grad, i0, mi, j0, nj, p.grad);
      if (g.sgd_w) copy_in(*g.sgd_w, i0, mi, j0, nj, p.w);
      if (g.sgd_buf && !s_.first_update) copy_in(*g.sgd_buf, i0, mi, j0, nj, p.buf);
    };
    // After a block's C is complete: dequantization with its bias and masks,
    // the fused SGD update and the next step's max |W|.
    auto epilogue = [&](const Pass& p, std::uint64_t i0, std::uint64_t mi) {
      v.src = v.dst = p.c;
      v.aux1 = p.act;
      v.aux2 = p.clip;
      v.aux3 = g.relu_mask ? p.relu : p.grad;
      v.rows = std::uint32_t(mi);
      v.cols = std::uint32_t(nj);
      emit(Unit::vector, kVecDequant, v);
      if (g.sgd_w) {  // the update in the write-back of dW
        const Phase phase = phase_;
        phase_ = Phase::update;
        sgd.src = p.c;
        sgd.dst = p.w;
        sgd.aux0 = p.buf;
        sgd.rows = std::uint32_t(mi);
        sgd.cols = std::uint32_t(nj);
        emit(Unit::vector, kVecSgd, sgd);
        if (g.keep_max != kNoRecord) {  // the next step's max |W|, while the block is on chip
          QuantizerDescriptor q = quantizer(QuantRole::fwd_w);
          q.record = g.keep_max;
          q.src = p.w;
          q.rows = std::uint32_t(mi);
          q.cols = std::uint32_t(nj);
          q.first_index = i0 * g.n + j0;
          q.row_stride = std::uint32_t(g.n);
          q.init = i0 == 0 && j0 == 0;
          emit(Unit::quantizer, kQuantReduceKeep, q);
        }
        phase_ = phase;
      }
    };
    auto store_block = [&](const Pass& p, std::uint64_t i0, std::uint64_t mi) {
      if (c_home) copy_out(*c_home, i0, mi, j0, nj, p.c);
      if (g.host) copy_out(*g.host, i0, mi, j0, nj, p.c);
      if (g.act) copy_out(*g.act, i0, mi, j0, nj, p.act);
      if (g.relu_mask) copy_out(*g.relu_mask, i0, mi, j0, nj, p.relu);
      if (g.sgd_w) {
        const Phase phase = phase_;
        phase_ = Phase::update;
        copy_out(*g.sgd_w, i0, mi, j0, nj, p.w);
        copy_out(*g.sgd_buf, i0, mi, j0, nj, p.buf);
        phase_ = phase;
      }
    };
    if (k_chunks) {
      // K-chunks (docs/npu.md "K-chunked GEMMs"): a block of C (mb x nb,
      // int32) stays in SRAM while the chunks [k0, k0 + kc) of its A rows
      // and B columns stream through the slots, each a MAC command that
      // continues C (accumulate); then the block's epilogue as above. kc is
      // a multiple of the tile t' (tiles never straddle chunks, so only the
      // outer accumulator carries over: the bits of one command) and of 8
      // (K-slices of packed rows start on bytes).
      if (one_tile)
        too_small(fmt::format("{} (gemm.{}.tile = {} makes the whole K one tile, which cannot be cut into K-chunks)",
                              what, name(g.role), acc.tile),
                  fixed_of(std::min(g.n, gran)), std::min<std::uint64_t>(g.m, R) * per_row(std::min(g.n, gran)),
                  buffers);
      // The whole C as one block if it leaves at least half the arena to the
      // chunks, else fewer rows (multiples of R), then fewer columns (of gran).
      mb = g.m, nb = g.n;
      std::uint64_t kc = 0;
      for (;;) {
        const std::uint64_t fixed = block_bytes(mb, nb);
        if (fixed <= slot_bytes(0, 1) / 2)
          for (slots = 2; slots >= 1; --slots)
            if ((kc = largest_kc(mb, nb, slot_bytes(fixed, slots))) > 0) break;
        if (kc > 0) break;
        if (mb > std::uint64_t(R)) mb = std::max<std::uint64_t>(R, mb / 2 / R * R);
        else if (nb > gran) nb = std::max(gran, nb / 2 / gran * gran);
        else too_small(what + " in K-chunks", fixed, chunk_bytes(mb, nb, kgran), 2);
      }
      const std::uint64_t fixed = block_bytes(mb, nb), a_buf = align_up(a_chunk(mb, kc), kAlign);
      const std::uint32_t bias_at = arena(0), block_at = arena(g.bias ? align_up(4 * nb, kAlign) : 0);
      mac.dataflow = choose_dataflow(cfg_.mac_array.dataflow, g.m, g.n, kc, R, C);
      for (j0 = 0; j0 < g.n; j0 += nb) {
        nj = std::min(nb, g.n - j0);
        if (g.bias) {
          copy_in(*g.bias, 0, 1, j0, nj, bias_at);
          v.aux0 = where(*g.bias, 0, j0, nj, bias_at);
        }
        for (std::uint64_t i0 = 0; i0 < g.m; i0 += mb) {
          const std::uint64_t mi = std::min(mb, g.m - i0);
          const Pass p = pass_at(i0, block_at, false);
          load_block(p, i0, mi);
          auto b_at = [&](std::uint64_t k0, std::uint64_t kk, std::uint32_t at) {
            return g.b_layout == BLayout::n_by_k ? where(g.b, j0, k0, kk, std::uint32_t(at + a_buf))
                                                 : where(g.b, k0, j0, nj, std::uint32_t(at + a_buf));
          };
          stream(
              g.k, kc, fixed, slots,
              [&](std::uint64_t k0, std::uint64_t kk, std::uint32_t at) {
                copy_in(g.a, i0, mi, k0, kk, at);
                if (g.b_layout == BLayout::n_by_k) copy_in(g.b, j0, nj, k0, kk, b_at(k0, kk, at));
                else copy_in(g.b, k0, kk, j0, nj, b_at(k0, kk, at));
              },
              [&](std::uint64_t k0, std::uint64_t kk, std::uint32_t at) {
                mac.a = where(g.a, i0, k0, kk, at);
                mac.b = b_at(k0, kk, at);
                mac.b_panel = next_b_panel();
                mac.c = p.c;
                mac.m = std::uint32_t(mi);
                mac.n = std::uint32_t(nj);
                mac.k = std::uint32_t(kk);
                mac.init_stats = first;
                mac.accumulate = k0 != 0;
                first = false;
                emit(Unit::mac_array, kMacGemm, mac);
              },
              [](std::uint64_t, std::uint64_t, std::uint32_t) {});
          epilogue(p, i0, mi);
          store_block(p, i0, mi);
        }
      }
      return;
    }

    const std::uint64_t fixed = fixed_of(nb);
    const std::uint32_t b_buf = arena(0), bias_at = arena(align_up(b_panel(nb), kAlign));
    v.aux0 = bias_at;
    for (j0 = 0; j0 < g.n; j0 += nb) {
      nj = std::min(nb, g.n - j0);
      mac.b_panel = next_b_panel();  // the same B for every row block of these columns
      if (b_in_place(nb)) mac.b = std::uint32_t(g.b_layout == BLayout::n_by_k ? g.b.addr + j0 * g.b.pitch() : g.b.addr);
      else {
        mac.b = b_buf;
        if (g.b_layout == BLayout::n_by_k) copy_in(g.b, j0, nj, 0, g.b.cols, b_buf);
        else copy_in(g.b, 0, g.k, j0, nj, b_buf);
      }
      if (g.bias) {
        copy_in(*g.bias, 0, 1, j0, nj, bias_at);
        v.aux0 = where(*g.bias, 0, j0, nj, bias_at);  // in place when resident and whole
      }
      stream(
          g.m, mb, fixed, slots,
          [&](std::uint64_t i0, std::uint64_t mi, std::uint32_t at) {
            const Pass p = pass_at(i0, at);
            copy_in(g.a, i0, mi, 0, g.a.cols, p.a);
            load_block(p, i0, mi);
          },
          [&](std::uint64_t i0, std::uint64_t mi, std::uint32_t at) {
            const Pass p = pass_at(i0, at);
            mac.a = p.a;
            mac.c = p.c;
            mac.m = std::uint32_t(mi);
            mac.n = std::uint32_t(nj);
            mac.init_stats = first;
            first = false;
            emit(Unit::mac_array, kMacGemm, mac);
            epilogue(p, i0, mi);
          },
          [&](std::uint64_t i0, std::uint64_t mi, std::uint32_t at) { store_block(pass_at(i0, at), i0, mi); });
    }
  }

  void softmax(const Tensor& logits, const Tensor& labels, const Tensor& active, const Tensor& grad) {
    const std::uint64_t l_bytes = align_up(need(logits, logits.cols) * logits.rows, kAlign),
                        g_bytes = align_up(need(grad, grad.cols) * grad.rows, kAlign);
    const std::uint64_t need_bytes = l_bytes + align_up(labels.bytes(), kAlign) + align_up(active.bytes(), kAlign) + g_bytes;
    const int slots = slots_for(need_bytes);
    if (slots == 0) too_small("softmax cross-entropy of the whole batch", 0, need_bytes, 0);
    VectorDescriptor v;
    v.rows = std::uint32_t(logits.rows);
    v.cols = std::uint32_t(logits.cols);
    v.aux2 = loss();
    stream(1, 1, 0, slots,
           [&](std::uint64_t, std::uint64_t, std::uint32_t at) {
             v.src = where(logits, 0, 0, logits.cols, at);
             v.aux0 = std::uint32_t(at + l_bytes);
             v.aux1 = std::uint32_t(v.aux0 + align_up(labels.bytes(), kAlign));
             v.dst = where(grad, 0, 0, grad.cols, std::uint32_t(v.aux1 + align_up(active.bytes(), kAlign)));
             copy_in(logits, 0, logits.rows, 0, logits.cols, v.src);
             copy_in(labels, 0, 1, 0, labels.cols, v.aux0);
             copy_in(active, 0, 1, 0, active.cols, v.aux1);
           },
           [&](std::uint64_t, std::uint64_t, std::uint32_t) { emit(Unit::vector, kVecSoftmax, v); },
           [&](std::uint64_t, std::uint64_t, std::uint32_t) { copy_out(grad, 0, grad.rows, 0, grad.cols, v.dst); });
  }

  // db = column sums of G into the layer's accumulator in the record area.
  void column_sum(const Tensor& g) {
    const std::uint64_t per_row = need(g, g.cols);
    const int slots = slots_for(per_row + kAlign);
    if (slots == 0) too_small("bias gradient", 0, per_row, 1);
    const std::uint64_t rows = fit(slot_bytes(0, slots), per_row, g.rows, 1, 1);
    VectorDescriptor v;
    v.dst = db(layer_);
    v.cols = std::uint32_t(g.cols);
    stream(g.rows, rows, 0, slots, [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) { copy_in(g, r0, n, 0, g.cols, at); },
           [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) {
             v.src = where(g, r0, 0, g.cols, at);
             v.rows = std::uint32_t(n);
             v.flags = r0 == 0 ? kVecInit : 0;
             emit(Unit::vector, kVecColumnSum, v);
           },
           [](std::uint64_t, std::uint64_t, std::uint32_t) {});
  }

  // SGD on a bias b (DRAM) with its gradient in the record area at g_sram and
  // its momentum buffer buf (DRAM); weights are updated in their dW's write-back.
  void sgd_bias(const Tensor& b, std::uint32_t g_sram, const Tensor& buf) {
    if (b.resident() && buf.resident()) {  // the state on chip: in place
      VectorDescriptor v = sgd_descriptor();
      v.rows = 1;
      v.cols = std::uint32_t(b.cols);
      v.src = g_sram;
      v.dst = std::uint32_t(b.addr);
      v.aux0 = std::uint32_t(buf.addr);
      emit(Unit::vector, kVecSgd, v);
      return;
    }
    const std::uint64_t need_bytes = align_up(b.bytes(), kAlign) + align_up(buf.bytes(), kAlign);
    const int slots = slots_for(need_bytes);
    if (slots == 0) too_small("bias update", 0, need_bytes, 0);
    VectorDescriptor v = sgd_descriptor();
    v.rows = 1;
    v.cols = std::uint32_t(b.cols);
    v.src = g_sram;
    stream(1, 1, 0, slots,
           [&](std::uint64_t, std::uint64_t, std::uint32_t at) {
             v.dst = at;
             v.aux0 = std::uint32_t(at + align_up(b.bytes(), kAlign));
             copy_in(b, 0, 1, 0, b.cols, v.dst);
             if (!s_.first_update) copy_in(buf, 0, 1, 0, buf.cols, v.aux0);
           },
           [&](std::uint64_t, std::uint64_t, std::uint32_t) { emit(Unit::vector, kVecSgd, v); },
           [&](std::uint64_t, std::uint64_t, std::uint32_t) {
             copy_out(b, 0, 1, 0, b.cols, v.dst);
             copy_out(buf, 0, 1, 0, buf.cols, v.aux0);
           });
  }

  // A layer operation of the vector unit (sim/blocks/layer_ops.h) over
  // `samples` samples of its operands, operand i at the descriptor's addr[i]:
  // each holds `rows` rows per sample; chunks of whole samples stream through
  // the slots after the first `fixed` bytes of the arena, inputs loaded and
  // outputs stored per chunk (in place when resident). rows = 0: a vector
  // resident in SRAM (scratch_vector) that every chunk uses in place.
  struct SampleOperand {
    const Tensor* t = nullptr;
    std::uint64_t rows = 1;
    bool out = false;
  };
  void sample_op(std::uint32_t opcode, LayerDescriptor d, std::uint64_t samples, std::initializer_list<SampleOperand> list,
                 std::uint64_t fixed = 0) {
    const std::vector<SampleOperand> ops(list);
    std::uint64_t per = 0;
    for (const SampleOperand& o : ops) per += need(*o.t, o.t->cols) * o.rows;
    const int buffers = int(ops.size());
    int slots = 2;
    std::uint64_t n = fit(slot_bytes(fixed, 2), per, samples, 1, buffers);
    if (n == 0) {
      slots = 1;
      n = fit(slot_bytes(fixed, 1), per, samples, 1, buffers);
    }
    if (n == 0) too_small(fmt::format("layer operation {} of one sample", opcode), fixed, per, buffers);
    auto buf = [&](std::size_t i, std::uint64_t s0, std::uint32_t at) {
      if (ops[i].rows == 0) return std::uint32_t(ops[i].t->addr);
      std::uint64_t off = at;
      for (std::size_t j = 0; j < i; ++j) off += align_up(n * ops[j].rows * need(*ops[j].t, ops[j].t->cols), kAlign);
      return where(*ops[i].t, s0 * ops[i].rows, 0, ops[i].t->cols, std::uint32_t(off));
    };
    stream(samples, n, fixed, slots,
           [&](std::uint64_t s0, std::uint64_t c, std::uint32_t at) {
             for (std::size_t i = 0; i < ops.size(); ++i)
               if (!ops[i].out && ops[i].rows > 0)
                 copy_in(*ops[i].t, s0 * ops[i].rows, c * ops[i].rows, 0, ops[i].t->cols, buf(i, s0, at));
           },
           [&](std::uint64_t s0, std::uint64_t c, std::uint32_t at) {
             for (std::size_t i = 0; i < ops.size(); ++i) d.addr[i] = buf(i, s0, at);
             d.samples = std::uint32_t(c);
             d.first = std::uint32_t(s0);
             emit(Unit::vector, opcode, d);
           },
           [&](std::uint64_t s0, std::uint64_t c, std::uint32_t at) {
             for (std::size_t i = 0; i < ops.size(); ++i)
               if (ops[i].out && ops[i].rows > 0)
                 copy_out(*ops[i].t, s0 * ops[i].rows, c * ops[i].rows, 0, ops[i].t->cols, buf(i, s0, at));
           });
  }
  // col2im of D (N*P x K f32, the dX columns) into dX (N x C*H*W f32), dX =
  // +0 where the clip mask (N x C*H*W bits) is set when `clip` is given.
  // Whole samples (sample_op) when one sample's operands fit the arena; else
  // by groups of channels: channel c's outputs read only its own columns k =
  // (c*kh + i)*kw + j (docs/contract.md §9), so the column slice of a group's
  // channels (strided rows of D) is the D of the same convolution on those
  // channels, and gives their block of dX with the same terms in the same p
  // order (the same bits).
  void col2im(const ConvGeometry& g, std::uint64_t N, const Tensor& d, const Tensor& dx, const Tensor* clip) {
    LayerDescriptor op;
    op.set(g);
    if (clip) op.flags = kLayerClip;
    const std::uint64_t P = std::uint64_t(g.positions()), C = std::uint64_t(g.in_channels);
    const std::uint64_t taps = std::uint64_t(g.kernel_h) * std::uint64_t(g.kernel_w);
    const std::uint64_t hw = std::uint64_t(g.in_h) * std::uint64_t(g.in_w);
    const int buffers = clip ? 3 : 2;
    // One sample's bytes of a group of gc channels.
    auto per = [&](std::uint64_t gc) {
      return P * need(d, gc * taps) + need(dx, gc * hw) + (clip ? need(*clip, gc * hw) : 0);
    };
    if (fit(slot_bytes(0, 1), per(C), N, 1, buffers) > 0) {
      if (clip)
        sample_op(kLayerCol2im, op, N, {{&d, P, false}, {&dx, 1, true}, {clip, 1, false}});
      else
        sample_op(kLayerCol2im, op, N, {{&d, P, false}, {&dx, 1, true}});
      return;
    }
    // The largest group (a multiple of `step` channels, so that a group's
    // mask bits start on a byte) of one sample in one of two slots, else in one.
    const std::uint64_t step = clip ? 8 / std::gcd<std::uint64_t>(hw, 8) : 1;
    int slots = 0;
    std::uint64_t gc = 0;
    for (const int s : {2, 1}) {
      for (std::uint64_t c = step; c < C && fit(slot_bytes(0, s), per(c), 1, 1, buffers) > 0; c += step) gc = c;
      if (gc > 0) {
        slots = s;
        break;
      }
    }
    if (gc == 0) {
      const std::uint64_t least = std::min(step, C);
      too_small(fmt::format("col2im of {} channel(s) of one sample", least), 0, per(least), buffers);
    }
    const std::uint64_t n = fit(slot_bytes(0, slots), per(gc), N, 1, buffers);
    for (std::uint64_t c0 = 0; c0 < C; c0 += gc) {
      const std::uint64_t nc = std::min(gc, C - c0), dcols = nc * taps, xcols = nc * hw;
      ConvGeometry part = g;
      part.in_channels = int(nc);
      LayerDescriptor pd = op;
      pd.set(part);
      auto at_x = [&](std::uint32_t at) { return std::uint32_t(at + align_up(n * P * d.pitch_of(dcols), kAlign)); };
      auto at_m = [&](std::uint32_t at) { return std::uint32_t(at_x(at) + align_up(n * dx.pitch_of(xcols), kAlign)); };
      stream(N, n, 0, slots,
             [&](std::uint64_t s0, std::uint64_t c, std::uint32_t at) {
               copy_in(d, s0 * P, c * P, c0 * taps, dcols, at);
               if (clip) copy_in(*clip, s0, c, c0 * hw, xcols, at_m(at));
             },
             [&](std::uint64_t s0, std::uint64_t c, std::uint32_t at) {
               pd.addr[0] = at;
               pd.addr[1] = at_x(at);
               pd.addr[2] = clip ? at_m(at) : 0;
               pd.samples = std::uint32_t(c);
               pd.first = std::uint32_t(s0);
               emit(Unit::vector, kLayerCol2im, pd);
             },
             [&](std::uint64_t s0, std::uint64_t c, std::uint32_t at) { copy_out(dx, s0, c, c0 * hw, xcols, at_x(at)); });
    }
  }
  // One layer operation on vectors already in SRAM.
  void vector_op(std::uint32_t opcode, const LayerDescriptor& d) { emit(Unit::vector, opcode, d); }
  // Vector k (1 x cols f32) of a scratch area at the bottom of the arena,
  // which sample_op's `fixed` = scratch_bytes(k vectors) keeps clear. Valid
  // until the next operation without that `fixed`.
  std::uint64_t scratch_bytes(int vectors, std::uint64_t cols) const { return std::uint64_t(vectors) * align_up(4 * cols, kAlign); }
  Tensor scratch_vector(int k, std::uint64_t cols) const {
    Tensor t{arena(scratch_bytes(k, cols)), 1, cols, Fmt::f32};
    t.space = Space::sram;
    if (scratch_bytes(k + 1, cols) > arena_) too_small("per-channel vectors", 0, scratch_bytes(k + 1, cols), 0);
    return t;
  }
  // The SRAM of the record area's bias-gradient accumulator of layer l (1 x cols f32).
  Tensor db_tensor(int l, std::uint64_t cols) const {
    Tensor t{db(l), 1, cols, Fmt::f32};
    t.space = Space::sram;
    return t;
  }
  // SGD on a small vector w (1 x n) with its gradient g and momentum buffer, all outside SRAM.
  void sgd_vector(const Tensor& w, const Tensor& g, const Tensor& buf) {
    const std::uint64_t bytes = align_up(w.bytes(), kAlign);
    const int slots = slots_for(3 * bytes);
    if (slots == 0) too_small("vector update", 0, 3 * bytes, 0);
    VectorDescriptor v = sgd_descriptor();
    v.rows = 1;
    v.cols = std::uint32_t(w.cols);
    stream(1, 1, 0, slots,
           [&](std::uint64_t, std::uint64_t, std::uint32_t at) {
             v.dst = at;
             v.src = std::uint32_t(at + bytes);
             v.aux0 = std::uint32_t(at + 2 * bytes);
             copy_in(w, 0, 1, 0, w.cols, v.dst);
             copy_in(g, 0, 1, 0, g.cols, v.src);
             if (!s_.first_update) copy_in(buf, 0, 1, 0, buf.cols, v.aux0);
           },
           [&](std::uint64_t, std::uint64_t, std::uint32_t) { emit(Unit::vector, kVecSgd, v); },
           [&](std::uint64_t, std::uint64_t, std::uint32_t) {
             copy_out(w, 0, 1, 0, w.cols, v.dst);
             copy_out(buf, 0, 1, 0, buf.cols, v.aux0);
           });
  }

  // Copies a record area saved by an earlier job (its forward pass) into SRAM.
  void restore_records(const Tensor& saved) {
    dma(Space::dram, saved.addr, record_bytes_, Space::sram, 0, record_bytes_, 1, record_bytes_);
  }

  // The record area (scales, statistics, loss, bias gradients) to DRAM.
  Tensor save_records() {
    const Tensor t = dram(1, record_bytes_, Fmt::bytes);
    dma(Space::sram, 0, record_bytes_, Space::dram, t.addr, record_bytes_, 1, record_bytes_);
    return t;
  }

  // ---- max |W| carried across steps (docs/npu.md, "Across jobs")
  // This step reduces max |W| of the updated weights (carries()) / its Q(W)
  // finalizes from the previous step's (carried()).
  bool carries() const { return carries_; }
  bool carried() const { return carried_; }
  std::uint32_t carry_record(int layer) const { return std::uint32_t(carry_ + std::uint64_t(layer) * sizeof(QuantRecord)); }
  // Layer l's Wq for this step was rounded by the previous one (in wq_home(l)).
  bool carried_wq(int l) const { return (carried_wq_ >> l) & 1u; }
  // This step may round layer l's updated W into the next step's Wq: W
  // stays resident from its update to the rounding (candidate Keep::w).
  bool may_carry_wq(int l) const { return carries_ && l < 32 && !off_.count(keep_id(Keep::w, l)); }
  const Tensor& wq_home(int l) const { return wq_home_[std::size_t(l)]; }
  void carry_wq(int l, const Tensor& w) {
    job_.carries_wq |= 1u << l;
    job_.carry_credit += w.bytes() - wq_home_[std::size_t(l)].bytes();
  }
  void finalize(QuantRole role) { emit(Unit::quantizer, kQuantFinalize, quantizer(role)); }
  // The previous step's carry records into every layer's fwd_w record (one 2-D copy).
  void load_carried_max(std::uint64_t layers) {
    dma(Space::dram, carry_home_.addr, sizeof(QuantRecord), Space::sram, record(0, QuantRole::fwd_w),
        std::uint64_t(kQuantRoles) * sizeof(QuantRecord), layers, sizeof(QuantRecord));
  }
  // This step's carry records to their DRAM home; returns it (the host reads whether they are finite).
  const Tensor& store_carry() {
    dma(Space::sram, carry_, carry_home_.bytes(), Space::dram, carry_home_.addr, carry_home_.bytes(), 1,
        carry_home_.bytes());
    return carry_home_;
  }

  // Places the queue and closes the job.
  void finish() {
    job_.commands = std::move(commands_);
    job_.queue_addr = align_up(dram_top_, kAlign);
    job_.dram_bytes = job_.queue_addr + job_.commands.size() * kCommandBytes;
    job_.dram_bytes_without_reuse = align_up(unshared_top_, kAlign) + job_.commands.size() * kCommandBytes;
    if (job_.dram_bytes > cfg_.dram.size_bytes)
      throw NpuConfigError(fmt::format(
          "{}: dram.size_bytes = {} is too small: this step needs {} bytes of DRAM ({} without reuse within the job)",
          cfg_.file, cfg_.dram.size_bytes, job_.dram_bytes, job_.dram_bytes_without_reuse));
  }

 private:
  struct Block {
    std::uint64_t addr = 0, bytes = 0;
    int id = 0;
  };

  using Ranges = std::map<std::uint64_t, std::uint64_t>;  // DRAM ranges: address -> bytes
  // [addr, addr + bytes) was given back at some point of the job.
  bool reused(std::uint64_t addr, std::uint64_t bytes) const {
    return bytes > 0 && std::ranges::any_of(given_back_, [&](const std::pair<std::uint64_t, std::uint64_t>& g) {
             return g.first < addr + bytes && addr < g.first + g.second;
           });
  }
  // A range back into the free list, merged with its neighbours.
  void give_back(std::uint64_t addr, std::uint64_t bytes) {
    if (bytes == 0) return;
    for (const HostWrite& w : job_.loads)
      if (w.mapped && w.addr < addr + bytes && addr < w.addr + w.bytes.size())
        throw std::logic_error("npu: DRAM mapped onto the host's bytes given back for reuse");
    given_back_.emplace_back(addr, bytes);
    auto next = free_.lower_bound(addr);
    if (next != free_.end() && next->first == addr + bytes) {
      bytes += next->second;
      next = free_.erase(next);
    }
    if (next != free_.begin() && std::prev(next)->first + std::prev(next)->second == addr) {
      std::prev(next)->second += bytes;
      return;
    }
    free_.emplace(addr, bytes);
  }

  static Tensor pinned(std::uint64_t addr, std::uint64_t rows, std::uint64_t cols) {
    Tensor t{addr, rows, cols, Fmt::f32};
    t.space = Space::sram;
    return t;
  }
  // An f32 tensor resident at a fixed SRAM address (the state's layout).
  Tensor pin(int id, std::uint64_t addr, std::uint64_t rows, std::uint64_t cols) {
    const Tensor t = pinned(addr, rows, cols);
    heap_.push_back({addr, align_up(t.bytes(), kAlign), id});
    std::sort(heap_.begin(), heap_.end(), [](const Block& x, const Block& y) { return x.addr < y.addr; });
    arena_ = lowest() - scalars_bytes_;
    return t;
  }

  template <typename D>
  void emit(Unit unit, std::uint32_t opcode, const D& d) {
    Command c = Command::make(unit, phase_, layer_, opcode, d);
    c.header.id = std::uint32_t(commands_.size());
    commands_.push_back(c);
  }

  QuantizerDescriptor quantizer(QuantRole role, bool next_step = false) const {
    QuantizerDescriptor d;
    d.set_config(hdqt_.q(role));
    d.role = std::uint8_t(role);
    d.record = record(layer_, role);
    // Layer l of network n is HDQT layer n * kLayersPerNet + l (hdqt_mlp.h).
    const std::uint64_t hdqt_layer = std::uint64_t(s_.net) * kLayersPerNet + std::uint64_t(layer_);
    d.key = RandomStream{s_.seed, 8 * hdqt_layer + std::uint64_t(role), step_ + (next_step ? 1 : 0)}.key();
    return d;
  }

  VectorDescriptor sgd_descriptor() const {
    VectorDescriptor v;
    v.lr = s_.sgd.lr;
    v.momentum = s_.sgd.momentum;
    v.weight_decay = s_.sgd.weight_decay;
    v.flags = s_.first_update ? kVecInit : 0;
    return v;
  }

  void dma(Space ss, std::uint64_t src, std::uint64_t src_pitch, Space ds, std::uint64_t dst, std::uint64_t dst_pitch,
           std::uint64_t rows, std::uint64_t row_bytes, bool host_copy = false) {
    if (rows == 0 || row_bytes == 0) return;
    DmaDescriptor d;
    d.src = src;
    d.dst = dst;
    d.src_pitch = src_pitch;
    d.dst_pitch = dst_pitch;
    d.rows = std::uint32_t(rows);
    d.row_bytes = std::uint32_t(row_bytes);
    d.src_space = ss;
    d.dst_space = ds;
    emit(Unit::dma, host_copy ? kDmaHostCopy : kDmaCopy, d);
  }

  // Rows [r0, r0 + n) x columns [c0, c0 + nc) of t are where a block wants
  // them (contiguous in SRAM) without a copy.
  static bool in_place(const Tensor& t, std::uint64_t c0, std::uint64_t nc) {
    return t.resident() && c0 == 0 && nc == t.cols;
  }
  // Bytes per row a chunk of nc columns of t takes in a slot (0 in place).
  static std::uint64_t need(const Tensor& t, std::uint64_t nc) { return in_place(t, 0, nc) ? 0 : t.pitch_of(nc); }
  // The SRAM address of rows from r0 (columns [c0, c0 + nc)): in place, or the slot buffer `buf`.
  static std::uint32_t where(const Tensor& t, std::uint64_t r0, std::uint64_t c0, std::uint64_t nc, std::uint32_t buf) {
    return in_place(t, c0, nc) ? std::uint32_t(t.addr + r0 * t.pitch()) : buf;
  }
  // Rows [r0, r0 + nr) x columns [c0, c0 + nc) of t to/from a buffer of pitch pitch_of(nc) in SRAM
  // (nothing when in place; an SRAM-to-SRAM copy for a block of a resident tensor).
  void copy_in(const Tensor& t, std::uint64_t r0, std::uint64_t nr, std::uint64_t c0, std::uint64_t nc, std::uint32_t at) {
    if (in_place(t, c0, nc)) return;
    dma(t.space, t.addr + r0 * t.pitch() + t.col_offset(c0), t.pitch(), Space::sram, at, t.pitch_of(nc), nr, t.pitch_of(nc));
  }
  void copy_out(const Tensor& t, std::uint64_t r0, std::uint64_t nr, std::uint64_t c0, std::uint64_t nc, std::uint32_t at) {
    if (in_place(t, c0, nc)) return;
    dma(Space::sram, at, t.pitch_of(nc), t.space, t.addr + r0 * t.pitch() + t.col_offset(c0), t.pitch(), nr,
        t.pitch_of(nc), t.host);
  }

  std::uint32_t arena(std::uint64_t offset) const { return std::uint32_t(scalars_bytes_ + offset); }
  std::uint64_t lowest() const { return heap_.empty() ? sram_top_ : heap_.front().addr; }
  // What resident tensors leave to the streaming arena at least.
  std::uint64_t reserve() const { return align_up(cfg_.sram.size_bytes / 32, kAlign); }

  // Bytes of each of `slots` slots that share the arena after `fixed` bytes.
  std::uint64_t slot_bytes(std::uint64_t fixed, int slots = 2) const {
    return fixed >= arena_ ? 0 : (arena_ - fixed) / std::uint64_t(slots) / kAlign * kAlign;
  }

  // Two slots when `min_bytes` (an operation's smallest chunk) fits twice,
  // one when it fits once, 0 when the SRAM is too small.
  int slots_for(std::uint64_t min_bytes) const {
    return min_bytes <= slot_bytes(0, 2) ? 2 : min_bytes <= slot_bytes(0, 1) ? 1 : 0;
  }

  // Emits the chunks [i, i + chunk) of [0, total) through `slots` (1 or 2)
  // slots after `fixed`, in turn; with two slots the next chunk's load is
  // issued before this chunk's work (load(0); for each chunk i: load(i + 1),
  // compute(i), store(i)), with one slot each chunk is loaded, worked on and
  // stored in turn. Queue order is the functional order, so it must be valid
  // run one command at a time.
  // Each callback gets (first, count, slot address). With two slots the
  // sequence runs on across operations, so one operation's load can overlap
  // the previous one's work too; one slot (the whole arena) serves an
  // operation that would otherwise need more DRAM traffic.
  template <typename Load, typename Compute, typename Store>
  // `lead` (0: chunk) is the first chunk's size: a short first chunk leaves
  // the last ones whole.
  void stream(std::uint64_t total, std::uint64_t chunk, std::uint64_t fixed, int slots, Load load, Compute compute,
              Store store, std::uint64_t lead = 0) {
    if (lead == 0 || lead > total) lead = std::min(chunk, total);
    const std::uint64_t slot = slot_bytes(fixed, slots), n = 1 + (total - lead + chunk - 1) / chunk;
    const std::uint64_t first = slots == 2 ? next_slot_ : 0;
    auto at = [&](std::uint64_t i) { return arena(fixed + ((first + i) % std::uint64_t(slots)) * slot); };
    auto start = [&](std::uint64_t i) { return i == 0 ? 0 : lead + (i - 1) * chunk; };
    auto count = [&](std::uint64_t i) { return i == 0 ? lead : std::min(chunk, total - start(i)); };
    for (std::uint64_t i = 0; i < n; ++i) {
      if (i == 0 || slots == 1) load(start(i), count(i), at(i));
      if (slots == 2 && i + 1 < n) load(start(i + 1), count(i + 1), at(i + 1));
      compute(start(i), count(i), at(i));
      store(start(i), count(i), at(i));
    }
    if (slots == 2) next_slot_ = (first + n) % 2;
  }

  // Chunk sizes are cycle-aware in one rule (docs/npu.md "More SRAM"): a
  // streamed operation of B bytes runs in at least k = sqrt(B / kOverlapBytes)
  // chunks. A single chunk is loaded, worked on and stored in turn; with k
  // chunks in two slots the DMA of one overlaps the blocks' work on another
  // (stream()), so about 1/k of the work is not hidden, for the same DRAM
  // bytes, while each chunk adds its transfers' set-up (116 cycles on the
  // default DRAM): the sum of the two is least near k proportional to
  // sqrt(B). 32 KiB puts k at 2 from 128 KiB, 5 at 1 MiB, 16 at 8 MiB.
  static constexpr std::uint64_t kOverlapBytes = 32 * 1024;
  // The most units (of `total`, unit_bytes each, a multiple of `step` unless
  // all) a chunk takes under that rule, with at most `chunks` chunks (0: no limit).
  static std::uint64_t overlap_cap(std::uint64_t total, std::uint64_t unit_bytes, std::uint64_t step,
                                   std::uint64_t chunks = 0) {
    const auto root = std::uint64_t(std::sqrt(double(total * unit_bytes / kOverlapBytes)));
    std::uint64_t k = std::max<std::uint64_t>(1, root);
    if (chunks > 0) k = std::min(k, chunks);
    return std::min(total, ceil_div(ceil_div(total, k), step) * step);
  }

  // The largest count n <= overlap_cap(max_n, per_unit, step, chunks) (a
  // multiple of `step` unless n == max_n) of units of per_unit bytes that fit
  // in `avail` bytes, with room for the alignment of `buffers` buffers; 0 if
  // not even one fits.
  static std::uint64_t fit(std::uint64_t avail, std::uint64_t per_unit, std::uint64_t max_n, std::uint64_t step,
                           int buffers, std::uint64_t chunks = 0) {
    const std::uint64_t slack = std::uint64_t(buffers) * kAlign;
    if (slack >= avail) return 0;
    if (per_unit == 0) return max_n;  // everything in place
    const std::uint64_t n = (avail - slack) / per_unit, most = overlap_cap(max_n, per_unit, step, chunks);
    if (n >= most) return most;
    return n / step * step;
  }

  // The planner gives up the resident candidate of least value among the
  // live ones and `id` (the largest on a tie): the build restarts without it.
  [[noreturn]] void give_up(int id, std::uint64_t bytes = 0) const {
    int worst = id;
    std::uint64_t worst_bytes = bytes;
    for (const Block& b : heap_)
      if (keep_value(b.id) < keep_value(worst) || (keep_value(b.id) == keep_value(worst) && b.bytes > worst_bytes)) {
        worst = b.id;
        worst_bytes = b.bytes;
      }
    throw ResidencyFailure{worst};
  }

  // The smallest tiling of an operation needs `fixed` bytes plus one slot of
  // `per_slot` bytes (and the alignment of `buffers` buffers). With resident
  // tensors in the way the planner gives one up; else the SRAM is too small.
  [[noreturn]] void too_small(const std::string& what, std::uint64_t fixed, std::uint64_t per_slot, int buffers) const {
    if (!heap_.empty()) {
      const Block& b = *std::min_element(heap_.begin(), heap_.end(), [](const Block& x, const Block& y) {
        return keep_value(x.id) < keep_value(y.id) || (keep_value(x.id) == keep_value(y.id) && x.bytes > y.bytes);
      });
      throw ResidencyFailure{b.id};
    }
    const std::uint64_t tiles = fixed + align_up(per_slot + std::uint64_t(buffers) * kAlign, kAlign);
    throw NpuConfigError(fmt::format(
        "{}: sram.size_bytes = {} is too small for layer {} {}: its smallest tiling needs {} bytes "
        "({} for the tiles + {} for the step's records)",
        cfg_.file, cfg_.sram.size_bytes, layer_, what, tiles + scalars_bytes_, tiles, scalars_bytes_));
  }

  const StepSettings& s_;
  const NpuConfig& cfg_;
  const HdqtConfig& hdqt_;
  std::uint64_t step_;
  Job& job_;
  const std::set<int>& off_;
  std::vector<Command> commands_;
  int layer_ = 0;
  Phase phase_ = Phase::forward;
  std::uint64_t records_ = 0, stats_ = 0, loss_ = 0, scalars_bytes_ = 0, arena_ = 0, sram_top_ = 0;
  std::vector<std::uint64_t> db_;
  std::vector<bool> stats_written_;
  std::vector<Block> heap_;  // resident tensors, by address
  std::uint64_t dram_top_ = 0;       // the top of the job's DRAM (its footprint below the queue)
  std::uint64_t unshared_top_ = 0;   // the top without reuse (every tensor at the top)
  std::uint64_t host_top_ = kHostSpace;  // the next host_output copy
  std::uint64_t stack_ = 0, stack_end_ = 0;  // reserve_stack: the next stacked() tensor, the end
  Ranges free_;                      // ranges given back, not yet reused
  std::map<std::uint64_t, int> readers_;  // shared tensors (address): readers to come
  std::vector<std::pair<std::uint64_t, std::uint64_t>> given_back_;  // every range given back (the loads' check)
  std::uint64_t next_slot_ = 0;
  std::vector<Tensor> momentum_w_, momentum_b_, momentum_home_w_, momentum_home_b_;
  bool keeps_state_ = false;
  std::vector<Tensor> state_w_, state_b_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> host_tensors_;  // DRAM (addr, bytes) of host() tensors
  std::uint64_t record_bytes_ = 0;  // the record area written back ([0, record_bytes_))
  std::uint64_t carry_ = 0;         // SRAM: the carry records (a training step's)
  Tensor carry_home_;               // DRAM: the carry records between steps
  bool carries_ = false, carried_ = false;
  std::uint32_t carried_wq_ = 0;
  std::vector<Tensor> wq_home_;  // DRAM: each layer's carried Wq between steps
};

// The forward GEMM of layer l (docs/contract.md §6): Xq (m x k, fwd_x) times
// Wq^T (Wq n x k, fwd_w, stored transposed), dequantized by both scales.
GemmSpec forward_gemm_spec(const Builder& bld, int l, const Tensor& xq, const Tensor& wq, std::uint64_t m,
                           std::uint64_t n, std::uint64_t k) {
  GemmSpec g;
  g.role = GemmRole::fwd;
  g.a = xq;
  g.a_record = bld.record(l, QuantRole::fwd_x);
  g.b = wq;
  g.b_layout = BLayout::n_by_k;  // Wq (n x k) is B^T
  g.b_record = bld.record(l, QuantRole::fwd_w);
  g.m = m;
  g.n = n;
  g.k = k;
  g.factors = {{bld.record(l, QuantRole::fwd_x)}, {bld.record(l, QuantRole::fwd_w)}};
  return g;
}

// The forward pass of every layer. `saved`: the pass is a job of its own
// whose backward is another job (NpuEngine's slots), so what the backward
// needs (packed Xq and Wq, clip and ReLU masks) goes to DRAM; in a training
// step the plan may keep it in SRAM. Outputs of every layer go to the host.
struct ForwardTensors {
  std::vector<Tensor> x, xq, wq, clip, relu, out, w, b;
  Tensor logits;  // the last layer's output on the device (training step)
};

ForwardTensors forward(Builder& bld, const HdqtConfig& cfg, const MlpParams& p, const Matrix& x, bool train, bool saved,
                       const DeviceState& state) {
  const int L = int(p.w.size());
  const std::uint64_t B = std::uint64_t(x.rows);
  ForwardTensors f;
  f.x.push_back(bld.dram(B, std::uint64_t(x.cols), Fmt::f32));
  bld.load(f.x[0], x.v.data(), true);
  for (int l = 0; l < L; ++l) {
    const std::uint64_t I = std::uint64_t(p.w[l].cols), O = std::uint64_t(p.w[l].rows);
    f.w.push_back(bld.dram(O, I, Fmt::f32));
    f.b.push_back(bld.dram(1, O, Fmt::f32));
    if (!bld.keeps_state() || !state.weights_current) {  // the driver's weights (the host's load)
      bld.load(f.w[l], p.w[l].v.data());
      bld.load(f.b[l], p.b[l].data());
    }
    if (bld.keeps_state()) {  // on chip: loaded once, while they stay current
      if (!state.weights_current) {
        bld.copy(f.w[l], bld.state_w(l));
        bld.copy(f.b[l], bld.state_b(l));
      }
      f.w[l] = bld.state_w(l);
      f.b[l] = bld.state_b(l);
    }
    f.out.push_back(bld.host(B, O));
  }
  if (bld.carried()) {
    bld.tag(0, Phase::forward);
    bld.load_carried_max(std::uint64_t(L));
  }
  auto keep = [&](Keep k, int l, std::uint64_t rows, std::uint64_t cols, Fmt fm, int bits, bool for_backward) {
    return for_backward && saved ? bld.dram(rows, cols, fm, bits) : bld.keep(keep_id(k, l), rows, cols, fm, bits);
  };
  for (int l = 0; l < L; ++l) {
    bld.tag(l, Phase::forward);
    const std::uint64_t I = std::uint64_t(p.w[l].cols), O = std::uint64_t(p.w[l].rows);
    const bool need_clip = train && l > 0 && cfg.ste == Ste::clipped;  // the clipped STE of this layer's dX
    const int xb = cfg.q(QuantRole::fwd_x).bits, wb = cfg.q(QuantRole::fwd_w).bits;
    f.xq.push_back(keep(Keep::xq, l, B, I, Fmt::packed, xb, train));
    f.clip.push_back(need_clip ? keep(Keep::clip_mask, l, B, I, Fmt::mask, 1, true) : Tensor{});
    bld.quantize(f.x[l], QuantRole::fwd_x, f.xq[l], need_clip ? &f.clip[l] : nullptr);
    bld.release(f.x[l]);
    f.wq.push_back(keep(Keep::wq, l, O, I, Fmt::packed, wb, train && l > 0));
    if (bld.carried_wq(l)) {  // rounded by the previous step: its scale from the carried max, the packed Wq from DRAM
      bld.finalize(QuantRole::fwd_w);
      if (f.wq[l].resident()) bld.copy(bld.wq_home(l), f.wq[l]);
      else f.wq[l] = bld.wq_home(l);
    } else {
      bld.quantize(f.w[l], QuantRole::fwd_w, f.wq[l], nullptr, bld.carried());
    }
    GemmSpec g = forward_gemm_spec(bld, l, f.xq[l], f.wq[l], B, O, I);
    g.host = &f.out[l];
    g.bias = &f.b[l];
    Tensor act;
    if (l + 1 < L) {
      act = bld.keep(keep_id(Keep::act, l + 1), B, O, Fmt::f32);
      g.act = &act;
      f.relu.push_back(train ? keep(Keep::relu_mask, l, B, O, Fmt::mask, 1, true) : Tensor{});
      if (train) g.relu_mask = &f.relu[l];
    } else if (train && !saved) {
      f.logits = bld.keep(keep_id(Keep::logits, l), B, O, Fmt::f32);
      g.out = &f.logits;
    }
    bld.gemm(g);
    if (!train) {
      bld.release(f.xq[l]);
      bld.release(f.wq[l]);
    }
    if (train && l == 0) bld.release(f.wq[l]);  // layer 0 has no dX
    if (l + 1 < L) f.x.push_back(act);
  }
  return f;
}

// A backward GEMM of layer l (docs/contract.md §6): A (m x k) and B (k x n)
// packed by their roles, k the Hadamard-padded contraction, dequantized by
// A's and B's scales, the forward scale of the tensor B was transformed from
// and 1/block:
//   bwd_dx  A = Q(G H_O) (bwd_g_dx), B = Q(H_O Wq) (bwd_w_dx), then s_fwd_w
//   bwd_dw  A = Q(G^T H_B) (bwd_g_dw), B = Q(H_B Xq) (bwd_x_dw), then s_fwd_x
GemmSpec backward_gemm_spec(const Builder& bld, int l, GemmRole role, const Tensor& a, const Tensor& b,
                            std::uint64_t m, std::uint64_t n, std::uint64_t k, int block) {
  const bool dx = role == GemmRole::bwd_dx;
  const QuantRole ra = dx ? QuantRole::bwd_g_dx : QuantRole::bwd_g_dw, rb = dx ? QuantRole::bwd_w_dx : QuantRole::bwd_x_dw,
                  rf = dx ? QuantRole::fwd_w : QuantRole::fwd_x;
  GemmSpec g;
  g.role = role;
  g.a = a;
  g.a_record = bld.record(l, ra);
  g.b = b;
  g.b_record = bld.record(l, rb);
  g.m = m;
  g.n = n;
  g.k = k;
  g.factors = {{bld.record(l, ra)}, {bld.record(l, rb)}, {bld.record(l, rf)}, {kNoRecord, 1.0f / float(block)}};
  return g;
}

// The backward pass of every layer from g = dL/dY of the last layer: dX
// (layers > 0), dW into `dw` (the host's) and db in the record area; with
// `update`, the device's SGD fused into dW's write-back and the biases'.
void backward(Builder& bld, const HdqtConfig& cfg, const MlpParams& p, const ForwardTensors& f, Tensor g,
              std::uint64_t B, bool update, std::vector<Tensor>& dw) {
  const int L = int(p.w.size());
  dw.assign(p.w.size(), Tensor{});
  // dW = GEMM(G^T H_B, X' ) with, when updating, the SGD of `w` in its write-back.
  auto dw_gemm = [&](int l, const Tensor& gtq, const Tensor& xhq, std::uint64_t Bp, int block, const Tensor* w) {
    const std::uint64_t I = std::uint64_t(p.w[l].cols), O = std::uint64_t(p.w[l].rows);
    GemmSpec s_dw = backward_gemm_spec(bld, l, GemmRole::bwd_dw, gtq, xhq, O, I, Bp, block);
    s_dw.host = &dw[l];
    if (update) {
      s_dw.sgd_w = w;
      s_dw.sgd_buf = &bld.momentum_w(l);
      if (bld.carries()) s_dw.keep_max = bld.carry_record(l);
    }
    bld.gemm(s_dw);
    bld.release(gtq);
    bld.release(xhq);
  };
  struct Deferred {
    int l;
    Tensor gtq, xhq;
    std::uint64_t Bp;
    int block;
  };
  std::vector<Deferred> deferred;
  for (int l = L - 1; l >= 0; --l) {
    const std::uint64_t I = std::uint64_t(p.w[l].cols), O = std::uint64_t(p.w[l].rows);
    const HadamardPlan hb = plan_hadamard(int(B), cfg.hadamard);
    const std::uint64_t Bp = std::uint64_t(hb.padded_length);
    // What needs G first: Q(G H_O), Q(G^T H_B) and db; then G's SRAM is free.
    bld.tag(l, Phase::backward_dx);
    const HadamardPlan ho = plan_hadamard(int(O), cfg.hadamard);
    const std::uint64_t Op = std::uint64_t(ho.padded_length);
    Tensor ghq;
    if (l > 0) {
      ghq = bld.keep_packed(keep_id(Keep::ghq, l), B, Op, QuantRole::bwd_g_dx);
      bld.hadamard_quantize(Builder::Transform::rows, g, 0, QuantRole::bwd_g_dx, ghq, ho.block);
    }
    bld.tag(l, Phase::backward_dw);
    const Tensor gtq = bld.keep_packed(keep_id(Keep::gtq, l), O, Bp, QuantRole::bwd_g_dw);
    bld.hadamard_quantize(Builder::Transform::cols_t, g, 0, QuantRole::bwd_g_dw, gtq, hb.block);
    bld.column_sum(g);
    bld.release(g);
    // dW (and the update) before dX: its operands die before dX's f32
    // result is born, so the SRAM holds one of them at a time. The order
    // changes no bits (every quantizer's random bits are its tensor's and
    // element's; dW's results are not quantized in this step).
    bld.tag(l, Phase::backward_dw);
    const Tensor xhq = bld.keep_packed(keep_id(Keep::xhq, l), Bp, I, QuantRole::bwd_x_dw);
    bld.hadamard_quantize(Builder::Transform::cols_int, f.xq[l], bld.record(l, QuantRole::fwd_x), QuantRole::bwd_x_dw,
                          xhq, hb.block);
    bld.release(f.xq[l]);
    dw[l] = bld.host(O, I);
    // The update of a layer whose next Wq this step rounds waits until the
    // backward is done (docs/npu.md "Across jobs"), its packed operands
    // kept; it changes no bits (dW is not quantized in the step). Tried only
    // where the next step saves more (W less Wq) than the operands held.
    const std::uint64_t saves = 4 * O * I - bld.wq_home(l).bytes();
    if (update && l > 0 && bld.may_carry_wq(l) && saves > gtq.bytes() + xhq.bytes()) {
      deferred.push_back({l, gtq, xhq, Bp, hb.block});
    } else {
      dw_gemm(l, gtq, xhq, Bp, hb.block, &f.w[l]);
    }
    if (update) {
      bld.tag(l, Phase::update);
      bld.sgd_bias(f.b[l], bld.db(l), bld.momentum_b(l));
    }
    Tensor dx;
    if (l > 0) {
      bld.tag(l, Phase::backward_dx);
      const Tensor whq = bld.keep_packed(keep_id(Keep::whq, l), Op, I, QuantRole::bwd_w_dx);
      bld.hadamard_quantize(Builder::Transform::cols_int, f.wq[l], bld.record(l, QuantRole::fwd_w), QuantRole::bwd_w_dx,
                            whq, ho.block);
      bld.release(f.wq[l]);
      dx = bld.keep(keep_id(Keep::dx, l), B, I, Fmt::f32);
      GemmSpec s_dx = backward_gemm_spec(bld, l, GemmRole::bwd_dx, ghq, whq, B, I, Op, ho.block);
      s_dx.out = &dx;
      if (cfg.ste == Ste::clipped) s_dx.clip_mask = &f.clip[l];
      s_dx.relu_grad = &f.relu[l - 1];  // ReLU' of the layer below
      bld.gemm(s_dx);
      bld.release(ghq);
      bld.release(whq);
      if (cfg.ste == Ste::clipped) bld.release(f.clip[l]);
      bld.release(f.relu[l - 1]);
    }
    if (l > 0) g = dx;
  }
  // The deferred updates: W resident from its read to the rounding of the
  // next step's Wq (the next step's key; the carry record's max |W|).
  for (const Deferred& d : deferred) {
    const std::uint64_t I = std::uint64_t(p.w[d.l].cols), O = std::uint64_t(p.w[d.l].rows);
    bld.tag(d.l, Phase::backward_dw);
    const Tensor w = bld.keep(keep_id(Keep::w, d.l), O, I, Fmt::f32);
    bld.copy(f.w[d.l], w);
    dw_gemm(d.l, d.gtq, d.xhq, d.Bp, d.block, &w);
    bld.tag(d.l, Phase::update);
    bld.copy(w, f.w[d.l]);
    bld.quantize(w, QuantRole::fwd_w, bld.wq_home(d.l), nullptr, true, bld.carry_record(d.l));
    bld.carry_wq(d.l, w);
    bld.release(w);
  }
}


// ---- Layer graphs (docs/npu.md "Layer graphs"). Every tensor is in DRAM
// between operations and streams through SRAM in chunks of whole samples
// (the layer operations) or of rows (quantizers, Hadamard transforms, GEMMs).
// A conv layer is the linear layer's decomposition on im2col rows: the
// address generator gathers im2col(Xq) (N*P x K packed) into SRAM, the GEMMs
// run on M = N*P rows, and the vector unit turns rows into NCHW (forward),
// NCHW into rows (G) and the dX columns into dX by col2im (backward).

// The layer operations' descriptor for a node's geometry.
LayerDescriptor conv_op(const ConvGeometry& g, int bits = 0) {
  LayerDescriptor d;
  d.set(g);
  d.bits = std::uint8_t(bits);
  return d;
}
LayerDescriptor pool_op(const PoolGeometry& g) {
  LayerDescriptor d;
  d.set(g);
  return d;
}
LayerDescriptor shortcut_op(const LayerNode& n) {
  LayerDescriptor d;
  d.set(ShortcutGeometry{n.in.c, n.in.h, n.in.w, n.out.c, n.out.h, n.out.w, n.stride, n.pad_before});
  return d;
}
LayerDescriptor size_op(std::uint64_t a, std::uint64_t b = 0) {
  LayerDescriptor d;
  d.geo[0] = std::int32_t(a);
  d.geo[1] = std::int32_t(b);
  return d;
}

// Throws a ConfigError naming the conv mapping the NPU does not execute.
void check_graph_lowered(const HdqtConfig& cfg, const Graph& graph) {
  for (std::size_t i = 0; i < graph.nodes().size(); ++i) {
    const LayerKind k = graph.nodes()[i].kind;
    if (k == LayerKind::conv && cfg.conv_mapping != ConvMapping::whole_batch)
      throw ConfigError("conv_mapping: the NPU executes the whole_batch convolution mapping (docs/contract.md §9), "
                        "not per_sample");
  }
}

struct GraphTensors {
  std::vector<Tensor> act;                    // per node: its output, N x out.size() f32
  std::vector<Tensor> xq, wq, clip, argmax;   // per node: conv/linear operands kept for the backward; max_pool argmax (int32)
  std::vector<Tensor> relu_mask;              // per node: a training pass's relu, its input > 0 (its backward)
  std::vector<Tensor> xhat, invstd;           // per node: batchnorm of a training pass
  std::vector<Tensor> w, b, running;          // per parameter layer (b: none without a bias; running: batchnorm's mean then variance)
  Tensor x;                                   // the network input
};

// BatchNorm of node n over N samples: a training pass (batch statistics,
// running statistics updated in f.running) or an evaluation (running statistics).
// `stacked`: x-hat and 1/std, which the backward reads, on the stack of kept tensors (Builder::reserve_stack).
void batchnorm_program(Builder& bld, const LayerNode& n, int i, const Tensor& in, std::uint64_t N, bool train,
                       bool stacked, GraphTensors& f) {
  const int l = n.param;
  const std::uint64_t C = std::uint64_t(n.in.c), HW = std::uint64_t(n.in.h) * std::uint64_t(n.in.w);
  const std::uint64_t size = C * HW;
  if (N * HW >= (1ull << 31)) throw ConfigError(fmt::format("network: node {} (batchnorm): batch * H * W too large", i));
  LayerDescriptor d;
  d.geo[0] = std::int32_t(C);
  d.geo[1] = std::int32_t(HW);
  d.geo[2] = std::int32_t(N * HW);
  const Tensor& running = f.running[std::size_t(l)];
  Tensor rmean = running, rvar = running;  // views: the mean, then the variance
  rmean.cols = rvar.cols = C;
  rvar.addr += 4 * C;
  f.act[std::size_t(i)] = bld.dram(N, size, Fmt::f32);
  const Tensor& y = f.act[std::size_t(i)];
  // Per-channel vectors in the arena's scratch area, kept across the passes.
  enum { sum, sq, mean, invstd, gamma, beta, rm, rv, vectors };
  const std::uint64_t fixed = bld.scratch_bytes(vectors, C);
  Tensor v[vectors];
  for (int k = 0; k < vectors; ++k) v[k] = bld.scratch_vector(k, C);
  Tensor w_row = f.w[std::size_t(l)];  // gamma, 1 x C
  bld.copy(w_row, v[gamma]);
  bld.copy(f.b[std::size_t(l)], v[beta]);
  bld.copy(rmean, v[rm]);
  bld.copy(rvar, v[rv]);
  if (!train) {
    bld.sample_op(kLayerBnEval, d, N,
                  {{&in, 1, false}, {&v[gamma], 0}, {&v[beta], 0}, {&v[rm], 0}, {&v[rv], 0}, {&y, 1, true}}, fixed);
    return;
  }
  if (N * HW < 2) throw ConfigError("batchnorm: training needs more than one value per channel (batch * H * W >= 2)");
  bld.sample_op(kLayerBnSum, d, N, {{&in, 1, false}, {&v[sum], 0}}, fixed);
  LayerDescriptor one = d;
  one.addr[0] = std::uint32_t(v[sum].addr);
  one.addr[1] = std::uint32_t(v[mean].addr);
  bld.vector_op(kLayerBnMean, one);
  bld.sample_op(kLayerBnSq, d, N, {{&in, 1, false}, {&v[mean], 0}, {&v[sq], 0}}, fixed);
  const std::uint32_t stats[5] = {std::uint32_t(v[mean].addr), std::uint32_t(v[sq].addr), std::uint32_t(v[invstd].addr),
                                  std::uint32_t(v[rm].addr), std::uint32_t(v[rv].addr)};
  std::copy(stats, stats + 5, one.addr);
  bld.vector_op(kLayerBnStats, one);
  f.xhat[std::size_t(i)] = stacked ? bld.stacked(N, size, Fmt::f32) : bld.dram(N, size, Fmt::f32);
  bld.sample_op(kLayerBnNorm, d, N,
                {{&in, 1, false}, {&v[mean], 0}, {&v[invstd], 0}, {&v[gamma], 0}, {&v[beta], 0},
                 {&f.xhat[std::size_t(i)], 1, true}, {&y, 1, true}},
                fixed);
  bld.copy(v[rm], rmean);
  bld.copy(v[rv], rvar);
  f.invstd[std::size_t(i)] = stacked ? bld.stacked(1, C, Fmt::f32) : bld.dram(1, C, Fmt::f32);
  bld.copy(v[invstd], f.invstd[std::size_t(i)]);
}

// The layer a node's cost is charged to: its own parameter layer, else the
// last one before it (the layer whose output it works on), else 0.
std::vector<int> cost_layers(const Graph& graph) {
  std::vector<int> owner;
  int last = 0;
  for (const LayerNode& n : graph.nodes()) {
    if (n.param >= 0) last = n.param;
    owner.push_back(last);
  }
  return owner;
}

// Where a graph's forward pass is followed by its backward: none (an
// evaluation or a frozen pass), in the same job (a training step), or in a
// later job (the pass is kept: SavedForward).
enum class Backward { none, same_job, later_job };

// The forward pass; `outputs` (size_graph_results) gets every parameter
// layer's output, then the network's when its last node has none, by host
// copies as they are made (Builder::host_output). DRAM reuse (docs/npu.md
// "Layer graphs"): each tensor is shared with its readers, forward and (in
// the same job) backward, and gives its range back after the last one,
// except, when the backward is a later job, what it reads.
GraphTensors graph_forward_program(Builder& bld, const HdqtConfig& cfg, const MlpParams& p, const Matrix& x, bool train,
                                   Backward after, std::vector<Matrix>& outputs) {
  const Graph& graph = *p.graph;
  const auto& nodes = graph.nodes();
  const std::uint64_t N = std::uint64_t(x.rows);
  const bool here = after == Backward::same_job;
  GraphTensors f;
  f.x = bld.dram(N, std::uint64_t(x.cols), Fmt::f32);
  bld.load(f.x, x.v.data());
  // Readers of each node's output (the network input's last), through flatten (no data moves).
  const std::size_t input_slot = nodes.size();
  auto source = [&](int a) {
    while (a != kNetworkInput && nodes[std::size_t(a)].kind == LayerKind::flatten) a = nodes[std::size_t(a)].a;
    return a == kNetworkInput ? input_slot : std::size_t(a);
  };
  std::vector<int> readers(nodes.size() + 1, 0);
  for (const LayerNode& n : nodes) {
    if (n.kind == LayerKind::flatten) continue;
    ++readers[source(n.a)];
    if (n.kind == LayerKind::add) ++readers[source(n.b)];
  }
  auto share_output = [&](std::size_t slot, const Tensor& t) { bld.share(t, readers[slot]); };
  share_output(input_slot, f.x);
  for (std::size_t l = 0; l < p.w.size(); ++l) {
    f.w.push_back(bld.dram(std::uint64_t(p.w[l].rows), std::uint64_t(p.w[l].cols), Fmt::f32));
    bld.load(f.w[l], p.w[l].v.data());
    f.b.push_back(p.b[l].empty() ? Tensor{} : bld.dram(1, p.b[l].size(), Fmt::f32));
    if (!p.b[l].empty()) bld.load(f.b[l], p.b[l].data());
    const bool bn = l < p.running.size() && !p.running[l].empty();
    f.running.push_back(bn ? bld.dram(1, p.running[l].size(), Fmt::f32) : Tensor{});
    if (bn) bld.load(f.running[l], p.running[l].data());
  }
  const std::size_t n_nodes = nodes.size();
  f.act.resize(n_nodes);
  f.xhat.resize(n_nodes);
  f.invstd.resize(n_nodes);
  f.xq.resize(n_nodes);
  f.wq.resize(n_nodes);
  f.clip.resize(n_nodes);
  f.argmax.resize(n_nodes);
  f.relu_mask.resize(n_nodes);
  const int xb = cfg.q(QuantRole::fwd_x).bits, wb = cfg.q(QuantRole::fwd_w).bits;
  const std::vector<int> owner = cost_layers(graph);
  // What the backward of the same job reads goes on a stack (Builder::reserve_stack); its bytes:
  auto bytes_of = [](std::uint64_t rows, std::uint64_t cols, Fmt fm, int bits) {
    return align_up(Tensor{0, rows, cols, fm, bits}.bytes(), kAlign);
  };
  auto need_clip = [&](const LayerNode& n) { return train && n.a != kNetworkInput && cfg.ste == Ste::clipped; };
  if (here) {
    std::uint64_t bytes = 0;
    for (const LayerNode& n : nodes) {
      const std::uint64_t in = std::uint64_t(n.in.size()), out = std::uint64_t(n.out.size());
      if (n.kind == LayerKind::conv || n.kind == LayerKind::linear) {
        bytes += bytes_of(N, in, Fmt::packed, xb) + bytes_of(std::uint64_t(p.w[std::size_t(n.param)].rows),
                                                             std::uint64_t(p.w[std::size_t(n.param)].cols), Fmt::packed, wb);
        if (need_clip(n)) bytes += bytes_of(N, in, Fmt::mask, 1);
      }
      if (n.kind == LayerKind::relu) bytes += bytes_of(N, out, Fmt::mask, 1);
      if (n.kind == LayerKind::max_pool) bytes += bytes_of(N, out, Fmt::f32, 32);
      if (n.kind == LayerKind::batchnorm) bytes += bytes_of(N, in, Fmt::f32, 32) + bytes_of(1, std::uint64_t(n.in.c), Fmt::f32, 32);
    }
    bld.reserve_stack(bytes);
  }
  auto kept = [&](std::uint64_t rows, std::uint64_t cols, Fmt fm, int bits) {
    return here ? bld.stacked(rows, cols, fm, bits) : bld.dram(rows, cols, fm, bits);
  };
  for (std::size_t i = 0; i < n_nodes; ++i) {
    const LayerNode& n = nodes[i];
    const Tensor& in = n.a == kNetworkInput ? f.x : f.act[std::size_t(n.a)];
    const std::uint64_t out_size = std::uint64_t(n.out.size());
    bld.tag(owner[i], Phase::forward);
    switch (n.kind) {
      case LayerKind::conv:
      case LayerKind::linear: {
        const int l = n.param;
        const bool conv = n.kind == LayerKind::conv;
        const std::uint64_t O = std::uint64_t(p.w[l].rows), K = std::uint64_t(p.w[l].cols);
        const std::uint64_t P = conv ? std::uint64_t(n.conv.positions()) : 1, M = N * P;
        const bool clip = need_clip(n);
        f.xq[i] = kept(N, in.cols, Fmt::packed, xb);  // NCHW (conv: before im2col)
        if (clip) f.clip[i] = kept(N, in.cols, Fmt::mask, 1);
        bld.quantize(in, QuantRole::fwd_x, f.xq[i], clip ? &f.clip[i] : nullptr);
        f.wq[i] = kept(O, K, Fmt::packed, wb);
        bld.quantize(f.w[std::size_t(l)], QuantRole::fwd_w, f.wq[i], nullptr);
        // Xq, Wq and the clip mask: read once more, by the forward GEMM (or
        // im2col) without a backward, else by the backward.
        if (after != Backward::later_job) {
          bld.share(f.xq[i], 1);
          bld.share(f.wq[i], 1);
          if (clip) bld.share(f.clip[i], 1);
        }
        Tensor a = f.xq[i];
        if (conv) {
          a = bld.dram(M, K, Fmt::packed, xb);
          bld.sample_op(kLayerIm2col, conv_op(n.conv, xb), N, {{&f.xq[i], 1, false}, {&a, P, true}});
          bld.share(a, 1);
        }
        f.act[i] = bld.dram(N, out_size, Fmt::f32);
        const Tensor rows = conv ? bld.dram(M, O, Fmt::f32) : f.act[i];
        GemmSpec g = forward_gemm_spec(bld, l, a, f.wq[i], M, O, K);
        g.out = &rows;
        if (n.bias) g.bias = &f.b[std::size_t(l)];
        bld.gemm(g);
        if (conv) {
          bld.done(a);
          bld.share(rows, 1);
          bld.sample_op(kLayerNchwOf, size_op(O, P), N, {{&rows, P, false}, {&f.act[i], 1, true}});
          bld.done(rows);
        }
        if (after == Backward::none) {
          bld.done(f.xq[i]);
          bld.done(f.wq[i]);
        }
        break;
      }
      case LayerKind::relu:
        f.act[i] = bld.dram(N, out_size, Fmt::f32);
        if (train) {  // with the mask x > 0 its backward reads (layer_ops.h kLayerMask)
          f.relu_mask[i] = kept(N, out_size, Fmt::mask, 1);
          LayerDescriptor d = size_op(out_size);
          d.flags = kLayerMask;
          bld.sample_op(kLayerRelu, d, N, {{&in, 1, false}, {&f.act[i], 1, true}, {&f.relu_mask[i], 1, true}});
        } else {
          bld.sample_op(kLayerRelu, size_op(out_size), N, {{&in, 1, false}, {&f.act[i], 1, true}});
        }
        break;
      case LayerKind::max_pool:
        f.act[i] = bld.dram(N, out_size, Fmt::f32);
        f.argmax[i] = kept(N, out_size, Fmt::f32, 32);  // int32 indices: 4 bytes each
        bld.sample_op(kLayerMaxPool, pool_op(n.pool), N,
                      {{&in, 1, false}, {&f.act[i], 1, true}, {&f.argmax[i], 1, true}});
        break;
      case LayerKind::flatten: f.act[i] = in; break;  // NCHW rows are the flattened rows: no data moves
      case LayerKind::batchnorm: batchnorm_program(bld, n, int(i), in, N, train, here, f); break;
      case LayerKind::avg_pool:
        f.act[i] = bld.dram(N, out_size, Fmt::f32);
        bld.sample_op(kLayerAvgPool, pool_op(n.pool), N, {{&in, 1, false}, {&f.act[i], 1, true}});
        break;
      case LayerKind::global_avg_pool:
        f.act[i] = bld.dram(N, out_size, Fmt::f32);
        bld.sample_op(kLayerGap, size_op(std::uint64_t(n.in.c), std::uint64_t(n.in.h) * std::uint64_t(n.in.w)), N,
                      {{&in, 1, false}, {&f.act[i], 1, true}});
        break;
      case LayerKind::shortcut:
        f.act[i] = bld.dram(N, out_size, Fmt::f32);
        bld.sample_op(kLayerShortcut, shortcut_op(n), N, {{&in, 1, false}, {&f.act[i], 1, true}});
        break;
      case LayerKind::add:
        f.act[i] = bld.dram(N, out_size, Fmt::f32);
        bld.sample_op(kLayerAdd, size_op(out_size), N,
                      {{&in, 1, false}, {&f.act[std::size_t(n.b)], 1, false}, {&f.act[i], 1, true}});
        break;
    }
    if (n.param >= 0) bld.host_output(f.act[i], outputs[std::size_t(n.param)].v.data());
    else if (i + 1 == n_nodes) bld.host_output(f.act[i], outputs.back().v.data());
    if (n.kind == LayerKind::flatten) continue;
    share_output(i, f.act[i]);
    if (here) {  // what the backward reads once
      bld.share(f.relu_mask[i], 1);
      bld.share(f.argmax[i], 1);
      bld.share(f.xhat[i], 1);
      bld.share(f.invstd[i], 1);
    }
    bld.done(in);
    if (n.kind == LayerKind::add) bld.done(f.act[std::size_t(n.b)]);
  }
  return f;
}

// The backward pass from g = dL/d(output); with `update`, the device's SGD
// update of every weight fused into its dW's write-back and of every bias
// after its db.
void graph_backward_program(Builder& bld, const HdqtConfig& cfg, const MlpParams& p, const GraphTensors& f,
                            const Tensor& dout, std::uint64_t N, bool update, std::vector<Tensor>& dw) {
  const auto& nodes = p.graph->nodes();
  dw.assign(p.w.size(), Tensor{});
  std::vector<std::optional<Tensor>> grad(nodes.size());
  grad.back() = dout;
  // DRAM reuse (docs/npu.md "Layer graphs"): a gradient is shared with the
  // nodes' slots that hold it and given back when the last one is done; the
  // temporaries of a layer after their last reader; the forward's tensors
  // after the backward's reads when the forward shared them (the same job).
  bld.share(dout, 1);
  // A node's gradient: the first contribution as is, each later one added (layer_ops.h kLayerAdd).
  auto contribute = [&](int node, const Tensor& c) {
    if (node == kNetworkInput) return;
    std::optional<Tensor>& g = grad[std::size_t(node)];
    bld.share(c, 1);
    if (!g) {
      g = c;
      return;
    }
    const Tensor sum = bld.dram(N, c.cols, Fmt::f32);
    bld.sample_op(kLayerAdd, size_op(c.cols), N, {{&*g, 1, false}, {&c, 1, false}, {&sum, 1, true}});
    bld.done(*g);
    bld.done(c);
    bld.share(sum, 1);
    g = sum;
  };
  const std::vector<int> owner = cost_layers(*p.graph);
  for (std::size_t i = nodes.size(); i-- > 0;) {
    const LayerNode& n = nodes[i];
    if (!grad[i]) throw ConfigError(fmt::format("network: node {} ({}) does not reach the output", i, name(n.kind)));
    const Tensor dy = *grad[i];
    const std::uint64_t in_size = std::uint64_t(n.in.size());
    bld.tag(owner[i], Phase::backward_dx);
    switch (n.kind) {
      case LayerKind::conv:
      case LayerKind::linear: {
        const int l = n.param;
        const bool conv = n.kind == LayerKind::conv, need_dx = n.a != kNetworkInput;
        const std::uint64_t O = std::uint64_t(p.w[l].rows), K = std::uint64_t(p.w[l].cols);
        const std::uint64_t P = conv ? std::uint64_t(n.conv.positions()) : 1, M = N * P;
        const int xb = f.xq[i].bits;
        // G as M x O rows (conv: Gm[n*P + p][o] = G[n][o][p]).
        bld.tag(l, Phase::backward_dw);
        Tensor gm = dy;
        if (conv) {
          gm = bld.dram(M, O, Fmt::f32);
          bld.sample_op(kLayerRowsOf, size_op(O, P), N, {{&dy, 1, false}, {&gm, P, true}});
          bld.share(gm, 1);
        }
        const HadamardPlan hm = plan_hadamard(int(M), cfg.hadamard), ho = plan_hadamard(int(O), cfg.hadamard);
        const std::uint64_t Mp = std::uint64_t(hm.padded_length), Op = std::uint64_t(ho.padded_length);
        Tensor ghq;
        if (need_dx) {
          bld.tag(l, Phase::backward_dx);
          ghq = bld.dram_packed(M, Op, QuantRole::bwd_g_dx);
          bld.hadamard_quantize(Builder::Transform::rows, gm, 0, QuantRole::bwd_g_dx, ghq, ho.block);
          bld.share(ghq, 1);
        }
        bld.tag(l, Phase::backward_dw);
        const Tensor gtq = bld.dram_packed(O, Mp, QuantRole::bwd_g_dw);
        bld.hadamard_quantize(Builder::Transform::cols_t, gm, 0, QuantRole::bwd_g_dw, gtq, hm.block);
        bld.share(gtq, 1);
        if (n.bias) bld.column_sum(gm);  // db[o]: n, then p ascending (the rows' order)
        if (conv) bld.done(gm);
        Tensor cols = f.xq[i];
        if (conv) {  // im2col(Xq) again, as the functional engine
          cols = bld.dram(M, K, Fmt::packed, xb);
          bld.sample_op(kLayerIm2col, conv_op(n.conv, xb), N, {{&f.xq[i], 1, false}, {&cols, P, true}});
          bld.done(f.xq[i]);
          bld.share(cols, 1);
        }
        const Tensor xhq = bld.dram_packed(Mp, K, QuantRole::bwd_x_dw);
        bld.hadamard_quantize(Builder::Transform::cols_int, cols, bld.record(l, QuantRole::fwd_x), QuantRole::bwd_x_dw,
                              xhq, hm.block);
        bld.done(cols);  // (linear: Xq)
        bld.share(xhq, 1);
        dw[std::size_t(l)] = bld.host(O, K);
        GemmSpec s_dw = backward_gemm_spec(bld, l, GemmRole::bwd_dw, gtq, xhq, O, K, Mp, hm.block);
        s_dw.host = &dw[std::size_t(l)];
        if (update) {
          s_dw.sgd_w = &f.w[std::size_t(l)];
          s_dw.sgd_buf = &bld.momentum_w(l);
        }
        bld.gemm(s_dw);
        bld.done(gtq);
        bld.done(xhq);
        if (update && n.bias) {
          bld.tag(l, Phase::update);
          bld.sgd_bias(f.b[std::size_t(l)], bld.db(l), bld.momentum_b(l));
        }
        if (!need_dx) {
          bld.done(f.wq[i]);
          break;
        }
        bld.tag(l, Phase::backward_dx);
        const Tensor whq = bld.dram_packed(Op, K, QuantRole::bwd_w_dx);
        bld.hadamard_quantize(Builder::Transform::cols_int, f.wq[i], bld.record(l, QuantRole::fwd_w),
                              QuantRole::bwd_w_dx, whq, ho.block);
        bld.done(f.wq[i]);
        bld.share(whq, 1);
        const Tensor d = bld.dram(M, K, Fmt::f32);
        if (conv) bld.share(d, 1);  // col2im reads it (linear: D is dX, a gradient)
        GemmSpec s_dx = backward_gemm_spec(bld, l, GemmRole::bwd_dx, ghq, whq, M, K, Op, ho.block);
        s_dx.out = &d;
        const bool clip = cfg.ste == Ste::clipped;
        if (!conv) {
          if (clip) s_dx.clip_mask = &f.clip[i];
          bld.gemm(s_dx);
          bld.done(ghq);
          bld.done(whq);
          if (clip) bld.done(f.clip[i]);
          contribute(n.a, d);
          break;
        }
        bld.gemm(s_dx);
        bld.done(ghq);
        bld.done(whq);
        const Tensor dx = bld.dram(N, in_size, Fmt::f32);
        bld.col2im(n.conv, N, d, dx, clip ? &f.clip[i] : nullptr);
        bld.done(d);
        if (clip) bld.done(f.clip[i]);
        contribute(n.a, dx);
        break;
      }
      case LayerKind::relu: {
        const Tensor dx = bld.dram(N, in_size, Fmt::f32);
        LayerDescriptor d = size_op(in_size);
        d.flags = kLayerMask;
        bld.sample_op(kLayerReluGrad, d, N, {{&f.relu_mask[i], 1, false}, {&dy, 1, false}, {&dx, 1, true}});
        bld.done(f.relu_mask[i]);
        contribute(n.a, dx);
        break;
      }
      case LayerKind::max_pool: {
        const Tensor dx = bld.dram(N, in_size, Fmt::f32);
        bld.sample_op(kLayerMaxPoolGrad, pool_op(n.pool), N,
                      {{&f.argmax[i], 1, false}, {&dy, 1, false}, {&dx, 1, true}});
        bld.done(f.argmax[i]);
        contribute(n.a, dx);
        break;
      }
      case LayerKind::flatten: contribute(n.a, dy); break;
      case LayerKind::add:
        contribute(n.a, dy);
        contribute(n.b, dy);
        break;
      case LayerKind::avg_pool: {
        const Tensor dx = bld.dram(N, in_size, Fmt::f32);
        bld.sample_op(kLayerAvgPoolGrad, pool_op(n.pool), N, {{&dy, 1, false}, {&dx, 1, true}});
        contribute(n.a, dx);
        break;
      }
      case LayerKind::global_avg_pool: {
        const Tensor dx = bld.dram(N, in_size, Fmt::f32);
        bld.sample_op(kLayerGapGrad, size_op(std::uint64_t(n.in.c), std::uint64_t(n.in.h) * std::uint64_t(n.in.w)), N,
                      {{&dy, 1, false}, {&dx, 1, true}});
        contribute(n.a, dx);
        break;
      }
      case LayerKind::shortcut: {
        const Tensor dx = bld.dram(N, in_size, Fmt::f32);
        bld.sample_op(kLayerShortcutGrad, shortcut_op(n), N, {{&dy, 1, false}, {&dx, 1, true}});
        contribute(n.a, dx);
        break;
      }
      case LayerKind::batchnorm: {
        const int l = n.param;
        const std::uint64_t C = std::uint64_t(n.in.c), HW = std::uint64_t(n.in.h) * std::uint64_t(n.in.w);
        bld.tag(l, Phase::backward_dx);
        LayerDescriptor d;
        d.geo[0] = std::int32_t(C);
        d.geo[1] = std::int32_t(HW);
        d.geo[2] = std::int32_t(N * HW);
        enum { sum_g, sum_gx, gamma, invstd, vectors };
        const std::uint64_t fixed = bld.scratch_bytes(vectors, C);
        Tensor v[vectors];
        for (int k = 0; k < vectors; ++k) v[k] = bld.scratch_vector(k, C);
        bld.copy(f.w[std::size_t(l)], v[gamma]);
        bld.copy(f.invstd[i], v[invstd]);
        const Tensor& xhat = f.xhat[i];
        bld.sample_op(kLayerBnGradSums, d, N, {{&dy, 1, false}, {&xhat, 1, false}, {&v[sum_g], 0}, {&v[sum_gx], 0}},
                      fixed);
        const Tensor dx = bld.dram(N, in_size, Fmt::f32);
        bld.sample_op(kLayerBnGradDx, d, N,
                      {{&dy, 1, false}, {&xhat, 1, false}, {&v[sum_g], 0}, {&v[sum_gx], 0}, {&v[gamma], 0},
                       {&v[invstd], 0}, {&dx, 1, true}},
                      fixed);
        bld.done(xhat);
        bld.done(f.invstd[i]);
        // dbeta into the record area's bias gradient (read with the records), dgamma for the host.
        bld.copy(v[sum_g], bld.db_tensor(l, C));
        dw[std::size_t(l)] = bld.host(1, C);
        bld.copy(v[sum_gx], dw[std::size_t(l)]);
        if (update) {
          bld.tag(l, Phase::update);
          bld.sgd_vector(f.w[std::size_t(l)], dw[std::size_t(l)], bld.momentum_w(l));
          bld.sgd_bias(f.b[std::size_t(l)], bld.db(l), bld.momentum_b(l));
        }
        contribute(n.a, dx);
        break;
      }
    }
    bld.done(dy);
  }
}

}  // namespace

void check_supported(const NpuConfig& npu, const HdqtConfig& hdqt) {
  // LUQ integers (+-2^E) are wider than the k-bit fields the quantizer unit packs and the MAC array reads.
  for (int r = 0; r < kQuantRoles; ++r)
    if (hdqt.quant[r].rounding == Rounding::luq)
      throw NpuConfigError(fmt::format("quant.{}: luq rounding is not modelled on the NPU", name(QuantRole(r))));
  for (int r = 0; r < kQuantRoles; ++r)
    if (hdqt.quant[r].bits > npu.mac_array.max_operand_bits)
      throw NpuConfigError(fmt::format("{}: mac_array.max_operand_bits = {}: the {} operands have {} bits", npu.file,
                                       npu.mac_array.max_operand_bits, name(QuantRole(r)), hdqt.quant[r].bits));
  for (int g = 0; g < kGemmRoles; ++g) {
    const AccumulatorConfig& a = hdqt.gemm[g];
    if (a.acc_bits > npu.mac_array.max_acc_bits)
      throw NpuConfigError(fmt::format("{}: mac_array.max_acc_bits = {}: GEMM {} needs {}-bit tile accumulators",
                                       npu.file, npu.mac_array.max_acc_bits, name(GemmRole(g)), a.acc_bits));
    if (a.outer_bits > npu.mac_array.max_outer_bits)
      throw NpuConfigError(fmt::format("{}: mac_array.max_outer_bits = {}: GEMM {} needs {}-bit outer accumulators",
                                       npu.file, npu.mac_array.max_outer_bits, name(GemmRole(g)), a.outer_bits));
  }
}

StateLayout state_layout(std::uint64_t sram_bytes, const MlpParams& p) {
  StateLayout s;
  std::uint64_t top = sram_bytes / kAlign * kAlign;
  bool fits = true;
  auto take = [&](std::uint64_t bytes) {
    bytes = align_up(bytes, kAlign);
    fits = fits && bytes <= top;
    top = fits ? top - bytes : 0;
    return top;
  };
  for (std::size_t l = 0; l < p.w.size(); ++l) {
    const std::uint64_t w = 4 * std::uint64_t(p.w[l].rows) * std::uint64_t(p.w[l].cols), b = 4 * p.b[l].size();
    s.w.push_back(take(w));
    s.b.push_back(take(b));
    s.mw.push_back(take(w));
    s.mb.push_back(take(b));
  }
  s.lo = top;  // 0 when it does not fit
  return s;
}

std::uint64_t record_area_bytes(std::span<const int> widths) {
  const std::uint64_t layers = widths.size() - 1;
  std::uint64_t at = layers * kQuantRoles * sizeof(QuantRecord) + layers * kGemmRoles * sizeof(GemmStatsRecord) + 16;
  for (std::size_t l = 1; l < widths.size(); ++l) at += align_up(4 * std::uint64_t(widths[l]), 16);
  return align_up(at, kAlign);
}

namespace {

// q has p's layers with the same shapes of W and b.
bool same_shapes(const MlpParams& q, const MlpParams& p) {
  bool same = q.w.size() == p.w.size() && q.b.size() == p.b.size();
  for (std::size_t l = 0; same && l < p.w.size(); ++l)
    same = q.w[l].rows == p.w[l].rows && q.w[l].cols == p.w[l].cols && q.b[l].size() == p.b[l].size();
  return same;
}

// Result buffers of a pass: reused when the shapes match.
void size_results(const MlpParams& p, std::uint64_t B, bool grads, StepResults& res) {
  const int L = int(p.w.size());
  res.outputs.resize(std::size_t(L));
  for (int l = 0; l < L; ++l)
    if (res.outputs[l].rows != int(B) || res.outputs[l].cols != p.w[l].rows) res.outputs[l] = Matrix(int(B), p.w[l].rows);
  if (grads && !same_shapes(res.grads, p)) res.grads = zeros_like(p);
}

void read_records(Builder& bld, const Tensor& records, const MlpParams& p, StepResults& res) {
  res.records.resize(records.bytes());
  bld.read_back(records.addr, res.records.data(), records.bytes());
  res.stats_offset = bld.stats(0, GemmRole::fwd);
  res.stats_written = bld.stats_written();
  res.loss_offset = bld.loss();
  res.db_offsets.clear();
  for (std::size_t l = 0; l < p.w.size(); ++l) res.db_offsets.push_back(bld.db(int(l)));
}

// What a plan is chosen for: everything that sizes a job's tensors and SRAM.
std::string plan_key(const char* kind, const StepSettings& s, const MlpParams& p, std::uint64_t B) {
  std::string k = fmt::format("{}|{}|{}x{}|{}|{}|{}{}{}|", kind, s.npu->sram.size_bytes, s.npu->mac_array.rows,
                              s.npu->mac_array.cols, B, int(s.first_update), int(s.state.on_chip),
                              int(s.state.weights_current), int(s.spare_state));
  for (const Matrix& w : p.w) k += fmt::format("{}x{},", w.rows, w.cols);
  for (const QuantConfig& q : s.hdqt->quant) k += fmt::format("{},", q.bits);
  for (const AccumulatorConfig& a : s.hdqt->gemm) k += fmt::format("t{},", a.tile);  // K-chunks are multiples of it
  k += fmt::format("|{}|{}|{}|{}|{}", s.hdqt->hadamard.max_block.value_or(0), int(s.hdqt->hadamard.pad), int(s.hdqt->ste),
                   int(s.carried_w_max), s.carried_wq);
  return k;
}

// Builds a job under the residency plan for its shape (docs/npu.md, "Residency
// and fusion"). The plan is the set of candidates given up; it is found by
// building, once per shape: start with every candidate resident; when one
// does not fit, the builder names the candidate of least value in the way and
// the job is rebuilt without it; then each candidate still resident, least
// valuable first, is given up too when that lowers the job's DRAM bytes.
// What the planner minimizes: the job's DRAM bytes less what it saves the next step.
std::int64_t plan_cost(const Job& job) { return std::int64_t(job_dram_bytes(job)) - std::int64_t(job.carry_credit); }

template <typename Build>
Job planned(const std::string& key, Build build) {
  static std::mutex mutex;
  static std::map<std::string, std::set<int>> plans;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (const auto it = plans.find(key); it != plans.end()) return build(it->second);
  }
  std::set<int> off;
  auto attempt = [&](const std::set<int>& o) -> std::optional<Job> {
    try {
      return build(o);
    } catch (const ResidencyFailure& f) {
      off.insert(f.id);
      return std::nullopt;
    }
  };
  std::optional<Job> job;
  while (!(job = attempt(off))) {
  }
  // One candidate toggled (given up, or taken back): kept when the job then
  // fits and costs less.
  auto improve = [&](int id, bool give_up) {
    std::set<int> trial = off;
    if (give_up) trial.insert(id);
    else trial.erase(id);
    try {
      Job other = build(trial);
      if (plan_cost(other) >= plan_cost(*job)) return false;
      off = std::move(trial);
      job = std::move(other);
      return true;
    } catch (const ResidencyFailure&) {
      return false;  // another candidate would no longer fit
    }
  };
  // Then, until nothing changes (a few rounds): each candidate still
  // resident, least valuable first, is given up when that lowers the cost;
  // each one given up, most valuable first, is taken back when that does (one
  // given up early may fit once later ones are gone).
  for (bool changed = true; changed;) {
    changed = false;
    std::vector<int> kept = job->resident;
    std::stable_sort(kept.begin(), kept.end(), [](int a, int b) { return keep_value(a) < keep_value(b); });
    for (const int id : kept) changed = improve(id, true) || changed;
    std::vector<int> given(off.begin(), off.end());
    std::stable_sort(given.begin(), given.end(), [](int a, int b) { return keep_value(a) > keep_value(b); });
    for (const int id : given) changed = improve(id, false) || changed;
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    plans.emplace(key, off);
  }
  return build(off);  // last, so that what the build hands out besides the job (a kept pass) is this job's
}

}  // namespace

std::uint64_t job_dram_bytes(const Job& job) {
  std::uint64_t bytes = 0;
  for (const Command& c : job.commands) {
    if (c.header.unit == Unit::dma && c.header.opcode == kDmaHostCopy) continue;
    bytes += kCommandBytes;
    if (c.header.unit == Unit::dma) {
      const DmaDescriptor d = c.as<DmaDescriptor>();
      if (d.touches_dram()) bytes += d.bytes();
    }
  }
  return bytes;
}

Job build_training_step(const StepSettings& s, const MlpParams& p, const Matrix& x, std::span<const int> labels,
                        std::span<const bool> active, std::uint64_t step, StepResults& res) {
  const HdqtConfig& cfg = *s.hdqt;
  const int L = int(p.w.size());
  const std::uint64_t B = std::uint64_t(x.rows);
  if (labels.size() != B) throw ConfigError(fmt::format("npu: {} labels for a batch of {}", labels.size(), B));
  // Results land in res's buffers, reused from an earlier step when the shapes match.
  size_results(p, B, true, res);
  return planned(plan_key("step", s, p, B), [&](const std::set<int>& off) {
    Job job;
    Builder bld(s, step, p, job, off, true);
    // Host-side bytes: labels as int32, active classes as one byte each.
    job.staging.resize(4 * B + active.size());
    for (std::uint64_t i = 0; i < B; ++i) {
      const std::int32_t v = labels[i];
      std::memcpy(job.staging.data() + 4 * i, &v, 4);
    }
    for (std::size_t c = 0; c < active.size(); ++c) job.staging[4 * B + c] = active[c];

    ForwardTensors f = forward(bld, cfg, p, x, true, false, s.state);
    const Tensor labels_t = bld.dram(1, 4 * B, Fmt::bytes), active_t = bld.dram(1, active.size(), Fmt::bytes);
    bld.load(labels_t, job.staging.data(), true);
    bld.load(active_t, job.staging.data() + 4 * B, true);

    bld.tag(L - 1, Phase::forward);
    const std::uint64_t O_last = std::uint64_t(p.w[L - 1].rows);
    const Tensor g = bld.keep(keep_id(Keep::grad, L - 1), B, O_last, Fmt::f32);
    bld.softmax(f.logits, labels_t, active_t, g);
    bld.release(f.logits);

    std::vector<Tensor> dw;
    backward(bld, cfg, p, f, g, B, true, dw);
    bld.tag(0, Phase::update);
    const Tensor records = bld.save_records();
    if (bld.carries()) {
      const Tensor& carry = bld.store_carry();
      res.carry.resize(carry.bytes());
      bld.read_back(carry.addr, res.carry.data(), carry.bytes());
    } else {
      res.carry.clear();
    }

    // Read-backs: gradients, forward outputs, the record area, updated weights.
    for (int l = 0; l < L; ++l) {
      bld.read_back(dw[l].addr, res.grads.w[l].v.data(), dw[l].bytes());
      bld.read_back(f.out[l].addr, res.outputs[l].v.data(), f.out[l].bytes());
    }
    read_records(bld, records, p, res);
    // The updated weights: for tests, and for the engine's check that a
    // state kept on chip still equals the driver's weights at the next step
    // (host copies out of SRAM: the host's bookkeeping, free, docs/npu.md).
    if (s.read_device_params || bld.keeps_state() || bld.carries()) {
      if (!same_shapes(res.device_params, p)) res.device_params = p;  // else the reads overwrite every W and b
      for (int l = 0; l < L; ++l) {
        const Tensor w = bld.for_host(f.w[l]), b = bld.for_host(f.b[l]);  // the job's own buffers, or host copies
        bld.read_back(w.addr, res.device_params.w[l].v.data(), w.bytes(), true);
        bld.read_back(b.addr, res.device_params.b[l].data(), b.bytes(), true);
      }
    }
    bld.finish();
    return job;
  });
}

bool carry_finite(const StepResults& r) {
  for (std::size_t at = 0; at + sizeof(QuantRecord) <= r.carry.size(); at += sizeof(QuantRecord)) {
    QuantRecord q;
    std::memcpy(&q, r.carry.data() + at, sizeof q);
    if (q.nonfinite) return false;
  }
  return !r.carry.empty();
}

void decode_records(StepResults& r) {
  const std::size_t L = r.db_offsets.size();
  std::memcpy(&r.loss, r.records.data() + r.loss_offset, 4);
  r.stats.resize(L * kGemmRoles);
  for (std::size_t i = 0; i < L * kGemmRoles; ++i) {
    GemmStatsRecord s;
    std::memcpy(&s, r.records.data() + r.stats_offset + i * sizeof(GemmStatsRecord), sizeof s);
    r.stats[i] = i < r.stats_written.size() && r.stats_written[i] ? s.stats() : GemmStats{};  // no GEMM: none
  }
  if (r.grads.b.size() == L)
    for (std::size_t l = 0; l < L; ++l)
      if (!r.grads.b[l].empty())  // a graph's conv layer without a bias has none
        std::memcpy(r.grads.b[l].data(), r.records.data() + r.db_offsets[l], 4 * r.grads.b[l].size());
}

struct SavedForward {
  ForwardTensors f;
  Tensor records;
  std::uint64_t batch = 0, lo = 0, top = 0;
  GraphTensors graph;       // a layer graph's pass (build_graph_forward)
  bool batch_stats = false;  // its BatchNorm used batch statistics (a backward may follow)
};
void SavedForwardDeleter::operator()(SavedForward* p) const { delete p; }
std::uint64_t saved_lo(const SavedForward& saved) { return saved.lo; }
std::uint64_t saved_top(const SavedForward& saved) { return saved.top; }

Job build_forward(const StepSettings& s, const MlpParams& p, const Matrix& x, std::uint64_t step, bool train,
                  StepResults& res, SavedForwardPtr* saved) {
  size_results(p, std::uint64_t(x.rows), false, res);
  return planned(plan_key(train ? "forward" : "eval", s, p, std::uint64_t(x.rows)), [&](const std::set<int>& off) {
    Job job;
    Builder bld(s, step, p, job, off);
    ForwardTensors f = forward(bld, *s.hdqt, p, x, train, true, s.state);
    for (std::size_t l = 0; l < p.w.size(); ++l)
      bld.read_back(f.out[l].addr, res.outputs[l].v.data(), f.out[l].bytes());
    if (train) {
      bld.tag(0, Phase::forward);
      const Tensor records = bld.save_records();
      read_records(bld, records, p, res);
      bld.finish();
      *saved = SavedForwardPtr(
          new SavedForward{std::move(f), records, std::uint64_t(x.rows), job.tensors_addr, job.queue_addr, {}, true});
      return job;
    }
    res.records.clear();
    res.db_offsets.clear();
    bld.finish();
    return job;
  });
}

Job build_backward(const StepSettings& s, const MlpParams& p, const SavedForward& saved, const Matrix& dout,
                   std::uint64_t step, StepResults& res) {
  const std::uint64_t B = saved.batch;
  if (std::uint64_t(dout.rows) != B || dout.cols != p.w.back().rows)
    throw ConfigError(fmt::format("npu: backward needs dL/dY of {} x {}, got {} x {}", B, p.w.back().rows, dout.rows,
                                  dout.cols));
  size_results(p, B, true, res);
  return planned(plan_key("backward", s, p, B), [&](const std::set<int>& off) {
    Job job;
    Builder bld(s, step, p, job, off);
    const int L = int(p.w.size());
    bld.tag(L - 1, Phase::backward_dw);
    bld.restore_records(saved.records);
    const Tensor g = bld.dram(B, std::uint64_t(dout.cols), Fmt::f32);
    bld.load(g, dout.v.data(), true);
    std::vector<Tensor> dw;
    backward(bld, *s.hdqt, p, saved.f, g, B, false, dw);
    bld.tag(0, Phase::backward_dw);
    const Tensor records = bld.save_records();
    for (int l = 0; l < L; ++l) bld.read_back(dw[l].addr, res.grads.w[l].v.data(), dw[l].bytes());
    read_records(bld, records, p, res);
    bld.finish();
    return job;
  });
}

namespace {

// Result buffers of a graph pass (reused when the shapes match): the output
// of every parameter layer, then the network's when its last node has no
// parameters (GraphTrace::outputs); the gradients in p's shapes.
void size_graph_results(const MlpParams& p, std::uint64_t B, bool grads, StepResults& res) {
  const auto& nodes = p.graph->nodes();
  std::vector<int> cols(p.w.size(), 0);
  for (const LayerNode& n : nodes)
    if (n.param >= 0) cols[std::size_t(n.param)] = int(n.out.size());
  if (nodes.back().param < 0) cols.push_back(int(nodes.back().out.size()));
  res.outputs.resize(cols.size());
  for (std::size_t l = 0; l < cols.size(); ++l)
    if (res.outputs[l].rows != int(B) || res.outputs[l].cols != cols[l]) res.outputs[l] = Matrix(int(B), cols[l]);
  if (!grads) return;
  bool same = res.grads.w.size() == p.w.size() && res.grads.graph == p.graph;
  for (std::size_t l = 0; same && l < p.w.size(); ++l)
    same = res.grads.w[l].rows == p.w[l].rows && res.grads.w[l].cols == p.w[l].cols && res.grads.b[l].size() == p.b[l].size();
  if (!same) res.grads = zeros_like(p);
  res.grads.graph = p.graph;
  res.grads.running = p.running;  // sized; BatchNorm layers' are read back after the pass
}

std::string graph_plan_key(const char* kind, const StepSettings& s, const MlpParams& p, std::uint64_t B) {
  std::string k = plan_key(kind, s, p, B) + "|graph:";
  for (const LayerNode& n : p.graph->nodes())
    k += fmt::format("{}:{}:{}>{}:{}:{}/{},", int(n.kind), n.in.c, n.in.h, n.in.w, n.out.c, n.out.h, n.out.w);
  return k;
}

}  // namespace

Job build_graph_step(const StepSettings& s, const MlpParams& p, const Matrix& x, std::span<const int> labels,
                     std::span<const bool> active, std::uint64_t step, StepResults& res) {
  check_graph_lowered(*s.hdqt, *p.graph);
  const std::uint64_t B = std::uint64_t(x.rows);
  if (labels.size() != B) throw ConfigError(fmt::format("npu: {} labels for a batch of {}", labels.size(), B));
  size_graph_results(p, B, true, res);
  return planned(graph_plan_key("graph-step", s, p, B), [&](const std::set<int>& off) {
    Job job;
    Builder bld(s, step, p, job, off);
    job.staging.resize(4 * B + active.size());
    for (std::uint64_t i = 0; i < B; ++i) {
      const std::int32_t v = labels[i];
      std::memcpy(job.staging.data() + 4 * i, &v, 4);
    }
    for (std::size_t c = 0; c < active.size(); ++c) job.staging[4 * B + c] = active[c];
    GraphTensors f = graph_forward_program(bld, *s.hdqt, p, x, true, Backward::same_job, res.outputs);
    // Loaded at job start: in DRAM no tensor of the forward used.
    const Tensor labels_t = bld.dram(1, 4 * B, Fmt::bytes, 32, true),
                 active_t = bld.dram(1, active.size(), Fmt::bytes, 32, true);
    bld.load(labels_t, job.staging.data());
    bld.load(active_t, job.staging.data() + 4 * B);
    bld.tag(std::max(p.graph->nodes().back().param, 0), Phase::forward);
    const Tensor& logits = f.act.back();
    const Tensor g = bld.dram(B, logits.cols, Fmt::f32);
    bld.softmax(logits, labels_t, active_t, g);
    std::vector<Tensor> dw;
    graph_backward_program(bld, *s.hdqt, p, f, g, B, true, dw);
    bld.tag(0, Phase::update);
    const Tensor records = bld.save_records();
    for (std::size_t l = 0; l < p.w.size(); ++l)
      bld.read_back(dw[l].addr, res.grads.w[l].v.data(), dw[l].bytes());
    read_records(bld, records, p, res);
    for (std::size_t l = 0; l < p.w.size(); ++l)  // BatchNorm's running statistics after the pass
      if (f.running[l].cols > 0) bld.read_back(f.running[l].addr, res.grads.running[l].data(), f.running[l].bytes());
    if (s.read_device_params) {  // the weights after the device's update (tests)
      res.device_params = p;
      for (std::size_t l = 0; l < p.w.size(); ++l) {
        bld.read_back(f.w[l].addr, res.device_params.w[l].v.data(), f.w[l].bytes());
        if (!p.b[l].empty()) bld.read_back(f.b[l].addr, res.device_params.b[l].data(), f.b[l].bytes());
      }
    }
    bld.finish();
    return job;
  });
}

void decode_graph_records(const MlpParams& p, StepResults& r) {
  decode_records(r);
  // Records of GEMMs the step does not run hold whatever the SRAM held: no statistics.
  std::vector<bool> ran(r.stats.size(), false);
  for (const LayerNode& n : p.graph->nodes()) {
    if (n.kind != LayerKind::conv && n.kind != LayerKind::linear) continue;
    const std::size_t at = std::size_t(n.param) * kGemmRoles;
    ran[at + std::size_t(GemmRole::fwd)] = ran[at + std::size_t(GemmRole::bwd_dw)] = true;
    ran[at + std::size_t(GemmRole::bwd_dx)] = n.a != kNetworkInput;
  }
  for (std::size_t i = 0; i < r.stats.size(); ++i)
    if (!ran[i]) r.stats[i] = GemmStats{};
}

Job build_graph_eval(const StepSettings& s, const MlpParams& p, const Matrix& x, std::uint64_t step,
                     StepResults& res) {
  check_graph_lowered(*s.hdqt, *p.graph);
  size_graph_results(p, std::uint64_t(x.rows), false, res);
  return planned(graph_plan_key("graph-eval", s, p, std::uint64_t(x.rows)), [&](const std::set<int>& off) {
    Job job;
    Builder bld(s, step, p, job, off);
    graph_forward_program(bld, *s.hdqt, p, x, false, Backward::none, res.outputs);
    res.records.clear();
    res.db_offsets.clear();
    bld.finish();
    return job;
  });
}

Job build_graph_forward(const StepSettings& s, const MlpParams& p, const Matrix& x, std::uint64_t step,
                        bool batch_stats, StepResults& res, SavedForwardPtr* saved) {
  check_graph_lowered(*s.hdqt, *p.graph);
  const std::uint64_t B = std::uint64_t(x.rows);
  size_graph_results(p, B, false, res);
  return planned(graph_plan_key(batch_stats ? "graph-forward" : "graph-forward-frozen", s, p, B),
                 [&](const std::set<int>& off) {
                   Job job;
                   Builder bld(s, step, p, job, off);
                   GraphTensors f =
                       graph_forward_program(bld, *s.hdqt, p, x, batch_stats, Backward::later_job, res.outputs);
                   bld.tag(0, Phase::forward);
                   const Tensor records = bld.save_records();
                   read_records(bld, records, p, res);
                   bld.finish();
                   *saved = SavedForwardPtr(new SavedForward{{}, records, B, job.tensors_addr, job.queue_addr,
                                                             std::move(f), batch_stats});
                   return job;
                 });
}

Job build_graph_backward(const StepSettings& s, const MlpParams& p, const SavedForward& saved, const Matrix& dout,
                         std::uint64_t step, StepResults& res) {
  const std::uint64_t B = saved.batch;
  if (!saved.batch_stats)
    throw ConfigError("graph backward: the forward pass used running statistics (an evaluation or frozen pass)");
  if (std::uint64_t(dout.rows) != B || dout.cols != p.graph->output().size())
    throw ConfigError(fmt::format("npu: backward needs dL/d(output) of {} x {}, got {} x {}", B,
                                  p.graph->output().size(), dout.rows, dout.cols));
  size_graph_results(p, B, true, res);
  return planned(graph_plan_key("graph-backward", s, p, B), [&](const std::set<int>& off) {
    Job job;
    Builder bld(s, step, p, job, off);
    bld.tag(0, Phase::backward_dw);
    bld.restore_records(saved.records);
    const Tensor g = bld.dram(B, std::uint64_t(dout.cols), Fmt::f32);
    bld.load(g, dout.v.data());
    std::vector<Tensor> dw;
    graph_backward_program(bld, *s.hdqt, p, saved.graph, g, B, false, dw);
    bld.tag(0, Phase::backward_dw);
    const Tensor records = bld.save_records();
    for (std::size_t l = 0; l < p.w.size(); ++l) bld.read_back(dw[l].addr, res.grads.w[l].v.data(), dw[l].bytes());
    for (std::size_t l = 0; l < p.w.size(); ++l)  // BatchNorm's running statistics after the forward pass
      if (saved.graph.running[l].cols > 0)
        bld.read_back(saved.graph.running[l].addr, res.grads.running[l].data(), saved.graph.running[l].bytes());
    read_records(bld, records, p, res);
    bld.finish();
    return job;
  });
}

}  // namespace hdq::npu
