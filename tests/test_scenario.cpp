// Scenario files: parsing, --set overrides, and the promised errors (file,
// field and line named; nothing runs).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>

#include "models/common/names.h"
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

// Every HDQT key of docs/scenarios.md reaches exactly its field: parsed on a
// scenario without HDQT keys, one key at a time, the configuration equals
// the preset's with only that field (or, for a group key, those fields)
// changed. A key the parser ignored, or wrote to another field or role,
// fails here. Values differ from both the npu and the paper preset.
std::string describe(const HdqtConfig& c) {
  std::string s;
  for (int r = 0; r < kQuantRoles; ++r) {
    const QuantConfig& q = c.quant[std::size_t(r)];
    s += fmt::format("{}: bits {} rounding {} sr_bits {} clip {} signedness {} scale_mode {}\n", name(QuantRole(r)),
                     q.bits, name(q.rounding), q.sr_bits, q.clip, name(q.signedness), name(q.scale_mode));
  }
  for (int g = 0; g < kGemmRoles; ++g) {
    const AccumulatorConfig& a = c.gemm[std::size_t(g)];
    s += fmt::format("{}: acc_bits {} tile {} mode {} range {} outer_bits {}\n", name(GemmRole(g)), a.acc_bits,
                     a.tile, name(a.mode), name(a.range), a.outer_bits);
  }
  return s + fmt::format("hadamard: max_block {} pad {}; ste {}\n", c.hadamard.max_block.value_or(0),
                         c.hadamard.pad, name(c.ste));
}

TEST(Scenario, EveryHdqtKeyReachesItsField) {
  const char* base = "name: k\npreset: npu\n";
  const HdqtConfig npu = hdqt_preset("npu");
  struct Case {
    std::string set;
    std::function<void(HdqtConfig&)> change;
  };
  std::vector<Case> cases{
      {"preset=paper", [](HdqtConfig& c) { c = hdqt_preset("paper"); }},
      {"preset=luq", [](HdqtConfig& c) { c = hdqt_preset("luq"); }},
      {"operand_bits=3", [](HdqtConfig& c) { for (auto& q : c.quant) q.bits = 3; }},
      {"sr_bits=9", [](HdqtConfig& c) { for (auto& q : c.quant) q.sr_bits = 9; }},
      {"hadamard.max_block=8", [](HdqtConfig& c) { c.hadamard.max_block = 8; }},
      {"hadamard.pad=false", [](HdqtConfig& c) { c.hadamard.pad = false; }},
      {"ste=identity", [](HdqtConfig& c) { c.ste = Ste::identity; }},
  };
  const std::vector<std::pair<std::string, std::vector<GemmRole>>> groups{
      {"fwd", {GemmRole::fwd}},
      {"bwd", {GemmRole::bwd_dx, GemmRole::bwd_dw}},
      {"bwd_dx", {GemmRole::bwd_dx}},
      {"bwd_dw", {GemmRole::bwd_dw}}};
  for (const auto& [g, roles] : groups) {
    const auto each = [roles](auto f) {
      return [roles, f](HdqtConfig& c) {
        for (GemmRole r : roles) f(c.acc(r));
      };
    };
    cases.push_back({"gemm." + g + ".acc_bits=13", each([](AccumulatorConfig& a) { a.acc_bits = 13; })});
    cases.push_back({"gemm." + g + ".tile=7", each([](AccumulatorConfig& a) { a.tile = 7; })});
    cases.push_back({"gemm." + g + ".acc_mode=wrap", each([](AccumulatorConfig& a) { a.mode = AccMode::wrap; })});
    cases.push_back(
        {"gemm." + g + ".acc_range=symmetric", each([](AccumulatorConfig& a) { a.range = AccRange::symmetric; })});
    cases.push_back({"gemm." + g + ".outer_bits=20", each([](AccumulatorConfig& a) { a.outer_bits = 20; })});
  }
  for (int r = 0; r < kQuantRoles; ++r) {
    const std::string p = fmt::format("quant.{}.", name(QuantRole(r)));
    const auto role = [r](auto f) { return [r, f](HdqtConfig& c) { f(c.quant[std::size_t(r)]); }; };
    // The npu preset rounds some roles stochastically, the others to nearest: flip it.
    const bool sr = npu.quant[std::size_t(r)].rounding == Rounding::stochastic;
    cases.push_back({p + "bits=6", role([](QuantConfig& q) { q.bits = 6; })});
    cases.push_back({p + (sr ? "rounding=nearest" : "rounding=stochastic"),
                     role([sr](QuantConfig& q) { q.rounding = sr ? Rounding::nearest : Rounding::stochastic; })});
    cases.push_back({p + "sr_bits=5", role([](QuantConfig& q) { q.sr_bits = 5; })});
    cases.push_back({p + "clip=0.75", role([](QuantConfig& q) { q.clip = 0.75f; })});
    cases.push_back({p + "signedness=unsigned", role([](QuantConfig& q) { q.signedness = Signedness::is_unsigned; })});
    cases.push_back({p + "scale_mode=pow2", role([](QuantConfig& q) { q.scale_mode = ScaleMode::pow2; })});
  }
  // 7 + 4 groups x 5 + 6 roles x 6 = 63 keys.
  EXPECT_EQ(cases.size(), 63u);
  for (const Case& c : cases) {
    HdqtConfig want = npu;
    c.change(want);
    const Scenario s = parse_scenario(base, "k.yaml", {c.set});
    EXPECT_EQ(describe(s.hdqt), describe(want)) << "--set " << c.set;
  }
  // 0 removes the cap (a --set of the npu preset's pad alone would then be an error).
  EXPECT_FALSE(parse_scenario(base, "k.yaml", {"hadamard.max_block=0", "hadamard.pad=false"}).hdqt.hadamard.max_block);
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
