#include "sim/host/step_program.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "models/hadamard/hadamard.h"
#include "sim/blocks/dma.h"
#include "sim/blocks/hadamard_unit.h"
#include "sim/blocks/quantizer_unit.h"
#include "sim/blocks/vector_unit.h"

namespace hdq::npu {
namespace {

constexpr std::uint64_t kAlign = 64;  // buffers start on 64-byte boundaries (a row across the default 8 x 8-byte banks)

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

enum class Fmt { f32, packed, mask, bytes };

// A tensor in DRAM (or a tile of one in SRAM): rows x cols in a format.
struct Tensor {
  std::uint64_t addr = 0;
  std::uint64_t rows = 0, cols = 0;
  Fmt fmt = Fmt::f32;
  int bits = 32;  // packed: operand bits

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
  Tensor out;                              // f32 m x n
  const Tensor* bias = nullptr;            // f32 1 x n
  const Tensor* act = nullptr;             // f32 m x n: max(out, 0)
  const Tensor* clip_mask = nullptr;       // mask m x n
  const Tensor* relu_pre = nullptr;        // f32 m x n
};

class Builder {
 public:
  Builder(const StepSettings& s, std::uint64_t step, const MlpParams& p, Job& job)
      : s_(s), cfg_(*s.npu), hdqt_(*s.hdqt), step_(step), job_(job) {
    const std::uint64_t layers = p.w.size();
    // SRAM: the step's records first, the rest is the streaming arena.
    std::uint64_t at = 0;
    records_ = at;
    at += layers * kQuantRoles * sizeof(QuantRecord);
    stats_ = at;
    at += layers * kGemmRoles * sizeof(GemmStatsRecord);
    loss_ = at;
    at += 16;
    for (const auto& b : p.b) {
      db_.push_back(at);
      at += align_up(4 * b.size(), 16);
    }
    scalars_bytes_ = align_up(at, kAlign);
    if (scalars_bytes_ >= cfg_.sram.size_bytes)
      throw NpuConfigError(fmt::format("{}: sram.size_bytes = {} cannot even hold the step's {} bytes of records",
                                       cfg_.file, cfg_.sram.size_bytes, scalars_bytes_));
    arena_ = cfg_.sram.size_bytes - scalars_bytes_;
    // DRAM: the device's momentum buffers first (they persist across steps).
    for (const auto& w : p.w) momentum_w_.push_back(dram(std::uint64_t(w.rows), std::uint64_t(w.cols), Fmt::f32));
    for (const auto& b : p.b) momentum_b_.push_back(dram(1, b.size(), Fmt::f32));
    // Above the tensors of forward passes kept for their backward (NpuEngine's slots).
    dram_top_ = std::max(dram_top_, s.dram_base);
    job_.tensors_addr = align_up(dram_top_, kAlign);
  }

  // ---- placement
  Tensor dram(std::uint64_t rows, std::uint64_t cols, Fmt f, int bits = 32) {
    Tensor t{align_up(dram_top_, kAlign), rows, cols, f, bits};
    dram_top_ = t.addr + t.bytes();
    return t;
  }
  Tensor dram_packed(std::uint64_t rows, std::uint64_t cols, QuantRole r) {
    return dram(rows, cols, Fmt::packed, hdqt_.q(r).bits);
  }
  std::uint32_t record(int layer, QuantRole r) const {
    return std::uint32_t(records_ + (std::uint64_t(layer) * kQuantRoles + std::uint64_t(r)) * sizeof(QuantRecord));
  }
  std::uint32_t stats(int layer, GemmRole g) const {
    return std::uint32_t(stats_ + (std::uint64_t(layer) * kGemmRoles + std::uint64_t(g)) * sizeof(GemmStatsRecord));
  }
  std::uint32_t loss() const { return std::uint32_t(loss_); }
  std::uint32_t db(int layer) const { return std::uint32_t(db_[layer]); }
  const Tensor& momentum_w(int l) const { return momentum_w_[l]; }
  const Tensor& momentum_b(int l) const { return momentum_b_[l]; }

  void load(const Tensor& t, const void* src) {
    job_.loads.push_back({t.addr, {static_cast<const std::uint8_t*>(src), t.bytes()}});
  }
  void read_back(std::uint64_t addr, void* dst, std::uint64_t bytes) {
    job_.reads.push_back({addr, {static_cast<std::uint8_t*>(dst), bytes}});
  }

  void tag(int layer, Phase phase) {
    layer_ = layer;
    phase_ = phase;
  }

  // ---- operations. Each streams its tensors through SRAM in chunks, in two
  // slots used in turn (double buffering) and software-pipelined, so the DMA
  // loads chunk i + 1 while the blocks work on chunk i (stream() below).

  // Q(src; role) -> dst (packed), and the clip mask when `mask` is given.
  void quantize(const Tensor& src, QuantRole role, const Tensor& dst, const Tensor* mask) {
    const QuantConfig& q = hdqt_.q(role);
    QuantizerDescriptor d;
    d.set_config(q);
    d.role = std::uint8_t(role);
    d.record = record(layer_, role);
    // Layer l of network n is HDQT layer n * kLayersPerNet + l (hdqt_mlp.h).
    const std::uint64_t hdqt_layer = std::uint64_t(s_.net) * kLayersPerNet + std::uint64_t(layer_);
    d.key = RandomStream{s_.seed, 8 * hdqt_layer + std::uint64_t(role), step_}.key();
    d.cols = std::uint32_t(src.cols);
    d.write_mask = mask != nullptr;
    const std::uint64_t in_row = src.pitch(), out_row = dst.pitch(), mask_row = mask ? mask->pitch() : 0;
    const std::uint64_t per_row = in_row + out_row + mask_row;
    // The whole tensor in one chunk if it fits the arena (read once); else two
    // passes over double-buffered chunks (read twice).
    const bool one_chunk = fit(slot_bytes(0, 1), per_row, src.rows, 1, 3) >= src.rows;
    int slots = 2;
    std::uint64_t rows2 = one_chunk ? src.rows : fit(slot_bytes(0, 2), per_row, src.rows, 1, 3);
    if (rows2 == 0) {
      slots = 1;
      rows2 = fit(slot_bytes(0, 1), per_row, src.rows, 1, 3);
    }
    if (rows2 == 0) too_small(fmt::format("quantization of {} x {} {}", src.rows, src.cols, name(role)), 0, per_row, 3);
    // Pass 2 (and a single pass) places the f32 rows, the packed rows and the mask rows in a slot.
    auto q_at = [&](std::uint32_t at) { return std::uint32_t(at + align_up(rows2 * in_row, kAlign)); };
    auto m_at = [&](std::uint32_t at) { return std::uint32_t(q_at(at) + align_up(rows2 * out_row, kAlign)); };
    auto chunk = [&](std::uint32_t opcode, std::uint64_t r0, std::uint64_t n, std::uint32_t at) {
      d.src = at;
      d.dst = q_at(at);
      d.mask = m_at(at);
      d.rows = std::uint32_t(n);
      d.first_index = r0 * src.cols;
      d.init = r0 == 0;
      emit(Unit::quantizer, opcode, d);
    };
    auto store = [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) {
      dma_rows_out(dst, r0, n, q_at(at));
      if (mask) dma_rows_out(*mask, r0, n, m_at(at));
    };
    if (one_chunk) {  // load once, reduce, scale, round, store
      stream(src.rows, src.rows, 0, 1, [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) { dma_rows_in(src, r0, n, at); },
             [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) {
               chunk(kQuantReduce, r0, n, at);
               emit(Unit::quantizer, kQuantFinalize, d);
               chunk(kQuantRound, r0, n, at);
             },
             store);
      return;
    }
    // Pass 1 in chunks of the f32 rows alone; the scale; pass 2.
    const std::uint64_t rows1 = fit(slot_bytes(0, slots), in_row, src.rows, 1, 1);
    stream(src.rows, rows1, 0, slots, [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) { dma_rows_in(src, r0, n, at); },
           [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) { chunk(kQuantReduce, r0, n, at); },
           [](std::uint64_t, std::uint64_t, std::uint32_t) {});
    emit(Unit::quantizer, kQuantFinalize, d);
    stream(src.rows, rows2, 0, slots, [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) { dma_rows_in(src, r0, n, at); },
           [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) { chunk(kQuantRound, r0, n, at); }, store);
  }

  void gemm(const GemmSpec& g) {
    const int R = cfg_.mac_array.rows, C = cfg_.mac_array.cols;
    const std::uint64_t gran = std::lcm(std::uint64_t(C), std::uint64_t(8));  // column blocks start on bytes
    auto b_panel = [&](std::uint64_t nb) {
      return g.b_layout == BLayout::n_by_k ? nb * g.b.pitch() : g.k * g.b.pitch_of(nb);
    };
    auto fixed_of = [&](std::uint64_t nb) {
      return align_up(b_panel(nb), kAlign) + (g.bias ? align_up(4 * nb, kAlign) : 0);
    };
    auto per_row = [&](std::uint64_t nb) {
      return g.a.pitch() + 4 * nb + (g.act ? 4 * nb : 0) + (g.clip_mask ? mask_pitch(nb) : 0) +
             (g.relu_pre ? 4 * nb : 0);
    };
    const int buffers = 2 + (g.act != nullptr) + (g.clip_mask != nullptr) + (g.relu_pre != nullptr);
    // All of B resident if the A rows of at least one fold fit beside it (else
    // fewer columns, and A is read once per column block); passes
    // double-buffered if they fit twice.
    std::uint64_t nb = g.n, mb = 0;
    int slots = 2;
    for (;;) {
      for (slots = 2; slots >= 1; --slots) {
        mb = fit(slot_bytes(fixed_of(nb), slots), per_row(nb), g.m, std::uint64_t(R), buffers);
        if (mb > 0) break;
      }
      if (mb > 0) break;
      const std::uint64_t smaller = (nb - 1) / gran * gran;
      if (nb <= gran || smaller == 0)
        too_small(fmt::format("GEMM {} ({} x {} x {})", name(g.role), g.m, g.n, g.k), fixed_of(nb),
                  std::min<std::uint64_t>(g.m, R) * per_row(nb), buffers);
      nb = smaller;
    }
    const std::uint64_t fixed = fixed_of(nb);
    const std::uint32_t b_at = arena(0), bias_at = arena(align_up(b_panel(nb), kAlign));
    // One pass's buffers in a slot.
    struct Pass {
      std::uint32_t a, c, act, mask, pre;
    };
    auto pass_at = [&](std::uint32_t at) {
      Pass p{};
      std::uint64_t off = at;
      auto take = [&](std::uint64_t bytes) {
        const std::uint32_t a = std::uint32_t(off);
        off += align_up(bytes, kAlign);
        return a;
      };
      p.a = take(mb * g.a.pitch());
      p.c = take(mb * nb * 4);
      if (g.act) p.act = take(mb * nb * 4);
      if (g.clip_mask) p.mask = take(mb * mask_pitch(nb));
      if (g.relu_pre) p.pre = take(mb * nb * 4);
      return p;
    };

    MacDescriptor mac;
    mac.b = b_at;
    mac.a_record = g.a_record;
    mac.b_record = g.b_record;
    mac.stats = stats(layer_, g.role);
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
                           (g.relu_pre ? kVecReluGrad : 0));
    v.aux0 = bias_at;

    bool first = true;
    for (std::uint64_t j0 = 0; j0 < g.n; j0 += nb) {
      const std::uint64_t nj = std::min(nb, g.n - j0);
      if (g.b_layout == BLayout::n_by_k) dma_rows_in(g.b, j0, nj, b_at);
      else dma_cols_in(g.b, 0, g.k, j0, nj, b_at);
      if (g.bias) dma_cols_in(*g.bias, 0, 1, j0, nj, bias_at);
      stream(
          g.m, mb, fixed, slots,
          [&](std::uint64_t i0, std::uint64_t mi, std::uint32_t at) {
            const Pass p = pass_at(at);
            dma_rows_in(g.a, i0, mi, p.a);
            if (g.clip_mask) dma_cols_in(*g.clip_mask, i0, mi, j0, nj, p.mask);
            if (g.relu_pre) dma_cols_in(*g.relu_pre, i0, mi, j0, nj, p.pre);
          },
          [&](std::uint64_t, std::uint64_t mi, std::uint32_t at) {
            const Pass p = pass_at(at);
            mac.a = p.a;
            mac.c = p.c;
            mac.m = std::uint32_t(mi);
            mac.n = std::uint32_t(nj);
            mac.init_stats = first;
            first = false;
            emit(Unit::mac_array, kMacGemm, mac);
            v.src = v.dst = p.c;
            v.aux1 = p.act;
            v.aux2 = p.mask;
            v.aux3 = p.pre;
            v.rows = std::uint32_t(mi);
            v.cols = std::uint32_t(nj);
            emit(Unit::vector, kVecDequant, v);
          },
          [&](std::uint64_t i0, std::uint64_t mi, std::uint32_t at) {
            const Pass p = pass_at(at);
            dma_cols_out(g.out, i0, mi, j0, nj, p.c);
            if (g.act) dma_cols_out(*g.act, i0, mi, j0, nj, p.act);
          });
    }
  }

  // G (rows x cols f32) -> dst (rows x padded), transformed along rows: G' = G H_O.
  void hadamard_rows(const Tensor& src, const Tensor& dst, int block) {
    const int slots = slots_for(src.pitch() + dst.pitch() + 2 * kAlign);
    if (slots == 0) too_small("Hadamard transform of G", 0, src.pitch() + dst.pitch(), 2);
    const std::uint64_t rows = fit(slot_bytes(0, slots), src.pitch() + dst.pitch(), src.rows, 1, 2);
    const std::uint64_t out_off = align_up(rows * src.pitch(), kAlign);
    HadamardDescriptor d{0, 0, 0, 0, std::uint32_t(src.cols), std::uint32_t(dst.cols), std::uint32_t(block), 0};
    stream(src.rows, rows, 0, slots, [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) { dma_rows_in(src, r0, n, at); },
           [&](std::uint64_t, std::uint64_t n, std::uint32_t at) {
             d.src = at;
             d.dst = std::uint32_t(at + out_off);
             d.rows = std::uint32_t(n);
             emit(Unit::hadamard, kHadamardRows, d);
           },
           [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) { dma_rows_out(dst, r0, n, std::uint32_t(at + out_off)); });
  }

  // G (rows x cols f32) -> dst (cols x padded): G'' = G^T H_B, a block of G's columns at a time.
  void hadamard_cols_t(const Tensor& src, const Tensor& dst, int block) {
    const std::uint64_t per_col = 4 * src.rows + dst.pitch();
    const int slots = slots_for(per_col + 2 * kAlign);
    if (slots == 0) too_small("Hadamard transform of G^T", 0, per_col, 2);
    const std::uint64_t cols = fit(slot_bytes(0, slots), per_col, src.cols, 1, 2);
    const std::uint64_t out_off = align_up(4 * src.rows * cols, kAlign);
    HadamardDescriptor d{0, 0, 0, std::uint32_t(src.rows), 0, std::uint32_t(dst.cols), std::uint32_t(block), 0};
    stream(src.cols, cols, 0, slots,
           [&](std::uint64_t c0, std::uint64_t n, std::uint32_t at) { dma_cols_in(src, 0, src.rows, c0, n, at); },
           [&](std::uint64_t, std::uint64_t n, std::uint32_t at) {
             d.src = at;
             d.dst = std::uint32_t(at + out_off);
             d.cols = std::uint32_t(n);
             emit(Unit::hadamard, kHadamardColsT, d);
           },
           [&](std::uint64_t c0, std::uint64_t n, std::uint32_t at) { dma_rows_out(dst, c0, n, std::uint32_t(at + out_off)); });
  }

  // Packed src (rows x cols) -> dst f32 (padded x cols), exact transform along rows: W' = H_O Wq, X' = H_B Xq.
  void hadamard_cols_int(const Tensor& src, std::uint32_t src_record, const Tensor& dst, int block) {
    auto need = [&](std::uint64_t c) { return align_up(src.rows * src.pitch_of(c), kAlign) + dst.rows * 4 * c + kAlign; };
    std::uint64_t cols = std::min<std::uint64_t>(src.cols, 8);  // multiples of 8 columns: packed slices start on a byte
    const int slots = slots_for(need(cols));
    if (slots == 0) too_small("integer Hadamard transform", 0, need(cols), 0);
    const std::uint64_t slot = slot_bytes(0, slots);
    if (need(src.cols) <= slot) cols = src.cols;
    else
      while (cols + 8 < src.cols && need(cols + 8) <= slot) cols += 8;
    const std::uint64_t out_off = align_up(src.rows * src.pitch_of(cols), kAlign);
    HadamardDescriptor d{0, 0, src_record, std::uint32_t(src.rows), 0, std::uint32_t(dst.rows), std::uint32_t(block),
                         std::uint8_t(src.bits)};
    stream(src.cols, cols, 0, slots,
           [&](std::uint64_t c0, std::uint64_t n, std::uint32_t at) { dma_cols_in(src, 0, src.rows, c0, n, at); },
           [&](std::uint64_t, std::uint64_t n, std::uint32_t at) {
             d.src = at;
             d.dst = std::uint32_t(at + out_off);
             d.cols = std::uint32_t(n);
             emit(Unit::hadamard, kHadamardColsInt, d);
           },
           [&](std::uint64_t c0, std::uint64_t n, std::uint32_t at) {
             dma_cols_out(dst, 0, dst.rows, c0, n, std::uint32_t(at + out_off));
           });
  }

  void softmax(const Tensor& logits, const Tensor& labels, const Tensor& active, const Tensor& grad) {
    const std::uint64_t need = align_up(logits.bytes(), kAlign) + align_up(labels.bytes(), kAlign) +
                               align_up(active.bytes(), kAlign) + align_up(grad.bytes(), kAlign);
    const int slots = slots_for(need);
    if (slots == 0) too_small("softmax cross-entropy of the whole batch", 0, need, 0);
    VectorDescriptor v;
    v.rows = std::uint32_t(logits.rows);
    v.cols = std::uint32_t(logits.cols);
    v.aux2 = loss();
    stream(1, 1, 0, slots,
           [&](std::uint64_t, std::uint64_t, std::uint32_t at) {
             v.src = at;
             v.aux0 = std::uint32_t(v.src + align_up(logits.bytes(), kAlign));
             v.aux1 = std::uint32_t(v.aux0 + align_up(labels.bytes(), kAlign));
             v.dst = std::uint32_t(v.aux1 + align_up(active.bytes(), kAlign));
             dma_rows_in(logits, 0, logits.rows, v.src);
             dma_rows_in(labels, 0, 1, v.aux0);
             dma_rows_in(active, 0, 1, v.aux1);
           },
           [&](std::uint64_t, std::uint64_t, std::uint32_t) { emit(Unit::vector, kVecSoftmax, v); },
           [&](std::uint64_t, std::uint64_t, std::uint32_t) { dma_rows_out(grad, 0, grad.rows, v.dst); });
  }

  // db = column sums of G into the layer's accumulator in the record area.
  void column_sum(const Tensor& g) {
    const int slots = slots_for(g.pitch() + kAlign);
    if (slots == 0) too_small("bias gradient", 0, g.pitch(), 1);
    const std::uint64_t rows = fit(slot_bytes(0, slots), g.pitch(), g.rows, 1, 1);
    VectorDescriptor v;
    v.dst = db(layer_);
    v.cols = std::uint32_t(g.cols);
    stream(g.rows, rows, 0, slots, [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) { dma_rows_in(g, r0, n, at); },
           [&](std::uint64_t r0, std::uint64_t n, std::uint32_t at) {
             v.src = at;
             v.rows = std::uint32_t(n);
             v.flags = r0 == 0 ? kVecInit : 0;
             emit(Unit::vector, kVecColumnSum, v);
           },
           [](std::uint64_t, std::uint64_t, std::uint32_t) {});
  }

  // SGD on the flat f32 vector w (DRAM) with gradient g (DRAM, or the SRAM
  // address g_sram when g is null) and momentum buffer buf (DRAM).
  void sgd(const Tensor& w, const Tensor* g, std::uint32_t g_sram, const Tensor& buf) {
    const std::uint64_t n = w.rows * w.cols;
    const int slots = slots_for((g ? 12 : 8) + (g ? 3 : 2) * kAlign);
    if (slots == 0) too_small("SGD update", 0, g ? 12 : 8, g ? 3 : 2);
    const std::uint64_t chunk = fit(slot_bytes(0, slots), g ? 12 : 8, n, 1, g ? 3 : 2);
    const Tensor wf{w.addr, n, 1, Fmt::f32}, bf{buf.addr, n, 1, Fmt::f32};
    const std::uint64_t part = align_up(4 * chunk, kAlign);
    VectorDescriptor v;
    v.cols = 1;
    v.lr = s_.sgd.lr;
    v.momentum = s_.sgd.momentum;
    v.weight_decay = s_.sgd.weight_decay;
    v.flags = s_.first_update ? kVecInit : 0;
    stream(n, chunk, 0, slots,
           [&](std::uint64_t i0, std::uint64_t c, std::uint32_t at) {
             dma_rows_in(wf, i0, c, at);
             if (!s_.first_update) dma_rows_in(bf, i0, c, std::uint32_t(at + part));
             if (g) dma_rows_in(Tensor{g->addr, n, 1, Fmt::f32}, i0, c, std::uint32_t(at + 2 * part));
           },
           [&](std::uint64_t, std::uint64_t c, std::uint32_t at) {
             v.dst = at;
             v.aux0 = std::uint32_t(at + part);
             v.src = g ? std::uint32_t(at + 2 * part) : g_sram;
             v.rows = std::uint32_t(c);
             emit(Unit::vector, kVecSgd, v);
           },
           [&](std::uint64_t i0, std::uint64_t c, std::uint32_t at) {
             dma_rows_out(wf, i0, c, at);
             dma_rows_out(bf, i0, c, std::uint32_t(at + part));
           });
  }

  // The record area (scales, statistics, loss, bias gradients) to DRAM.
  // Copies a record area saved by an earlier job (its forward pass) into SRAM.
  void restore_records(const Tensor& saved) {
    dma(Space::dram, saved.addr, scalars_bytes_, Space::sram, 0, scalars_bytes_, 1, scalars_bytes_);
  }

  Tensor save_records() {
    const Tensor t = dram(1, scalars_bytes_, Fmt::bytes);
    dma(Space::sram, 0, scalars_bytes_, Space::dram, t.addr, scalars_bytes_, 1, scalars_bytes_);
    return t;
  }

  // Places the queue and closes the job.
  void finish() {
    job_.commands = std::move(commands_);
    job_.queue_addr = align_up(dram_top_, kAlign);
    job_.dram_bytes = job_.queue_addr + job_.commands.size() * kCommandBytes;
    if (job_.dram_bytes > cfg_.dram.size_bytes)
      throw NpuConfigError(fmt::format("{}: dram.size_bytes = {} is too small: this step needs {} bytes of DRAM",
                                       cfg_.file, cfg_.dram.size_bytes, job_.dram_bytes));
  }

 private:
  template <typename D>
  void emit(Unit unit, std::uint32_t opcode, const D& d) {
    Command c = Command::make(unit, phase_, layer_, opcode, d);
    c.header.id = std::uint32_t(commands_.size());
    commands_.push_back(c);
  }

  void dma(Space ss, std::uint64_t src, std::uint64_t src_pitch, Space ds, std::uint64_t dst, std::uint64_t dst_pitch,
           std::uint64_t rows, std::uint64_t row_bytes) {
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
    emit(Unit::dma, kDmaCopy, d);
  }
  // Whole rows [r0, r0 + n) of a DRAM tensor to/from SRAM (contiguous).
  void dma_rows_in(const Tensor& t, std::uint64_t r0, std::uint64_t n, std::uint32_t at) {
    dma(Space::dram, t.addr + r0 * t.pitch(), t.pitch(), Space::sram, at, t.pitch(), n, t.pitch());
  }
  void dma_rows_out(const Tensor& t, std::uint64_t r0, std::uint64_t n, std::uint32_t at) {
    dma(Space::sram, at, t.pitch(), Space::dram, t.addr + r0 * t.pitch(), t.pitch(), n, t.pitch());
  }
  // Rows [r0, r0 + nr) x columns [c0, c0 + nc) to/from a tile of pitch pitch_of(nc) in SRAM.
  void dma_cols_in(const Tensor& t, std::uint64_t r0, std::uint64_t nr, std::uint64_t c0, std::uint64_t nc,
                   std::uint32_t at) {
    dma(Space::dram, t.addr + r0 * t.pitch() + t.col_offset(c0), t.pitch(), Space::sram, at, t.pitch_of(nc), nr,
        t.pitch_of(nc));
  }
  void dma_cols_out(const Tensor& t, std::uint64_t r0, std::uint64_t nr, std::uint64_t c0, std::uint64_t nc,
                    std::uint32_t at) {
    dma(Space::sram, at, t.pitch_of(nc), Space::dram, t.addr + r0 * t.pitch() + t.col_offset(c0), t.pitch(), nr,
        t.pitch_of(nc));
  }

  std::uint32_t arena(std::uint64_t offset) const { return std::uint32_t(scalars_bytes_ + offset); }

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
  void stream(std::uint64_t total, std::uint64_t chunk, std::uint64_t fixed, int slots, Load load, Compute compute,
              Store store) {
    const std::uint64_t slot = slot_bytes(fixed, slots), n = (total + chunk - 1) / chunk;
    const std::uint64_t first = slots == 2 ? next_slot_ : 0;
    auto at = [&](std::uint64_t i) { return arena(fixed + ((first + i) % std::uint64_t(slots)) * slot); };
    auto count = [&](std::uint64_t i) { return std::min(chunk, total - i * chunk); };
    for (std::uint64_t i = 0; i < n; ++i) {
      if (i == 0 || slots == 1) load(i * chunk, count(i), at(i));
      if (slots == 2 && i + 1 < n) load((i + 1) * chunk, count(i + 1), at(i + 1));
      compute(i * chunk, count(i), at(i));
      store(i * chunk, count(i), at(i));
    }
    if (slots == 2) next_slot_ = (first + n) % 2;
  }

  // The largest count n <= max_n (a multiple of `step` unless n == max_n) of
  // units of per_unit bytes that fit in `avail` bytes, with room for the
  // alignment of `buffers` buffers; 0 if not even one fits.
  static std::uint64_t fit(std::uint64_t avail, std::uint64_t per_unit, std::uint64_t max_n, std::uint64_t step,
                           int buffers) {
    const std::uint64_t slack = std::uint64_t(buffers) * kAlign;
    if (slack >= avail) return 0;
    const std::uint64_t n = (avail - slack) / per_unit;
    if (n >= max_n) return max_n;
    return n / step * step;
  }

  // The smallest tiling of an operation needs `fixed` bytes plus one slot of
  // `per_slot` bytes (and the alignment of `buffers` buffers).
  [[noreturn]] void too_small(const std::string& what, std::uint64_t fixed, std::uint64_t per_slot, int buffers) const {
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
  std::vector<Command> commands_;
  int layer_ = 0;
  Phase phase_ = Phase::forward;
  std::uint64_t records_ = 0, stats_ = 0, loss_ = 0, scalars_bytes_ = 0, arena_ = 0;
  std::vector<std::uint64_t> db_;
  std::uint64_t dram_top_ = 0;
  std::uint64_t next_slot_ = 0;
  std::vector<Tensor> momentum_w_, momentum_b_;
};

// The forward pass of every layer; returns the pre-activation tensors. When
// `train`, also keeps what the backward pass needs.
struct ForwardTensors {
  std::vector<Tensor> x, xq, wq, mask, pre, w, b;
};

ForwardTensors forward(Builder& bld, const HdqtConfig& cfg, const MlpParams& p, const Matrix& x, bool train) {
  const int L = int(p.w.size());
  const std::uint64_t B = std::uint64_t(x.rows);
  ForwardTensors f;
  f.x.push_back(bld.dram(B, std::uint64_t(x.cols), Fmt::f32));
  bld.load(f.x[0], x.v.data());
  for (int l = 0; l < L; ++l) {
    const std::uint64_t I = std::uint64_t(p.w[l].cols), O = std::uint64_t(p.w[l].rows);
    f.w.push_back(bld.dram(O, I, Fmt::f32));
    f.b.push_back(bld.dram(1, O, Fmt::f32));
    bld.load(f.w[l], p.w[l].v.data());
    bld.load(f.b[l], p.b[l].data());
  }
  for (int l = 0; l < L; ++l) {
    bld.tag(l, Phase::forward);
    const std::uint64_t I = std::uint64_t(p.w[l].cols), O = std::uint64_t(p.w[l].rows);
    const bool need_mask = train && l > 0 && cfg.ste == Ste::clipped;  // the clipped STE of this layer's dX
    f.xq.push_back(bld.dram_packed(B, I, QuantRole::fwd_x));
    f.mask.push_back(need_mask ? bld.dram(B, I, Fmt::mask) : Tensor{});
    bld.quantize(f.x[l], QuantRole::fwd_x, f.xq[l], need_mask ? &f.mask[l] : nullptr);
    f.wq.push_back(bld.dram_packed(O, I, QuantRole::fwd_w));
    bld.quantize(f.w[l], QuantRole::fwd_w, f.wq[l], nullptr);
    f.pre.push_back(bld.dram(B, O, Fmt::f32));
    GemmSpec g;
    g.role = GemmRole::fwd;
    g.a = f.xq[l];
    g.a_record = bld.record(l, QuantRole::fwd_x);
    g.b = f.wq[l];
    g.b_layout = BLayout::n_by_k;  // Wq (O x I) is B^T
    g.b_record = bld.record(l, QuantRole::fwd_w);
    g.m = B;
    g.n = O;
    g.k = I;
    g.factors = {{bld.record(l, QuantRole::fwd_x)}, {bld.record(l, QuantRole::fwd_w)}};
    g.out = f.pre[l];
    g.bias = &f.b[l];
    Tensor act;
    if (l + 1 < L) {
      act = bld.dram(B, O, Fmt::f32);
      g.act = &act;
    }
    bld.gemm(g);
    if (l + 1 < L) f.x.push_back(act);
  }
  return f;
}

// The backward pass of every layer from g = dL/dY of the last layer: dX
// (layers > 0), dW into `dw` (f32, DRAM) and db in the record area.
void backward(Builder& bld, const HdqtConfig& cfg, const MlpParams& p, const ForwardTensors& f, Tensor g,
              std::uint64_t B, std::vector<Tensor>& dw) {
  const int L = int(p.w.size());
  dw.assign(p.w.size(), Tensor{});
  for (int l = L - 1; l >= 0; --l) {
    const std::uint64_t I = std::uint64_t(p.w[l].cols), O = std::uint64_t(p.w[l].rows);
    Tensor dx;
    if (l > 0) {
      bld.tag(l, Phase::backward_dx);
      const HadamardPlan h = plan_hadamard(int(O), cfg.hadamard);
      const std::uint64_t Op = std::uint64_t(h.padded_length);
      const Tensor wh = bld.dram(Op, I, Fmt::f32), whq = bld.dram_packed(Op, I, QuantRole::bwd_w_dx);
      bld.hadamard_cols_int(f.wq[l], bld.record(l, QuantRole::fwd_w), wh, h.block);
      bld.quantize(wh, QuantRole::bwd_w_dx, whq, nullptr);
      const Tensor gh = bld.dram(B, Op, Fmt::f32), ghq = bld.dram_packed(B, Op, QuantRole::bwd_g_dx);
      bld.hadamard_rows(g, gh, h.block);
      bld.quantize(gh, QuantRole::bwd_g_dx, ghq, nullptr);
      dx = bld.dram(B, I, Fmt::f32);
      GemmSpec s_dx;
      s_dx.role = GemmRole::bwd_dx;
      s_dx.a = ghq;
      s_dx.a_record = bld.record(l, QuantRole::bwd_g_dx);
      s_dx.b = whq;
      s_dx.b_record = bld.record(l, QuantRole::bwd_w_dx);
      s_dx.m = B;
      s_dx.n = I;
      s_dx.k = Op;
      s_dx.factors = {{bld.record(l, QuantRole::bwd_g_dx)}, {bld.record(l, QuantRole::bwd_w_dx)},
                      {bld.record(l, QuantRole::fwd_w)}, {kNoRecord, 1.0f / float(h.block)}};
      s_dx.out = dx;
      if (cfg.ste == Ste::clipped) s_dx.clip_mask = &f.mask[l];
      s_dx.relu_pre = &f.pre[l - 1];  // ReLU' of the layer below
      bld.gemm(s_dx);
    }
    bld.tag(l, Phase::backward_dw);
    const HadamardPlan h = plan_hadamard(int(B), cfg.hadamard);
    const std::uint64_t Bp = std::uint64_t(h.padded_length);
    const Tensor xh = bld.dram(Bp, I, Fmt::f32), xhq = bld.dram_packed(Bp, I, QuantRole::bwd_x_dw);
    bld.hadamard_cols_int(f.xq[l], bld.record(l, QuantRole::fwd_x), xh, h.block);
    bld.quantize(xh, QuantRole::bwd_x_dw, xhq, nullptr);
    const Tensor gt = bld.dram(O, Bp, Fmt::f32), gtq = bld.dram_packed(O, Bp, QuantRole::bwd_g_dw);
    bld.hadamard_cols_t(g, gt, h.block);
    bld.quantize(gt, QuantRole::bwd_g_dw, gtq, nullptr);
    dw[l] = bld.dram(O, I, Fmt::f32);
    GemmSpec s_dw;
    s_dw.role = GemmRole::bwd_dw;
    s_dw.a = gtq;
    s_dw.a_record = bld.record(l, QuantRole::bwd_g_dw);
    s_dw.b = xhq;
    s_dw.b_record = bld.record(l, QuantRole::bwd_x_dw);
    s_dw.m = O;
    s_dw.n = I;
    s_dw.k = Bp;
    s_dw.factors = {{bld.record(l, QuantRole::bwd_g_dw)}, {bld.record(l, QuantRole::bwd_x_dw)},
                    {bld.record(l, QuantRole::fwd_x)}, {kNoRecord, 1.0f / float(h.block)}};
    s_dw.out = dw[l];
    bld.gemm(s_dw);
    bld.column_sum(g);
    if (l > 0) g = dx;
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

std::uint64_t record_area_bytes(std::span<const int> widths) {
  const std::uint64_t layers = widths.size() - 1;
  std::uint64_t at = layers * kQuantRoles * sizeof(QuantRecord) + layers * kGemmRoles * sizeof(GemmStatsRecord) + 16;
  for (std::size_t l = 1; l < widths.size(); ++l) at += align_up(4 * std::uint64_t(widths[l]), 16);
  return align_up(at, kAlign);
}

namespace {

// Result buffers of a pass: reused when the shapes match.
void size_results(const MlpParams& p, std::uint64_t B, bool grads, StepResults& res) {
  const int L = int(p.w.size());
  res.outputs.resize(std::size_t(L));
  for (int l = 0; l < L; ++l)
    if (res.outputs[l].rows != int(B) || res.outputs[l].cols != p.w[l].rows) res.outputs[l] = Matrix(int(B), p.w[l].rows);
  if (!grads) return;
  bool same = res.grads.w.size() == p.w.size();
  for (int l = 0; same && l < L; ++l)
    same = res.grads.w[l].rows == p.w[l].rows && res.grads.w[l].cols == p.w[l].cols && res.grads.b[l].size() == p.b[l].size();
  if (!same) res.grads = zeros_like(p);
}

void read_records(Builder& bld, const Tensor& records, const MlpParams& p, StepResults& res) {
  res.records.resize(records.bytes());
  bld.read_back(records.addr, res.records.data(), records.bytes());
  res.stats_offset = bld.stats(0, GemmRole::fwd);
  res.loss_offset = bld.loss();
  res.db_offsets.clear();
  for (std::size_t l = 0; l < p.w.size(); ++l) res.db_offsets.push_back(bld.db(int(l)));
}

}  // namespace

Job build_training_step(const StepSettings& s, const MlpParams& p, const Matrix& x, std::span<const int> labels,
                        std::span<const bool> active, std::uint64_t step, StepResults& res) {
  const HdqtConfig& cfg = *s.hdqt;
  const int L = int(p.w.size());
  const std::uint64_t B = std::uint64_t(x.rows);
  if (labels.size() != B) throw ConfigError(fmt::format("npu: {} labels for a batch of {}", labels.size(), B));
  Job job;
  Builder bld(s, step, p, job);
  // Host-side bytes: labels as int32, active classes as one byte each.
  job.staging.resize(4 * B + active.size());
  for (std::uint64_t i = 0; i < B; ++i) {
    const std::int32_t v = labels[i];
    std::memcpy(job.staging.data() + 4 * i, &v, 4);
  }
  for (std::size_t c = 0; c < active.size(); ++c) job.staging[4 * B + c] = active[c];

  ForwardTensors f = forward(bld, cfg, p, x, true);
  const Tensor labels_t = bld.dram(1, 4 * B, Fmt::bytes), active_t = bld.dram(1, active.size(), Fmt::bytes);
  bld.load(labels_t, job.staging.data());
  bld.load(active_t, job.staging.data() + 4 * B);

  // Results land in res's buffers, reused from an earlier step when the shapes match.
  size_results(p, B, true, res);
  std::vector<Tensor> dw;

  bld.tag(L - 1, Phase::forward);
  const std::uint64_t O_last = std::uint64_t(p.w[L - 1].rows);
  Tensor g = bld.dram(B, O_last, Fmt::f32);
  bld.softmax(f.pre[L - 1], labels_t, active_t, g);

  backward(bld, cfg, p, f, g, B, dw);

  for (int l = 0; l < L; ++l) {
    bld.tag(l, Phase::update);
    bld.sgd(f.w[l], &dw[l], 0, bld.momentum_w(l));
    bld.sgd(f.b[l], nullptr, bld.db(l), bld.momentum_b(l));
  }
  bld.tag(0, Phase::update);
  const Tensor records = bld.save_records();

  // Read-backs: gradients, forward outputs, the record area, updated weights.
  for (int l = 0; l < L; ++l) {
    bld.read_back(dw[l].addr, res.grads.w[l].v.data(), dw[l].bytes());
    bld.read_back(f.pre[l].addr, res.outputs[l].v.data(), f.pre[l].bytes());
  }
  read_records(bld, records, p, res);
  if (s.read_device_params) {
    res.device_params = p;
    for (int l = 0; l < L; ++l) {
      bld.read_back(f.w[l].addr, res.device_params.w[l].v.data(), f.w[l].bytes());
      bld.read_back(f.b[l].addr, res.device_params.b[l].data(), f.b[l].bytes());
    }
  }
  bld.finish();
  return job;
}

void decode_records(StepResults& r) {
  const std::size_t L = r.db_offsets.size();
  std::memcpy(&r.loss, r.records.data() + r.loss_offset, 4);
  r.stats.resize(L * kGemmRoles);
  for (std::size_t i = 0; i < L * kGemmRoles; ++i) {
    GemmStatsRecord s;
    std::memcpy(&s, r.records.data() + r.stats_offset + i * sizeof(GemmStatsRecord), sizeof s);
    r.stats[i] = s.stats();
  }
  if (r.grads.b.size() == L)
    for (std::size_t l = 0; l < L; ++l)
      std::memcpy(r.grads.b[l].data(), r.records.data() + r.db_offsets[l], 4 * r.grads.b[l].size());
}

struct SavedForward {
  ForwardTensors f;
  Tensor records;
  std::uint64_t batch = 0, lo = 0, top = 0;
};
void SavedForwardDeleter::operator()(SavedForward* p) const { delete p; }
std::uint64_t saved_lo(const SavedForward& saved) { return saved.lo; }
std::uint64_t saved_top(const SavedForward& saved) { return saved.top; }

Job build_forward(const StepSettings& s, const MlpParams& p, const Matrix& x, std::uint64_t step, bool train,
                  StepResults& res, SavedForwardPtr* saved) {
  Job job;
  Builder bld(s, step, p, job);
  ForwardTensors f = forward(bld, *s.hdqt, p, x, train);
  size_results(p, std::uint64_t(x.rows), false, res);
  for (std::size_t l = 0; l < p.w.size(); ++l)
    bld.read_back(f.pre[l].addr, res.outputs[l].v.data(), f.pre[l].bytes());
  if (train) {
    bld.tag(0, Phase::forward);
    const Tensor records = bld.save_records();
    read_records(bld, records, p, res);
    bld.finish();
    *saved = SavedForwardPtr(new SavedForward{std::move(f), records, std::uint64_t(x.rows), job.tensors_addr, job.queue_addr});
    return job;
  }
  res.records.clear();
  res.db_offsets.clear();
  bld.finish();
  return job;
}

Job build_backward(const StepSettings& s, const MlpParams& p, const SavedForward& saved, const Matrix& dout,
                   std::uint64_t step, StepResults& res) {
  const std::uint64_t B = saved.batch;
  if (std::uint64_t(dout.rows) != B || dout.cols != p.w.back().rows)
    throw ConfigError(fmt::format("npu: backward needs dL/dY of {} x {}, got {} x {}", B, p.w.back().rows, dout.rows,
                                  dout.cols));
  Job job;
  Builder bld(s, step, p, job);
  const int L = int(p.w.size());
  bld.tag(L - 1, Phase::backward_dw);
  bld.restore_records(saved.records);
  const Tensor g = bld.dram(B, std::uint64_t(dout.cols), Fmt::f32);
  bld.load(g, dout.v.data());
  size_results(p, B, true, res);
  std::vector<Tensor> dw;
  backward(bld, *s.hdqt, p, saved.f, g, B, dw);
  bld.tag(0, Phase::backward_dw);
  const Tensor records = bld.save_records();
  for (int l = 0; l < L; ++l) bld.read_back(dw[l].addr, res.grads.w[l].v.data(), dw[l].bytes());
  read_records(bld, records, p, res);
  bld.finish();
  return job;
}

}  // namespace hdq::npu
