// The byte kernel for `saturate` and `wrap` with W <= 8 (docs/contract.md
// section 5), over a vector-width type T (gemm_simd.h). Include only from
// gemm_avx2.cpp and gemm_avx512.cpp, after the width's traits.
//
// Lanes are T::kLanes output columns of one row held as int8 (32 for AVX2, 64
// for AVX-512); k walks in ascending order inside each tile, so the
// order-dependent register rule is applied exactly as the reference does. Per
// step and row:
//   p  = T[k][a[i][k]]          a product vector from a table built per
//                               vector of columns and chunk of k: for every
//                               possible a value, a * b[k][j] for its kLanes j
//   s' = register rule(s + p)   one or a few byte ops (see ByteStep)
//   c  = changed-step counter   +1 in each lane where s' != wrapping s + p
//                               (how the width counts: T::ByteStepOp)
// Products must fit int8 (checked from the operands' actual ranges).
//
// Rows go 4 at a time (4 independent register chains); chunks of <= 32 k
// keep the product table (<= 512 vectors: 16 KB for AVX2, 32 KB for AVX-512)
// in L1 while every row passes over it.
//
// The tile result P = s goes to the Wo-bit outer accumulator (int16 lanes when
// no outer sum can overflow and all fit int16, else int32, clamped and counted
// when Wo requires). The largest |exact tile sum| needs the exact sum E only
// where it may exceed the running maximum M: a lane without events has E = s;
// a lane with n events has |E| <= |s| + n * event_size (a clip moves the
// register by at most one |product|, a wrap by at most |product| + 2^W). When
// that bound can exceed M for some lane of a 4-row group, the group's exact
// tile sums are computed with vpmaddubsw over k-pairs (see gemm_simd.h). With
// uniformly random 4-bit operands and W = 8 that is nearly every tile (events
// are everywhere); with HDQT-like operands it is rare.
#pragma once

#include "models/accumulator/gemm_simd.h"

namespace hdq::detail {
namespace {

enum class ByteStep {
  sat_full8,     // saturate, full range, W = 8: vpaddsb is the rule
  sat_biased,    // saturate otherwise: register holds s + delta so that the top
                 // rail is 127 (vpaddsb), then vpmaxsb with the biased bottom rail
  wrap_scaled,   // wrap: register holds s * 2^(8-W), products scaled alike (they
                 // must still fit int8); vpaddb is the rule, vpaddsb detects
  wrap_general,  // wrap: vpaddb then sign-extend the low W bits
};

struct BytePlan {
  ByteStep step = ByteStep::sat_full8;
  int acc_bits = 8;
  int delta = 0;      // sat_biased: register = s + delta
  int lo_biased = 0;  // sat_biased: bottom rail + delta
  int shift = 0;      // wrap_scaled: 8 - W
  int amin = 0, nslots = 0, chunk = 32;
  std::int64_t event_size = 0;  // bound on |change of E - s| per event
  std::int64_t max_abs_product = 0;
  int max_abs_b = 0;
};

// The byte kernel applies when W <= 8 in saturate/wrap mode, every product of
// the actual operand values fits int8, b fits int8, and A spans <= 32 values.
inline bool make_byte_plan(GemmShape s, const AccumulatorConfig& cfg, ValueRange ra, ValueRange rb, BytePlan& plan) {
  if (cfg.mode != AccMode::saturate && cfg.mode != AccMode::wrap) return false;
  if (cfg.acc_bits > 8) return false;
  if (rb.lo < -128 || rb.hi > 127) return false;
  const ValueRange pr = product_range(ra, rb);
  if (pr.lo < -128 || pr.hi > 127) return false;
  if (ra.hi - ra.lo + 1 > 32) return false;
  const std::int64_t pmax = std::max(std::abs(pr.lo), std::abs(pr.hi));
  if (std::int64_t(s.k) * std::max<std::int64_t>(pmax, 1) >= (std::int64_t{1} << 30)) return false;
  const int w = cfg.acc_bits;
  const Tiling tl(s.k, cfg);
  // A clamped outer sum is formed in int32: with Wo = 32 it must not be needed.
  if (cfg.outer_bits == 32 && !outer_cannot_overflow(tl.ntiles, std::int64_t{1} << (w - 1), 32)) return false;
  const AccLimits lim = acc_limits(w, cfg.range);
  plan.acc_bits = w;
  plan.max_abs_b = std::max(std::abs(rb.lo), std::abs(rb.hi));
  plan.amin = ra.lo;
  plan.nslots = ra.hi - ra.lo + 1;
  plan.chunk = std::min(32, 512 / plan.nslots);
  plan.max_abs_product = pmax;
  if (cfg.mode == AccMode::saturate) {
    plan.event_size = pmax;
    if (w == 8 && cfg.range == AccRange::full) {
      plan.step = ByteStep::sat_full8;
    } else {
      plan.step = ByteStep::sat_biased;
      plan.delta = 127 - int(lim.hi);
      plan.lo_biased = int(lim.lo) + plan.delta;
    }
  } else {
    plan.event_size = pmax + (std::int64_t{1} << w);  // one wrap moves the register by a multiple of 2^W
    const int sh = 8 - w;
    if (pr.lo * (1 << sh) >= -128 && pr.hi * (1 << sh) <= 127) {
      plan.step = ByteStep::wrap_scaled;
      plan.shift = sh;
    } else {
      plan.step = ByteStep::wrap_general;
    }
  }
  return true;
}

// A tile's k range inside one chunk (segments of a tile longer than a chunk
// carry the register state from one chunk to the next).
struct ByteSegment {
  int k0, k1, tau;
  bool starts, ends;
};
// A range of k sharing one product table: segments seg0 .. seg1 - 1.
struct ByteChunk {
  int k0, k1, seg0, seg1;
};

// The buffers a byte kernel keeps per row block in its GemmContext: chunk
// plan, packed A, product tables, state.
struct ByteScratch {
  std::vector<ByteSegment> segs;
  std::vector<ByteChunk> chunks;
  AlignedBuffer<std::uint8_t> aoff;
  AlignedBuffer<std::uint32_t> apairs;
  AlignedBuffer<std::int8_t> table, sstate;
  AlignedBuffer<std::int32_t> outer;
  AlignedBuffer<std::int16_t> outer16;
};

// Chunks of at most `chunk` k (one product table each) made of whole tiles,
// or of pieces of one tile when tiles are longer. Replaces the vectors'
// contents (their storage is reused from call to call).
inline void plan_byte_chunks(const Tiling& tl, int chunk, std::vector<ByteSegment>& segs,
                             std::vector<ByteChunk>& chunks) {
  segs.clear();
  chunks.clear();
  if (tl.t <= chunk) {
    const int per = std::max(1, chunk / tl.t);
    for (int tau = 0; tau < tl.ntiles; tau += per) {
      ByteChunk c{tl.begin(tau), 0, int(segs.size()), 0};
      for (int u = tau; u < std::min(tl.ntiles, tau + per); ++u)
        segs.push_back({tl.begin(u), tl.end(u), u, true, true});
      c.k1 = segs.back().k1;
      c.seg1 = int(segs.size());
      chunks.push_back(c);
    }
  } else {
    for (int tau = 0; tau < tl.ntiles; ++tau)
      for (int k = tl.begin(tau); k < tl.end(tau); k += chunk) {
        const int k1 = std::min(k + chunk, tl.end(tau));
        segs.push_back({k, k1, tau, k == tl.begin(tau), k1 == tl.end(tau)});
        chunks.push_back({k, k1, int(segs.size()) - 1, int(segs.size())});
      }
  }
}

// The most register events a lane may have had in a tile for its |exact tile
// sum| to be known <= max_abs (see the top of this file); at most 254, so that
// a saturated uint8 event count (255) always exceeds it.
inline int event_threshold(const BytePlan& plan, std::int64_t max_abs) {
  const std::int64_t half = std::int64_t{1} << (plan.acc_bits - 1);
  std::int64_t n = 0;
  if (max_abs >= half) n = (max_abs - half) / std::max<std::int64_t>(plan.event_size, 1);
  return int(std::min<std::int64_t>(n, 254));
}

enum class OuterKind {
  i16,       // no outer sum can leave the Wo range nor int16: int16 lanes, no clamp
  i32,       // no outer sum can leave the Wo range: int32 lanes, no clamp
  i32clamp,  // int32 lanes, clamp to Wo bits and count (Wo <= 31 or no overflow)
};

// The B operand in the layouts the byte kernel reads, packed once per GEMM
// and shared (read-only) by the threads' row blocks.
template <class T>
struct ByteShared {
  AlignedBuffer<std::int8_t> bbytes;  // b[k][j] mod 256 (scaled by 2^shift for wrap_scaled): [nvec][K][kLanes], 0 past N
  PackedBPairs<T> bpairs;             // for the exact tile sums (see gemm_simd.h)
};

// Packs B on up to `threads` threads of the pool (vectors split between them).
template <class T>
inline void pack_byte_shared(ThreadPool& pool, GemmShape s, IntOperand b, const AccumulatorConfig& cfg,
                             const BytePlan& plan, ByteShared<T>& out, int threads) {
  using V = typename T::V;
  constexpr int kLanes = T::kLanes;
  const int nvec = (s.n + kLanes - 1) / kLanes;
  const int sh = plan.step == ByteStep::wrap_scaled ? plan.shift : 0;
  const Tiling tl(s.k, cfg);
  out.bbytes.resize(std::size_t(nvec) * s.k * kLanes);
  init_b_pairs(s, tl, out.bpairs);
  const int parts = std::clamp(threads, 1, nvec);
  pool.run(parts, [&](int part) {
    for (int v = nvec * part / parts; v < nvec * (part + 1) / parts; ++v) {
      const int j0 = v * kLanes, nj = std::min(kLanes, s.n - j0);
      for (int k = 0; k < s.k; ++k) {
        V x[2];
        T::load_columns16(b.values.data() + std::size_t(k) * s.n + j0, nj, x);
        T::store(out.bbytes.data() + (std::size_t(v) * s.k + k) * kLanes,
                 T::low_bytes(T::shl16(x[0], sh), T::shl16(x[1], sh)));
      }
      pack_b_pairs(s, b.values.data(), tl, plan.amin, v, out.bpairs);
    }
  });
}

template <class T>
class ByteKernel {
  using V = typename T::V;
  using ByteMask = typename T::ByteMask;
  static constexpr int kLanes = T::kLanes;

 public:
  // ws: the row block's scratch; shared: B packed by pack_byte_shared.
  ByteKernel(ByteScratch& ws, GemmShape s, IntOperand a, const AccumulatorConfig& cfg, const BytePlan& plan,
             const ByteShared<T>& shared, int r0, int r1)
      : s_(s), a_(a), cfg_(cfg), plan_(plan), tl_(s.k, cfg), r0_(r0), r1_(r1), rows_(r1 - r0), ws_(ws),
        bbytes_(shared.bbytes), bpairs_(shared.bpairs) {}

  GemmStats run(std::span<std::int32_t> c) {
    switch (plan_.step) {
      case ByteStep::sat_full8: return run_step<ByteStep::sat_full8>(c);
      case ByteStep::sat_biased: return run_step<ByteStep::sat_biased>(c);
      case ByteStep::wrap_scaled: return run_step<ByteStep::wrap_scaled>(c);
      case ByteStep::wrap_general: return run_step<ByteStep::wrap_general>(c);
    }
    return {};
  }

 private:
  static constexpr int kRows = 4;  // rows advanced together (independent chains)
  template <ByteStep kStep>
  using StepOp = typename T::template ByteStepOp<kStep>;

  void pack() {
    plan_byte_chunks(tl_, plan_.chunk, segs_, chunks_);
    // (a - amin) * kLanes / 8 as bytes: the table offset / 8, used with
    // scale-8 addressing; chunk-major (aoff_[chunk][row][k - chunk.k0], rows
    // plan_.chunk bytes apart) so that a pass over the rows reads sequentially.
    const std::size_t ch = std::size_t(plan_.chunk);
    aoff_.resize(chunks_.size() * std::size_t(rows_) * ch + kLanes);
    for (int i = 0; i < rows_; ++i) {
      const std::int16_t* src = a_.values.data() + std::size_t(r0_ + i) * s_.k;
      for (std::size_t c = 0; c < chunks_.size(); ++c) {
        const int k0 = chunks_[c].k0;
        T::table_offsets(src + k0, chunks_[c].k1 - k0, plan_.amin,
                         aoff_.data() + (c * std::size_t(rows_) + std::size_t(i)) * ch);
      }
    }
    table_.resize(std::size_t(plan_.nslots) * plan_.chunk * kLanes);
    // Exact tile sums fit int16 (int16 lanes wrap, so biased partial sums may not)?
    exact16_ = std::int64_t(tl_.t) * plan_.max_abs_product <= 32767;
    const int per_pair = 2 * (plan_.nslots - 1) * plan_.max_abs_b;
    block_ = per_pair == 0 ? std::max(1, tl_.pairs_per_tile) : std::max(1, 32767 / per_pair);
  }

  // T[kk][slot][j] = (amin + slot) * b[k][j] mod 256: walked up and down from
  // the slot of a = clamp(0, amin, amax) by adding / subtracting b (exact mod
  // 256, and every product fits int8, so the bytes are the products).
  void build_table(int v, const ByteChunk& ch) {
    const int n = plan_.nslots;
    const int start = std::clamp(-plan_.amin, 0, n - 1);
    const int a0 = plan_.amin + start;
    std::int8_t* t = table_.data();
    for (int k = ch.k0; k < ch.k1; ++k, t += std::size_t(n) * kLanes) {
      const V b = T::load(bbytes_.data() + (std::size_t(v) * s_.k + k) * kLanes);
      V base = T::zero(), d = b;  // a0 * b by doubling, mod 256
      for (int m = std::abs(a0); m != 0; m >>= 1, d = T::add8(d, d))
        if (m & 1) base = T::add8(base, d);
      if (a0 < 0) base = T::sub8(T::zero(), base);
      V up = base, down = base;
      T::store(t + std::size_t(start) * kLanes, base);
      for (int i = 1; start + i < n || start - i >= 0; ++i) {
        if (start + i < n) T::store(t + std::size_t(start + i) * kLanes, up = T::add8(up, b));
        if (start - i >= 0) T::store(t + std::size_t(start - i) * kLanes, down = T::sub8(down, b));
      }
    }
  }

  void update_threshold() { nthr_ = T::set1_8(event_threshold(plan_, max_abs_)); }

  // Exact tile sums of R rows (local indices li0..) for vector v, tile tau:
  // raises max_abs_ to their largest |.|.
  // Inlined (like tile_row and outer_add) into run_rows: as calls they cost
  // spills of the live vector registers at every tile end.
  template <int R>
  [[gnu::always_inline]] inline void exact_rows(int li0, int v, int tau) {
    // The pair layouts are only needed here: packed on first use.
    if (!apacked_) {
      pack_a_pairs(s_, a_.values.data(), plan_.amin, tl_, r0_, r1_, apairs_);
      apacked_ = true;
    }
    const int pb = tl_.pair_base(tau), np = tl_.pairs(tau);
    const std::int8_t* bp = bpairs_.pair(v, pb);
    std::int64_t m = 0;
    if (exact16_) {
      const std::uint32_t* ap[R];
      for (int r = 0; r < R; ++r) ap[r] = apairs_.data() + std::size_t(li0 + r) * tl_.total_pairs + pb;
      V e[R][2];
      const V* c16 = bpairs_.c16(v, tau);
      const V corr[2] = {T::load(c16), T::load(c16 + 1)};
      exact_tile_sums16<T, R>(ap, bp, np, corr, e);
      V mx = T::max_u16(T::abs16(e[0][0]), T::abs16(e[0][1]));
      for (int r = 1; r < R; ++r) mx = T::max_u16(mx, T::max_u16(T::abs16(e[r][0]), T::abs16(e[r][1])));
      // Usually nothing exceeds the running maximum: test that before reducing.
      if (!T::any_gt_u16(mx, T::set1_16(int(std::min<std::int64_t>(max_abs_, 0xffff))))) return;
      m = hmax_u16<T>(mx);
    } else {
      const V* c32 = bpairs_.c32(v, tau);
      const V corr[4] = {T::load(c32), T::load(c32 + 1), T::load(c32 + 2), T::load(c32 + 3)};
      for (int r = 0; r < R; ++r) {
        V e[4];
        exact_tile_sums32<T>(apairs_.data() + std::size_t(li0 + r) * tl_.total_pairs + pb, bp, np, block_, corr, e);
        V mx = T::abs32(e[0]);
        for (int g = 1; g < 4; ++g) mx = T::max_u32(mx, T::abs32(e[g]));
        m = std::max<std::int64_t>(m, T::hmax_u32(mx));
      }
    }
    if (m > max_abs_) {
      max_abs_ = m;
      update_threshold();
    }
  }

  // Adds the tile result (register s, already unbiased) of row li to its outer accumulator.
  template <ByteStep kStep, OuterKind kOuter>
  [[gnu::always_inline]] inline void outer_add(int li, V s) {
    if constexpr (kOuter == OuterKind::i16) {
      V p[2];
      T::widen8_16(s, p);
      if constexpr (kStep == ByteStep::wrap_scaled)
        for (int g = 0; g < 2; ++g) p[g] = T::sra16(p[g], plan_.shift);
      V* o = reinterpret_cast<V*>(outer16_.data() + std::size_t(li) * kLanes);
      T::store(o, T::add16(T::load(o), p[0]));
      T::store(o + 1, T::add16(T::load(o + 1), p[1]));
    } else {
      V p[4];
      T::widen8_32(s, p);
      if constexpr (kStep == ByteStep::wrap_scaled)
        for (int g = 0; g < 4; ++g) p[g] = T::sra32(p[g], plan_.shift);
      outer_add32<T, kOuter == OuterKind::i32clamp>(outer_.data() + std::size_t(li) * kLanes, p, olo_, ohi_,
                                                    stats_.outer_overflows);
    }
  }

  // State of one row between the segments of a tile longer than a chunk.
  V* row_state(int li) { return reinterpret_cast<V*>(sstate_.data() + std::size_t(li) * 2 * kLanes); }

  // Tile end of one row: the outer sum, and the headroom bookkeeping; returns
  // the lanes whose |exact tile sum| is known to be <= max_abs_ (all of them
  // when no exact recomputation is needed).
  template <ByteStep kStep, OuterKind kOuter>
  [[gnu::always_inline]] inline ByteMask tile_row(int li, V s, V nsat, V& nochange) {
    if constexpr (kStep == ByteStep::sat_biased) s = T::sub8(s, T::set1_8(plan_.delta));
    outer_add<kStep, kOuter>(li, s);
    // A lane without events has E = s (in the register's units): |E| <= 2^(W-1),
    // which adds nothing once max_abs_ has reached that.
    if (max_abs_ < half_) nochange = T::max_u8(nochange, T::abs8_where_zero(s, nsat));
    // A lane with n events has |E| <= |s| + n * event_size <= max_abs_ when n <= nthr.
    return T::le_u8(nsat, nthr_);
  }

  // All segments of one chunk for rows li0 .. li0 + R - 1 (R = 4 or 1). The
  // per-row registers are named scalars so that GCC keeps them in registers.
  template <ByteStep kStep, OuterKind kOuter, int R>
  void run_rows(int li0, int v, const ByteChunk& ch, const StepOp<kStep>& op) {
    static_assert(R == 4 || R == 1);
    const std::size_t kstride = std::size_t(plan_.nslots) * kLanes;
    const std::size_t cw = std::size_t(plan_.chunk);
    // Offsets of this chunk's rows, indexed by k - ch.k0.
    const std::uint8_t* a0 = aoff_.data() + (std::size_t(&ch - chunks_.data()) * rows_ + li0) * cw;
    const std::uint8_t* a1 = R == 4 ? a0 + cw : a0;
    const std::uint8_t* a2 = R == 4 ? a0 + 2 * cw : a0;
    const std::uint8_t* a3 = R == 4 ? a0 + 3 * cw : a0;
    const V init = kStep == ByteStep::sat_biased ? T::set1_8(plan_.delta) : T::zero();
    const V zero = T::zero();
    V changed = changed_, nochange = nochange_max_;
    // The next row group's outer sums are needed soon: start the loads
    // (where it pays: T::kPrefetchOuter).
    if (T::kPrefetchOuter && li0 + 2 * R <= rows_) {
      for (int r = R; r < 2 * R; ++r) {
        if constexpr (kOuter == OuterKind::i16)
          _mm_prefetch(reinterpret_cast<const char*>(outer16_.data() + std::size_t(li0 + r) * kLanes), _MM_HINT_T0);
        else
          _mm_prefetch(reinterpret_cast<const char*>(outer_.data() + std::size_t(li0 + r) * kLanes), _MM_HINT_T0);
      }
    }
    for (int sg = ch.seg0; sg < ch.seg1; ++sg) {
      const ByteSegment& seg = segs_[sg];
      V s0 = init, s1 = init, s2 = init, s3 = init;
      V n0 = zero, n1 = zero, n2 = zero, n3 = zero;
      if (!seg.starts) {
        s0 = row_state(li0)[0], n0 = row_state(li0)[1];
        if constexpr (R == 4) {
          s1 = row_state(li0 + 1)[0], n1 = row_state(li0 + 1)[1];
          s2 = row_state(li0 + 2)[0], n2 = row_state(li0 + 2)[1];
          s3 = row_state(li0 + 3)[0], n3 = row_state(li0 + 3)[1];
        }
      }
      const V start = StepOp<kStep>::count_start(seg.k1 - seg.k0);
      V c0 = start, c1 = start, c2 = start, c3 = start;
      const char* tb = reinterpret_cast<const char*>(table_.data()) + std::size_t(seg.k0 - ch.k0) * kstride;
      for (int k = seg.k0 - ch.k0; k < seg.k1 - ch.k0; ++k, tb += kstride) {
        op(s0, c0, reinterpret_cast<const V*>(tb + std::size_t(a0[k]) * 8));
        if constexpr (R == 4) {
          op(s1, c1, reinterpret_cast<const V*>(tb + std::size_t(a1[k]) * 8));
          op(s2, c2, reinterpret_cast<const V*>(tb + std::size_t(a2[k]) * 8));
          op(s3, c3, reinterpret_cast<const V*>(tb + std::size_t(a3[k]) * 8));
        }
      }
      // c counts the changed steps of this segment per lane (padding lanes: 0).
      V sad = T::sad_u8(c0);
      n0 = T::adds_u8(n0, c0);
      if constexpr (R == 4) {
        sad = T::add64(T::add64(sad, T::sad_u8(c1)), T::add64(T::sad_u8(c2), T::sad_u8(c3)));
        n1 = T::adds_u8(n1, c1);
        n2 = T::adds_u8(n2, c2);
        n3 = T::adds_u8(n3, c3);
      }
      changed = T::add64(changed, sad);
      if (!seg.ends) {
        row_state(li0)[0] = s0, row_state(li0)[1] = n0;
        if constexpr (R == 4) {
          row_state(li0 + 1)[0] = s1, row_state(li0 + 1)[1] = n1;
          row_state(li0 + 2)[0] = s2, row_state(li0 + 2)[1] = n2;
          row_state(li0 + 3)[0] = s3, row_state(li0 + 3)[1] = n3;
        }
        continue;
      }
      ByteMask known = tile_row<kStep, kOuter>(li0, s0, n0, nochange);
      if constexpr (R == 4) {
        known &= tile_row<kStep, kOuter>(li0 + 1, s1, n1, nochange);
        known &= tile_row<kStep, kOuter>(li0 + 2, s2, n2, nochange);
        known &= tile_row<kStep, kOuter>(li0 + 3, s3, n3, nochange);
      }
      if (known != T::kAllBytes) exact_rows<R>(li0, v, seg.tau);  // some event may have pushed |E| past max_abs_
    }
    changed_ = changed, nochange_max_ = nochange;
  }

  template <ByteStep kStep>
  GemmStats run_step(std::span<std::int32_t> c) {
    const std::int64_t half = std::int64_t{1} << (plan_.acc_bits - 1);
    if (!outer_cannot_overflow(tl_.ntiles, half, cfg_.outer_bits)) return run_mode<kStep, OuterKind::i32clamp>(c);
    if (outer_cannot_overflow(tl_.ntiles, half, 16)) return run_mode<kStep, OuterKind::i16>(c);
    return run_mode<kStep, OuterKind::i32>(c);
  }

  // Writes the outer sums of every row for vector v to C.
  template <OuterKind kOuter>
  void store_outer(int v, std::span<std::int32_t> c) {
    const int nj = std::min(kLanes, s_.n - v * kLanes);
    for (int li = 0; li < rows_; ++li) {
      std::int32_t* dst = c.data() + std::size_t(r0_ + li) * s_.n + std::size_t(v) * kLanes;
      if constexpr (kOuter == OuterKind::i16) {
        alignas(64) std::int32_t o[kLanes];
        const V* src = reinterpret_cast<const V*>(outer16_.data() + std::size_t(li) * kLanes);
        for (int g = 0; g < 2; ++g) {
          V w[2];
          T::widen16_32(T::load(src + g), w);
          T::store(o + kLanes / 2 * g, w[0]);
          T::store(o + kLanes / 2 * g + kLanes / 4, w[1]);
        }
        store_row_segment<T>(dst, o, nj);
      } else {
        store_row_segment<T>(dst, outer_.data() + std::size_t(li) * kLanes, nj);
      }
    }
  }

  template <ByteStep kStep, OuterKind kOuter>
  GemmStats run_mode(std::span<std::int32_t> c) {
    pack();
    const AccLimits outer = acc_limits(cfg_.outer_bits, AccRange::full);
    olo_ = T::set1_32(static_cast<std::int32_t>(outer.lo));
    ohi_ = T::set1_32(static_cast<std::int32_t>(outer.hi));
    if constexpr (kOuter == OuterKind::i16)
      outer16_.resize(std::size_t(rows_) * kLanes);
    else
      outer_.resize(std::size_t(rows_) * kLanes);
    if (tl_.t > plan_.chunk) sstate_.resize(std::size_t(rows_) * 2 * kLanes);
    changed_ = T::zero();
    nochange_max_ = T::zero();
    max_abs_ = 0;
    half_ = std::int64_t{1} << (plan_.acc_bits - 1);
    update_threshold();
    StepOp<kStep> op{};
    op.lo = T::set1_8(plan_.lo_biased);
    op.h = T::set1_8(1 << (plan_.acc_bits - 1));
    op.m = T::set1_8((1 << plan_.acc_bits) - 1);
    const int nvec = (s_.n + kLanes - 1) / kLanes;
    for (int v = 0; v < nvec; ++v) {
      if constexpr (kOuter == OuterKind::i16)
        std::memset(outer16_.data(), 0, outer16_.size() * sizeof(std::int16_t));
      else
        std::memset(outer_.data(), 0, outer_.size() * sizeof(std::int32_t));
      for (const ByteChunk& ch : chunks_) {
        build_table(v, ch);
        int li = 0;
        for (; li + kRows <= rows_; li += kRows) run_rows<kStep, kOuter, kRows>(li, v, ch, op);
        for (; li < rows_; ++li) run_rows<kStep, kOuter, 1>(li, v, ch, op);
      }
      store_outer<kOuter>(v, c);
    }
    stats_.products = std::uint64_t(rows_) * std::uint64_t(s_.n) * std::uint64_t(s_.k);
    stats_.changed_steps = T::hsum64(changed_);
    alignas(64) std::uint8_t nm[kLanes];
    T::store(nm, nochange_max_);
    std::int64_t m = *std::max_element(nm, nm + kLanes);
    if constexpr (kStep == ByteStep::wrap_scaled) m >>= plan_.shift;
    stats_.max_abs_tile_sum = std::max(max_abs_, m);
    return stats_;
  }

  GemmShape s_;
  IntOperand a_;
  const AccumulatorConfig& cfg_;
  BytePlan plan_;
  Tiling tl_;
  int r0_, r1_, rows_;
  bool exact16_ = false, apacked_ = false;
  int block_ = 1;
  ByteScratch& ws_;
  std::vector<ByteSegment>& segs_ = ws_.segs;
  std::vector<ByteChunk>& chunks_ = ws_.chunks;
  AlignedBuffer<std::uint8_t>& aoff_ = ws_.aoff;
  AlignedBuffer<std::uint32_t>& apairs_ = ws_.apairs;
  const AlignedBuffer<std::int8_t>& bbytes_;
  const PackedBPairs<T>& bpairs_;
  AlignedBuffer<std::int8_t>& table_ = ws_.table;
  AlignedBuffer<std::int32_t>& outer_ = ws_.outer;
  AlignedBuffer<std::int16_t>& outer16_ = ws_.outer16;
  AlignedBuffer<std::int8_t>& sstate_ = ws_.sstate;
  GemmStats stats_;
  V changed_{}, nochange_max_{}, nthr_{}, olo_{}, ohi_{};
  std::int64_t max_abs_ = 0, half_ = 0;
};

}  // namespace
}  // namespace hdq::detail
