// Acceptance 2: the MAC array's cycles equal the closed-form output-stationary
// count, and a training step's energy equals event counts from the layer
// shapes times the energy table, both counted here independently of sim/cost.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "models/hadamard/hadamard.h"
#include "sim/blocks/dma.h"
#include "sim/blocks/mac_array.h"
#include "sim/blocks/quantizer_unit.h"
#include "sim/npu.h"
#include "sim/npu_engine.h"

namespace hdq::npu {
namespace {

// A job that DMAs A, B and the operand records into SRAM, runs one GEMM on the
// MAC array and DMAs C back; returns C and fills the ledger.
std::vector<std::int32_t> run_gemm(const NpuConfig& cfg, int M, int N, int K, const std::vector<std::int16_t>& a,
                                   const std::vector<std::int16_t>& b, const AccumulatorConfig& acc, Ledger& ledger) {
  std::vector<std::uint8_t> pa(M * packed_pitch(K, 4)), pb(K * packed_pitch(N, 4));
  pack_rows(a, M, K, 4, pa);
  pack_rows(b, K, N, 4, pb);
  const QuantRecord rec;  // signed operands
  const std::uint64_t a_at = 4096, b_at = a_at + pa.size() + 64, r_at = 64, c_at = 1 << 20;
  std::vector<std::int32_t> c(std::size_t(M) * N);
  Job job;
  job.loads = {{a_at, pa}, {b_at, pb}, {r_at, {reinterpret_cast<const std::uint8_t*>(&rec), sizeof rec}}};
  auto dma = [&](Space ss, std::uint64_t src, Space ds, std::uint64_t dst, std::uint64_t bytes) {
    DmaDescriptor d;
    d.src = src, d.dst = dst, d.src_pitch = d.dst_pitch = bytes, d.rows = 1, d.row_bytes = std::uint32_t(bytes);
    d.src_space = ss, d.dst_space = ds;
    job.commands.push_back(Command::make(Unit::dma, Phase::forward, 0, kDmaCopy, d));
  };
  auto align = [](std::uint64_t v) { return std::uint32_t((v + 63) / 64 * 64); };  // 32-bit C words need alignment
  const std::uint32_t sa = 1024, sb = align(sa + pa.size()), sc = align(sb + pb.size());
  dma(Space::dram, r_at, Space::sram, 0, sizeof rec);
  dma(Space::dram, a_at, Space::sram, sa, pa.size());
  dma(Space::dram, b_at, Space::sram, sb, pb.size());
  MacDescriptor m;
  m.a = sa, m.b = sb, m.c = sc, m.a_record = m.b_record = 0, m.stats = 512, m.init_stats = 1;
  m.m = std::uint32_t(M), m.n = std::uint32_t(N), m.k = std::uint32_t(K);
  m.set_accumulator(acc);
  job.commands.push_back(Command::make(Unit::mac_array, Phase::forward, 0, kMacGemm, m));
  dma(Space::sram, sc, Space::dram, c_at, 4 * c.size());
  for (std::size_t i = 0; i < job.commands.size(); ++i) job.commands[i].header.id = std::uint32_t(i);
  job.queue_addr = c_at + 4 * c.size();
  job.dram_bytes = job.queue_addr + job.commands.size() * kCommandBytes;
  job.reads = {{c_at, {reinterpret_cast<std::uint8_t*>(c.data()), 4 * c.size()}}};
  {
    const auto lock = Npu::instance().acquire();
    Npu::instance().run(job, cfg, ledger, nullptr, nullptr);
  }
  EXPECT_FALSE(job.failed) << job.error;
  return c;
}

// Random GEMM shapes (sizes around powers of two, +-1) on random array sizes:
// the MAC array's busy cycles are, per output tile (fold) of R x C outputs,
// fill (R + C - 2: the skewed wavefront reaches the far corner PE) + K
// (streaming) + drain (R: the results shift out of the rows) -- SCALE-Sim's
// 2R + C + T - 2 per fold -- summed over the tiles; and C equals the numeric
// core's GEMM.
TEST(NpuCost, MacArrayCyclesAreTheOutputStationaryClosedForm) {
  std::mt19937 g(11);
  std::uniform_int_distribution<int> val(-7, 7), arr(1, 24), pick(0, 6);
  const int sizes[] = {1, 7, 8, 9, 31, 32, 33};
  for (int trial = 0; trial < 12; ++trial) {
    const int R = arr(g), C = arr(g), M = sizes[pick(g)] + trial, N = sizes[pick(g)], K = sizes[pick(g)] * 3;
    const NpuConfig cfg = default_npu_config({fmt::format("mac_array.rows={}", R), fmt::format("mac_array.cols={}", C)});
    std::vector<std::int16_t> a(std::size_t(M) * K), b(std::size_t(K) * N);
    for (auto& v : a) v = std::int16_t(val(g));
    for (auto& v : b) v = std::int16_t(val(g));
    AccumulatorConfig acc;  // saturate, W = 8, t = 32
    Ledger ledger;
    const std::vector<std::int32_t> c = run_gemm(cfg, M, N, K, a, b, acc, ledger);

    std::uint64_t want = 0;
    for (int i0 = 0; i0 < M; i0 += R)
      for (int j0 = 0; j0 < N; j0 += C) want += std::uint64_t((R + C - 2) + K + R);
    const CostCell t = ledger.total();
    EXPECT_EQ(t.unit_cycles[int(Unit::mac_array)], want) << M << "x" << N << "x" << K << " on " << R << "x" << C;
    EXPECT_EQ(t.macs, std::uint64_t(M) * N * K);
    std::vector<std::int32_t> ref(c.size());
    gemm({M, N, K}, {a, 4, false}, {b, 4, false}, acc, ref, KernelPath::reference);
    EXPECT_EQ(c, ref);
  }
}

// Ragged tiles and folds: K, M and N that are not multiples of t, R and C, so
// each count below is a ceiling that a floor would shrink. Per case, by hand
// (docs/npu.md "Time" and "Energy", docs/contract.md §5 tile_results):
//   folds = ceil(M/R) ceil(N/C); MAC-array cycles = folds (2R + C + K - 2);
//   MACs = M N K; tile results = M N ceil(K/t') (t' = K for t = 0 or t > K);
//   energy = MACs (mul(4,4) + add(W, or Wo for exact)) + tile results add(Wo).
//  a) 21 x 19 x 70 on 8 x 5, t = 32: folds 3 * 4 = 12 (21 = 2*8 + 5,
//     19 = 3*5 + 4), cycles 12 * (16 + 5 + 70 - 2) = 12 * 89 = 1068,
//     MACs 27930, tiles 21 * 19 * 3 = 1197 (70 = 2*32 + 6: a floor gives 798);
//  b) 17 x 33 x 45 on 16 x 16, t = 0 (one tile): folds 2 * 3 = 6, cycles
//     6 * (32 + 16 + 45 - 2) = 6 * 91 = 546, MACs 25245, tiles 17 * 33 = 561;
//  c) 9 x 7 x 20 on 4 x 3, t = 32 > K (one short tile): folds 3 * 3 = 9,
//     cycles 9 * (8 + 3 + 20 - 2) = 261, MACs 1260, tiles 63;
//  d) 5 x 6 x 70 on 16 x 16, t = 3, exact (adds at Wo = 32): folds 1,
//     cycles 32 + 16 + 70 - 2 = 116, MACs 2100, tiles 30 * 24 = 720
//     (70 = 23*3 + 1).
TEST(NpuCost, RaggedTilesAndFoldsCountCeilings) {
  struct Case {
    int M, N, K, R, C, tile;
    AccMode mode;
    std::uint64_t cycles, macs, tiles;
  };
  const Case cases[] = {{21, 19, 70, 8, 5, 32, AccMode::saturate, 1068, 27930, 1197},
                        {17, 33, 45, 16, 16, 0, AccMode::clamp_tile, 546, 25245, 561},
                        {9, 7, 20, 4, 3, 32, AccMode::wrap, 261, 1260, 63},
                        {5, 6, 70, 16, 16, 3, AccMode::exact, 116, 2100, 720}};
  std::mt19937 g(5);
  std::uniform_int_distribution<int> val(-7, 7);
  for (const Case& k : cases) {
    const std::string what = fmt::format("{}x{}x{} on {}x{}, t = {}", k.M, k.N, k.K, k.R, k.C, k.tile);
    const NpuConfig cfg =
        default_npu_config({fmt::format("mac_array.rows={}", k.R), fmt::format("mac_array.cols={}", k.C)});
    std::vector<std::int16_t> a(std::size_t(k.M) * k.K), b(std::size_t(k.K) * k.N);
    for (auto& v : a) v = std::int16_t(val(g));
    for (auto& v : b) v = std::int16_t(val(g));
    AccumulatorConfig acc;
    acc.tile = k.tile;
    acc.mode = k.mode;
    Ledger ledger;
    const std::vector<std::int32_t> c = run_gemm(cfg, k.M, k.N, k.K, a, b, acc, ledger);
    const CostCell t = ledger.total();
    EXPECT_EQ(t.unit_cycles[int(Unit::mac_array)], k.cycles) << what;
    EXPECT_EQ(t.macs, k.macs) << what;
    const EnergyTable& e = cfg.energy;
    const int add_bits = k.mode == AccMode::exact ? acc.outer_bits : acc.acc_bits;
    const double want = double(k.macs) * (e.mul_pj(4, 4) + e.add_pj(add_bits)) + double(k.tiles) * e.add_pj(32);
    EXPECT_NEAR(t.energy_pj[int(EnergyKind::mac_array)], want, 1e-9 * want) << what;
    std::vector<std::int32_t> ref(c.size());
    const GemmStats st = gemm({k.M, k.N, k.K}, {a, 4, false}, {b, 4, false}, acc, ref, KernelPath::reference);
    EXPECT_EQ(st.tile_results, k.tiles) << what;
    EXPECT_EQ(c, ref) << what;
  }
}

// Everything about one training step of a small MLP counted from the shapes
// (every tensor fits the SRAM in one chunk, so each operation reads its
// inputs from DRAM once and writes its outputs once), times the table.
// `widths` ends in the 6 classes, of which the labels (r mod 4) make 4
// active. Returns the step's ledger total.
CostCell check_step_energy(const HdqtConfig& h, const std::vector<int>& widths, int B) {
  const NpuConfig cfg = default_npu_config();
  const EnergyTable& e = cfg.energy;
  const int L = int(widths.size()) - 1, classes = 6;
  MlpParams p = init_mlp({widths}, 4);
  Matrix x(B, widths[0]);
  for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] = float(int(i % 13) - 6) / 7.0f;
  std::vector<int> y(static_cast<std::size_t>(B));
  for (int r = 0; r < B; ++r) y[std::size_t(r)] = r % 4;
  const bool active[classes] = {true, true, true, true, false, false};
  NpuEngine npu(cfg, h, 5, {});
  MlpGrads grads;
  npu.gradients(p, x, y, active, 0, grads);
  const CostCell t = npu.train_costs().total();

  auto P = [&](double r, double c, QuantRole role) { return r * std::ceil(c * h.q(role).bits / 8.0); };  // packed bytes
  auto F = [](double r, double c) { return 4 * r * c; };                                                 // f32 bytes
  double mac = 0, quant = 0, had = 0, vec = 0, dram = 0, mac_cycles = 0;
  const int R = cfg.mac_array.rows, C = cfg.mac_array.cols;
  auto gemm_events = [&](double m, double n, double k, GemmRole role, QuantRole qa, QuantRole qb) {
    const AccumulatorConfig& a = h.acc(role);
    const double tile = a.tile == 0 || a.tile > k ? k : a.tile;
    const double tiles = m * n * std::ceil(k / tile);
    mac += m * n * k * (e.mul_pj(h.q(qa).bits, h.q(qb).bits) + e.add_pj(a.acc_bits)) + tiles * e.add_pj(a.outer_bits);
    mac_cycles += std::ceil(m / R) * std::ceil(n / C) * (2 * R + C + k - 2);
  };
  auto quantize = [&](double n, QuantRole role) {
    const QuantConfig& q = h.q(role);
    const bool sr = q.rounding == Rounding::stochastic;
    quant += 2 * n * e.f32_add() + e.f32_mul();                                // max-reduce, scale
    quant += n * ((sr ? 6 : 3) * e.f32_add() + e.f32_mul());                   // round
    if (sr) quant += n * q.sr_bits * e.random_bit();
  };
  auto fwht = [&](double n, int block) { had += n * std::log2(block) * e.hadamard_add(); };
  double records = 0;
  for (int l = 0; l < L; ++l) records += std::ceil(4.0 * widths[l + 1] / 16) * 16;
  records = std::ceil((L * (6 * 32 + 3 * 48) + 16 + records) / 64) * 64;

  for (int l = 0; l < L; ++l) {  // forward
    const double I = widths[l], O = widths[l + 1];
    quantize(B * I, QuantRole::fwd_x);
    quantize(O * I, QuantRole::fwd_w);
    gemm_events(B, O, I, GemmRole::fwd, QuantRole::fwd_x, QuantRole::fwd_w);
    vec += B * O * (2 * e.f32_mul() + e.f32_add() + (l + 1 < L ? e.f32_add() : 0));  // dequant, bias, ReLU
    const bool mask = l > 0;  // the npu preset's clipped STE, for layers with a dX
    dram += F(B, I) + P(B, I, QuantRole::fwd_x) + (mask ? B * std::ceil(I / 8) : 0);
    dram += F(O, I) + P(O, I, QuantRole::fwd_w);
    dram += P(O, I, QuantRole::fwd_w) + 4 * O + P(B, I, QuantRole::fwd_x) + F(B, O) * (l + 1 < L ? 2 : 1);
  }
  {  // softmax over the 4 active classes of 6
    const double a = 4.0 * B;
    vec += (5 * a + 3 * B + 4 * (2 * a + B)) * e.f32_add() + (2 * a + 1 + 4 * (2 * a + B)) * e.f32_mul();
    dram += 2 * F(B, classes) + 4 * B + classes;
  }
  for (int l = L - 1; l >= 0; --l) {
    const double I = widths[l], O = widths[l + 1];
    if (l > 0) {
      const HadamardPlan ho = plan_hadamard(int(O), h.hadamard);
      const double Op = ho.padded_length;
      fwht(Op * I, ho.block);
      quantize(Op * I, QuantRole::bwd_w_dx);
      fwht(B * Op, ho.block);
      quantize(B * Op, QuantRole::bwd_g_dx);
      gemm_events(B, I, Op, GemmRole::bwd_dx, QuantRole::bwd_g_dx, QuantRole::bwd_w_dx);
      vec += B * I * (4 * e.f32_mul() + e.f32_add());  // dequant, ReLU' (the clip mask is a select)
      dram += P(O, I, QuantRole::fwd_w) + F(Op, I) + F(Op, I) + P(Op, I, QuantRole::bwd_w_dx);
      dram += F(B, O) + F(B, Op) + F(B, Op) + P(B, Op, QuantRole::bwd_g_dx);
      dram += P(Op, I, QuantRole::bwd_w_dx) + P(B, Op, QuantRole::bwd_g_dx) + B * std::ceil(I / 8) + F(B, I) + F(B, I);
    }
    const HadamardPlan hb = plan_hadamard(B, h.hadamard);
    const double Bp = hb.padded_length;
    fwht(Bp * I, hb.block);
    quantize(Bp * I, QuantRole::bwd_x_dw);
    fwht(O * Bp, hb.block);
    quantize(O * Bp, QuantRole::bwd_g_dw);
    gemm_events(O, I, Bp, GemmRole::bwd_dw, QuantRole::bwd_g_dw, QuantRole::bwd_x_dw);
    vec += O * I * 4 * e.f32_mul() + B * O * e.f32_add();  // dequant; db column sums
    dram += P(B, I, QuantRole::fwd_x) + F(Bp, I) + F(Bp, I) + P(Bp, I, QuantRole::bwd_x_dw);
    dram += F(B, O) + F(O, Bp) + F(O, Bp) + P(O, Bp, QuantRole::bwd_g_dw);
    dram += P(Bp, I, QuantRole::bwd_x_dw) + P(O, Bp, QuantRole::bwd_g_dw) + F(O, I) + F(B, O);
    vec += (O * I + O) * 3 * (e.f32_add() + e.f32_mul());  // SGD
    dram += 4 * F(O, I) + 3 * 4 * O;  // first step: read w, g; write w, buf (b: g from SRAM)
  }
  dram += records + double(t.commands) * kCommandBytes;  // record area out; descriptor fetches

  const auto& pj = t.energy_pj;
  EXPECT_NEAR(pj[int(EnergyKind::mac_array)], mac, 1e-9 * mac);
  EXPECT_NEAR(pj[int(EnergyKind::quantizer)], quant, 1e-9 * quant);
  EXPECT_NEAR(pj[int(EnergyKind::hadamard)], had, 1e-9 * had);
  EXPECT_NEAR(pj[int(EnergyKind::vector)], vec, 1e-9 * vec);
  EXPECT_EQ(double(t.dram_bytes), dram);
  EXPECT_NEAR(pj[int(EnergyKind::dram)], dram * e.dram_byte(), 1e-9 * dram * e.dram_byte());
  EXPECT_NEAR(pj[int(EnergyKind::sram)], double(t.sram_bytes) * e.sram_byte(), 1e-6);
  EXPECT_NEAR(pj[int(EnergyKind::leakage)], double(t.cycles()) * e.leakage_pj_per_cycle, 1e-6);
  EXPECT_EQ(double(t.unit_cycles[int(Unit::mac_array)]), mac_cycles);
  EXPECT_NEAR(t.energy(), mac + quant + had + vec + dram * e.dram_byte() + double(t.sram_bytes) * e.sram_byte() +
                              double(t.cycles()) * e.leakage_pj_per_cycle,
              1e-9 * t.energy());
  // The engine's mean per step is the ledger's total for one step.
  EXPECT_TRUE(npu.cost_per_step());
  if (npu.cost_per_step()) {
    EXPECT_EQ(npu.cost_per_step()->cycles, double(t.cycles()));
  }
  return t;
}

// 20-12-6, batch 8, npu preset: contractions 20, 12 (< t = 32) and the
// padded 32 (= t); every fold a single partial one.
TEST(NpuCost, StepEnergyIsCountsFromLayerShapesTimesTheTable) { check_step_energy(hdqt_preset("npu"), {20, 12, 6}, 8); }

// Ragged everywhere: 45-37-6, batch 13, the npu preset with a Hadamard unit
// of 8 (pad) and backward tiles of 12. Contractions: forward 45 = 32 + 13
// and 37 = 32 + 5 (t = 32); dX of layer 1 over O' = 8 (6 padded, < t);
// dW over B' = 16 (13 padded) = 12 + 4. Folds on the 16 x 16 array:
// 13 x 37 (1 x 3), 37 x 45 (3 x 3), ... In all, MACs
// = 13*37*45 + 13*6*37 (forward) + 13*37*8 (dX, layer 1)
//   + 6*37*16 + 37*45*16 (dW) = 21645 + 2886 + 3848 + 3552 + 26640 = 58571.
TEST(NpuCost, StepEnergyWithRaggedTilesAndFolds) {
  HdqtConfig h = hdqt_preset("npu");
  h.hadamard.max_block = 8;
  h.acc(GemmRole::bwd_dx).tile = h.acc(GemmRole::bwd_dw).tile = 12;
  EXPECT_EQ(check_step_energy(h, {45, 37, 6}, 13).macs, 58571u);
}

}  // namespace
}  // namespace hdq::npu
