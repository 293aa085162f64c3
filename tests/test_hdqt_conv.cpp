// The HDQT convolution (docs/contract.md §9): the im2col GEMM against a
// direct integer convolution, the layer against a second, naive composition
// of §9 written from the contract text (direct index arithmetic for im2col and
// col2im, dense block Hadamard matrices for the integer transforms, per-element
// quantization with explicit random-bit indices, the reference GEMM), the 1x1
// case against the linear layer of §6, and on fine settings against the float
// convolution of the golden model.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <tuple>

#include "golden/conv.h"
#include "models/common/errors.h"
#include "models/hdqt/hdqt_conv.h"
#include "models/quantizer/random_bits.h"

namespace hdq {
namespace {

// What the layer computes with (the caller owns it; here the tests): a GEMM
// context of 1 and one of 2 threads (results do not depend on the count) and
// the convolution's scratch.
GemmContext gc1(1), gc2(2);
HdqtConvScratch cs;

float uniform(std::uint64_t seed, std::size_t i) {
  return float(mix64(seed + i * 0x9e3779b97f4a7c15ULL) >> 40) * 0x1p-24f;
}

Matrix random_matrix(int r, int c, std::uint64_t seed, float scale, bool non_negative = false) {
  Matrix m(r, c);
  for (std::size_t i = 0; i < m.v.size(); ++i) {
    const float u = uniform(seed, i);
    m.v[i] = scale * (non_negative ? u : 2.0f * u - 1.0f);
  }
  return m;
}

std::vector<std::int16_t> random_ints(std::size_t n, std::uint64_t seed, int lo, int hi) {
  std::vector<std::int16_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::int16_t(lo + int(uniform(seed, i) * float(hi - lo + 1)));
  return v;
}

void expect_bits_equal(std::span<const float> a, std::span<const float> b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(std::bit_cast<std::uint32_t>(a[i]), std::bit_cast<std::uint32_t>(b[i]))
        << what << " element " << i << ": " << a[i] << " vs " << b[i];
}

ConvGeometry geometry(int c, int h, int w, int o, int kh, int kw, int stride, int pad) {
  return {.in_channels = c, .in_h = h, .in_w = w, .out_channels = o, .kernel_h = kh, .kernel_w = kw,
          .stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad};
}

// The input cell tap (i, j) of output position (oy, ox) reads, or -1 in the padding.
int tap_cell(const ConvGeometry& g, int c, int oy, int ox, int i, int j) {
  const int y = oy * g.stride_h - g.pad_h + i, x = ox * g.stride_w - g.pad_w + j;
  if (y < 0 || y >= g.in_h || x < 0 || x >= g.in_w) return -1;
  return (c * g.in_h + y) * g.in_w + x;
}

// ---------------------------------------------------------------------------
// 1. The im2col GEMM against a direct integer convolution.

// One tile's register rules written out (docs/contract.md §5), int64 throughout.
struct DirectAccumulator {
  const AccumulatorConfig& cfg;
  std::int64_t lo() const {
    const std::int64_t h = std::int64_t{1} << (cfg.acc_bits - 1);
    return cfg.range == AccRange::full ? -h : -(h - 1);
  }
  std::int64_t hi() const { return (std::int64_t{1} << (cfg.acc_bits - 1)) - 1; }
  std::int64_t wrap(std::int64_t v) const {  // v mod 2^W into [-2^(W-1), 2^(W-1))
    const std::int64_t m = std::int64_t{1} << cfg.acc_bits, h = m / 2;
    return ((v + h) % m + m) % m - h;
  }
  // The tile result of the products ps (ascending k).
  std::int64_t tile(const std::vector<std::int64_t>& ps) const {
    std::int64_t exact = 0, reg = 0;
    for (std::int64_t p : ps) {
      exact += p;
      if (cfg.mode == AccMode::saturate) reg = std::min(std::max(reg + p, lo()), hi());
      if (cfg.mode == AccMode::wrap) reg = wrap(reg + p);
    }
    switch (cfg.mode) {
      case AccMode::exact: return exact;
      case AccMode::clamp_tile: return std::min(std::max(exact, lo()), hi());
      default: return reg;
    }
  }
};

// C[n][o][oy][ox] by direct loops over (c, i, j) = k ascending, padded taps as zero products.
std::vector<std::int32_t> direct_int_conv(const ConvGeometry& g, int batch, const std::vector<std::int16_t>& x,
                                          const std::vector<std::int16_t>& w, const AccumulatorConfig& cfg,
                                          std::uint64_t& narrowed) {
  const DirectAccumulator acc{cfg};
  const int K = g.patch(), t = (cfg.tile == 0 || cfg.tile > K) ? K : cfg.tile;
  const std::int64_t outer_hi = (std::int64_t{1} << (cfg.outer_bits - 1)) - 1, outer_lo = -outer_hi - 1;
  std::vector<std::int32_t> c;
  for (int n = 0; n < batch; ++n)
    for (int o = 0; o < g.out_channels; ++o)
      for (int oy = 0; oy < g.out_h(); ++oy)
        for (int ox = 0; ox < g.out_w(); ++ox) {
          std::int64_t out = 0;
          std::vector<std::int64_t> ps;
          int k = 0;
          for (int ch = 0; ch < g.in_channels; ++ch)
            for (int i = 0; i < g.kernel_h; ++i)
              for (int j = 0; j < g.kernel_w; ++j, ++k) {
                const int cell = tap_cell(g, ch, oy, ox, i, j);
                const std::int64_t xv = cell < 0 ? 0 : x[std::size_t(n) * g.in_size() + cell];
                ps.push_back(xv * w[std::size_t(o) * K + k]);
                if (int(ps.size()) == t || k == K - 1) {
                  const std::int64_t r = acc.tile(ps);
                  std::int64_t exact = 0;
                  for (auto p : ps) exact += p;
                  narrowed += r != exact;
                  out = std::min(std::max(out + r, outer_lo), outer_hi);
                  ps.clear();
                }
              }
          c.push_back(std::int32_t(out));
        }
  return c;
}

TEST(HdqtConv, Im2colGemmEqualsDirectIntegerConvolution) {
  // K = C*kh*kw = 27, 12, 18: never a multiple of the tiles 8 and 5 (27 = 3*8 + 3).
  const std::vector<ConvGeometry> geometries = {
      geometry(3, 6, 7, 4, 3, 3, 1, 1),  // "same" 3x3
      geometry(3, 7, 6, 5, 3, 3, 2, 0),  // stride 2, no padding, odd size
      geometry(3, 5, 5, 3, 2, 2, 2, 1),  // 2x2, stride 2, padding 1
      geometry(2, 6, 5, 3, 3, 3, 3, 2),  // stride 3, padding 2 (windows mostly padding)
  };
  const int batch = 3;
  std::uint64_t seed = 10;
  for (const ConvGeometry& g : geometries)
    for (AccMode mode : {AccMode::exact, AccMode::clamp_tile, AccMode::saturate, AccMode::wrap})
      for (int tile : {0, 5, 8}) {
        for (bool unsigned_x : {true, false}) {
          const AccumulatorConfig cfg{.acc_bits = 7, .tile = tile, .mode = mode, .range = AccRange::symmetric,
                                      .outer_bits = 12};
          // 4-bit operands: activations unsigned (after ReLU) or signed, weights signed.
          const auto x = unsigned_x ? random_ints(std::size_t(batch) * g.in_size(), ++seed, 0, 15)
                                    : random_ints(std::size_t(batch) * g.in_size(), ++seed, -7, 7);
          const auto w = random_ints(std::size_t(g.out_channels) * g.patch(), ++seed, -7, 7);
          std::uint64_t narrowed = 0;
          const auto want = direct_int_conv(g, batch, x, w, cfg, narrowed);
          // W = 7 holds [-63, 63]: tiles of up to 27 products of |p| <= 105 overflow it.
          if (mode != AccMode::exact) {
            EXPECT_GT(narrowed, 0u) << "the case must exercise the narrow register";
          }
          for (KernelPath path : available_gemm_paths()) {
            std::vector<std::int32_t> got(want.size());
            const GemmStats s = conv_gemm(gc2, cs, g, batch, {x, 4, unsigned_x}, {w, 4, false}, cfg, got, path);
            EXPECT_EQ(got, want) << "path " << int(path) << " mode " << int(mode) << " tile " << tile << " K "
                                 << g.patch() << " stride " << g.stride_h << " pad " << g.pad_h;
            EXPECT_EQ(s.products, std::uint64_t(batch) * g.positions() * g.out_channels * g.patch());
          }
        }
      }
}

// ---------------------------------------------------------------------------
// 2. The layer against a naive composition of §9.

struct Naive {
  const HdqtConfig& cfg;
  HdqtStepContext ctx;
  const ConvGeometry& g;
  int N;

  std::uint64_t key(QuantRole r) const {
    return RandomStream{ctx.seed, 8 * std::uint64_t(ctx.layer) + std::uint64_t(r), ctx.step}.key();
  }
  // §1-§2 on the elements [first, first + count) of x, indices first.. (one scale for them).
  QuantizedTensor q(const std::vector<float>& x, std::size_t first, std::size_t count, QuantRole r) const {
    const std::span<const float> part(x.data() + first, count);
    QuantizedTensor t;
    t.params = choose_scale(part, cfg.q(r), "naive");
    for (std::size_t i = 0; i < count; ++i)
      t.q.push_back(std::int16_t(quantize_element(part[i], first + i, t.params, cfg.q(r), key(r))));
    return t;
  }
  QuantizedTensor q(const std::vector<float>& x, QuantRole r) const { return q(x, 0, x.size(), r); }

  std::vector<std::int32_t> mm(const QuantizedTensor& a, QuantRole ra, const QuantizedTensor& b, QuantRole rb, int m,
                               int n, int k, GemmRole role) const {
    std::vector<std::int32_t> c(std::size_t(m) * n);
    gemm(gc1, {m, n, k}, {a.q, operand_bits(cfg.q(ra)), a.params.is_unsigned},
         {b.q, operand_bits(cfg.q(rb)), b.params.is_unsigned},
         cfg.acc(role), c, KernelPath::reference);
    return c;
  }
  // im2col(Xq) rows [n0*P, n1*P), from the tap formula.
  std::vector<std::int16_t> columns(const std::vector<std::int16_t>& xq, int n0, int n1) const {
    std::vector<std::int16_t> cols;
    for (int n = n0; n < n1; ++n)
      for (int oy = 0; oy < g.out_h(); ++oy)
        for (int ox = 0; ox < g.out_w(); ++ox)
          for (int c = 0; c < g.in_channels; ++c)
            for (int i = 0; i < g.kernel_h; ++i)
              for (int j = 0; j < g.kernel_w; ++j) {
                const int cell = tap_cell(g, c, oy, ox, i, j);
                cols.push_back(cell < 0 ? 0 : xq[std::size_t(n) * g.in_size() + cell]);
              }
    return cols;
  }
  // Dense block-diagonal Sylvester transform along dimension 0 of an int
  // matrix (rows x cols), zero-padded to `padded` rows, as f32.
  static std::vector<float> block_hadamard_dim0(const std::vector<std::int16_t>& in, int rows, int cols, int padded,
                                                int b) {
    std::vector<float> out;
    for (int r = 0; r < padded; ++r)
      for (int c = 0; c < cols; ++c) {
        std::int64_t s = 0;
        for (int r2 = 0; r2 < rows; ++r2)
          if (r2 / b == r / b) s += sylvester_entry(r % b, r2 % b) * std::int64_t(in[std::size_t(r2) * cols + c]);
        out.push_back(float(s));
      }
    return out;
  }
};

struct LayerResult {
  Matrix y, dx, dw;
  std::vector<float> db;
  HdqtLayerStats stats{};
};

LayerResult run_layer(const ConvGeometry& g, const Matrix& x, const Matrix& w, const std::vector<float>& bias,
                      const Matrix& gr, const HdqtConfig& cfg, const HdqtStepContext& ctx) {
  LayerResult r;
  HdqtConvState st;
  hdqt_conv_forward(gc1, cs, g, x, w, bias, cfg, ctx, r.y, st, r.stats);
  hdqt_conv_backward(gc1, cs, gr, st, cfg, ctx, &r.dx, r.dw, r.db, r.stats);
  return r;
}

void check_against_naive(HdqtConfig cfg, ConvMapping mapping, const ConvGeometry& g, int N, bool relu_input) {
  cfg.conv_mapping = mapping;
  const HdqtStepContext ctx{.seed = 7, .step = 23, .layer = 2};
  const int P = g.positions(), K = g.patch(), O = g.out_channels;
  const Matrix x = random_matrix(N, g.in_size(), 1, 2.0f, relu_input), w = random_matrix(O, K, 2, 0.4f);
  // Sample 1's gradient is tiny, so a per-sample scale differs visibly from a per-tensor one.
  Matrix gr = random_matrix(N, O * P, 3, 0.02f);
  for (float& v : gr.row(1)) v *= 1e-3f;
  std::vector<float> bias(static_cast<std::size_t>(O));
  for (int o = 0; o < O; ++o) bias[o] = 0.1f * float(o) - 0.2f;
  const LayerResult got = run_layer(g, x, w, bias, gr, cfg, ctx);
  const std::string tag = std::string(name(mapping)) + " " + std::to_string(g.stride_h) + "/" + std::to_string(g.pad_h);

  const Naive nv{cfg, ctx, g, N};
  // Forward: Y[n][o][p] = (((f32)C[n*P+p][o] * sx) * sw) + bias[o].
  const auto xq = nv.q(x.v, QuantRole::fwd_x), wq = nv.q(w.v, QuantRole::fwd_w);
  QuantizedTensor cols{nv.columns(xq.q, 0, N), xq.params}, wqt = wq;
  for (int o = 0; o < O; ++o)
    for (int k = 0; k < K; ++k) wqt.q[std::size_t(k) * O + o] = wq.q[std::size_t(o) * K + k];
  const auto c = nv.mm(cols, QuantRole::fwd_x, wqt, QuantRole::fwd_w, N * P, O, K, GemmRole::fwd);
  std::vector<float> y(std::size_t(N) * O * P);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o)
      for (int p = 0; p < P; ++p)
        y[(std::size_t(n) * O + o) * P + p] =
            float(c[(std::size_t(n) * P + p) * O + o]) * xq.params.scale * wq.params.scale + bias[o];
  expect_bits_equal(got.y.v, y, "Y " + tag);

  // dX: W' (exact), G' = Gm H_O, D, col2im by gathering in ascending p, STE.
  const HadamardPlan ho = plan_hadamard(O, cfg.hadamard);
  const int Op = ho.padded_length;
  const auto whq = nv.q(Naive::block_hadamard_dim0(wq.q, O, K, Op, ho.block), QuantRole::bwd_w_dx);
  std::vector<float> gh(std::size_t(N) * P * Op, 0.0f);
  for (int n = 0; n < N; ++n)
    for (int p = 0; p < P; ++p)
      for (int o = 0; o < O; ++o) gh[(std::size_t(n) * P + p) * Op + o] = gr.at(n, o * P + p);
  fwht_f32(gh, ho.block);
  std::vector<float> d(std::size_t(N) * P * K);
  const int groups = mapping == ConvMapping::whole_batch ? 1 : N, rows = N * P / groups;
  for (int s = 0; s < groups; ++s) {
    const auto ghq = nv.q(gh, std::size_t(s) * rows * Op, std::size_t(rows) * Op, QuantRole::bwd_g_dx);
    const auto acc = nv.mm(ghq, QuantRole::bwd_g_dx, whq, QuantRole::bwd_w_dx, rows, K, Op, GemmRole::bwd_dx);
    for (std::size_t i = 0; i < acc.size(); ++i)
      d[std::size_t(s) * rows * K + i] = float(acc[i]) * ghq.params.scale * whq.params.scale * wq.params.scale *
                                         (1.0f / float(ho.block));
  }
  std::vector<float> dx(x.v.size());
  for (int n = 0; n < N; ++n)
    for (int ch = 0; ch < g.in_channels; ++ch)
      for (int yy = 0; yy < g.in_h; ++yy)
        for (int xx = 0; xx < g.in_w; ++xx) {
          float s = 0.0f;
          for (int p = 0; p < P; ++p) {
            const int i = yy - (p / g.out_w()) * g.stride_h + g.pad_h, j = xx - (p % g.out_w()) * g.stride_w + g.pad_w;
            if (i >= 0 && i < g.kernel_h && j >= 0 && j < g.kernel_w)
              s += d[(std::size_t(n) * P + p) * K + (ch * g.kernel_h + i) * g.kernel_w + j];
          }
          const std::size_t e = std::size_t(n) * g.in_size() + (ch * g.in_h + yy) * g.in_w + xx;
          const float lo = xq.params.is_unsigned ? 0.0f : -xq.params.mx;
          dx[e] = (cfg.ste == Ste::clipped && (x.v[e] > xq.params.mx || x.v[e] < lo)) ? 0.0f : s;
        }
  expect_bits_equal(got.dx.v, dx, "dX " + tag);

  // dW: per sample (plan of P, partial results summed n ascending) or whole batch (plan of N*P).
  const int L = mapping == ConvMapping::whole_batch ? N * P : P;
  const HadamardPlan hl = plan_hadamard(L, cfg.hadamard);
  const int Lp = hl.padded_length;
  std::vector<float> xh, g2(std::size_t(groups) * O * Lp, 0.0f);
  for (int s = 0; s < groups; ++s) {
    const auto part = Naive::block_hadamard_dim0(nv.columns(xq.q, s * (N / groups), (s + 1) * (N / groups)), L, K, Lp,
                                                 hl.block);
    xh.insert(xh.end(), part.begin(), part.end());
    for (int o = 0; o < O; ++o)
      for (int l = 0; l < L; ++l) {
        const int n = s * (N / groups) + l / P, p = l % P;
        g2[(std::size_t(s) * O + o) * Lp + l] = gr.at(n, o * P + p);
      }
  }
  for (int s = 0; s < groups * O; ++s) fwht_f32(std::span(g2).subspan(std::size_t(s) * Lp, Lp), hl.block);
  std::vector<float> dw(std::size_t(O) * K, 0.0f);
  for (int s = 0; s < groups; ++s) {
    const auto xhq = nv.q(xh, std::size_t(s) * Lp * K, std::size_t(Lp) * K, QuantRole::bwd_x_dw);
    const auto g2q = nv.q(g2, std::size_t(s) * O * Lp, std::size_t(O) * Lp, QuantRole::bwd_g_dw);
    const auto acc = nv.mm(g2q, QuantRole::bwd_g_dw, xhq, QuantRole::bwd_x_dw, O, K, Lp, GemmRole::bwd_dw);
    for (std::size_t i = 0; i < acc.size(); ++i)
      dw[i] = dw[i] + float(acc[i]) * g2q.params.scale * xhq.params.scale * xq.params.scale * (1.0f / float(hl.block));
  }
  expect_bits_equal(got.dw.v, dw, "dW " + tag);
  EXPECT_EQ(got.stats[int(GemmRole::bwd_dw)].products, std::uint64_t(groups) * O * K * Lp) << tag;

  std::vector<float> db(std::size_t(O), 0.0f);
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < O; ++o)
      for (int p = 0; p < P; ++p) db[o] += gr.at(n, o * P + p);
  expect_bits_equal(got.db, db, "db " + tag);
}

TEST(HdqtConv, PaperPresetMatchesNaiveComposition) {
  for (ConvMapping m : {ConvMapping::per_sample, ConvMapping::whole_batch}) {
    // P = 6 x 5 = 30 (block 2), C_out = 4; N*P = 90 (block 2).
    check_against_naive(hdqt_preset("paper"), m, geometry(3, 6, 5, 4, 3, 3, 1, 1), 3, true);
    // stride 2: P = 4 x 4 = 16 (block 16), C_out = 6 (block 2), signed input.
    check_against_naive(hdqt_preset("paper"), m, geometry(2, 8, 8, 6, 3, 3, 2, 1), 4, false);
  }
}

TEST(HdqtConv, NpuPresetMatchesNaiveComposition) {
  for (ConvMapping m : {ConvMapping::per_sample, ConvMapping::whole_batch}) {
    HdqtConfig cfg = hdqt_preset("npu");  // blocks of 32 with padding
    check_against_naive(cfg, m, geometry(3, 6, 5, 4, 3, 3, 1, 1), 3, true);
    cfg.hadamard.max_block = 4;  // odd sizes padded: C_out 5 -> 8, P = 3 x 3 = 9 -> 12, N*P = 27 -> 28
    check_against_naive(cfg, m, geometry(2, 5, 6, 5, 3, 2, 2, 0), 3, false);
  }
}

TEST(HdqtConv, LuqPresetMatchesNaiveComposition) {
  // luq: per_sample, no transform, 8-bit LUQ gradient operands.
  check_against_naive(hdqt_preset("luq"), ConvMapping::per_sample, geometry(3, 6, 5, 4, 3, 3, 1, 1), 3, true);
}

// The mapping changes only the backward; on this data it changes dX and dW.
TEST(HdqtConv, MappingsShareTheForwardAndDifferInTheBackward) {
  const ConvGeometry g = geometry(3, 6, 6, 4, 3, 3, 1, 1);
  const int N = 4;
  const Matrix x = random_matrix(N, g.in_size(), 11, 1.0f, true), w = random_matrix(4, g.patch(), 12, 0.3f);
  Matrix gr = random_matrix(N, g.out_size(), 13, 0.01f);
  for (float& v : gr.row(2)) v *= 1e-2f;
  HdqtConfig a = hdqt_preset("paper"), b = a;
  b.conv_mapping = ConvMapping::whole_batch;
  const HdqtStepContext ctx{.seed = 5, .step = 1, .layer = 0};
  const LayerResult ra = run_layer(g, x, w, {}, gr, a, ctx), rb = run_layer(g, x, w, {}, gr, b, ctx);
  expect_bits_equal(ra.y.v, rb.y.v, "Y");
  EXPECT_TRUE(ra.db.empty());  // no bias
  EXPECT_NE(std::memcmp(ra.dw.v.data(), rb.dw.v.data(), ra.dw.v.size() * 4), 0);
  EXPECT_NE(std::memcmp(ra.dx.v.data(), rb.dx.v.data(), ra.dx.v.size() * 4), 0);
}

// A 1x1 kernel on 1x1 images is a linear layer (P = 1): in whole_batch every
// tensor of §9 has the shape and random-bit indices of its §6 counterpart, so
// the bits must equal hdqt_linear's.
TEST(HdqtConv, OneByOneWholeBatchIsTheLinearLayer) {
  for (const char* preset : {"paper", "npu"}) {
    HdqtConfig cfg = hdqt_preset(preset);
    cfg.conv_mapping = ConvMapping::whole_batch;
    const int N = 12, I = 10, O = 6;
    const ConvGeometry g = geometry(I, 1, 1, O, 1, 1, 1, 0);
    const Matrix x = random_matrix(N, I, 21, 3.0f), w = random_matrix(O, I, 22, 0.5f), gr = random_matrix(N, O, 23, 0.1f);
    const std::vector<float> bias(std::size_t(O), 0.125f);
    const HdqtStepContext ctx{.seed = 3, .step = 4, .layer = 1};
    const LayerResult conv = run_layer(g, x, w, bias, gr, cfg, ctx);
    LayerResult lin;
    HdqtLayerState st;
    HdqtContext hc;
    hdqt_linear_forward(hc, x, w, bias, cfg, ctx, lin.y, st, lin.stats);
    hdqt_linear_backward(hc, gr, st, cfg, ctx, &lin.dx, lin.dw, lin.db, lin.stats);
    expect_bits_equal(conv.y.v, lin.y.v, std::string("Y ") + preset);
    expect_bits_equal(conv.dx.v, lin.dx.v, std::string("dX ") + preset);
    expect_bits_equal(conv.dw.v, lin.dw.v, std::string("dW ") + preset);
    expect_bits_equal(conv.db, lin.db, std::string("db ") + preset);
    EXPECT_EQ(conv.stats, lin.stats) << preset;
  }
}

// ---------------------------------------------------------------------------
// 3. Fine settings against the float convolution.

// With 8-bit operands, exact accumulation and nearest rounding the HDQT
// gradients point where the float ones do: each operand's relative
// quantization error is about 2^-8 of its max, so cosines above 0.99 and
// norms within 5% leave a wide margin (the linear layer's test uses the same
// bounds); a transposed index, a wrong col2im or a lost scale gives a cosine
// near 0 or a wrong norm.
TEST(HdqtConv, FineSettingsTrackFloatGradients) {
  for (ConvMapping m : {ConvMapping::per_sample, ConvMapping::whole_batch}) {
    HdqtConfig cfg = hdqt_preset("npu");
    cfg.conv_mapping = m;
    for (auto& q : cfg.quant) q.bits = 8, q.rounding = Rounding::nearest;
    for (auto& a : cfg.gemm) a.mode = AccMode::exact;
    const ConvGeometry g = geometry(4, 8, 8, 8, 3, 3, 1, 1);
    const int N = 6;
    const Matrix x = random_matrix(N, g.in_size(), 31, 2.0f), w = random_matrix(8, g.patch(), 32, 0.3f);
    const Matrix gr = random_matrix(N, g.out_size(), 33, 0.1f);
    const LayerResult r = run_layer(g, x, w, {}, gr, cfg, HdqtStepContext{});

    auto widen = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    const std::vector<double> xd = widen(x.v), wd = widen(w.v), gd = widen(gr.v);
    std::vector<double> y(r.y.v.size()), dx(x.v.size()), dw(w.v.size());
    golden::conv2d_forward<double>(g, N, xd, wd, {}, y);
    golden::conv2d_backward<double>(g, N, xd, wd, gd, dx, dw, {});
    for (auto [what, got, want] : {std::tuple{"Y", &r.y.v, &y}, {"dX", &r.dx.v, &dx}, {"dW", &r.dw.v, &dw}}) {
      double ab = 0, aa = 0, bb = 0;
      for (std::size_t i = 0; i < got->size(); ++i)
        ab += (*got)[i] * (*want)[i], aa += double((*got)[i]) * (*got)[i], bb += (*want)[i] * (*want)[i];
      EXPECT_GT(ab / std::sqrt(aa * bb), 0.99) << what << " " << name(m);
      EXPECT_NEAR(std::sqrt(aa / bb), 1.0, 0.05) << what << " " << name(m);
    }
  }
}

// ---------------------------------------------------------------------------
// 4. im2col / col2im, shapes and knobs.

TEST(HdqtConv, Im2colFollowsTheTapFormulaAndCol2imIsItsAdjoint) {
  for (const ConvGeometry& g : {geometry(2, 5, 4, 1, 3, 3, 1, 1), geometry(3, 7, 6, 1, 3, 2, 2, 2)}) {
    const int P = g.positions(), K = g.patch();
    const auto x = random_ints(std::size_t(g.in_size()), 41, -9, 9);
    std::vector<std::int16_t> cols(std::size_t(P) * K);
    im2col(g, x, cols);
    for (int p = 0; p < P; ++p)
      for (int c = 0; c < g.in_channels; ++c)
        for (int i = 0; i < g.kernel_h; ++i)
          for (int j = 0; j < g.kernel_w; ++j) {
            const int cell = tap_cell(g, c, p / g.out_w(), p % g.out_w(), i, j);
            ASSERT_EQ(cols[std::size_t(p) * K + (c * g.kernel_h + i) * g.kernel_w + j], cell < 0 ? 0 : x[cell]);
          }
    // <im2col(x), D> = <x, col2im(D)>, exact in f32 for these small integers.
    const auto dint = random_ints(cols.size(), 42, -9, 9);
    const std::vector<float> d(dint.begin(), dint.end());
    std::vector<float> back(x.size());
    col2im(g, d, back);
    double lhs = 0, rhs = 0;
    for (std::size_t i = 0; i < cols.size(); ++i) lhs += double(cols[i]) * d[i];
    for (std::size_t i = 0; i < x.size(); ++i) rhs += double(x[i]) * back[i];
    EXPECT_EQ(lhs, rhs);
  }
}

// The centre of a 3x3 image under a 3x3 "same" kernel is read by all 9
// positions; col2im must add their terms in ascending p (§9). With terms of
// +-2^25 (whose f32 ulp is 4) beside ones, the sum depends on the order: a 1
// added to 2^25 is lost, a 1 added to 0 is not. The expected value is the
// sequential f32 sum in ascending p, and the test first checks that the
// reverse order gives another value, so a wrong order cannot pass.
TEST(HdqtConv, Col2imAddsInAscendingPositionOrder) {
  const ConvGeometry g = geometry(1, 3, 3, 1, 3, 3, 1, 1);
  std::vector<float> d(9 * 9, 0.0f);
  // Ascending: 1 + 1 + 1 = 3, 3 + 2^25 rounds to 2^25 + 4, minus 2^25 is 4.
  // Descending: -2^25 + 2^25 = 0, then 3.
  const float terms[9] = {1.0f, 1.0f, 1.0f, 0x1p25f, -0x1p25f, 0.0f, 0.0f, 0.0f, 0.0f};
  for (int p = 0; p < 9; ++p) {
    const int i = 1 - (p / 3) + 1, j = 1 - (p % 3) + 1;  // the tap of position p on cell (1, 1)
    d[std::size_t(p) * 9 + i * 3 + j] = terms[p];
  }
  std::vector<float> x(9);
  col2im(g, d, x);
  float ascending = 0.0f, descending = 0.0f;
  for (int p = 0; p < 9; ++p) ascending += terms[p], descending += terms[8 - p];
  ASSERT_NE(ascending, descending);  // the order matters for these terms
  EXPECT_EQ(x[4], 4.0f);
}

TEST(HdqtConv, ShapesAndKnobsAreChecked) {
  EXPECT_EQ(hdqt_preset("paper").conv_mapping, ConvMapping::per_sample);
  EXPECT_EQ(hdqt_preset("luq").conv_mapping, ConvMapping::per_sample);
  EXPECT_EQ(hdqt_preset("npu").conv_mapping, ConvMapping::whole_batch);
  EXPECT_EQ(parse_conv_mapping("whole_batch"), ConvMapping::whole_batch);
  EXPECT_EQ(name(parse_conv_mapping("per_sample")), "per_sample");
  EXPECT_THROW(parse_conv_mapping("per_batch"), ConfigError);

  ConvGeometry g = geometry(2, 4, 4, 3, 5, 5, 1, 0);  // a 5x5 kernel on a 4x4 input
  EXPECT_THROW(validate(g), ConfigError);
  g.pad_h = g.pad_w = 1;
  EXPECT_NO_THROW(validate(g));
  g.stride_w = 0;
  try {
    validate(g);
    FAIL() << "stride 0 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("conv.stride_w"), std::string::npos) << e.what();
  }

  const ConvGeometry ok = geometry(2, 4, 4, 3, 3, 3, 1, 1);
  const HdqtConfig cfg = hdqt_preset("npu");
  Matrix y;
  HdqtConvState st;
  HdqtLayerStats stats{};
  const Matrix x(2, ok.in_size()), w(3, ok.patch());
  EXPECT_THROW(hdqt_conv_forward(gc1, cs, ok, x, Matrix(3, ok.patch() + 1), {}, cfg, {}, y, st, stats), ConfigError);
  EXPECT_THROW(hdqt_conv_forward(gc1, cs, ok, Matrix(2, ok.in_size() - 1), w, {}, cfg, {}, y, st, stats), ConfigError);
  const std::vector<float> two_biases(2, 0.0f);
  EXPECT_THROW(hdqt_conv_forward(gc1, cs, ok, x, w, two_biases, cfg, {}, y, st, stats), ConfigError);
  hdqt_conv_forward(gc1, cs, ok, x, w, {}, cfg, {}, y, st, stats);
  Matrix dw;
  std::vector<float> db;
  EXPECT_THROW(hdqt_conv_backward(gc1, cs, Matrix(2, ok.out_size() + 1), st, cfg, {}, nullptr, dw, db, stats), ConfigError);
}

// A NaN gradient in one sample's slice names that slice (§9: layer<l>.<role>[n]).
TEST(HdqtConv, NonFiniteGradientNamesTheSample) {
  const ConvGeometry g = geometry(1, 4, 4, 2, 3, 3, 1, 1);
  const Matrix x = random_matrix(3, g.in_size(), 51, 1.0f), w = random_matrix(2, g.patch(), 52, 0.5f);
  Matrix gr = random_matrix(3, g.out_size(), 53, 0.1f);
  gr.at(2, 5) = std::nanf("");
  const HdqtConfig cfg = hdqt_preset("paper");
  Matrix y, dx, dw;
  std::vector<float> db;
  HdqtConvState st;
  HdqtLayerStats stats{};
  const HdqtStepContext ctx{.seed = 1, .step = 0, .layer = 4};
  hdqt_conv_forward(gc1, cs, g, x, w, {}, cfg, ctx, y, st, stats);
  try {
    hdqt_conv_backward(gc1, cs, gr, st, cfg, ctx, &dx, dw, db, stats);
    FAIL() << "NaN gradient accepted";
  } catch (const NumericError& e) {
    EXPECT_NE(std::string(e.what()).find("layer4.bwd_g_dx[2]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace hdq
