// The AVX2 path (this file is compiled with -mavx2 and only called when the
// CPU has AVX2). It picks a specialised kernel from the operands' actual value
// ranges and the accumulator config; every other case runs the column kernel,
// compiled here for AVX2. All kernels vectorize across output columns and walk
// k in ascending order inside a tile, so they equal gemm_reference bit for bit.
//
//   gemm_simd_bytes.h  saturate / wrap, W <= 8, products fitting int8 (e.g.
//                      4-bit x 4-bit): int8 lanes, per-step product tables
//   gemm_simd_pairs.h  exact / clamp_tile with 8-bit-representable operands:
//                      vpmaddubsw over k-pairs, int16 -> int32 tile sums
//   gemm_avx2_words.h  every mode with int8 operands whose products (and, for
//                      saturate / wrap, W <= 14 registers) fit int16, e.g.
//                      5-8-bit operands: int16 lanes, vpmullw / vpmaddwd
// The byte and pair kernels are the width-generic ones of gemm_simd_*.h at
// the AVX2 width (gemm_simd_avx2.h); gemm_avx512.cpp runs them at 512 bits.
#include "models/accumulator/gemm_avx2_words.h"
#include "models/accumulator/gemm_simd_avx2.h"
#include "models/accumulator/gemm_simd_bytes.h"
#include "models/accumulator/gemm_simd_pairs.h"
#include "models/accumulator/gemm_columns.h"

namespace hdq::detail {

namespace {

// B in the layouts of the kernels, packed once per GEMM and read by every row
// block: the context's one workspace of this type.
struct SharedB {
  ByteShared<Avx2> bytes;
  PackedBPairs<Avx2> pairs;
  PackKey bytes_key, pairs_key;  // what bytes and pairs were packed from
  WordShared words;
};

}  // namespace

ValueBounds value_bounds_avx2(std::span<const std::int16_t> v) {
  const ValueRange r = value_range(v.data(), v.size());
  return {r.lo, r.hi};
}

GemmStats gemm_avx2(GemmContext& ctx, GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                    std::span<std::int32_t> c, int threads, ValueBounds ba, ValueBounds bb) {
  if (s.m == 0 || s.n == 0 || s.k == 0) return column_kernel(s, a, b, cfg, c, 0, s.m);
  // The plan comes from the ranges of all of A and B, so every row block runs
  // the same kernel (any kernel gives the same bits).
  const ValueRange ra{ba.lo, ba.hi}, rb{bb.lo, bb.hi};
  SharedB& shared = shared_workspace<SharedB>(ctx);
  if (BytePlan plan; make_byte_plan(s, cfg, ra, rb, plan)) {
    const PackKey key{b.content_id, s.n, s.k, cfg.tile, plan.amin, plan.step == ByteStep::wrap_scaled ? plan.shift : 0};
    if (!key.reusable(shared.bytes_key)) pack_byte_shared(ctx.pool(), s, b, cfg, plan, shared.bytes, threads);
    shared.bytes_key = key;
    return run_blocks<ByteScratch>(ctx, s, threads, [&](ByteScratch& ws, int r0, int r1) {
      return r0 < r1 ? ByteKernel<Avx2>(ws, s, a, cfg, plan, shared.bytes, r0, r1).run(c) : GemmStats{};
    });
  }
  if (PairPlan plan; make_pair_plan(s, cfg, ra, rb, plan)) {
    const PackKey key{b.content_id, s.n, s.k, cfg.tile, 0, 0};  // A's minimum moves only the corrections
    pack_pair_shared(ctx.pool(), s, b, cfg, plan, shared.pairs, threads, !key.reusable(shared.pairs_key));
    shared.pairs_key = key;
    return run_blocks<PairScratch>(ctx, s, threads, [&](PairScratch& ws, int r0, int r1) {
      return r0 < r1 ? PairKernel<Avx2>(ws, s, a, cfg, plan, shared.pairs, r0, r1).run(c) : GemmStats{};
    });
  }
  if (WordPlan plan; make_word_plan(s, cfg, ra, rb, plan)) {
    pack_word_shared(s, b, cfg, shared.words);
    return run_blocks<WordScratch>(ctx, s, threads, [&](WordScratch& ws, int r0, int r1) {
      return r0 < r1 ? run_word_kernel(ws, s, a, cfg, plan, shared.words, r0, r1, c) : GemmStats{};
    });
  }
  return run_blocks(ctx, s, threads, [&](int r0, int r1) { return column_kernel(s, a, b, cfg, c, r0, r1); });
}

}  // namespace hdq::detail
