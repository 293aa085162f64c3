// The NPU engine end to end: bit-exact against the functional engine, the
// device's SGD update against hdq::Sgd, errors (SRAM too small, NaN), the VCD.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "engines/functional_engine.h"
#include "sim/npu_engine.h"
#include "tests/test_npu_recorder.h"
#include "training/continual.h"

namespace hdq::npu {
namespace {

const char* kTiny = R"(name: npu-tiny
seed: 3
epochs: 1
batch: 24
lr: 0.05
data:
  dataset: synthetic
  synthetic: {classes: 4, channels: 3, steps: 12, train_per_class: 30, test_per_class: 12, noise: 0.5}
network: {hidden: [40, 20]}
continual: {classes_per_task: 2, method: er, replay_capacity: 30, replay_batch: 9}
compare_every: 0
)";

// Runs the tiny scenario with `overrides` on both engines (the default SRAM
// and 8 KiB, where every operation is chunked, the clip mask too) and checks
// every step equal; returns the functional run's signature.
std::uint64_t expect_bit_exact(const std::vector<std::string>& overrides) {
  std::uint64_t signature = 0;
  for (const char* sram : {"sram.size_bytes=524288", "sram.size_bytes=8192"}) {
    const Scenario s = parse_scenario(kTiny, "tiny.yaml", overrides);
    const auto data = load_scenario_data(s);
    FunctionalEngine functional(s.hdqt, s.seed, 1);
    NpuEngine npu(default_npu_config({sram}), s.hdqt, s.seed, s.train.sgd);
    Recorder rf(functional), rn(npu);
    const ContinualResult a = run_continual(s, data, rf), b = run_continual(s, data, rn);
    std::string what = sram;
    for (const auto& o : overrides) what += ", " + o;
    EXPECT_GT(rf.steps.size(), 4u) << what;
    expect_same_steps(rf, rn, what);
    EXPECT_EQ(a.signature, b.signature) << what;
    EXPECT_EQ(npu.warmup_steps() + npu.train_steps(), rf.steps.size()) << what;
    EXPECT_GT(npu.train_costs().total().cycles(), 0u) << what;
    signature = a.signature;
  }
  return signature;
}

// Acceptance 1: every step's weights, logits and overflow counters (and
// gradients, loss, evaluation logits) equal on a 2-task synthetic scenario,
// for both presets. The batch (24 + 9 replayed = 33, 24 first) makes the
// paper preset's Hadamard block along B the odd 1 and the npu preset pad 33
// to 64; hidden 40 and 20 give blocks 8 and 4 (paper) along O.
// With an 8 KiB SRAM every operation is cut into chunks (two-pass
// quantization, GEMM passes over row and column blocks, Hadamard column
// blocks), with the same bits.
TEST(NpuEngine, BitExactWithTheFunctionalEngineOnBothPresets) {
  for (const char* preset : {"paper", "npu"}) expect_bit_exact({std::string("preset=") + preset});
}

// The NPU may be driven from any thread, one at a time (Npu::acquire): the
// simulation kernel runs on the caller's thread outside sanitizer builds, so
// runs started from a second thread and then from this one again must still
// give the functional engine's bits.
TEST(NpuEngine, RunsFromAnotherThreadGiveTheSameBits) {
  const Scenario s = parse_scenario(kTiny, "tiny.yaml", {});
  const auto data = load_scenario_data(s);
  FunctionalEngine functional(s.hdqt, s.seed, 1);
  const std::uint64_t want = run_continual(s, data, functional).signature;
  std::uint64_t on_thread = 0;
  std::thread([&] {
    NpuEngine npu(default_npu_config({}), s.hdqt, s.seed, s.train.sgd);
    on_thread = run_continual(s, data, npu).signature;
  }).join();
  NpuEngine npu(default_npu_config({}), s.hdqt, s.seed, s.train.sgd);
  EXPECT_EQ(on_thread, want);
  EXPECT_EQ(run_continual(s, data, npu).signature, want);
}

// The clipped STE at work (npu preset, fwd_x clip 0.5: the forward clamps
// about half the range of every layer's input, and the mask zeroes those
// elements' dX in layers 1 and 2): the NPU's mask, written by the quantizer
// unit and applied in the dX epilogue, gives the functional engine's bits;
// and the mask matters here (the identity STE trains other weights).
TEST(NpuEngine, ClippedSteWithClipBelowOneIsBitExact) {
  const std::vector<std::string> clipped{"preset=npu", "quant.fwd_x.clip=0.5"};
  const std::uint64_t sig = expect_bit_exact(clipped);
  std::vector<std::string> identity = clipped;
  identity.push_back("ste=identity");
  const Scenario s = parse_scenario(kTiny, "tiny.yaml", identity);
  FunctionalEngine functional(s.hdqt, s.seed, 1);
  EXPECT_NE(run_continual(s, load_scenario_data(s), functional).signature, sig);
}

// Every HDQT knob away from its default and from both presets, so that an
// NPU that drops one on its way to a block descriptor (quantizer: bits,
// rounding, sr_bits, clip, signedness, scale_mode; MAC array: acc_bits, tile,
// acc_mode, acc_range, outer_bits; the Hadamard plan; the STE) trains other
// bits than the functional engine. docs/knob-coverage.md lists which knob
// this test guards. The accumulators are narrow on purpose (events in every
// GEMM, at the bottom of the full range too): the test is about bits, not
// accuracy.
TEST(NpuEngine, BitExactWithEveryKnobAwayFromItsDefault) {
  expect_bit_exact({"preset=npu",
                    "sr_bits=9",
                    "quant.fwd_x.bits=5",
                    "quant.fwd_x.clip=0.75",
                    "quant.fwd_x.signedness=signed",
                    "quant.fwd_x.rounding=stochastic",
                    "quant.fwd_w.bits=3",
                    "quant.fwd_w.scale_mode=pow2",
                    "quant.bwd_g_dx.bits=6",
                    "quant.bwd_g_dx.scale_mode=pow2",
                    "quant.bwd_w_dx.bits=5",
                    "quant.bwd_w_dx.rounding=stochastic",
                    "quant.bwd_x_dw.bits=3",
                    "quant.bwd_x_dw.clip=0.9",
                    "quant.bwd_g_dw.bits=5",
                    "quant.bwd_g_dw.sr_bits=4",
                    "gemm.fwd.acc_bits=6",
                    "gemm.fwd.tile=7",
                    "gemm.fwd.outer_bits=8",
                    "gemm.bwd_dx.acc_bits=7",
                    "gemm.bwd_dx.tile=0",
                    "gemm.bwd_dx.acc_mode=clamp_tile",
                    "gemm.bwd_dx.outer_bits=20",
                    "gemm.bwd_dw.acc_bits=10",
                    "gemm.bwd_dw.tile=5",
                    "gemm.bwd_dw.acc_mode=wrap",
                    "gemm.bwd_dw.acc_range=symmetric",
                    "gemm.bwd_dw.outer_bits=11",
                    "hadamard.max_block=8"});
}

// The device's SGD program equals hdq::Sgd bit for bit on the first two
// steps of a task (same lr, momentum from the first step on).
// The passes every other method builds its loss from, in the pattern of LwF
// (a student forward in slot 0, a teacher forward in slot 1 of network 1 that
// no backward follows, the student's backward) and an evaluation forward:
// the NPU's outputs and gradients equal the functional engine's at every
// step, and the kept forward passes do not creep up the DRAM: 40 steps run
// in 1 MiB of DRAM (placing every pass above the other kept one, as a first
// version did, ran out of it within the 40 steps).
TEST(NpuEngine, PassesEqualTheFunctionalEngineAndReuseDram) {
  for (const char* preset : {"paper", "npu"}) {
    const Scenario s = parse_scenario(kTiny, "tiny.yaml", {std::string("preset=") + preset});
    FunctionalEngine functional(s.hdqt, s.seed, 1);
    NpuEngine npu(default_npu_config({"dram.size_bytes=1048576"}), s.hdqt, s.seed, s.train.sgd);
    const MlpParams student = init_mlp({{36, 40, 20, 4}}, 5), teacher = init_mlp({{36, 40, 20, 4}}, 6);
    Matrix x(24, 36), dout(24, 4);
    for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] = float(int(i * 7 % 23) - 11) / 9.0f;
    for (std::size_t i = 0; i < dout.v.size(); ++i) dout.v[i] = float(int(i * 5 % 13) - 6) / 50.0f;
    MlpGrads gf, gn;
    for (std::uint64_t step = 0; step < 40; ++step) {
      const std::string what = std::string(preset) + " step " + std::to_string(step);
      ASSERT_EQ(npu.forward(student, x, {step, 0, 0}).back().v, functional.forward(student, x, {step, 0, 0}).back().v) << what;
      ASSERT_EQ(npu.forward(teacher, x, {step, 1, 1}).back().v, functional.forward(teacher, x, {step, 1, 1}).back().v) << what;
      ASSERT_NO_THROW(npu.backward(student, {step, 0, 0}, dout, gn)) << what;
      functional.backward(student, {step, 0, 0}, dout, gf);
      for (std::size_t l = 0; l < gf.w.size(); ++l) {
        ASSERT_EQ(gn.w[l].v, gf.w[l].v) << what << " layer " << l;
        ASSERT_EQ(gn.b[l], gf.b[l]) << what << " layer " << l;
      }
      ASSERT_EQ(npu.forward(student, x, {step, 0, kEvalSlot}).back().v,
                functional.forward(student, x, {step, 0, kEvalSlot}).back().v) << what;
    }
    for (std::size_t l = 0; l < 3; ++l)
      for (int g = 0; g < kGemmRoles; ++g)
        EXPECT_EQ(npu.overflow_stats()->layers[l][g], functional.overflow_stats()->layers[l][g]) << preset << " " << l << " " << g;
    EXPECT_EQ(npu.train_steps(), 40u);  // one step per distinct step number, however many passes
    // A backward needs its training forward.
    EXPECT_THROW(npu.backward(student, {99, 0, 0}, dout, gn), ConfigError);
  }
}

TEST(NpuEngine, DeviceUpdateEqualsHostSgd) {
  const Scenario s = parse_scenario(kTiny, "tiny.yaml", {"weight_decay=0.01"});
  const auto data = load_scenario_data(s);
  MlpSpec spec{{int(data.train.dim()), 40, 20, data.train.num_classes}};
  MlpParams p = init_mlp(spec, s.seed);
  NpuEngine npu(default_npu_config(), s.hdqt, s.seed, s.train.sgd);
  npu.keep_device_params(true);
  Sgd sgd(s.train.sgd);
  Matrix x(16, int(data.train.dim()));
  std::vector<int> y(16);
  for (int r = 0; r < 16; ++r) {
    std::copy_n(data.train.row(std::size_t(r)).begin(), data.train.dim(), x.row(r).begin());
    y[std::size_t(r)] = data.train.labels[std::size_t(r)];
  }
  std::unique_ptr<bool[]> active(new bool[std::size_t(data.train.num_classes)]());
  for (int c : y) active[std::size_t(c)] = true;
  MlpGrads g;
  for (int step = 0; step < 2; ++step) {
    npu.gradients(p, x, y, std::span<const bool>(active.get(), std::size_t(data.train.num_classes)), step, g);
    sgd.step(p, g);
    for (std::size_t l = 0; l < p.w.size(); ++l) {
      EXPECT_EQ(npu.device_params().w[l].v, p.w[l].v) << "step " << step << " layer " << l;
      EXPECT_EQ(npu.device_params().b[l], p.b[l]) << "step " << step << " layer " << l;
    }
  }
}

// K-chunked GEMMs (docs/npu.md "K-chunked GEMMs"): with 2048 input features
// and 24 KiB of SRAM, layer 0's forward GEMM cannot hold its smallest
// whole-K tiling (16 rows of Wq and 16 rows of Xq, 2048 4-bit values each:
// 32 KiB), so it runs as commands over K-chunks continuing C: with batch 16
// and 16 hidden units C is one block (chunks of 640); with batch 128 and 40
// hidden units its blocks have fewer rows (32: all 128 rows of C and the
// epilogue's buffers would take more than half the arena; chunks of 160).
// Training steps and the evaluation equal the functional engine, with the
// default outer accumulator (the chunks add exactly) and with Wo = 12 (the
// outer clamp fires: the array's exact fallback). The control: with
// gemm.fwd.tile = 0 (one tile of the whole K, which cannot be cut) the same
// SRAM is refused naming the tile, so the tiled runs are not whole-K plans.
TEST(NpuEngine, KChunkedGemmsEqualTheFunctionalEngine) {
  const char* sram = "sram.size_bytes=24576";
  const int I = 2048;
  for (const auto& [B, H] : {std::pair{16, 16}, std::pair{128, 40}}) {
    const MlpParams p0 = init_mlp({{I, H, 4}}, 5);
    Matrix x(B, I);
    std::vector<int> y;
    for (int i = 0; i < B; ++i) y.push_back(i % 4);
    const bool active[4] = {true, true, true, true};
    for (const int outer : {32, 12}) {
      HdqtConfig cfg = hdqt_preset("npu");
      cfg.acc(GemmRole::fwd).outer_bits = outer;
      const std::string what = fmt::format("B {} hidden {} Wo {}", B, H, outer);
      const SgdConfig sgd{0.05f, 0.9f, 0.0f};
      FunctionalEngine functional(cfg, 7, 1);
      NpuEngine npu(default_npu_config({sram}), cfg, 7, sgd);
      MlpParams pf = p0, pn = p0;
      Sgd sf(sgd), sn(sgd);
      MlpGrads gf, gn;
      for (std::uint64_t step = 0; step < 3; ++step) {
        for (std::size_t i = 0; i < x.v.size(); ++i) x.v[i] = float(int((i * 7 + step) % 23) - 11) / 9.0f;
        const std::string at = what + ", step " + std::to_string(step);
        const float lf = functional.gradients(pf, x, y, active, step, gf);
        const float ln = npu.gradients(pn, x, y, active, step, gn);
        ASSERT_EQ(std::bit_cast<std::uint32_t>(ln), std::bit_cast<std::uint32_t>(lf)) << at;
        for (std::size_t l = 0; l < gf.w.size(); ++l) {
          ASSERT_EQ(gn.w[l].v, gf.w[l].v) << at << " layer " << l;
          ASSERT_EQ(gn.b[l], gf.b[l]) << at << " layer " << l;
        }
        for (std::size_t l = 0; l < functional.last_layer_outputs().size(); ++l)
          ASSERT_EQ(npu.last_layer_outputs()[l].v, functional.last_layer_outputs()[l].v) << at << " output " << l;
        sf.step(pf, gf);
        sn.step(pn, gn);
      }
      for (std::size_t l = 0; l < pf.w.size(); ++l)
        for (int g = 0; g < kGemmRoles; ++g)
          EXPECT_EQ(npu.overflow_stats()->layers[l][g], functional.overflow_stats()->layers[l][g]) << what << " " << l;
      if (outer == 12) {
        EXPECT_GT(functional.overflow_stats()->layers[0][int(GemmRole::fwd)].outer_overflows, 0u) << what;
      }
      Matrix of, on;
      functional.logits(pf, x, 3, of);
      npu.logits(pn, x, 3, on);
      EXPECT_EQ(on.v, of.v) << what;
    }
    HdqtConfig one_tile = hdqt_preset("npu");
    one_tile.acc(GemmRole::fwd).tile = 0;
    NpuEngine npu(default_npu_config({sram}), one_tile, 7, SgdConfig{});
    MlpGrads g;
    try {
      npu.gradients(p0, x, y, active, 0, g);
      ADD_FAILURE() << "a whole-K tile ran K-chunked, batch " << B;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("gemm.fwd.tile = 0 makes the whole K one tile, which cannot be cut into K-chunks"),
                std::string::npos)
          << e.what();
    }
  }
}

// A step that does not fit the SRAM is an error naming the field, before
// anything runs: no gradients written, no costs charged.
TEST(NpuEngine, SramTooSmallNamesTheFieldAndWritesNothing) {
  const Scenario s = parse_scenario(kTiny, "tiny.yaml");
  const auto data = load_scenario_data(s);
  NpuEngine npu(default_npu_config({"sram.size_bytes=2048"}), s.hdqt, s.seed, s.train.sgd);
  MlpParams p = init_mlp({{int(data.train.dim()), 40, 20, 4}}, s.seed);
  Matrix x(8, int(data.train.dim()));
  std::vector<int> y(8, 0);
  const bool active[4] = {true, true, false, false};
  MlpGrads g;
  try {
    npu.gradients(p, x, y, active, 0, g);
    FAIL() << "expected an error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("sram.size_bytes = 2048"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(g.w.empty());
  EXPECT_EQ(npu.train_costs().total().commands + npu.warmup_costs().total().commands, 0u);
}

// A NaN reaching a quantizer raises the error status; the step stops and the
// message names the tensor and the element, as the functional engine's.
TEST(NpuEngine, NanStopsTheStepWithTheTensorName) {
  const Scenario s = parse_scenario(kTiny, "tiny.yaml");
  NpuEngine npu(default_npu_config(), s.hdqt, s.seed, s.train.sgd);
  MlpParams p = init_mlp({{6, 5, 4}}, s.seed);
  Matrix x(3, 6);
  x.at(1, 2) = std::nanf("");
  std::vector<int> y{0, 1, 0};
  const bool active[4] = {true, true, false, false};
  MlpGrads g;
  try {
    npu.gradients(p, x, y, active, 0, g);
    FAIL() << "expected an error";
  } catch (const NumericError& e) {
    // Flat index 1 * 6 + 2 = 8 of layer 0's fwd_x input.
    EXPECT_NE(std::string(e.what()).find("tensor 'layer0.fwd_x': element 8 is NaN"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(g.w.empty());
}

// The carry across steps (docs/npu.md "Across jobs"): with hidden layers of
// 128 and 96 the state (W, b and momentum, 138 KB) does not fit a 128 KiB
// SRAM and streams from DRAM, so every step reduces max |W| in the update
// and rounds the next step's Wq of layer 1 (its W, 48 KB, saves more than
// the operands its deferred update holds); the next forward uses them when
// the driver's weights equal the device's. Every step's bits equal the
// functional engine's.
TEST(NpuEngine, StepsCarryingMaxAndWqAcrossStepsAreBitExact) {
  for (const char* preset : {"preset=paper", "preset=npu"}) {
    const Scenario s = parse_scenario(kTiny, "tiny.yaml", {preset, "network.hidden=[128, 96]", "epochs=3"});
    const auto data = load_scenario_data(s);
    FunctionalEngine functional(s.hdqt, s.seed, 1);
    NpuEngine npu(default_npu_config({"sram.size_bytes=131072"}), s.hdqt, s.seed, s.train.sgd);
    Recorder rf(functional), rn(npu);
    const ContinualResult a = run_continual(s, data, rf), b = run_continual(s, data, rn);
    expect_same_steps(rf, rn, preset);
    EXPECT_EQ(a.signature, b.signature) << preset;
    EXPECT_GT(npu.carried_wq_steps(), 2u) << preset;  // the path under test was taken
  }
}

// max |W| of the next step is reduced in the update's write-back
// (kQuantReduceKeep, docs/npu.md "Across jobs"). An update that makes W
// non-finite must not fail there: the functional engine fails only at the
// next step's Q(W), and so must the NPU, with the same message. With
// weight_decay = 10 and lr = 1 the update is w - (g + 10 w) - ... = about -9 w,
// so a weight of 1e38 becomes -Inf (f32 max is 3.4e38). The state (W, b and
// momentum of 200-16-4, 26 KB) does not fit an 8 KiB SRAM: it stays in DRAM,
// where the carry is used.
TEST(NpuEngine, NonFiniteWeightsFailAtTheNextStepAsInTheFunctionalEngine) {
  const Scenario s = parse_scenario(kTiny, "tiny.yaml", {"lr=1", "momentum=0", "weight_decay=10"});
  NpuEngine npu(default_npu_config({"sram.size_bytes=8192"}), s.hdqt, s.seed, s.train.sgd);
  npu.keep_device_params(true);
  FunctionalEngine functional(s.hdqt, s.seed, 1);
  MlpParams p = init_mlp({{200, 16, 4}}, s.seed);
  p.w[0].at(2, 3) = 1e38f;
  Matrix x(3, 200);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 200; ++c) x.at(r, c) = 0.01f * float(r + c % 7);
  std::vector<int> y{0, 1, 0};
  const bool active[4] = {true, true, false, false};
  MlpGrads g;
  npu.gradients(p, x, y, active, 0, g);  // the reduce meets -Inf: recorded, not an error
  const MlpParams next = npu.device_params();
  ASSERT_TRUE(std::isinf(next.w[0].at(2, 3))) << next.w[0].at(2, 3);
  std::string expected;
  try {
    functional.gradients(next, x, y, active, 1, g);
    FAIL() << "the functional engine accepted a non-finite weight";
  } catch (const NumericError& e) {
    expected = e.what();
  }
  ASSERT_NE(expected.find("tensor 'layer0.fwd_w'"), std::string::npos) << expected;
  try {
    npu.gradients(next, x, y, active, 1, g);
    FAIL() << "expected an error";
  } catch (const NumericError& e) {
    // The functional engine's message (the element's flat index included) in the NPU's.
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what() << " vs " << expected;
  }
}

// --vcd: a dump with every unit's busy wire and command id, and activity.
TEST(NpuEngine, WritesAVcdOfBlockActivity) {
  const Scenario s = parse_scenario(kTiny, "tiny.yaml");
  const std::string path = (std::filesystem::temp_directory_path() / "hdqsim_test_npu.vcd").string();
  std::filesystem::remove(path);
  NpuEngine npu(default_npu_config(), s.hdqt, s.seed, s.train.sgd);
  npu.trace_vcd(path);
  MlpParams p = init_mlp({{6, 5, 4}}, s.seed);
  Matrix x(3, 6), logits;
  for (float& v : x.v) v = 0.5f;
  npu.logits(p, x, 0, logits);
  EXPECT_FALSE(std::filesystem::exists(path)) << "written only when closed";
  npu.close_vcd();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string vcd = text.str();
  for (const char* unit : {"dma", "mac_array", "hadamard", "quantizer", "vector"})
    EXPECT_NE(vcd.find(std::string("$scope module ") + unit + " $end"), std::string::npos) << unit;
  EXPECT_NE(vcd.find("$var wire 1 ! busy $end"), std::string::npos);
  EXPECT_NE(vcd.find("$var reg 32 \" command $end"), std::string::npos);
  EXPECT_NE(vcd.find("\n1#\n"), std::string::npos) << "the MAC array (id #) was busy at some time";
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace hdq::npu

