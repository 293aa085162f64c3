// A scenario file (YAML, pure data; schema in docs/scenarios.md) parsed into
// the settings of one class-incremental training run. `--set key=value`
// overrides address the same dotted paths as the file, so every knob has one
// name. Errors name the file, the field and the line, and nothing runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/common/errors.h"
#include "models/hdqt/hdqt_config.h"
#include "models/nn/network.h"

namespace hdq {

struct ScenarioError : ConfigError {
  using ConfigError::ConfigError;
};

struct SyntheticSpec {
  int classes = 10;
  int channels = 3;
  int steps = 32;
  int train_per_class = 300;
  int test_per_class = 100;
  float noise = 0.5f;
  int image_channels = 1;  // > 1: samples are image_channels x (channels / image_channels) x steps images
};

struct DataSpec {
  std::string dataset = "fashion-mnist";  // fashion-mnist | synthetic | uci-har | csv | cifar10 | cifar100
  std::string path;                       // folder (fashion-mnist, uci-har, cifar10, cifar100) or train CSV file
  std::string cifar100_labels = "fine";   // cifar100: fine (100 classes) | coarse (20 superclasses)
  std::string test_path;                  // csv only: the test CSV file
  int limit_train = 0;                    // 0: all samples
  int limit_test = 0;
  bool standardize = true;
  SyntheticSpec synthetic;
};

struct ContinualSpec {
  int classes_per_task = 2;
  std::uint64_t class_order_seed = 1;
  std::string method = "er";  // naive | er | joint | lwf | icarl | bic | der
  int replay_capacity = 1000;    // memory budget in samples: er's reservoir, icarl/bic/der exemplars
  int replay_batch = 0;          // er: replayed samples per step, 0: same as batch
  float kd_temperature = 2.0f;   // lwf, icarl, bic: distillation temperature T
  float lwf_weight = 3.0f;       // lwf: loss = CE(new classes) + lwf_weight * KD(old classes)
  float bic_val_fraction = 0.1f; // bic: share of each class's exemplar quota held out for the bias layer
  int bic_epochs = 0;            // bic: epochs of the bias-layer stage, 0: same as epochs
  float bic_lr = 0.0f;           // bic: learning rate of the bias-layer stage, 0: same as lr
};

// Every continual.method, in the order tables list them.
inline const std::vector<std::string>& continual_methods() {
  static const std::vector<std::string> m{"naive", "er", "joint", "lwf", "icarl", "bic", "der"};
  return m;
}

struct TrainSpec {
  int epochs = 5;
  int batch = 128;
  SgdConfig sgd{.lr = 0.05f, .momentum = 0.9f, .weight_decay = 0.0f};
  std::vector<int> milestones;  // epochs (within a task) at which lr *= gamma
  float gamma = 0.1f;
};

// An optional closed interval; an absent side is unbounded.
struct Bound {
  std::optional<double> min, max;
  bool holds(double v) const { return (!min || v >= *min) && (!max || v <= *max); }
  bool empty() const { return !min && !max; }
};

// Overflow expectation on one metric of one layer/role ("all" matches every one).
struct OverflowExpect {
  std::string layer;   // "layer0", ..., or "all"
  std::string role;    // "fwd", "bwd_dx", "bwd_dw", or "all"
  std::string metric;  // "inner_event_rate" | "outer_overflows"
  Bound bound;
};

// What a regression run of one engine must produce (docs/scenarios.md, `expect`).
struct EngineExpect {
  std::string engine;              // functional | golden | npu
  std::optional<std::string> signature;  // 16 lowercase hex digits
  int signature_line = 0;          // 1-based line of the signature value in the file (0: none)
  Bound final_avg_accuracy;        // percent
  Bound gap_to_golden;             // final_avg_accuracy minus the golden run's, points
  Bound forgetting;
  std::vector<OverflowExpect> overflow;
  Bound cycles_per_step;           // npu
  Bound energy_pj_per_step;        // npu
};

struct Scenario {
  std::string file;
  std::string name;
  std::string description;
  std::uint64_t seed = 1;
  DataSpec data;
  NetworkSpec network;  // MLP 256-256 unless the file says otherwise
  ContinualSpec continual;
  TrainSpec train;
  std::string preset = "paper";
  HdqtConfig hdqt;
  int compare_every = 50;  // functional engine: golden gradient comparison every N steps (0: never)
  std::string label = "fast";          // CTest label of the scenario: fast | slow
  std::vector<EngineExpect> expect;    // regression expectations, one per engine
};

// Rows of one training step: `batch`, plus `replay_batch` (0: batch) replayed
// samples with method er.
long long step_rows(const Scenario& s);

// Reads `file`, applies overrides ("a.b.c=value", value in YAML syntax), validates.
Scenario load_scenario(const std::string& file, const std::vector<std::string>& overrides = {});

// The same from YAML text (for tests); `file` is only used in messages.
Scenario parse_scenario(const std::string& yaml_text, const std::string& file,
                        const std::vector<std::string>& overrides = {});

// The scenario file's tree after the overrides, as JSON with sorted keys and
// every scalar as its text: the same document whatever the file's layout,
// comments or key order (for cache keys). Call after load_scenario accepted
// the same file and overrides.
nlohmann::json effective_scenario(const std::string& file, const std::vector<std::string>& overrides = {});

// 16 hex digits: a hash of `salt` and effective_scenario(file, overrides)
// without the fields that do not change training (name, description, label,
// expect) and without `per_run` (dotted keys a grid sets per cell, such as
// seed). A result folder's identity and its cells' keys use it, so an edited
// scenario never reuses a stale result; it does not cover the simulator's own
// code. Call after load_scenario accepted the same file and overrides.
std::string scenario_hash(const std::string& file, const std::vector<std::string>& overrides,
                          const std::vector<std::string>& per_run, const std::string& salt);

// Refuses (ScenarioError naming the key) an override list that sets one key
// twice, or a field and a key inside it ("gemm.fwd" and "gemm.fwd.tile"):
// one of the values would silently win. load_scenario calls it; commands
// with keys of their own (npu.<key>) call it on their whole --set list.
void check_override_keys(const std::vector<std::string>& overrides);

}  // namespace hdq
