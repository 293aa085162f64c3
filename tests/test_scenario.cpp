// Scenario files: parsing, --set overrides, and the promised errors (file,
// field and line named; nothing runs).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
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
  return s + fmt::format("hadamard: max_block {} pad {}; ste {}; conv_mapping {}\n", c.hadamard.max_block.value_or(0),
                         c.hadamard.pad, name(c.ste), name(c.conv_mapping));
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
      {"conv_mapping=per_sample", [](HdqtConfig& c) { c.conv_mapping = ConvMapping::per_sample; }},
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
  // 8 + 4 groups x 5 + 6 roles x 6 = 64 keys.
  EXPECT_EQ(cases.size(), 64u);
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

// Numbers must be finite, and the message names the key (lr: .inf used to
// fail inside a tensor). kBase has 14 lines, so an appended line is line 15.
TEST(Scenario, NumbersAreFiniteAndNamed) {
  EXPECT_EQ(error_of(std::string(kBase) + "lr: .inf\n"), "s.yaml:15: lr: '.inf' is not a finite number");
  EXPECT_EQ(error_of(kBase, {"momentum=.nan"}), "s.yaml: --set momentum: '.nan' is not a finite number");
  EXPECT_EQ(error_of(kBase, {"continual.kd_temperature=-.inf"}),
            "s.yaml: --set continual.kd_temperature: '-.inf' is not a finite number");
  // A regression bound too: `max: .inf` is no bound at all.
  EXPECT_EQ(error_of(kBase, {"expect.golden.final_avg_accuracy.max=.inf"}),
            "s.yaml: --set expect.golden.final_avg_accuracy.max: '.inf' is not a finite number");
  EXPECT_EQ(error_of(kBase, {"seed=-1"}), "s.yaml: --set seed: '-1' is not a valid integer");  // u64: no wrap to 2^64 - 1
}

// yaml-cpp keeps the first of two equal keys; the reader refuses them, at
// any depth and in flow style, naming both lines.
TEST(Scenario, DuplicateKeysAreRefused) {
  EXPECT_EQ(error_of(std::string(kBase) + "seed: 4\n"), "s.yaml:15: seed: duplicate key (first given on line 2)");
  EXPECT_EQ(error_of("gemm:\n  fwd: {acc_bits: 4, acc_bits: 6}\n"),
            "s.yaml:2: gemm.fwd.acc_bits: duplicate key (first given on line 2)");
  EXPECT_EQ(error_of("data:\n  dataset: synthetic\n  dataset: csv\n"),
            "s.yaml:3: data.dataset: duplicate key (first given on line 2)");
  EXPECT_EQ(error_of("milestones: [{a: 1, a: 2}]\n"), "s.yaml:1: milestones[0].a: duplicate key (first given on line 1)");
  EXPECT_EQ(error_of("? [a, b]\n: 1\n"), "s.yaml:1: (top): a key must be a plain scalar, not a list");
  // Six levels of ten aliases stand for 10^6 leaves: refused before any walk over them.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 5; ++i) {
    bomb += fmt::format("a{}: &a{} [", i, i);
    for (int k = 0; k < 10; ++k) bomb += fmt::format("{}*a{}", k ? ", " : "", i - 1);
    bomb += "]\n";
  }
  EXPECT_EQ(error_of(bomb), "s.yaml: more than 100000 YAML nodes (each use of an alias counts)");
}

// Sizes that would only fail at allocation are named when the file is read
// (models/common/errors.h: at most 2^28 elements per tensor).
TEST(Scenario, AbsurdSizesAreNamedErrors) {
  // 2^20 x 2^20 = 2^40 weights between the two hidden layers.
  EXPECT_EQ(error_of(kBase, {"network.hidden=[1048576, 1048576]"}),
            "s.yaml: --set network.hidden: the weights of hidden layer 1 (1048576 x 1048576): 1048576 x 1048576 = "
            "1099511627776 elements is more than the limit of 2^28 = 268435456 per tensor");
  // er: 65536 new + 65536 replayed rows x 4096 = 2^29 activations.
  EXPECT_NE(error_of(kBase, {"batch=65536", "network.hidden=[4096]"})
                .find("--set batch: the activations of the widest hidden layer (batch + replay_batch) x width: 131072 x 4096"),
            std::string::npos);
  EXPECT_EQ(error_of(kBase, {"batch=65536", "network.hidden=[4096]", "continual.method=naive"}), "no error");  // 2^28 exactly
  // 4 classes x 2^20 samples x (1024 x 64) features.
  EXPECT_NE(error_of(kBase, {"data.synthetic.train_per_class=1048576", "data.synthetic.channels=1024",
                             "data.synthetic.steps=64"})
                .find("s.yaml:8: data.synthetic: the training split"),
            std::string::npos);
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

// The error of loading kBase's data with the overrides, or "no error".
std::string error_loading(const std::vector<std::string>& overrides) {
  try {
    load_scenario_data(parse_scenario(kBase, "s.yaml", overrides));
  } catch (const ScenarioError& e) {
    return e.what();
  }
  return "no error";
}

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

// What the data must offer the scenario is checked when it is loaded, before
// anything trains (an impossible split used to become one task, an empty
// task zero steps).
TEST(Scenario, ImpossibleTaskSplitsAreRefusedWhenTheDataIsLoaded) {
  EXPECT_EQ(error_loading({}), "no error");
  EXPECT_EQ(error_loading({"continual.classes_per_task=4"}), "no error");  // one task of all 4 classes: allowed
  EXPECT_EQ(error_loading({"continual.classes_per_task=5"}),
            "s.yaml: continual.classes_per_task = 5 is more than the 4 classes of synthetic: there would be a single task");
  // Synthetic sample i has class i % 4, so the first sample is all of class 0:
  // every task without class 0 has no training samples.
  EXPECT_NE(error_loading({"data.limit_train=1"}).find("has no training samples in synthetic (with data.limit_train = 1)"),
            std::string::npos);
  EXPECT_NE(error_loading({"data.limit_test=1"}).find("has no test samples in synthetic (with data.limit_test = 1)"),
            std::string::npos);
  // The input layer's width comes from the data: 32 steps x 1024 channels = 32768 inputs x 2^20 units.
  EXPECT_EQ(error_loading({"data.synthetic.channels=1024", "network.hidden=[1048576]", "batch=1"}),
            "s.yaml: network: the weights of layer 0 (1048576 x 32768): 1048576 x 32768 = 34359738368 elements is more "
            "than the limit of 2^28 = 268435456 per tensor");
}

// The network section: an MLP of hidden widths or a named layer graph, one
// or the other; unknown presets and data the preset cannot take are errors
// naming the field.
TEST(Scenario, NetworkIsHiddenWidthsOrAPreset) {
  const Scenario mlp = parse_scenario(kBase, "s.yaml", {"network.hidden=[32, 16]"});
  EXPECT_FALSE(mlp.network.is_graph());
  EXPECT_EQ(mlp.network.hidden, (std::vector<int>{32, 16}));
  EXPECT_EQ(parse_scenario(kBase, "s.yaml").network.hidden, (std::vector<int>{256, 256}));  // the default MLP

  const Scenario cnn = parse_scenario(kBase, "s.yaml", {"network.preset=cnn-small"});
  EXPECT_TRUE(cnn.network.is_graph());
  EXPECT_EQ(cnn.network.preset, "cnn-small");
  EXPECT_TRUE(cnn.network.hidden.empty());
  // A file's MLP is replaced by giving the whole section.
  const std::string file_mlp = std::string(kBase) + "network: {hidden: [64]}\n";
  EXPECT_EQ(parse_scenario(file_mlp, "s.yaml", {"network={preset: resnet20}"}).network.preset, "resnet20");
  EXPECT_EQ(error_of(file_mlp, {"network.preset=resnet20"}),
            "s.yaml: --set network.preset: network.hidden (an MLP) and network.preset (a layer graph) exclude each "
            "other; to replace a file's MLP give the whole section: --set 'network={preset: cnn-small}'");
  EXPECT_EQ(error_of(kBase, {"network.preset=resnet18"}),
            "s.yaml: --set network.preset: 'resnet18' is not one of: cnn-small, resnet20, resnet32");
  // iCaRL's features are a graph's trunk output: no hidden layer needed.
  EXPECT_EQ(error_of(kBase, {"network.preset=cnn-small", "continual.method=icarl"}), "no error");

  EXPECT_EQ(parse_scenario(kBase, "s.yaml").hdqt.conv_mapping, ConvMapping::whole_batch);  // npu preset
  EXPECT_EQ(parse_scenario(kBase, "s.yaml", {"preset=paper"}).hdqt.conv_mapping, ConvMapping::per_sample);
  EXPECT_NE(error_of(kBase, {"conv_mapping=per_batch"}).find("conv_mapping"), std::string::npos);
}

TEST(Scenario, PresetMustFitTheDataShape) {
  // Synthetic samples are channels x steps: a one-channel image of 3 x 32 here.
  EXPECT_EQ(error_loading({"network.preset=resnet20", "data.synthetic.channels=3"}), "no error");
  EXPECT_EQ(error_loading({"network.preset=cnn-small", "data.synthetic.channels=3"}),
            "s.yaml: network.preset cnn-small on 1 x 3 x 32 samples: an image of at least 4 x 4 (two 2 x 2 "
            "poolings), the data's is 3 x 32");
  // Rows of features (a CSV file) are no images.
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("hdq_preset_shape_{}", ::getpid());
  std::filesystem::create_directories(dir);
  for (const char* f : {"train.csv", "test.csv"}) {
    std::ofstream out(dir / f);
    for (int c = 0; c < 4; ++c) out << c << ",1,2,3," << c << "\n";
  }
  EXPECT_EQ(error_loading({"network.preset=cnn-small", "data.dataset=csv", "data.path=" + (dir / "train.csv").string(),
                           "data.test_path=" + (dir / "test.csv").string()}),
            "s.yaml: network.preset cnn-small needs images (a sample shape C x H x W or H x W); the data's samples "
            "have shape {4}");
  std::filesystem::remove_all(dir);
  // Every node's activations of a step must fit the tensor limit: 65536 rows of 16 x 32 x 32.
  EXPECT_NE(error_loading({"network.preset=resnet20", "data.synthetic.channels=32", "batch=65536",
                           "continual.method=naive"})
                .find("network.preset resnet20: the activations of node 0 (conv)"),
            std::string::npos);
}

}  // namespace
}  // namespace hdq

// data.dataset cifar10 / cifar100 reach the CIFAR reader (datasets/cifar.h)
// with data.path, the limits and data.cifar100_labels; generated folders of a
// few records stand in for the real archives (docs/datasets.md).
#include "datasets/cifar.h"

namespace hdq {
namespace {

// A file of records: each the label bytes, then 3072 pixels, pixel i of record r = (r + i) % 256.
void write_cifar_file(const std::filesystem::path& f, const std::vector<std::vector<int>>& labels) {
  std::ofstream out(f, std::ios::binary);
  for (std::size_t r = 0; r < labels.size(); ++r) {
    for (int b : labels[r]) out.put(char(b));
    for (std::size_t i = 0; i < datasets::kCifarPixels; ++i) out.put(char((r + i) % 256));
  }
}

std::string data_error_loading(const std::vector<std::string>& overrides) {
  try {
    load_scenario_data(parse_scenario(kBase, "s.yaml", overrides));
  } catch (const datasets::DataError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Scenario, CifarFoldersAreDataSets) {
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("hdq_scenario_cifar_{}", ::getpid());
  std::filesystem::remove_all(dir);
  const auto c10 = dir / "cifar-10-batches-bin", c100 = dir / "cifar-100-binary";
  std::filesystem::create_directories(c10);
  std::filesystem::create_directories(c100);
  std::vector<std::vector<int>> ten, hundred;  // labels 0..9; coarse c / 5 and fine c for c in 0..99
  for (int c = 0; c < 10; ++c) ten.push_back({c});
  for (int c = 0; c < 100; ++c) hundred.push_back({c / 5, c});
  for (int b = 1; b <= 5; ++b) write_cifar_file(c10 / fmt::format("data_batch_{}.bin", b), ten);
  write_cifar_file(c10 / "test_batch.bin", ten);
  write_cifar_file(c100 / "train.bin", hundred);
  write_cifar_file(c100 / "test.bin", hundred);

  const auto d10 = load_scenario_data(
      parse_scenario(kBase, "s.yaml", {"data.dataset=cifar10", "data.path=" + c10.string(), "data.standardize=false"}));
  EXPECT_EQ(d10.train.size(), 50u);  // 5 batches of 10 records, in order
  EXPECT_EQ(d10.test.size(), 10u);
  EXPECT_EQ(d10.train.num_classes, 10);
  EXPECT_EQ(d10.train.shape, (std::vector<std::size_t>{3, 32, 32}));
  EXPECT_EQ(d10.train.labels[13], 3);            // record 3 of data_batch_2
  EXPECT_EQ(d10.train.row(13)[1], 4.0f / 255.0f);  // pixel 1 of record 3: (3 + 1) % 256, unstandardized
  // The loader's limits: the first samples of each split.
  const auto lim = load_scenario_data(parse_scenario(
      kBase, "s.yaml", {"data.dataset=cifar10", "data.path=" + c10.string(), "data.limit_train=20", "data.limit_test=10"}));
  EXPECT_EQ(lim.train.size(), 20u);

  const Scenario fine = parse_scenario(kBase, "s.yaml", {"data.dataset=cifar100", "data.path=" + c100.string()});
  EXPECT_EQ(fine.data.cifar100_labels, "fine");  // the default
  const auto d100 = load_scenario_data(fine);
  EXPECT_EQ(d100.train.num_classes, 100);
  EXPECT_EQ(d100.train.labels[42], 42);
  const auto coarse = load_scenario_data(parse_scenario(
      kBase, "s.yaml", {"data.dataset=cifar100", "data.path=" + c100.string(), "data.cifar100_labels=coarse"}));
  EXPECT_EQ(coarse.train.num_classes, 20);
  EXPECT_EQ(coarse.train.labels[42], 8);  // superclass 42 / 5 as written above

  // Absent data: the folder is named and the message says how to get the files.
  const std::string missing = data_error_loading({"data.dataset=cifar10", "data.path=" + (dir / "nope").string()});
  EXPECT_NE(missing.find((dir / "nope").string() + ": no such folder"), std::string::npos) << missing;
  EXPECT_NE(missing.find("docs/datasets.md"), std::string::npos) << missing;
  std::filesystem::remove(c10 / "data_batch_4.bin");
  EXPECT_NE(data_error_loading({"data.dataset=cifar10", "data.path=" + c10.string()})
                .find((c10 / "data_batch_4.bin").string() + ": no such file"),
            std::string::npos);
  std::filesystem::remove_all(dir);

  EXPECT_EQ(error_of(kBase, {"data.dataset=cifar-10"}),
            "s.yaml: --set data.dataset: 'cifar-10' is not one of: fashion-mnist, synthetic, uci-har, csv, cifar10, "
            "cifar100");
  EXPECT_EQ(error_of(kBase, {"data.dataset=cifar100", "data.cifar100_labels=superclass"}),
            "s.yaml: --set data.cifar100_labels: 'superclass' is not one of: fine, coarse");
  EXPECT_EQ(error_of(kBase, {"data.dataset=cifar10", "data.cifar100_labels=coarse"}),
            "s.yaml: --set data.cifar100_labels: applies to dataset cifar100 only, not cifar10");
}

}  // namespace
}  // namespace hdq
