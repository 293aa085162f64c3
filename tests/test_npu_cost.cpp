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
    GemmContext ctx;
    gemm(ctx, {M, N, K}, {a, 4, false}, {b, 4, false}, acc, ref, KernelPath::reference);
    EXPECT_EQ(c, ref);
  }
}

// Everything about one training step of a small MLP counted from the shapes
// (every tensor fits the SRAM in one chunk, so each operation reads its
// inputs from DRAM once and writes its outputs once), times the table.
TEST(NpuCost, StepEnergyIsCountsFromLayerShapesTimesTheTable) {
  const HdqtConfig h = hdqt_preset("npu");
  const NpuConfig cfg = default_npu_config();
  const EnergyTable& e = cfg.energy;
  const std::vector<int> widths{20, 12, 6};
  const int L = 2, B = 8, classes = 6;
  MlpParams p = init_mlp({widths}, 4);
  Matrix x(B, widths[0]);
  for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] = float(int(i % 13) - 6) / 7.0f;
  std::vector<int> y{0, 1, 2, 3, 0, 1, 2, 3};
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
  ASSERT_TRUE(npu.cost_per_step());
  EXPECT_EQ(npu.cost_per_step()->cycles, double(t.cycles()));
}

}  // namespace
}  // namespace hdq::npu
