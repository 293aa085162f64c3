// Layer graphs on the NPU engine (issue 14 item 6; docs/npu.md "Layer
// graphs"): training steps and evaluations of convolutional networks
// bit-identical to the functional engine (loss, gradients, every parameter
// layer's output, overflow counters, weights after SGD, evaluation logits)
// over conv geometries of both strides and paddings and odd sizes, with a
// residual add, with the SRAM small enough that every operation is chunked
// (col2im by channel groups included); the separate passes of the other
// methods; the device's own update equals hdq::Sgd; DRAM reuse within a job
// lowers its footprint; what is not executed is refused naming the field.
#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "engines/functional_engine.h"
#include "models/nn/network.h"
#include "sim/blocks/hadamard_unit.h"
#include "sim/blocks/layer_ops.h"
#include "sim/host/step_program.h"
#include "sim/npu_engine.h"

namespace hdq::npu {
namespace {

struct ConvCase {
  const char* what;
  ImageShape input;
  int kernel, stride, pad;
  int batch;
  bool residual;  // a residual add after the second conv (two gradient contributions to one node)
};

// conv(4, k, s, p) relu [conv3x3(4, 1, 1) add relu] conv3x3(6, s, p) relu maxpool2 flatten linear(5)
std::shared_ptr<const Graph> make_graph(const ConvCase& c) {
  auto g = std::make_shared<Graph>(c.input);
  int t = g->conv(kNetworkInput, 4, c.kernel, c.stride, c.pad, true);
  t = g->relu(t);
  if (c.residual) {
    const int b = g->conv(t, 4, 3, 1, 1, false);
    t = g->relu(g->add(t, b));
  }
  t = g->conv(t, 6, 3, c.stride, c.pad, true);
  t = g->relu(t);
  t = g->max_pool(t, 2, 2);
  t = g->flatten(t);
  g->linear(t, 5);
  return g;
}

Matrix input(int batch, long long features, int salt) {
  Matrix x(batch, int(features));
  for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] = float(int((i * 7 + std::size_t(salt)) % 23) - 11) / 9.0f;
  return x;
}

// Four training steps on both engines from the same weights, each engine's
// weights updated by hdq::Sgd from its own gradients (BatchNorm's running
// statistics installed from them), then an evaluation.
void expect_bit_exact(const ConvCase& c, const HdqtConfig& cfg, const char* sram,
                      std::shared_ptr<const Graph> graph = nullptr) {
  const std::string what = std::string(c.what) + ", " + sram;
  const SgdConfig sgd{0.05f, 0.9f, 0.0f};
  FunctionalEngine functional(cfg, 7, 1);
  NpuEngine npu(default_npu_config({sram}), cfg, 7, sgd);
  MlpParams pf = init_graph(graph ? graph : make_graph(c), 3), pn = pf;
  Sgd sf(sgd), sn(sgd);
  const std::vector<int> y = [&] {
    std::vector<int> v;
    for (int i = 0; i < c.batch; ++i) v.push_back(i % 4);
    return v;
  }();
  const bool active[5] = {true, true, true, true, false};
  MlpGrads gf, gn;
  for (std::uint64_t step = 0; step < 4; ++step) {
    const Matrix x = input(c.batch, c.input.size(), int(step));
    const float lf = functional.gradients(pf, x, y, active, step, gf);
    const float ln = npu.gradients(pn, x, y, active, step, gn);
    const std::string at = what + ", step " + std::to_string(step);
    ASSERT_EQ(std::bit_cast<std::uint32_t>(ln), std::bit_cast<std::uint32_t>(lf)) << at;
    ASSERT_EQ(gn.w.size(), gf.w.size()) << at;
    for (std::size_t l = 0; l < gf.w.size(); ++l) {
      ASSERT_EQ(gn.w[l].v, gf.w[l].v) << at << " layer " << l;
      ASSERT_EQ(gn.b[l], gf.b[l]) << at << " layer " << l;
    }
    ASSERT_EQ(npu.last_layer_outputs().size(), functional.last_layer_outputs().size()) << at;
    for (std::size_t l = 0; l < functional.last_layer_outputs().size(); ++l)
      ASSERT_EQ(npu.last_layer_outputs()[l].v, functional.last_layer_outputs()[l].v) << at << " output " << l;
    sf.step(pf, gf);
    sn.step(pn, gn);
  }
  for (std::size_t l = 0; l < pf.w.size(); ++l) {
    EXPECT_EQ(pn.w[l].v, pf.w[l].v) << what << " layer " << l;
    EXPECT_EQ(pn.running[l], pf.running[l]) << what << " layer " << l;
  }
  for (std::size_t l = 0; l < pf.w.size(); ++l)
    for (int g = 0; g < kGemmRoles; ++g)
      EXPECT_EQ(npu.overflow_stats()->layers[l][g], functional.overflow_stats()->layers[l][g]) << what << " " << l << " " << g;
  Matrix of, on;
  const Matrix x = input(c.batch, c.input.size(), 99);
  functional.logits(pf, x, 4, of);
  npu.logits(pn, x, 4, on);
  EXPECT_EQ(on.v, of.v) << what;
  EXPECT_GT(npu.train_costs().total().cycles(), 0u) << what;
  EXPECT_GT(npu.eval_costs().total().cycles(), 0u) << what;
}

// Stride 1 and 2, padding 0 and 1, kernels 3 and 1, odd image sizes and
// batches (N*P padded to a power of two for the Hadamard transform along the
// positions), with the default SRAM and with 32 KiB, where every quantizer,
// transform, GEMM and layer operation runs in chunks.
const ConvCase kCases[] = {
    {"1x8x8 k3 s1 p1 N6", {1, 8, 8}, 3, 1, 1, 6, false},
    {"2x13x11 k3 s2 p0 N5", {2, 13, 11}, 3, 2, 0, 5, false},
    {"3x11x9 k3 s2 p1 N3", {3, 11, 9}, 3, 2, 1, 3, false},
    {"2x7x7 k1 s1 p0 N4 residual", {2, 7, 7}, 1, 1, 0, 4, true},
};

TEST(NpuConv, TrainingStepsEqualTheFunctionalEngine) {
  for (const ConvCase& c : kCases)
    for (const char* sram : {"sram.size_bytes=524288", "sram.size_bytes=32768"})
      expect_bit_exact(c, hdqt_preset("npu"), sram);
}

// The identity STE (no clip masks) and a Hadamard block smaller than the
// padded lengths (several blocks per transform).
TEST(NpuConv, KnobsAwayFromTheDefaultsEqualTheFunctionalEngine) {
  HdqtConfig cfg = hdqt_preset("npu");
  cfg.ste = Ste::identity;
  expect_bit_exact(kCases[1], cfg, "sram.size_bytes=524288");
  cfg = hdqt_preset("npu");
  cfg.hadamard.max_block = 4;
  expect_bit_exact(kCases[3], cfg, "sram.size_bytes=524288");
}

// The dW transforms of a conv layer with more positions than one column of
// G'' or X' fits in SRAM (docs/npu.md "Layer graphs"): they stream in chunks
// of whole Hadamard blocks along the positions, and the bits are the
// functional engine's. conv1x1(3 -> 2) keeps the dW GEMM small (K = 3: the
// packed X' is N*P x 2 bytes), so only the transforms need the new chunking;
// the second conv (N*36 positions) still transforms whole columns.
// conv1x1(2) relu conv3x3(3, s2, p1) relu maxpool2 flatten linear(5)
std::shared_ptr<const Graph> long_positions_graph(ImageShape in) {
  auto g = std::make_shared<Graph>(in);
  int t = g->conv(kNetworkInput, 2, 1, 1, 0, true);
  t = g->relu(t);
  t = g->conv(t, 3, 3, 2, 1, true);
  t = g->relu(t);
  t = g->max_pool(t, 2, 2);
  t = g->flatten(t);
  g->linear(t, 5);
  return g;
}

// The commands of one training step's job (labels n % 4, the first four
// of five classes active).
std::vector<Command> step_commands(const ConvCase& c, const HdqtConfig& cfg, const char* sram,
                                   std::shared_ptr<const Graph> graph) {
  const NpuConfig npu = default_npu_config({sram});
  StepSettings s;
  s.npu = &npu;
  s.hdqt = &cfg;
  s.seed = 7;
  const MlpParams p = init_graph(graph, 3);
  std::vector<int> y;
  for (int i = 0; i < c.batch; ++i) y.push_back(i % 4);
  const bool active[5] = {true, true, true, true, false};
  StepResults results;
  return build_graph_step(s, p, input(c.batch, c.input.size(), 0), y, active, 0, results).commands;
}

// Layer 0's kHadamardColsT and kHadamardColsInt commands in a training step's
// program (index 0: G'', 1: X'): their count, the sum of their transformed
// lengths (`padded`), and whether one transforms whole columns (padded ==
// the layer's Lp) rather than a slice of the positions.
struct DwTransforms {
  int commands[2] = {0, 0};
  std::uint64_t padded[2] = {0, 0};
  bool whole_columns[2] = {false, false};
};
DwTransforms dw_transforms(const ConvCase& c, const HdqtConfig& cfg, const char* sram, std::uint64_t lp) {
  DwTransforms t;
  for (const Command& cmd : step_commands(c, cfg, sram, long_positions_graph(c.input))) {
    if (cmd.header.unit != Unit::hadamard || cmd.header.layer != 0 || cmd.header.phase != Phase::backward_dw) continue;
    const int i = cmd.header.opcode == kHadamardColsT ? 0 : cmd.header.opcode == kHadamardColsInt ? 1 : -1;
    if (i < 0) continue;
    const HadamardDescriptor d = cmd.as<HadamardDescriptor>();
    ++t.commands[i];
    t.padded[i] += d.padded;
    t.whole_columns[i] = t.whole_columns[i] || d.padded == lp;
  }
  return t;
}

TEST(NpuConv, DwTransformsChunkedAlongThePositionsEqualTheFunctionalEngine) {
  // 3 x 15 x 13 images (195 positions); one column of G'' needs 4 x N*P
  // bytes of G plus 4 x Lp of its f32 transform (more than 16 KiB: 17284
  // bytes for N = 11 padded), and 8 columns of X' 32 x Lp f32 (more than
  // 32 KiB: 68 KiB).
  struct Case {
    ConvCase conv;
    bool pad;
    std::uint64_t lp;  // layer 0's transformed length
  };
  const Case cases[] = {
      // 11 x 195 = 2145 positions, padded to 2176 (the next multiple of the block, 32): the last chunk holds 31 zeros
      {{"3x15x13 k1 N11 padded", {3, 15, 13}, 1, 1, 0, 11, false}, true, 2176},
      // 12 x 195 = 2340 = 4 x 585 positions unpadded: block 4 (its largest power-of-two factor); G'' chunks of 8 positions (whole bytes of the packed G'')
      {{"3x15x13 k1 N12 block 4", {3, 15, 13}, 1, 1, 0, 12, false}, false, 2340},
      // 11 x 195 = 2145 (odd) unpadded: block 1, the transform is the identity
      {{"3x15x13 k1 N11 block 1", {3, 15, 13}, 1, 1, 0, 11, false}, false, 2145},
  };
  for (const Case& c : cases) {
    HdqtConfig cfg = hdqt_preset("npu");
    cfg.hadamard.pad = c.pad;
    // Not vacuous: at 16 KiB every layer-0 dW transform command works on a
    // slice of the positions, and the slices of each of the two passes
    // (max-reduce, rounding) tile Lp once. At 48 KiB G'' (2 columns, about 36 KiB
    // with their f32 transform and packed rows) and X' (3 columns, about 34 KiB)
    // each fit the arena: one command each, transformed once. (At 32 KiB a
    // column of G'' fits only the whole arena, not one of two slots, so
    // G'' too runs along the positions, double-buffered: the overlap rule,
    // docs/npu.md "More SRAM".)
    for (const bool small : {true, false}) {
      const char* sram = small ? "sram.size_bytes=16384" : "sram.size_bytes=49152";
      const std::string what = std::string(c.conv.what) + ", " + sram;
      const DwTransforms t = dw_transforms(c.conv, cfg, sram, c.lp);
      EXPECT_EQ(t.whole_columns[0], !small) << what;
      EXPECT_EQ(t.whole_columns[1], !small) << what;
      if (small) {
        for (int i = 0; i < 2; ++i) {
          EXPECT_GT(t.commands[i], 2) << what << " transform " << i;
          EXPECT_EQ(t.padded[i], 2 * c.lp) << what << " transform " << i;
        }
      } else {
        EXPECT_EQ(t.commands[0], 1) << what;
        EXPECT_EQ(t.commands[1], 1) << what;
      }
      expect_bit_exact(c.conv, cfg, sram, long_positions_graph(c.conv.input));
    }
  }
}

// The accumulate commands (K-chunks continuing C's outer accumulators,
// docs/npu.md "K-chunked GEMMs") of layer 0's dW GEMM in a training step.
int dw_k_chunks(const ConvCase& c, const HdqtConfig& cfg, const char* sram, std::shared_ptr<const Graph> graph) {
  int n = 0;
  for (const Command& cmd : step_commands(c, cfg, sram, graph))
    if (cmd.header.unit == Unit::mac_array && cmd.header.layer == 0 && cmd.header.phase == Phase::backward_dw &&
        cmd.as<MacDescriptor>().accumulate)
      ++n;
  return n;
}

// A conv dW GEMM whose contraction (the N*P positions) only fits SRAM in
// K-chunks: conv3x3(8 -> 4) on 8 x 16 x 16 images, batch 16, so dW is
// 4 x 72 x 4096 and B = X'q alone is 4096 x 36 bytes (144 KiB), beyond
// 32 KiB; its Hadamard transforms stream along the positions too. The same
// bits as the functional engine (gradients, outputs, weights, every GEMM's
// statistics) with the outer accumulator at 32 bits (no outer clamp: the
// chunks add) and at 10 bits (the clamp fires and the MAC array continues
// the sum from the previous chunk's O). Not vacuous: at 32 KiB layer 0's dW
// runs accumulate commands because whole K does not fit; at the default
// SRAM it would, but B's panel (144 KiB, streamed) would then load before
// any MAC work, so the overlap rule (docs/npu.md "More SRAM") runs it in
// K-chunks too: a K-chunk moves 4 x 4 bits of A and 72 x 4 bits of B per
// unit of K, 38 bytes, so all of K is 155648 bytes and the rule's chunk
// count sqrt(155648 / kOverlapBytes) = sqrt(4.75) rounds down to 2: chunks
// of 2048 (a multiple of the tile 32), one of them an accumulate command.
std::shared_ptr<const Graph> dw_k_chunks_graph(const ImageShape& in) {
  auto g = std::make_shared<Graph>(in);
  int t = g->conv(kNetworkInput, 4, 3, 1, 1, true);
  t = g->relu(t);
  t = g->global_avg_pool(t);
  g->linear(t, 5);
  return g;
}
TEST(NpuConv, DwGemmInKChunksEqualsTheFunctionalEngine) {
  const ConvCase c{"8x16x16 k3 N16", {8, 16, 16}, 3, 1, 1, 16, false};
  const std::shared_ptr<const Graph> g = dw_k_chunks_graph(c.input);
  for (const int outer_bits : {32, 10}) {
    HdqtConfig cfg = hdqt_preset("npu");
    cfg.acc(GemmRole::bwd_dw).outer_bits = outer_bits;
    {  // at 10 bits the functional engine's dW GEMM does clamp outer sums (32: never)
      FunctionalEngine functional(cfg, 7, 1);
      MlpParams p = init_graph(g, 3);
      MlpGrads grads;
      const std::vector<int> y(std::size_t(c.batch), 1);
      const bool active[5] = {true, true, true, true, false};
      functional.gradients(p, input(c.batch, c.input.size(), 0), y, active, 0, grads);
      const std::uint64_t clamps = functional.overflow_stats()->layers[0][int(GemmRole::bwd_dw)].outer_overflows;
      if (outer_bits == 10) EXPECT_GT(clamps, 0u);
      else EXPECT_EQ(clamps, 0u);
    }
    EXPECT_GT(dw_k_chunks(c, cfg, "sram.size_bytes=32768", g), 0) << outer_bits;
    EXPECT_EQ(dw_k_chunks(c, cfg, "sram.size_bytes=524288", g), 1) << outer_bits;
    for (const char* sram : {"sram.size_bytes=32768", "sram.size_bytes=524288"}) expect_bit_exact(c, cfg, sram, g);
  }
}

// More SRAM keeps streamed operations overlapped (docs/npu.md "More SRAM";
// the old plans ran each of these in one chunk, loaded, worked on and stored
// in turn, and a steady-state step took 6% more cycles at 4 MiB than at 512
// KiB, 392882 against 370977; now 322792 against 321251).
// Layer 0 of the graph above at 4 MiB, where all of G'' (4 columns of 4096
// f32: 64 KiB of G, 64 KiB of f32 transform, 8 KiB packed, 136 KiB in all)
// and all of X' (72 columns of about 20 KiB) fit the arena: each transform
// runs in two chunks that both stay in the slots (the rule's sqrt(136 KiB /
// 32 KiB) = 2 chunks, and at most two for a two-pass operation), so two
// Hadamard commands, one per chunk in the max-reduce pass, none in the
// rounding pass (transformed once, as one chunk would be); the dW GEMM runs
// in the same two K-chunks as at 512 KiB (one accumulate command); the bits
// are the functional engine's.
TEST(NpuConv, MoreSramKeepsStreamedOperationsOverlapped) {
  const ConvCase c{"8x16x16 k3 N16", {8, 16, 16}, 3, 1, 1, 16, false};
  const std::shared_ptr<const Graph> g = dw_k_chunks_graph(c.input);
  const HdqtConfig cfg = hdqt_preset("npu");
  const char* sram = "sram.size_bytes=4194304";
  int transforms[2] = {0, 0};
  for (const Command& cmd : step_commands(c, cfg, sram, g))
    if (cmd.header.unit == Unit::hadamard && cmd.header.layer == 0 && cmd.header.phase == Phase::backward_dw) {
      if (cmd.header.opcode == kHadamardColsT) ++transforms[0];
      if (cmd.header.opcode == kHadamardColsInt) ++transforms[1];
    }
  EXPECT_EQ(transforms[0], 2);
  EXPECT_EQ(transforms[1], 2);
  EXPECT_EQ(dw_k_chunks(c, cfg, sram, g), 1);
  expect_bit_exact(c, cfg, sram, g);
}

// ResNet layers: BatchNorm (batch statistics in training, running statistics
// in the evaluation), residual adds, option-A shortcuts and global average
// pooling, in the resnet20 preset on 1 x 8 x 8 images; average pooling in a
// graph of its own. With 64 KiB of SRAM the BatchNorm passes stream chunks
// of samples.
TEST(NpuConv, ResNetLayersEqualTheFunctionalEngine) {
  const ConvCase resnet{"resnet20 1x8x8 N4", {1, 8, 8}, 3, 1, 1, 4, false};
  for (const char* sram : {"sram.size_bytes=524288", "sram.size_bytes=65536"})
    expect_bit_exact(resnet, hdqt_preset("npu"), sram, network_preset("resnet20", {1, 8, 8}, 5));
  auto g = std::make_shared<Graph>(ImageShape{3, 9, 9});
  int t = g->conv(kNetworkInput, 4, 3, 1, 1, false);
  t = g->batchnorm(t);
  t = g->relu(t);
  t = g->avg_pool(t, 3, 2);
  t = g->shortcut(t, 8, 2);
  t = g->global_avg_pool(t);
  g->linear(t, 5);
  expect_bit_exact({"conv bn relu avgpool3/2 shortcut gap 3x9x9 N5", {3, 9, 9}, 3, 1, 1, 5, false}, hdqt_preset("npu"),
                   "sram.size_bytes=524288", g);
}

// The col2im commands of a training step's job and the fewest input
// channels one of them covers.
struct Col2imCommands {
  int count = 0, least_channels = 1 << 30;
};
Col2imCommands col2im_commands(const ConvCase& c, const HdqtConfig& cfg, const char* sram,
                               std::shared_ptr<const Graph> graph) {
  Col2imCommands r;
  for (const Command& cmd : step_commands(c, cfg, sram, graph))
    if (cmd.header.unit == Unit::vector && cmd.header.opcode == kLayerCol2im) {
      ++r.count;
      r.least_channels = std::min(r.least_channels, cmd.as<LayerDescriptor>().conv().in_channels);
    }
  return r;
}

// col2im by groups of channels (docs/npu.md "Layer graphs"), where one
// sample's f32 dX columns do not fit the arena, equals the functional engine
// (clipped STE: a mask slice per group; identity STE), and the job's col2im
// commands show the grouping (so the test cannot pass on the whole-sample path):
// - the second conv of make_graph on 4 x 16 x 16 (3x3, stride 1, pad 1:
//   P = 256, K = 36) has 256 * 36 * 4 = 36864 bytes of columns per sample,
//   more than the whole 32 KiB SRAM;
// - ResNet-32's stage-1 conv shape (16 -> 16 channels of 32 x 32, 3x3: P =
//   1024, K = 144, 576 KiB per sample) with the default 512 KiB SRAM.
TEST(NpuConv, Col2imByChannelGroupsEqualsTheFunctionalEngine) {
  const ConvCase small{"4x16x16 k3 s1 p1 N2 col2im by channel groups", {4, 16, 16}, 3, 1, 1, 2, false};
  for (const Ste ste : {Ste::clipped, Ste::identity}) {
    HdqtConfig cfg = hdqt_preset("npu");
    cfg.ste = ste;
    const Col2imCommands r = col2im_commands(small, cfg, "sram.size_bytes=32768", make_graph(small));
    EXPECT_GE(r.count, 4);  // at least 2 groups of each of the 2 samples (the first conv reads the input: no col2im)
    EXPECT_LT(r.least_channels, 4);
    expect_bit_exact(small, cfg, "sram.size_bytes=32768");
  }
  auto g = std::make_shared<Graph>(ImageShape{3, 32, 32});
  int t = g->conv(kNetworkInput, 16, 3, 1, 1, false);
  t = g->relu(t);
  t = g->conv(t, 16, 3, 1, 1, false);
  t = g->relu(t);
  t = g->global_avg_pool(t);
  g->linear(t, 5);
  const ConvCase stage1{"resnet32 stage-1 conv 16x32x32 N2", {3, 32, 32}, 3, 1, 1, 2, false};
  const Col2imCommands r = col2im_commands(stage1, hdqt_preset("npu"), "sram.size_bytes=524288", g);
  EXPECT_GE(r.count, 4);
  EXPECT_LT(r.least_channels, 16);
  expect_bit_exact(stage1, hdqt_preset("npu"), "sram.size_bytes=524288", g);
}

// DRAM reuse within a job (docs/npu.md "Layer graphs") on a ResNet-20 step
// (3 x 32 x 32, batch 8): every tensor at its own address would take
// Job::dram_bytes_without_reuse; with reuse, what the backward keeps (the
// stack of x-hats, masks, Xq and Wq), the parameters and momentum and the
// temporaries of about one layer are live at once. Measured 19.3 MB against
// 135.2 MB, a factor 7.0; the bound, a factor 4, leaves room for changes of
// placement and fails without reuse (a factor 1). The bits with reuse are
// the functional engine's: the tests above and the npu scenarios
// (syn-cnn-er-npu, syn-resnet20-er-npu, syn-resnet20-der-npu).
TEST(NpuConv, DramReuseLowersTheFootprint) {
  const HdqtConfig cfg = hdqt_preset("npu");
  const NpuConfig npu_cfg = default_npu_config();
  StepSettings s;
  s.npu = &npu_cfg;
  s.hdqt = &cfg;
  s.seed = 7;
  const MlpParams p = init_graph(network_preset("resnet20", {3, 32, 32}, 10), 3);
  const std::vector<int> y{0, 1, 2, 3, 4, 5, 6, 7};
  const bool active[10] = {true, true, true, true, true, true, true, true, true, true};
  StepResults res;
  const Job job = build_graph_step(s, p, input(8, 3 * 32 * 32, 0), y, active, 0, res);
  EXPECT_GT(job.dram_bytes, 0u);
  EXPECT_LT(job.dram_bytes * 4, job.dram_bytes_without_reuse)
      << job.dram_bytes << " bytes with reuse, " << job.dram_bytes_without_reuse << " without";
}

// The device's SGD update (fused into dW's write-back, and after db) equals
// hdq::Sgd bit for bit.
TEST(NpuConv, DeviceUpdateEqualsHostSgd) {
  const SgdConfig sgd{0.05f, 0.9f, 0.01f};
  NpuEngine npu(default_npu_config(), hdqt_preset("npu"), 7, sgd);
  npu.keep_device_params(true);
  MlpParams p = init_graph(make_graph(kCases[0]), 3);
  Sgd host(sgd);
  const std::vector<int> y{0, 1, 2, 3, 0, 1};
  const bool active[5] = {true, true, true, true, false};
  MlpGrads g;
  for (std::uint64_t step = 0; step < 2; ++step) {
    npu.gradients(p, input(6, 64, int(step)), y, active, step, g);
    host.step(p, g);
    for (std::size_t l = 0; l < p.w.size(); ++l) {
      EXPECT_EQ(npu.device_params().w[l].v, p.w[l].v) << "step " << step << " layer " << l;
      EXPECT_EQ(npu.device_params().b[l], p.b[l]) << "step " << step << " layer " << l;
    }
  }
}

std::string config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

// What the NPU does not lower is a ConfigError naming it, before anything runs.
TEST(NpuConv, RefusesWhatItDoesNotLower) {
  const std::vector<int> y{0, 1};
  const bool active[4] = {true, true, false, false};
  MlpGrads g;
  {  // the paper's per-sample mapping
    NpuEngine npu(default_npu_config(), hdqt_preset("paper"), 1, SgdConfig{});
    const MlpParams p = init_graph(network_preset("cnn-small", {1, 8, 8}, 4), 1);
    EXPECT_TRUE(config_error([&] { npu.gradients(p, Matrix(2, 64), y, active, 0, g); }).starts_with("conv_mapping: "));
  }
  {  // a backward needs a training forward with batch statistics
    NpuEngine npu(default_npu_config(), hdqt_preset("npu"), 1, SgdConfig{});
    const MlpParams p = init_graph(network_preset("resnet20", {1, 8, 8}, 4), 1);
    npu.forward(p, input(2, 64, 0), {0, 0, 0, true});
    EXPECT_EQ(config_error([&] { npu.backward(p, {0, 0, 0}, Matrix(2, 4), g); }),
              "graph backward: the forward pass used running statistics (an evaluation or frozen pass)");
  }
}

// The passes every other method builds its loss from, on ResNet-20 in the
// pattern of LwF and DER (a student forward in slot 0, a frozen teacher
// forward in slot 1 of network 1, the student's backward, an evaluation):
// outputs, gradients, running statistics and overflow counters equal the
// functional engine's at every step.
TEST(NpuConv, GraphPassesEqualTheFunctionalEngine) {
  const HdqtConfig cfg = hdqt_preset("npu");
  FunctionalEngine functional(cfg, 7, 1);
  NpuEngine npu(default_npu_config(), cfg, 7, SgdConfig{});
  const auto graph = network_preset("resnet20", {1, 8, 8}, 5);
  MlpParams student = init_graph(graph, 5), teacher = init_graph(graph, 6);
  Sgd sgd(SgdConfig{0.05f, 0.9f, 0.0f});
  Matrix dout(4, 5);
  for (std::size_t i = 0; i < dout.v.size(); ++i) dout.v[i] = float(int(i * 5 % 13) - 6) / 50.0f;
  MlpGrads gf, gn;
  for (std::uint64_t step = 0; step < 3; ++step) {
    const std::string what = "step " + std::to_string(step);
    const Matrix x = input(4, 64, int(step));
    const auto& sf = functional.forward(student, x, {step, 0, 0});
    const auto& sn = npu.forward(student, x, {step, 0, 0});
    ASSERT_EQ(sn.size(), sf.size()) << what;
    for (std::size_t l = 0; l < sf.size(); ++l) ASSERT_EQ(sn[l].v, sf[l].v) << what << " output " << l;
    ASSERT_EQ(npu.forward(teacher, x, {step, 1, 1, true}).back().v,
              functional.forward(teacher, x, {step, 1, 1, true}).back().v) << what;
    npu.backward(student, {step, 0, 0}, dout, gn);
    functional.backward(student, {step, 0, 0}, dout, gf);
    for (std::size_t l = 0; l < gf.w.size(); ++l) {
      ASSERT_EQ(gn.w[l].v, gf.w[l].v) << what << " layer " << l;
      ASSERT_EQ(gn.b[l], gf.b[l]) << what << " layer " << l;
      ASSERT_EQ(gn.running[l], gf.running[l]) << what << " layer " << l;
    }
    ASSERT_EQ(npu.forward(student, x, {step, 0, kEvalSlot}).back().v,
              functional.forward(student, x, {step, 0, kEvalSlot}).back().v) << what;
    sgd.step(student, gf);
  }
  for (std::size_t l = 0; l < student.w.size(); ++l)
    for (int g = 0; g < kGemmRoles; ++g)
      EXPECT_EQ(npu.overflow_stats()->layers[l][g], functional.overflow_stats()->layers[l][g]) << l << " " << g;
}

}  // namespace
}  // namespace hdq::npu
