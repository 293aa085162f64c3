// RTL in the loop (issue 16; docs/npu.md "RTL in the loop"): the NPU model's
// MAC array with mac_array.impl: rtl computes every GEMM command on the
// verilated rtl/mac_array.sv. Checked here:
// - GEMMs on the verilated 4 x 4 array equal hdq::gemm (C and statistics)
//   and take the RTL's documented cycles, 1 + folds x (K + 2R + C - 2), which
//   is the cost model's output-stationary count plus R per fold plus 2;
// - a fast synthetic scenario through the real command line with
//   --set npu.mac_array.impl=rtl ends with the functional engine's signature
//   (the one the scenario file expects);
// - the same scenario on the broken array (rtl/pe.sv BUG = 1, the saturate
//   upper bound one too low) does not;
// (Labelled slow: tests/test_npu_fmnist.cpp built with mac_array.impl=rtl,
// rtl/CMakeLists.txt, the default Fashion-MNIST scenario's first 50 steps on
// the RTL array, step by step.)
// Built only when Verilator is found (rtl/CMakeLists.txt).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "sim/blocks/rtl_mac_array.h"
#include "sim/cost/dataflow.h"
#include "sim/npu_engine.h"
#include "tests/test_run_command.h"
#include "training/continual.h"

#ifndef HDQ_SOURCE_DIR
#error "HDQ_SOURCE_DIR must name the source tree"
#endif

namespace hdq::npu {
namespace {

namespace fs = std::filesystem;

// The geometry the fast tests run on: the first of HDQSIM_RTL_ARRAYS by
// default (sim/CMakeLists.txt), the one with a broken variant.
constexpr int kR = 4, kC = 4;
const char* const kSynthetic = HDQ_SOURCE_DIR "/scenarios/syn-er-npu.yaml";

std::unique_ptr<RtlMacArray> make_array(int bug) {
  const RtlArrayVariant* v = find_rtl_array(kR, kC, bug);
  if (!v) ADD_FAILURE() << "this build has no verilated 4x4 array with BUG = " << bug << " (HDQSIM_RTL_ARRAYS)";
  return v ? v->make() : nullptr;
}

// The functional engine's signature as the scenario file expects it.
std::string functional_signature(const Scenario& s) {
  for (const auto& e : s.expect)
    if (e.engine == "functional" && e.signature) return *e.signature;
  ADD_FAILURE() << s.file << " expects no functional signature";
  return "";
}

std::vector<std::int16_t> random_operand(std::mt19937& rng, std::size_t n, int bits, bool is_unsigned) {
  const int lo = is_unsigned ? 0 : -(1 << (bits - 1)), hi = is_unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<std::int16_t> v(n);
  for (auto& x : v) x = std::int16_t(d(rng));
  return v;
}

TEST(RtlInLoop, GemmsEqualTheKernelAndTakeTheRtlFoldCycles) {
  auto rtl = make_array(0);
  ASSERT_TRUE(rtl);
  std::mt19937 rng(16);
  GemmContext ctx;
  const AccMode modes[] = {AccMode::exact, AccMode::clamp_tile, AccMode::saturate, AccMode::wrap};
  int inner_events = 0;
  for (int trial = 0; trial < 48; ++trial) {
    // Shapes with ragged last folds (M, N not multiples of 4), K below, at and
    // above the tile, and every mode, range and operand kind.
    const GemmShape s{1 + int(rng() % 11), 1 + int(rng() % 9), 1 + int(rng() % 70)};
    const int a_bits = 2 + int(rng() % 7), b_bits = 2 + int(rng() % 7);
    const bool a_unsigned = trial % 5 == 3, b_unsigned = trial % 7 == 4;
    AccumulatorConfig acc;
    acc.mode = modes[trial % 4];
    acc.range = (trial / 4) % 2 ? AccRange::symmetric : AccRange::full;
    acc.acc_bits = 4 + int(rng() % 13);
    acc.outer_bits = std::min(32, acc.acc_bits + int(rng() % 20));
    acc.tile = int(rng() % 40);  // 0: one tile of K
    const auto a = random_operand(rng, std::size_t(s.m) * s.k, a_bits, a_unsigned);
    const auto b = random_operand(rng, std::size_t(s.k) * s.n, b_bits, b_unsigned);
    std::vector<std::int32_t> want(std::size_t(s.m) * s.n), got(want.size());
    const GemmStats ws = gemm(ctx, s, {a, a_bits, a_unsigned}, {b, b_bits, b_unsigned}, acc, want);
    const RtlGemmRun run = rtl->gemm(s, {a, a_bits, a_unsigned}, {b, b_bits, b_unsigned}, acc, got);
    const std::string what = ::testing::PrintToString(std::array{s.m, s.n, s.k, acc.tile, acc.acc_bits, int(acc.mode)});
    EXPECT_EQ(got, want) << what;
    EXPECT_EQ(run.stats, ws) << what;
    inner_events += ws.inner_events() > 0;
    // The RTL's timing (rtl/mac_array.sv): a reset cycle, then per fold K
    // feed cycles, R + C - 2 to fill and R to drain.
    const std::uint64_t folds = std::uint64_t((s.m + kR - 1) / kR) * std::uint64_t((s.n + kC - 1) / kC);
    EXPECT_EQ(run.folds, folds) << what;
    EXPECT_EQ(run.cycles, 1 + folds * std::uint64_t(s.k + 2 * kR + kC - 2)) << what;
    // Against the cost model's output-stationary fold (SCALE-Sim's K + R + C - 2,
    // whose drain overlaps the next fold; the whole GEMM one cycle less): the
    // RTL drains before it feeds again (R per fold) and resets once (1).
    EXPECT_EQ(run.cycles - compute_cycles(Dataflow::output_stationary, s.m, s.n, s.k, kR, kC), folds * kR + 2) << what;
  }
  EXPECT_GE(inner_events, 10);  // the cases narrowed or clamped often enough to matter
}

// A geometry the build verilated is accepted (sim/CMakeLists.txt); others are
// refused (tests/test_npu_config.cpp).
TEST(RtlInLoop, ImplRtlIsAcceptedAtAVerilatedGeometry) {
  const NpuConfig c = default_npu_config({"mac_array.impl=rtl", "mac_array.rows=4", "mac_array.cols=4"});
  EXPECT_EQ(c.mac_array.impl, "rtl");
  EXPECT_EQ(c.mac_array.rtl_bug, 0);  // not a file key: only tests set it
  EXPECT_TRUE(c.defaults_taken.empty());
}

using hdq::test::Proc;
using hdq::test::run_command;

// The fast synthetic scenario through the command line, on the RTL array.
TEST(RtlInLoop, SyntheticScenarioOnTheRtlEndsWithTheFunctionalSignature) {
  const Scenario s = load_scenario(kSynthetic);
  const fs::path out = fs::temp_directory_path() / ("hdqsim-rtl-loop-" + std::to_string(::getpid()));
  fs::remove_all(out);
  const Proc p = run_command(std::string(HDQSIM_EXE) + " train --scenario " + kSynthetic +
                     " --engine npu --set npu.mac_array.impl=rtl --set npu.mac_array.rows=4 --set npu.mac_array.cols=4"
                     " --no-golden --out " + out.string());
  ASSERT_EQ(p.status, 0) << p.output;
  std::ifstream in(out / "metrics.json");
  const nlohmann::json m = nlohmann::json::parse(in);
  fs::remove_all(out);
  EXPECT_EQ(m.at("signature").get<std::string>(), functional_signature(s)) << p.output;
  // Every GEMM command ran on the array, whose measured cycles are reported
  // beside the cost model's: per command, 1 + folds x (K + 2R + C - 2) (the
  // GEMM test above) is at least folds x (2R + C - 1) + 1.
  const nlohmann::json& r = m.at("npu").at("mac_array_rtl");
  EXPECT_GT(r.at("commands").get<double>(), 0);
  EXPECT_GE(r.at("rtl_cycles").get<double>(),
            r.at("folds").get<double>() * (2 * kR + kC - 1) + r.at("commands").get<double>());
}

// The broken array (BUG = 1: saturate's upper bound 2^(W-1) - 2) in the loop:
// the npu preset saturates at W = 8, so training reaches the bound and the
// weights end elsewhere.
TEST(RtlInLoop, BrokenArrayIsCaughtInTheLoop) {
  const Scenario s = load_scenario(kSynthetic);
  NpuConfig cfg = default_npu_config({"mac_array.impl=rtl", "mac_array.rows=4", "mac_array.cols=4"});
  cfg.mac_array.rtl_bug = 1;
  ASSERT_TRUE(find_rtl_array(kR, kC, 1)) << "no broken 4x4 array in this build";
  NpuEngine npu(cfg, s.hdqt, s.seed, s.train.sgd);
  const ContinualResult r = run_continual(s, load_scenario_data(s), npu);
  EXPECT_NE(fmt::format("{:016x}", r.signature), functional_signature(s));
  // It did saturate: the run counted changed steps, which is where BUG = 1 acts.
  std::uint64_t changed = 0;
  for (const auto& layer : npu.overflow_stats()->layers)
    for (const GemmStats& g : layer) changed += g.changed_steps;
  EXPECT_GT(changed, 0u);
}

}  // namespace
}  // namespace hdq::npu
