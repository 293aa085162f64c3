// Regression expectations: a wrong expectation fails with a reason naming it;
// signatures are rewritten only through update_signatures.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engines/functional_engine.h"
#include "engines/golden_engine.h"
#include "training/regress.h"

namespace hdq {
namespace {

const std::string kScenario = R"(name: regress-unit
seed: 2
preset: npu
epochs: 1
batch: 16
data:
  dataset: synthetic
  synthetic: {classes: 4, channels: 2, steps: 8, train_per_class: 16, test_per_class: 8}
network: {hidden: [8]}
continual: {classes_per_task: 2, method: naive}
)";

std::unique_ptr<Engine> make_engine(const Scenario& s, const std::string& engine, int threads) {
  if (engine == "golden") return std::make_unique<GoldenEngine>(threads);
  return std::make_unique<FunctionalEngine>(s.hdqt, s.seed, threads);
}

// Accuracy is a percentage, so a minimum of 101 can never hold: the run must
// fail, and the reason must name the expectation and both values.
TEST(Regress, WrongExpectationFailsNamingIt) {
  const Scenario s = parse_scenario(kScenario + "expect:\n  functional:\n    final_avg_accuracy: {min: 101}\n", "r.yaml");
  const RegressOutcome o = regress_scenario(s, make_engine, 1);
  ASSERT_EQ(o.failures.size(), 1u);
  EXPECT_NE(o.failures[0].find("expect.functional.final_avg_accuracy: expected >= 101, got"), std::string::npos)
      << o.failures[0];
}

// An impossible overflow bound (the npu preset's 8-bit forward accumulators
// with 4-bit operands always see some traffic, but a negative maximum cannot hold).
TEST(Regress, OverflowBoundsAreCheckedPerLayerAndRole) {
  const Scenario s = parse_scenario(
      kScenario + "expect:\n  functional:\n    overflow:\n      layer0: {fwd: {outer_overflows: {max: -1}}}\n"
                  "      layer9: {all: {inner_event_rate: {max: 1}}}\n",
      "r.yaml");
  const RegressOutcome o = regress_scenario(s, make_engine, 1);
  ASSERT_EQ(o.failures.size(), 2u);
  EXPECT_NE(o.failures[0].find("expect.functional.overflow.layer0.fwd.outer_overflows (layer0.fwd): expected <= -1"),
            std::string::npos)
      << o.failures[0];
  EXPECT_NE(o.failures[1].find("layer9.all.inner_event_rate: no such layer/role"), std::string::npos) << o.failures[1];
}

TEST(Regress, ScenarioWithoutExpectationsFails) {
  const RegressOutcome o = regress_scenario(parse_scenario(kScenario, "r.yaml"), make_engine, 1);
  ASSERT_EQ(o.failures.size(), 1u);
  EXPECT_NE(o.failures[0].find("no `expect` section"), std::string::npos);
}

// update_signatures rewrites exactly the stale signature line, keeping its
// comment, and the rewritten file then passes.
TEST(Regress, UpdateSignaturesRewritesOnlyStaleValues) {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("hdqsim-regress-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(file) << kScenario << "expect:\n  functional:\n    signature: \"0000000000000000\"  # stale\n";
  const Scenario s = load_scenario(file.string());
  const RegressOutcome o = regress_scenario(s, make_engine, 1);
  ASSERT_EQ(o.failures.size(), 1u);
  const auto changes = update_signatures(s, o);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_NE(changes[0].find("0000000000000000 -> " + o.signatures.at("functional")), std::string::npos);
  std::ifstream in(file);
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("signature: \"" + o.signatures.at("functional") + "\"  # stale"), std::string::npos) << text;
  EXPECT_TRUE(regress_scenario(load_scenario(file.string()), make_engine, 1).passed());
  EXPECT_TRUE(update_signatures(load_scenario(file.string()), o).empty());  // nothing stale any more
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace hdq
