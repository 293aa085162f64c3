// Scenario files: parsing, --set overrides, and the promised errors (file,
// field and line named; nothing runs).
#include <gtest/gtest.h>

#include "training/scenario.h"

namespace hdq {
namespace {

const char* kBase = R"(name: t
seed: 3
preset: npu
epochs: 2
batch: 16
data:
  dataset: synthetic
  synthetic: {classes: 4}
gemm:
  fwd: {acc_bits: 12, tile: 16}
  bwd: {acc_mode: wrap}
  bwd_dw: {acc_bits: 16}
quant:
  bwd_g_dw: {sr_bits: 8}
)";

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_scenario(yaml, "s.yaml", overrides);
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Scenario, ParsesPresetGroupsAndRoles) {
  const Scenario s = parse_scenario(kBase, "s.yaml");
  EXPECT_EQ(s.seed, 3u);
  EXPECT_EQ(s.train.epochs, 2);
  EXPECT_EQ(s.hdqt.acc(GemmRole::fwd).acc_bits, 12);
  EXPECT_EQ(s.hdqt.acc(GemmRole::fwd).tile, 16);
  EXPECT_EQ(s.hdqt.acc(GemmRole::fwd).mode, AccMode::saturate);  // npu preset, not overridden
  // The bwd group applies to both backward GEMMs; a single role overrides its group.
  EXPECT_EQ(s.hdqt.acc(GemmRole::bwd_dx).mode, AccMode::wrap);
  EXPECT_EQ(s.hdqt.acc(GemmRole::bwd_dw).mode, AccMode::wrap);
  EXPECT_EQ(s.hdqt.acc(GemmRole::bwd_dx).acc_bits, 8);
  EXPECT_EQ(s.hdqt.acc(GemmRole::bwd_dw).acc_bits, 16);
  EXPECT_EQ(s.hdqt.q(QuantRole::bwd_g_dw).sr_bits, 8);
  EXPECT_EQ(s.hdqt.q(QuantRole::bwd_g_dx).sr_bits, 16);
  EXPECT_EQ(s.data.synthetic.classes, 4);
}

TEST(Scenario, SetOverridesUseTheSamePaths) {
  const Scenario s = parse_scenario(kBase, "s.yaml",
                                    {"preset=paper", "gemm.fwd.acc_bits=6", "operand_bits=5", "hadamard.max_block=16",
                                     "hadamard.pad=true", "milestones=[1]", "continual.method=naive"});
  EXPECT_EQ(s.preset, "paper");
  EXPECT_EQ(s.hdqt.acc(GemmRole::fwd).acc_bits, 6);
  EXPECT_EQ(s.hdqt.acc(GemmRole::fwd).mode, AccMode::clamp_tile);  // from the paper preset now
  for (const auto& q : s.hdqt.quant) EXPECT_EQ(q.bits, 5);
  EXPECT_EQ(s.hdqt.hadamard.max_block, 16);
  EXPECT_TRUE(s.hdqt.hadamard.pad);
  EXPECT_EQ(s.train.milestones, std::vector<int>{1});
  EXPECT_EQ(s.continual.method, "naive");
}

TEST(Scenario, ErrorsNameFileLineAndField) {
  // acc_bits: 40 is on line 10 of kBase once substituted.
  std::string bad = kBase;
  bad.replace(bad.find("acc_bits: 12"), 12, "acc_bits: 40");
  EXPECT_EQ(error_of(bad), "s.yaml:10: gemm.fwd.acc_bits: 40 is outside the allowed range 2..32");
  EXPECT_NE(error_of(std::string(kBase) + "epochz: 3\n").find("s.yaml:15: epochz: unknown field"), std::string::npos);
  std::string words = kBase;
  words.replace(words.find("batch: 16"), 9, "batch: many");
  EXPECT_EQ(error_of(words), "s.yaml:5: batch: 'many' is not a valid integer");
  EXPECT_NE(error_of(kBase, {"gemm.fwd.tile=-1"}).find("--set gemm.fwd.tile: -1 is outside"), std::string::npos);
  EXPECT_NE(error_of(kBase, {"gemm.fwd.acc_bitz=4"}).find("--set gemm.fwd.acc_bitz: unknown field"),
            std::string::npos);
  EXPECT_NE(error_of(kBase, {"gemm.fwd.acc_mode=clamp"}).find("is not one of: exact, clamp_tile, saturate, wrap"),
            std::string::npos);
  EXPECT_NE(error_of(kBase, {"preset=fast"}).find("preset"), std::string::npos);
  EXPECT_NE(error_of(kBase, {"hadamard.max_block=24"}).find("not a power of two"), std::string::npos);
  EXPECT_NE(error_of(kBase, {"hadamard.max_block=0", "hadamard.pad=true"}).find("requires hadamard.max_block"),
            std::string::npos);
  EXPECT_NE(error_of(kBase, {"gemm.bwd_dw.outer_bits=12"}).find("outer_bits = 12 is below acc_bits = 16"),
            std::string::npos);
  EXPECT_NE(error_of(kBase, {"noequals"}).find("expected key=value"), std::string::npos);
  EXPECT_NE(error_of("name: [unclosed\n").find("not valid YAML"), std::string::npos);
  EXPECT_NE(error_of("- a list\n").find("a YAML mapping"), std::string::npos);
}

TEST(Scenario, MissingFileIsAnError) {
  EXPECT_THROW(load_scenario("/nonexistent/scenario.yaml"), ScenarioError);
}

}  // namespace
}  // namespace hdq

// --set quant.<role>.rounding=luq goes through names.h, and the functional engine
// trains with it (and with the luq preset): the runs take steps, accuracies are
// valid percentages, and the final weights (the signature is over them) differ
// from the stochastic-rounding run's, so the option is not silently ignored.
#include <cmath>

#include "training/continual.h"
#include "engines/functional_engine.h"

namespace hdq {
namespace {

TEST(Scenario, SetLuqRoundingParsesAndTrains) {
  const std::vector<std::string> small{"epochs=1", "network.hidden=[16]", "data.synthetic.train_per_class=24",
                                       "data.synthetic.test_per_class=8"};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), small.begin(), small.end());
    return parse_scenario(kBase, "s.yaml", extra);
  };
  const Scenario luq = with({"quant.bwd_g_dx.rounding=luq"}), sr = with({});
  EXPECT_EQ(luq.hdqt.q(QuantRole::bwd_g_dx).rounding, Rounding::luq);
  EXPECT_EQ(luq.hdqt.q(QuantRole::bwd_g_dw).rounding, Rounding::stochastic);  // only the role that was set
  const Scenario preset = with({"preset=luq"});
  EXPECT_EQ(preset.hdqt.q(QuantRole::bwd_g_dw).rounding, Rounding::luq);
  EXPECT_EQ(preset.hdqt.hadamard.max_block, 1);

  auto train = [](const Scenario& s) {
    const auto data = load_scenario_data(s);
    FunctionalEngine e(s.hdqt, s.seed, 1);
    return run_continual(s, data, e);
  };
  const auto r_luq = train(luq), r_sr = train(sr), r_preset = train(preset);
  EXPECT_GT(r_luq.steps, 0u);
  EXPECT_GT(r_preset.steps, 0u);
  EXPECT_NE(r_luq.signature, r_sr.signature);
  for (const auto& row : r_preset.acc)
    for (double a : row) EXPECT_TRUE(std::isfinite(a) && a >= 0.0 && a <= 100.0);
}

}  // namespace
}  // namespace hdq
