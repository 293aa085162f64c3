// The NPU blocks' functions, without the simulator: each core runs on a plain
// byte array and must reproduce the numeric core's results, chunk by chunk
// and tile by tile.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <random>
#include <string>

#include "models/common/errors.h"
#include "models/hadamard/hadamard.h"
#include "models/hdqt/hdqt_config.h"
#include "models/nn/mlp.h"
#include "sim/blocks/hadamard_unit.h"
#include "sim/blocks/mac_array.h"
#include "sim/blocks/quantizer_unit.h"
#include "sim/blocks/vector_unit.h"

namespace hdq::npu {
namespace {

std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

TEST(NpuFormats, PackedOperandsByHand) {
  // 4 bits, LSB first: -1 -> 0xf in the low nibble, 7 -> 0x7 in the high one;
  // -7 -> 0x9, 0 -> 0x0; the odd fifth value 3 starts a new byte.
  const std::vector<std::int16_t> q{-1, 7, -7, 0, 3};
  std::vector<std::uint8_t> b(packed_pitch(5, 4));
  ASSERT_EQ(b.size(), 3u);
  pack_rows(q, 1, 5, 4, b);
  EXPECT_EQ(b, (std::vector<std::uint8_t>{0x7f, 0x09, 0x03}));
  std::vector<std::int16_t> back(5);
  unpack_rows(b, 1, 5, 4, false, back);
  EXPECT_EQ(back, q);
  // Read as unsigned, the same nibbles are 15, 7, 9, 0, 3.
  unpack_rows(b, 1, 5, 4, true, back);
  EXPECT_EQ(back, (std::vector<std::int16_t>{15, 7, 9, 0, 3}));
}

TEST(NpuFormats, PackUnpackRoundTripsEveryWidth) {
  std::mt19937 g(7);
  for (int bits = 2; bits <= 8; ++bits)
    for (bool is_unsigned : {false, true})
      for (std::uint64_t cols : {1u, 7u, 8u, 9u, 31u, 100u}) {
        const int lo = is_unsigned ? 0 : -(1 << (bits - 1)), hi = is_unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
        std::uniform_int_distribution<int> d(lo, hi);
        std::vector<std::int16_t> q(3 * cols), back(q.size());
        for (auto& v : q) v = std::int16_t(d(g));
        std::vector<std::uint8_t> bytes(3 * packed_pitch(cols, bits));
        pack_rows(q, 3, cols, bits, bytes);
        unpack_rows(bytes, 3, cols, bits, is_unsigned, back);
        EXPECT_EQ(back, q) << bits << " bits, cols " << cols << (is_unsigned ? " unsigned" : " signed");
      }
}

// transpose() moves element (r, c) to (c, r) at out's pitch, for 2- and
// 4-byte elements (the SSE2 register blocks, 8 x 8 and 4 x 4, and the scalar
// edges they leave) and a converting one; the gaps of a wider pitch are untouched.
TEST(NpuFormats, TransposeMovesEveryElementOnce) {
  for (std::uint64_t rows : {1u, 4u, 8u, 13u, 33u})
    for (std::uint64_t cols : {1u, 3u, 8u, 17u, 40u})
      for (std::uint64_t extra : {0u, 5u}) {
        const std::uint64_t pitch = rows + extra;
        std::vector<std::int16_t> a16(rows * cols), o16(cols * pitch, -1);
        std::vector<float> a32(rows * cols), o32(cols * pitch, -1.0f);
        std::vector<std::int32_t> oc(cols * pitch, -1);
        for (std::uint64_t i = 0; i < rows * cols; ++i) {
          a16[i] = std::int16_t(i);
          a32[i] = float(i) + 0.5f;
        }
        transpose(a16.data(), rows, cols, o16.data(), pitch);
        transpose(a32.data(), rows, cols, o32.data(), pitch);
        transpose(a16.data(), rows, cols, oc.data(), pitch);
        for (std::uint64_t c = 0; c < cols; ++c)
          for (std::uint64_t r = 0; r < pitch; ++r) {
            const bool gap = r >= rows;
            const std::uint64_t at = c * pitch + r;
            ASSERT_EQ(o16[at], gap ? -1 : std::int16_t(r * cols + c)) << rows << "x" << cols << " (" << r << ", " << c << ")";
            ASSERT_EQ(o32[at], gap ? -1.0f : float(r * cols + c) + 0.5f) << rows << "x" << cols;
            ASSERT_EQ(oc[at], gap ? -1 : std::int32_t(r * cols + c)) << rows << "x" << cols;
          }
      }
}

// Quantizing in row chunks (reduce, reduce, ..., finalize, round, round, ...)
// gives the bits of hdq::quantize on the whole tensor: the scale from the
// reduced max/min, the random bits from each chunk's global first index.
TEST(NpuQuantizer, ChunkedEqualsWholeTensor) {
  const std::uint64_t rows = 13, cols = 11;
  std::vector<float> x = random_floats(rows * cols, 1);
  x[5] = 3.5f;  // the max, in the first chunk
  for (const char* preset : {"paper", "npu"})
    for (QuantRole role : {QuantRole::fwd_x, QuantRole::bwd_g_dx}) {
      const QuantConfig cfg = hdqt_preset(preset).q(role);
      const RandomStream rs{9, 8 * 2 + std::uint64_t(role), 4};
      const QuantizedTensor want = quantize(x, cfg, rs, "t");
      ByteStore sram("sram", 1 << 16);
      sram.write_values<float>(1024, x);
      QuantizerDescriptor d;
      d.set_config(cfg);
      d.role = std::uint8_t(role);
      d.record = 0;
      d.key = rs.key();
      d.cols = std::uint32_t(cols);
      d.dst = 8192;
      QuantizerCore core;
      for (std::uint32_t opcode : {kQuantReduce, kQuantRound}) {
        for (std::uint64_t r0 = 0; r0 < rows; r0 += 4) {  // chunks of 4 rows, the last of 1
          d.rows = std::uint32_t(std::min<std::uint64_t>(4, rows - r0));
          d.src = std::uint32_t(1024 + 4 * r0 * cols);
          d.dst = std::uint32_t(8192 + r0 * packed_pitch(cols, cfg.bits));
          d.first_index = r0 * cols;
          d.init = r0 == 0;
          core.run(opcode, d, 2, 16, sram);
        }
        if (opcode == kQuantReduce) core.run(kQuantFinalize, d, 2, 16, sram);
      }
      const QuantParams p = sram.read_struct<QuantRecord>(0).params();
      EXPECT_EQ(p.scale, want.params.scale) << preset;
      EXPECT_EQ(p.mx, want.params.mx) << preset;
      EXPECT_EQ(p.is_unsigned, want.params.is_unsigned) << preset;
      std::vector<std::uint8_t> bytes(rows * packed_pitch(cols, cfg.bits));
      sram.read(8192, bytes);
      std::vector<std::int16_t> got(rows * cols);
      unpack_rows(bytes, rows, cols, cfg.bits, p.is_unsigned, got);
      EXPECT_EQ(got, want.q) << preset << " " << name(role);
    }
}

// Quantizing in blocks of columns (as the fused Hadamard + quantize does for
// W' = H_O Wq and X' = H_B Xq): each block a compact rows x 8 f32 tile whose
// rows are row_stride = cols apart in the flat index, its packed rows written
// dst_pitch apart straight into the columns of the whole packed tensor;
// the bits are hdq::quantize's of the whole tensor (stochastic rounding:
// every element's random bits come from its own flat index).
TEST(NpuQuantizer, ColumnBlocksEqualWholeTensor) {
  const std::uint64_t rows = 9, cols = 20, block = 8;  // blocks of 8, 8 and 4 columns
  std::vector<float> x = random_floats(rows * cols, 3);
  x[7 * cols + 17] = -4.0f;  // the max |x|, in the last block
  for (QuantRole role : {QuantRole::bwd_w_dx, QuantRole::bwd_x_dw}) {  // nearest and stochastic (npu preset)
    const QuantConfig cfg = hdqt_preset("npu").q(role);
    const RandomStream rs{5, 8 * 1 + std::uint64_t(role), 2};
    const QuantizedTensor want = quantize(x, cfg, rs, "t");
    ByteStore sram("sram", 1 << 16);
    const std::uint64_t pitch = packed_pitch(cols, cfg.bits);
    QuantizerDescriptor d;
    d.set_config(cfg);
    d.role = std::uint8_t(role);
    d.key = rs.key();
    d.rows = std::uint32_t(rows);
    d.row_stride = std::uint32_t(cols);
    d.dst_pitch = std::uint32_t(pitch);
    QuantizerCore core;
    for (std::uint32_t opcode : {kQuantReduce, kQuantRound}) {
      for (std::uint64_t c0 = 0; c0 < cols; c0 += block) {
        const std::uint64_t n = std::min(block, cols - c0);
        std::vector<float> tile(rows * n);
        for (std::uint64_t r = 0; r < rows; ++r)
          for (std::uint64_t c = 0; c < n; ++c) tile[r * n + c] = x[r * cols + c0 + c];
        sram.write_values<float>(1024, tile);
        d.src = 1024;
        d.cols = std::uint32_t(n);
        d.first_index = c0;
        d.dst = std::uint32_t(8192 + c0 * std::uint64_t(cfg.bits) / 8);
        d.init = c0 == 0;
        core.run(opcode, d, 1, 16, sram);
      }
      if (opcode == kQuantReduce) core.run(kQuantFinalize, d, 1, 16, sram);
    }
    const QuantParams p = sram.read_struct<QuantRecord>(0).params();
    EXPECT_EQ(p.scale, want.params.scale);
    std::vector<std::uint8_t> bytes(rows * pitch);
    sram.read(8192, bytes);
    std::vector<std::int16_t> got(rows * cols);
    unpack_rows(bytes, rows, cols, cfg.bits, p.is_unsigned, got);
    EXPECT_EQ(got, want.q) << name(role);
  }
}

// The clip mask the quantizer unit writes for the clipped STE (fwd_x, clip
// below 1), chunk by chunk (4 rows, the last of 1; 11 columns, so a mask row
// spans two bytes), is exactly the set of elements the clamp changes,
// recomputed here from docs/contract.md §1-§2: mx = the f32 product
// max|x| * c; x > mx, or x < -mx for a signed tensor (a non-negative tensor,
// unsigned under auto, clamps at 0 and nothing lies below).
TEST(NpuQuantizer, ClipMaskIsExactlyTheClippedElements) {
  const std::uint64_t rows = 13, cols = 11, pitch = mask_pitch(cols);
  for (bool non_negative : {false, true}) {
    std::vector<float> x = random_floats(rows * cols, 7);
    if (non_negative)
      for (float& v : x) v = std::fabs(v);
    QuantConfig cfg = hdqt_preset("npu").q(QuantRole::fwd_x);
    cfg.clip = 0.5f;
    float m = 0.0f;
    for (float v : x) m = std::max(m, std::fabs(v));
    const float mx = m * cfg.clip, lo = non_negative ? 0.0f : -mx;
    ByteStore sram("sram", 1 << 16);
    sram.write_values<float>(1024, x);
    QuantizerDescriptor d;
    d.set_config(cfg);
    d.role = std::uint8_t(QuantRole::fwd_x);
    d.key = RandomStream{9, 8, 4}.key();
    d.cols = std::uint32_t(cols);
    d.write_mask = 1;
    QuantizerCore core;
    for (std::uint32_t opcode : {kQuantReduce, kQuantRound}) {
      for (std::uint64_t r0 = 0; r0 < rows; r0 += 4) {
        d.rows = std::uint32_t(std::min<std::uint64_t>(4, rows - r0));
        d.src = std::uint32_t(1024 + 4 * r0 * cols);
        d.dst = std::uint32_t(8192 + r0 * packed_pitch(cols, cfg.bits));
        d.mask = std::uint32_t(12288 + r0 * pitch);
        d.first_index = r0 * cols;
        d.init = r0 == 0;
        core.run(opcode, d, 1, 16, sram);
      }
      if (opcode == kQuantReduce) core.run(kQuantFinalize, d, 1, 16, sram);
    }
    EXPECT_EQ(sram.read_struct<QuantRecord>(0).mx, mx);
    std::vector<std::uint8_t> mask(rows * pitch);
    sram.read(12288, mask);
    std::size_t above = 0, below = 0;
    for (std::uint64_t r = 0; r < rows; ++r)
      for (std::uint64_t c = 0; c < cols; ++c) {
        const float v = x[r * cols + c];
        above += v > mx, below += v < lo;
        EXPECT_EQ(mask_bit(mask, pitch, r, c), v > mx || v < lo) << "row " << r << " col " << c << " x " << v;
      }
    // Normal data clipped at half its max: some elements on each clipped side.
    EXPECT_GT(above, 0u);
    if (!non_negative) {
      EXPECT_GT(below, 0u);
    }
  }
}

// The reduce pass over chunks of 4 rows of a 13 x 11 tensor in SRAM, then
// the finalize; returns the tensor's QuantParams from the record.
QuantParams reduce_in_chunks(const std::vector<float>& x, const QuantConfig& cfg) {
  const std::uint64_t rows = 13, cols = 11;
  ByteStore sram("sram", 1 << 16);
  sram.write_values<float>(1024, x);
  QuantizerDescriptor d;
  d.set_config(cfg);
  d.record = 0;
  d.cols = std::uint32_t(cols);
  QuantizerCore core;
  for (std::uint64_t r0 = 0; r0 < rows; r0 += 4) {
    d.rows = std::uint32_t(std::min<std::uint64_t>(4, rows - r0));
    d.src = std::uint32_t(1024 + 4 * r0 * cols);
    d.first_index = r0 * cols;
    d.init = r0 == 0;
    core.run(kQuantReduce, d, 0, 16, sram);
  }
  core.run(kQuantFinalize, d, 0, 16, sram);
  return sram.read_struct<QuantRecord>(0).params();
}

// The chunks' summaries merge into the whole tensor's: the largest |x| and
// the only negative value in later chunks than the first (element 60 is in
// the second chunk, 140 in the last), so the scale and the signedness that
// `automatic` picks come out as choose_scale's on the whole tensor; a NaN in
// the third chunk is reported at its flat index (100), not its index in the
// chunk.
TEST(NpuQuantizer, ChunkSummariesMergeAndNameTheElement) {
  std::vector<float> x(13 * 11);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) * 0.125f;  // 0 .. 0.75, non-negative
  x[60] = 2.5f;
  QuantConfig cfg;  // 4 bits, nearest, signedness automatic
  QuantParams p = reduce_in_chunks(x, cfg);
  EXPECT_EQ(p.mx, 2.5f);
  EXPECT_TRUE(p.is_unsigned);  // every x >= 0
  EXPECT_EQ(p.scale, choose_scale(x, cfg, "t").scale);
  x[140] = -0.5f;
  p = reduce_in_chunks(x, cfg);
  EXPECT_EQ(p.mx, 2.5f);
  EXPECT_FALSE(p.is_unsigned);  // one x < 0, in the last chunk
  EXPECT_EQ(p.scale, choose_scale(x, cfg, "t").scale);
  x[100] = std::nanf("");
  try {
    reduce_in_chunks(x, cfg);
    ADD_FAILURE() << "a NaN passed the reduce";
  } catch (const NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("tensor 'layer0.fwd_x': element 100 is NaN"), std::string::npos) << e.what();
  }
}

// rows x cols 4-bit values packed into SRAM at addr.
void put_packed(ByteStore& sram, std::uint64_t addr, const std::vector<std::int16_t>& v, int rows, int cols) {
  std::vector<std::uint8_t> bytes(std::size_t(rows) * packed_pitch(std::uint64_t(cols), 4));
  pack_rows(v, std::uint64_t(rows), std::uint64_t(cols), 4, bytes);
  sram.write(addr, bytes);
}

// One MAC-array command (many folds) equals one gemm per R x C fold on the
// sub-matrices, outputs and statistics alike: the output-stationary
// decomposition keeps each output's accumulators over the whole K.
TEST(NpuMacArray, CommandEqualsOneGemmPerFold) {
  std::mt19937 g(3);
  std::uniform_int_distribution<int> v(-7, 7);
  const int M = 21, N = 19, K = 45, R = 8, C = 5;
  std::vector<std::int16_t> a(M * K), b(K * N);
  for (auto& x : a) x = std::int16_t(v(g));
  for (auto& x : b) x = std::int16_t(v(g));
  for (const char* preset : {"paper", "npu"}) {
    const AccumulatorConfig acc = hdqt_preset(preset).acc(GemmRole::fwd);  // W = 8: narrowing happens
    ByteStore sram("sram", 1 << 16);
    sram.write_struct(0, QuantRecord{});  // signed operands
    put_packed(sram, 256, a, M, K);
    put_packed(sram, 4096, b, K, N);
    MacDescriptor d;
    d.a = 256, d.b = 4096, d.c = 8192, d.a_record = d.b_record = 0, d.stats = 64;
    d.m = M, d.n = N, d.k = K, d.a_bits = d.b_bits = 4, d.init_stats = 1;
    d.set_accumulator(acc);
    MacArrayCore core;
    const GemmStats s = core.run(d, sram);
    std::vector<std::int32_t> c(M * N);
    sram.read_values<std::int32_t>(8192, c);

    GemmStats folds;
    GemmContext ctx;
    std::vector<std::int32_t> want(M * N);
    for (int i0 = 0; i0 < M; i0 += R)
      for (int j0 = 0; j0 < N; j0 += C) {
        const int mr = std::min(R, M - i0), nc = std::min(C, N - j0);
        std::vector<std::int16_t> at(mr * K), bt(K * nc);
        for (int i = 0; i < mr; ++i)
          for (int k = 0; k < K; ++k) at[i * K + k] = a[(i0 + i) * K + k];
        for (int k = 0; k < K; ++k)
          for (int j = 0; j < nc; ++j) bt[k * nc + j] = b[k * N + j0 + j];
        std::vector<std::int32_t> ct(mr * nc);
        folds.merge(gemm(ctx, {mr, nc, K}, {at, 4, false}, {bt, 4, false}, acc, ct, KernelPath::reference));
        for (int i = 0; i < mr; ++i)
          for (int j = 0; j < nc; ++j) want[(i0 + i) * N + j0 + j] = ct[i * nc + j];
      }
    EXPECT_EQ(c, want) << preset;
    EXPECT_EQ(s, folds) << preset;
    EXPECT_GT(s.inner_events(), 0u) << preset << ": the test should exercise narrowing";
    EXPECT_EQ(sram.read_struct<GemmStatsRecord>(64).stats(), s) << "the record starts at zero with init_stats";
  }
}

// A GEMM run as commands over K-chunks (kc a multiple of the tile, the last
// shorter), each after the first continuing C (accumulate), equals the one
// command over the whole K: C and the merged statistics, in every mode. With
// Wo = 32 the small sums here can never reach the outer limit, so every
// chunk takes the fast path (O_prev + the chunk from 0); with Wo = 8 or 10
// the outer clamp fires inside the continued sums (outer_overflows > 0 in a
// continuing command, which only the reference fallback can report, since
// the fast path requires that no clamp can fire).
TEST(NpuMacArray, KChunksWithAccumulateEqualOneCommand) {
  std::mt19937 g(11);
  std::uniform_int_distribution<int> v(-3, 7);  // mostly positive products: large tile and outer sums
  const int M = 9, N = 7, K = 100, T = 8;
  std::vector<std::int16_t> a(M * K), b(K * N);
  for (auto& x : a) x = std::int16_t(v(g));
  for (auto& x : b) x = std::int16_t(v(g));
  for (const AccMode mode : {AccMode::exact, AccMode::clamp_tile, AccMode::saturate, AccMode::wrap})
    for (const int outer : {32, 10, 8})
      for (const int kc : {24, 8}) {  // 24: chunks 24, 24, 24, 24, 4 (three tiles each, the last one short)
        const std::string what = fmt::format("mode {} Wo {} kc {}", int(mode), outer, kc);
        AccumulatorConfig acc;
        acc.acc_bits = 8, acc.tile = T, acc.mode = mode, acc.range = AccRange::symmetric, acc.outer_bits = outer;
        ByteStore sram("sram", 1 << 16);
        sram.write_struct(0, QuantRecord{});  // signed operands
        put_packed(sram, 256, a, M, K);
        put_packed(sram, 4096, b, K, N);
        MacDescriptor d;
        d.a = 256, d.b = 4096, d.c = 8192, d.stats = 64;
        d.m = M, d.n = N, d.k = K, d.init_stats = 1;
        d.set_accumulator(acc);
        MacArrayCore core;
        const GemmStats whole = core.run(d, sram);
        std::vector<std::int32_t> want(M * N), c(M * N);
        sram.read_values<std::int32_t>(8192, want);

        // The chunks: A's columns [k0, k0 + kc) and B's rows, packed on their own.
        std::uint64_t continued_overflows = 0;
        d.c = 12288, d.stats = 128;
        for (int k0 = 0; k0 < K; k0 += kc) {
          const int kk = std::min(kc, K - k0);
          std::vector<std::int16_t> ac(M * kk), bc(b.begin() + k0 * N, b.begin() + (k0 + kk) * N);
          for (int i = 0; i < M; ++i)
            for (int k = 0; k < kk; ++k) ac[i * kk + k] = a[i * K + k0 + k];
          put_packed(sram, 256, ac, M, kk);
          put_packed(sram, 4096, bc, kk, N);
          d.k = kk, d.init_stats = k0 == 0, d.accumulate = k0 != 0;
          const GemmStats s = core.run(d, sram);
          if (d.accumulate) continued_overflows += s.outer_overflows;
        }
        sram.read_values<std::int32_t>(12288, c);
        EXPECT_EQ(c, want) << what;
        EXPECT_EQ(sram.read_struct<GemmStatsRecord>(128).stats(), whole) << what;
        if (outer == 32) {
          EXPECT_EQ(whole.outer_overflows, 0u) << what;
        } else {
          EXPECT_GT(continued_overflows, 0u) << what << ": the fallback should run";
        }
        if (mode != AccMode::exact) {
          EXPECT_GT(whole.inner_events(), 0u) << what << ": narrowing should happen";
        }
      }
}

// The verilated array cannot preload O: an accumulate command on impl: rtl
// is refused, naming the knob, before the array runs.
TEST(NpuMacArray, AccumulateIsRefusedOnTheRtlArray) {
  struct NoArray final : RtlMacArray {
    RtlGemmRun gemm(GemmShape, IntOperand, IntOperand, const AccumulatorConfig&, std::span<std::int32_t>) override {
      ADD_FAILURE() << "the array ran";
      return {};
    }
  } array;
  ByteStore sram("sram", 1 << 12);
  MacDescriptor d;
  d.a = 256, d.b = 512, d.c = 1024, d.stats = 2048, d.m = 2, d.n = 2, d.k = 2, d.accumulate = 1;
  MacArrayCore core;
  RtlGemmRun run;
  try {
    core.run(d, sram, &array, &run);
    ADD_FAILURE() << "accumulate ran on the RTL array";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("mac_array.impl"), std::string::npos) << e.what();
  }
}

// B stored transposed (the forward GEMM's W) gives the same product.
TEST(NpuMacArray, TransposedBLayout) {
  std::mt19937 g(5);
  std::uniform_int_distribution<int> v(0, 15);  // unsigned 4-bit operands
  const int M = 5, N = 6, K = 9;
  std::vector<std::int16_t> a(M * K), bt(N * K), b(K * N);
  for (auto& x : a) x = std::int16_t(v(g));
  for (auto& x : bt) x = std::int16_t(v(g) - 8);
  for (int j = 0; j < N; ++j)
    for (int k = 0; k < K; ++k) b[k * N + j] = bt[j * K + k];
  ByteStore sram("sram", 1 << 12);
  QuantRecord unsigned_rec;
  unsigned_rec.is_unsigned = 1;
  sram.write_struct(0, unsigned_rec);
  sram.write_struct(32, QuantRecord{});
  std::vector<std::uint8_t> bytes(M * packed_pitch(K, 4));
  pack_rows(a, M, K, 4, bytes);
  sram.write(128, bytes);
  bytes.assign(N * packed_pitch(K, 4), 0);
  pack_rows(bt, N, K, 4, bytes);
  sram.write(512, bytes);
  MacDescriptor d;
  d.a = 128, d.b = 512, d.c = 1024, d.a_record = 0, d.b_record = 32, d.stats = 2048, d.init_stats = 1;
  d.m = M, d.n = N, d.k = K, d.b_layout = BLayout::n_by_k;
  AccumulatorConfig exact;
  exact.mode = AccMode::exact;
  d.set_accumulator(exact);
  MacArrayCore core;
  core.run(d, sram);
  std::vector<std::int32_t> c(M * N), want(M * N);
  sram.read_values<std::int32_t>(1024, c);
  GemmContext ctx;
  gemm(ctx, {M, N, K}, {a, 4, true}, {b, 4, false}, exact, want, KernelPath::reference);
  EXPECT_EQ(c, want);
}

// The core keeps B's unpacked values from one command to the next: a run
// whose B panel changed in place (same address and shape), or is read as
// another signedness or layout, must still compute with the new bits.
TEST(NpuMacArray, ReusedBPanelFollowsItsBytes) {
  std::mt19937 g(9);
  std::uniform_int_distribution<int> v(-7, 7);
  const int M = 4, N = 8, K = 6;  // N == K: the same bytes read as k x n or as n x k
  ByteStore sram("sram", 1 << 12);
  QuantRecord unsigned_rec;
  unsigned_rec.is_unsigned = 1;
  sram.write_struct(0, QuantRecord{});  // A: signed
  sram.write_struct(32, QuantRecord{});  // B: signed
  sram.write_struct(64, unsigned_rec);   // B read as unsigned
  std::vector<std::int16_t> a(M * K), b(K * N);
  for (auto& x : a) x = std::int16_t(v(g));
  std::vector<std::uint8_t> bytes(M * packed_pitch(K, 4));
  pack_rows(a, M, K, 4, bytes);
  sram.write(128, bytes);
  MacDescriptor d;
  d.a = 128, d.b = 512, d.c = 1024, d.a_record = 0, d.b_record = 32, d.stats = 2048, d.init_stats = 1;
  d.m = M, d.n = N, d.k = K;
  AccumulatorConfig exact;
  exact.mode = AccMode::exact;
  d.set_accumulator(exact);
  MacArrayCore core;
  GemmContext ctx;
  // The reference product of A with B's packed bytes read as d says.
  auto expect_product = [&](const std::string& what) {
    const bool is_unsigned = d.b_record == 64;
    std::vector<std::uint8_t> packed(d.b_bytes());
    sram.read(d.b, packed);
    std::vector<std::int16_t> stored(K * N), kn(K * N);
    if (d.b_layout == BLayout::n_by_k) {
      unpack_rows(packed, N, K, 4, is_unsigned, stored);
      for (int j = 0; j < N; ++j)
        for (int k = 0; k < K; ++k) kn[k * N + j] = stored[j * K + k];
    } else {
      unpack_rows(packed, K, N, 4, is_unsigned, kn);
    }
    core.run(d, sram);
    std::vector<std::int32_t> c(M * N), want(M * N);
    sram.read_values<std::int32_t>(1024, c);
    gemm(ctx, {M, N, K}, {a, 4, false}, {kn, 4, is_unsigned}, exact, want, KernelPath::reference);
    EXPECT_EQ(c, want) << what;
  };
  for (auto& x : b) x = std::int16_t(v(g));
  bytes.assign(K * packed_pitch(N, 4), 0);
  pack_rows(b, K, N, 4, bytes);
  sram.write(512, bytes);
  expect_product("first B");
  expect_product("the same B again");
  b[7] = std::int16_t(b[7] == 3 ? -3 : 3);  // one value changed in place
  pack_rows(b, K, N, 4, bytes);
  sram.write(512, bytes);
  expect_product("one value of B changed");
  d.b_record = 64;
  expect_product("B read as unsigned");
  d.b_layout = BLayout::n_by_k;
  expect_product("B read as n x k");
}

// The Hadamard unit's three operations against the numeric core.
TEST(NpuHadamard, OperationsMatchTheNumericCore) {
  ByteStore sram("sram", 1 << 16);
  HadamardCore core;
  // Rows: 3 x 6 padded to 8, block 8.
  const std::vector<float> g = random_floats(18, 2);
  sram.write_values<float>(0, g);
  core.run(kHadamardRows, {0, 4096, 0, 3, 6, 8, 8, 0}, sram);
  std::vector<float> want(24, 0.0f), got(24);
  for (int r = 0; r < 3; ++r) std::copy_n(g.begin() + r * 6, 6, want.begin() + r * 8);
  hadamard_rows_f32(want, 3, 8, 8);
  sram.read_values<float>(4096, got);
  EXPECT_EQ(got, want);
  // Columns, transposed: G (3 x 6) -> 6 x 4 (rows padded 3 -> 4), block 4.
  core.run(kHadamardColsT, {0, 4096, 0, 3, 6, 4, 4, 0}, sram);
  want.assign(24, 0.0f);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 6; ++c) want[c * 4 + r] = g[r * 6 + c];
  hadamard_rows_f32(want, 6, 4, 4);
  sram.read_values<float>(4096, got);
  EXPECT_EQ(got, want);
  // Integer, along the rows dimension: H_4 (dense Sylvester) times a 3 x 2
  // operand padded to 4 rows; exact, so any order gives these values.
  const std::vector<std::int16_t> q{1, -2, 3, 4, -5, 6};
  std::vector<std::uint8_t> bytes(3 * packed_pitch(2, 4));
  pack_rows(q, 3, 2, 4, bytes);
  sram.write(8192, bytes);
  sram.write_struct(9000, QuantRecord{});
  core.run(kHadamardColsInt, {8192, 4096, 9000, 3, 2, 4, 4, 4}, sram);
  got.resize(8);
  sram.read_values<float>(4096, got);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 2; ++c) {
      int s = 0;
      for (int k = 0; k < 3; ++k) s += sylvester_entry(std::uint32_t(r), std::uint32_t(k)) * q[k * 2 + c];
      EXPECT_EQ(got[r * 2 + c], float(s)) << r << "," << c;
    }
}

// The integer transform's recent results (hadamard_unit.h) serve only the
// same input bytes, shape and signedness: a second pass over each of two
// blocks gets each block's own result; a changed byte, another block size
// or the other signedness is computed afresh. Every result is checked
// against a fresh core (which has no recent results).
TEST(NpuHadamard, RecentIntegerResultsFollowTheirInput) {
  ByteStore sram("sram", 1 << 16);
  HadamardCore core;
  const std::uint64_t rows = 6, cols = 4;
  std::mt19937 g(3);
  std::uniform_int_distribution<int> d(-8, 7);
  std::vector<std::uint8_t> a(rows * packed_pitch(cols, 4)), b(a.size());
  std::vector<std::int16_t> q(rows * cols);
  for (auto& v : q) v = std::int16_t(d(g));
  pack_rows(q, rows, cols, 4, a);
  for (auto& v : q) v = std::int16_t(d(g));
  pack_rows(q, rows, cols, 4, b);
  QuantRecord is_unsigned;
  is_unsigned.is_unsigned = 1;
  sram.write_struct(9000, QuantRecord{});
  sram.write_struct(9100, is_unsigned);
  auto result = [&](HadamardCore& c, const std::vector<std::uint8_t>& in, std::uint32_t block, std::uint32_t record) {
    sram.write(8192, in);
    c.run(kHadamardColsInt, {8192, 4096, record, std::uint32_t(rows), std::uint32_t(cols), 8, block, 4}, sram);
    std::vector<float> y(8 * cols);
    sram.read_values<float>(4096, y);
    return y;
  };
  auto fresh = [&](const std::vector<std::uint8_t>& in, std::uint32_t block, std::uint32_t record) {
    HadamardCore c;
    return result(c, in, block, record);
  };
  const std::vector<float> ya = fresh(a, 8, 9000), yb = fresh(b, 8, 9000);
  ASSERT_NE(ya, yb);
  EXPECT_EQ(result(core, a, 8, 9000), ya);  // first pass
  EXPECT_EQ(result(core, b, 8, 9000), yb);
  EXPECT_EQ(result(core, a, 8, 9000), ya);  // second pass: recent results
  EXPECT_EQ(result(core, b, 8, 9000), yb);
  std::vector<std::uint8_t> changed = a;
  changed.back() ^= 0x10;  // one value of the last row
  EXPECT_EQ(result(core, changed, 8, 9000), fresh(changed, 8, 9000));
  EXPECT_EQ(result(core, a, 4, 9000), fresh(a, 4, 9000));
  EXPECT_EQ(result(core, a, 8, 9100), fresh(a, 8, 9100));
  EXPECT_NE(fresh(a, 4, 9000), ya);  // (the variations change the result)
  EXPECT_NE(fresh(a, 8, 9100), ya);
}

// The forward epilogue: dequantize, + bias, then ReLU into a second buffer;
// and the dX epilogue: dequantize with four factors, clip mask, ReLU'.
TEST(NpuVector, EpiloguesMatchTheFunctionalOrder) {
  ByteStore sram("sram", 1 << 14);
  QuantRecord ra, rb;
  ra.scale = 0.37f;
  rb.scale = 1.9f;
  sram.write_struct(0, ra);
  sram.write_struct(32, rb);
  const std::vector<std::int32_t> acc{5, -3, 0, 12, -7, 1};
  const std::vector<float> bias{0.25f, -1.5f, 2.0f};
  sram.write_values<std::int32_t>(256, acc);
  sram.write_values<float>(512, bias);
  VectorDescriptor v;
  v.src = v.dst = 256;
  v.rows = 2, v.cols = 3;
  v.factor_record[0] = 0, v.factor_record[1] = 32, v.factors = 2;
  v.flags = kVecBias | kVecRelu | kVecReluMask;
  v.aux0 = 512, v.aux1 = 1024, v.aux3 = 1536;
  VectorCore core;
  const F32Ops ops = core.run(kVecDequant, v, sram);
  EXPECT_EQ(ops.muls, 12u);  // 2 factors x 6
  EXPECT_EQ(ops.adds, 12u);  // bias + ReLU compare
  std::vector<float> y(6), act(6);
  sram.read_values<float>(256, y);
  sram.read_values<float>(1024, act);
  for (int i = 0; i < 6; ++i) {
    const float want = (float(acc[i]) * 0.37f) * 1.9f + bias[i % 3];
    EXPECT_EQ(y[i], want);
    EXPECT_EQ(act[i], std::max(want, 0.0f));
  }
  // The ReLU mask: bit i of row r set where y > 0 (ReLU' = 1), 3 bits a row in one byte each.
  std::uint8_t relu[2];
  sram.read(1536, relu);
  for (int i = 0; i < 6; ++i) EXPECT_EQ((relu[i / 3] >> (i % 3)) & 1, y[i] > 0.0f ? 1 : 0) << i;
  // dX: factors s2 = 0.37 (record), s3 = 1.9 (record), sw = 0.5, 1/b = 0.125;
  // clip mask row 0 = 0b010 (element 1); the ReLU mask of pre = {1, 1, -1, 0, 2, 3}:
  // pre > 0 at elements 0, 1 (row 0: 0b011) and 4, 5 (row 1, columns 1, 2: 0b110).
  sram.write_values<std::int32_t>(256, acc);
  const std::uint8_t mask[2] = {0x2, 0x0};
  sram.write(2048, mask);
  const std::vector<float> pre{1, 1, -1, 0, 2, 3};
  const std::uint8_t relu_mask[2] = {0x3, 0x6};
  sram.write(3072, relu_mask);
  VectorDescriptor dx;
  dx.src = dx.dst = 256;
  dx.rows = 2, dx.cols = 3;
  dx.factor_record[0] = 0, dx.factor_record[1] = 32, dx.factor_value[2] = 0.5f, dx.factor_value[3] = 0.125f;
  dx.factors = 4;
  dx.flags = kVecClipMask | kVecReluGrad;
  dx.aux2 = 2048, dx.aux3 = 3072;
  core.run(kVecDequant, dx, sram);
  sram.read_values<float>(256, y);
  for (int i = 0; i < 6; ++i) {
    const float d = (((float(acc[i]) * 0.37f) * 1.9f) * 0.5f) * 0.125f;
    const bool zero = i == 1 || !(pre[i] > 0.0f);
    EXPECT_EQ(y[i], zero ? 0.0f : d) << i;
  }
}

// The dX epilogue's masks on rows wider than a mask byte (whole bytes and a
// tail): every element is the dequantized value, or +0.0f exactly where the
// clip bit is set or the ReLU' bit is clear (the bits of a select).
TEST(NpuVector, MasksSelectEveryElementOfWideRows) {
  const std::uint64_t rows = 3, cols = 19, pitch = mask_pitch(cols);
  std::mt19937 g(5);
  std::uniform_int_distribution<int> val(-40, 40), byte(0, 255);
  std::vector<std::int32_t> acc(rows * cols);
  for (auto& a : acc) a = val(g);
  std::vector<std::uint8_t> clip(rows * pitch), relu(rows * pitch);
  for (auto& b : clip) b = std::uint8_t(byte(g));
  for (auto& b : relu) b = std::uint8_t(byte(g));
  ByteStore sram("sram", 1 << 14);
  sram.write_values<std::int32_t>(256, acc);
  sram.write(2048, clip);
  sram.write(3072, relu);
  VectorDescriptor d;
  d.src = d.dst = 256;
  d.rows = std::uint32_t(rows), d.cols = std::uint32_t(cols);
  d.factor_value[0] = -0.75f, d.factors = 1;  // negative: -0.0f from a zero accumulator must survive where kept
  d.flags = kVecClipMask | kVecReluGrad;
  d.aux2 = 2048, d.aux3 = 3072;
  VectorCore core;
  core.run(kVecDequant, d, sram);
  std::vector<float> y(rows * cols);
  sram.read_values<float>(256, y);
  for (std::uint64_t r = 0; r < rows; ++r)
    for (std::uint64_t c = 0; c < cols; ++c) {
      const std::uint64_t i = r * cols + c;
      const bool zero = mask_bit(clip, pitch, r, c) || !mask_bit(relu, pitch, r, c);
      const float want = zero ? 0.0f : float(acc[i]) * -0.75f;
      EXPECT_EQ(std::bit_cast<std::uint32_t>(y[i]), std::bit_cast<std::uint32_t>(want)) << r << ", " << c;
    }
}

// Column sums chunk by chunk = the functional db; SGD = hdq::Sgd.
TEST(NpuVector, ColumnSumAndSgdMatchTheHost) {
  ByteStore sram("sram", 1 << 14);
  const std::vector<float> g = random_floats(5 * 3, 4);
  sram.write_values<float>(0, g);
  VectorCore core;
  VectorDescriptor v;
  v.dst = 4096;
  v.cols = 3;
  v.src = 0, v.rows = 2, v.flags = kVecInit;
  core.run(kVecColumnSum, v, sram);
  v.src = 4 * 6, v.rows = 3, v.flags = 0;
  core.run(kVecColumnSum, v, sram);
  std::vector<float> db(3), want(3, 0.0f);
  sram.read_values<float>(4096, db);
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 3; ++c) want[c] += g[r * 3 + c];
  EXPECT_EQ(db, want);

  const SgdConfig cfg{.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f};
  MlpParams p;
  p.w.emplace_back(1, 4);
  p.w[0].v = random_floats(4, 5);
  p.b.push_back(random_floats(1, 6));
  MlpGrads grads = zeros_like(p);
  Sgd sgd(cfg);
  std::vector<float> w = p.w[0].v;
  sram.write_values<float>(0, w);
  for (int step = 0; step < 3; ++step) {
    grads.w[0].v = random_floats(4, 10 + step);
    sgd.step(p, grads);
    sram.write_values<float>(512, grads.w[0].v);
    VectorDescriptor s;
    s.dst = 0, s.src = 512, s.aux0 = 1024, s.rows = 4, s.cols = 1;
    s.lr = cfg.lr, s.momentum = cfg.momentum, s.weight_decay = cfg.weight_decay;
    s.flags = step == 0 ? kVecInit : 0;
    core.run(kVecSgd, s, sram);
    sram.read_values<float>(0, w);
    EXPECT_EQ(w, p.w[0].v) << "step " << step;
  }
}

TEST(NpuVector, SoftmaxIsTheSharedFunction) {
  ByteStore sram("sram", 1 << 12);
  Matrix z(2, 4);
  z.v = random_floats(8, 8, 2.0f);
  const std::vector<int> labels{1, 0};
  const bool active[4] = {true, true, false, true};
  Matrix want;
  const float loss = softmax_cross_entropy(z, labels, active, &want);
  sram.write_values<float>(0, z.v);
  sram.write_values<int>(64, labels);
  const std::uint8_t act_bytes[4] = {1, 1, 0, 1};
  sram.write(128, act_bytes);
  VectorDescriptor v;
  v.src = 0, v.dst = 256, v.rows = 2, v.cols = 4, v.aux0 = 64, v.aux1 = 128, v.aux2 = 512;
  VectorCore core;
  core.run(kVecSoftmax, v, sram);
  std::vector<float> grad(8);
  sram.read_values<float>(256, grad);
  EXPECT_EQ(grad, want.v);
  EXPECT_EQ(sram.read_struct<float>(512), loss);
}

}  // namespace
}  // namespace hdq::npu
