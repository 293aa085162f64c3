// The AVX-512 path (this file is compiled with -mavx2 -mavx512f -mavx512bw
// -mavx512vl and only called when the CPU has all of them). The 4-bit-class
// cases run the width-generic byte and pair kernels (gemm_simd_bytes.h,
// gemm_simd_pairs.h) at 64 columns per vector (gemm_simd_avx512.h), with the
// same plans as the AVX2 path:
//
//   byte kernel  saturate / wrap, W <= 8, products fitting int8
//   pair kernel  exact / clamp_tile with 8-bit-representable operands
//
// every other case (the word kernel for 5-8-bit operands with saturate /
// wrap, the column kernel) runs the AVX2 path. Like it, the kernels walk k in
// ascending order inside a tile, so they equal gemm_reference bit for bit.
//
// GCC 12.2's AVX-512 intrinsics return a self-initialised "undefined" vector
// as the pass-through operand (GCC bug 105593, fixed in 12.3), which
// -Wmaybe-uninitialized reports inside the header: silenced for its lines only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include "models/accumulator/gemm_simd_avx512.h"
#include "models/accumulator/gemm_simd_bytes.h"
#include "models/accumulator/gemm_simd_pairs.h"

namespace hdq::detail {

namespace {

// B in the layouts of the kernels, packed once per GEMM and read by every row
// block: the context's one workspace of this type.
struct SharedB {
  ByteShared<Avx512> bytes;
  PackedBPairs<Avx512> pairs;
  PackKey bytes_key, pairs_key;  // what bytes and pairs were packed from
};

}  // namespace

GemmStats gemm_avx512(GemmContext& ctx, GemmShape s, IntOperand a, IntOperand b, const AccumulatorConfig& cfg,
                      std::span<std::int32_t> c, int threads, ValueBounds ba, ValueBounds bb) {
  if (s.m != 0 && s.n != 0 && s.k != 0) {
    // The plan comes from the ranges of all of A and B, so every row block runs
    // the same kernel (any kernel gives the same bits).
    const ValueRange ra{ba.lo, ba.hi}, rb{bb.lo, bb.hi};
    if (BytePlan plan; make_byte_plan(s, cfg, ra, rb, plan)) {
      SharedB& shared = shared_workspace<SharedB>(ctx);
      const PackKey key{b.content_id, s.n, s.k, cfg.tile, plan.amin,
                        plan.step == ByteStep::wrap_scaled ? plan.shift : 0};
      if (!key.reusable(shared.bytes_key)) pack_byte_shared(ctx.pool(), s, b, cfg, plan, shared.bytes, threads);
      shared.bytes_key = key;
      return run_blocks<ByteScratch>(ctx, s, threads, [&](ByteScratch& ws, int r0, int r1) {
        return r0 == r1 ? GemmStats{} : ByteKernel<Avx512>(ws, s, a, cfg, plan, shared.bytes, r0, r1).run(c);
      });
    }
    if (PairPlan plan; make_pair_plan(s, cfg, ra, rb, plan)) {
      SharedB& shared = shared_workspace<SharedB>(ctx);
      const PackKey key{b.content_id, s.n, s.k, cfg.tile, 0, 0};  // A's minimum moves only the corrections
      pack_pair_shared(ctx.pool(), s, b, cfg, plan, shared.pairs, threads, !key.reusable(shared.pairs_key));
      shared.pairs_key = key;
      return run_blocks<PairScratch>(ctx, s, threads, [&](PairScratch& ws, int r0, int r1) {
        return r0 == r1 ? GemmStats{} : PairKernel<Avx512>(ws, s, a, cfg, plan, shared.pairs, r0, r1).run(c);
      });
    }
  }
  return gemm_avx2(ctx, s, a, b, cfg, c, threads, ba, bb);
}

}  // namespace hdq::detail
