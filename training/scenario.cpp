#include "training/scenario.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <set>

#include "models/common/input_file.h"
#include "models/common/names.h"
#include "models/common/yaml_fields.h"

namespace hdq {
namespace {

using Reader = yaml_fields::Reader<ScenarioError>;

void read_accumulator(Reader& r, const std::string& p, AccumulatorConfig& a) {
  r.read_in_range(p + ".acc_bits", a.acc_bits, 2, 32);
  r.read_in_range(p + ".tile", a.tile, 0, 1 << 30);
  r.read_enum(p + ".acc_mode", a.mode, parse_acc_mode);
  r.read_enum(p + ".acc_range", a.range, parse_acc_range);
  r.read_in_range(p + ".outer_bits", a.outer_bits, 2, 32);
}

void read_quant(Reader& r, const std::string& p, QuantConfig& q) {
  r.read_in_range(p + ".bits", q.bits, 2, 8);
  r.read_enum(p + ".rounding", q.rounding, parse_rounding);
  r.read_in_range(p + ".sr_bits", q.sr_bits, 1, 23);
  if (r.read(p + ".clip", q.clip) && !(q.clip > 0.0f && q.clip <= 1.0f))
    r.fail(p + ".clip", fmt::format("{} is outside the allowed range (0, 1]", q.clip));
  r.read_enum(p + ".signedness", q.signedness, parse_signedness);
  r.read_enum(p + ".scale_mode", q.scale_mode, parse_scale_mode);
}

void read_bound(Reader& r, const std::string& p, Bound& b) {
  double v;
  if (r.read(p + ".min", v)) b.min = v;
  if (r.read(p + ".max", v)) b.max = v;
  if (b.min && b.max && *b.min > *b.max) r.fail(p, fmt::format("min {} is above max {}", *b.min, *b.max));
}

void read_expectations(Reader& r, Scenario& s) {
  for (const char* engine : {"functional", "golden", "npu"}) {
    const std::string p = fmt::format("expect.{}", engine);
    const auto node = r.find(p);
    if (!node) continue;
    EngineExpect e;
    e.engine = engine;
    std::string sig;
    if (r.read(p + ".signature", sig)) {
      const bool hex = sig.size() == 16 && sig.find_first_not_of("0123456789abcdef") == std::string::npos;
      if (!hex && !sig.empty()) r.fail(p + ".signature", "must be 16 lowercase hex digits (or empty, to be filled by --update-signatures)");
      e.signature = sig;
      e.signature_line = r.find(p + ".signature")->Mark().line + 1;
    }
    read_bound(r, p + ".final_avg_accuracy", e.final_avg_accuracy);
    read_bound(r, p + ".gap_to_golden", e.gap_to_golden);
    read_bound(r, p + ".forgetting", e.forgetting);
    read_bound(r, p + ".cycles_per_step", e.cycles_per_step);
    read_bound(r, p + ".energy_pj_per_step", e.energy_pj_per_step);
    if (const auto ov = r.find(p + ".overflow"); ov && ov->IsMap())
      for (const auto& layer : *ov) {
        const std::string ln = layer.first.as<std::string>();
        if (!layer.second.IsMap()) r.fail(p + ".overflow." + ln, "expected a mapping of GEMM roles");
        for (const auto& role : layer.second) {
          const std::string rn = role.first.as<std::string>();
          if (rn != "all" && rn != "fwd" && rn != "bwd_dx" && rn != "bwd_dw")
            r.fail(fmt::format("{}.overflow.{}.{}", p, ln, rn), "role must be one of: fwd, bwd_dx, bwd_dw, all");
          for (const char* metric : {"inner_event_rate", "outer_overflows"}) {
            OverflowExpect o{ln, rn, metric, {}};
            read_bound(r, fmt::format("{}.overflow.{}.{}.{}", p, ln, rn, metric), o.bound);
            if (!o.bound.empty()) e.overflow.push_back(o);
          }
        }
      }
    s.expect.push_back(std::move(e));
  }
}

nlohmann::json canonical(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json j = nlohmann::json::object();  // std::map underneath: keys sorted
      for (const auto& kv : n) j[kv.first.as<std::string>()] = canonical(kv.second);
      return j;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& e : n) j.push_back(canonical(e));
      return j;
    }
    case YAML::NodeType::Scalar: return n.Scalar();
    default: return nullptr;
  }
}

Scenario parse_tree(YAML::Node root, const std::string& file, const std::vector<std::string>& overrides) {
  if (!root.IsMap()) throw ScenarioError(fmt::format("{}: a scenario is a YAML mapping of fields", file));
  check_override_keys(overrides);
  auto overridden = yaml_fields::apply_overrides<ScenarioError>(root, overrides);
  Reader r(root, file, std::move(overridden), "docs/scenarios.md");
  Scenario s;
  s.file = file;
  r.read("name", s.name);
  r.read("description", s.description);
  r.read("seed", s.seed);

  r.read("data.dataset", s.data.dataset);
  if (s.data.dataset != "fashion-mnist" && s.data.dataset != "synthetic" && s.data.dataset != "uci-har" &&
      s.data.dataset != "csv" && s.data.dataset != "cifar10" && s.data.dataset != "cifar100")
    r.fail("data.dataset", fmt::format("'{}' is not one of: fashion-mnist, synthetic, uci-har, csv, cifar10, cifar100",
                                       s.data.dataset));
  r.read("data.path", s.data.path);
  if (r.read("data.cifar100_labels", s.data.cifar100_labels)) {
    if (s.data.cifar100_labels != "fine" && s.data.cifar100_labels != "coarse")
      r.fail("data.cifar100_labels", fmt::format("'{}' is not one of: fine, coarse", s.data.cifar100_labels));
    if (s.data.dataset != "cifar100")
      r.fail("data.cifar100_labels", fmt::format("applies to dataset cifar100 only, not {}", s.data.dataset));
  }
  r.read("data.test_path", s.data.test_path);
  if ((s.data.dataset == "uci-har" || s.data.dataset == "csv") && s.data.path.empty())
    r.fail("data.path", fmt::format("required for dataset {}", s.data.dataset));
  if (s.data.dataset == "csv" && s.data.test_path.empty()) r.fail("data.test_path", "required for dataset csv");
  r.read_in_range("data.limit_train", s.data.limit_train, 0, 1 << 30);
  r.read_in_range("data.limit_test", s.data.limit_test, 0, 1 << 30);
  r.read("data.standardize", s.data.standardize);
  SyntheticSpec& syn = s.data.synthetic;
  r.read_in_range("data.synthetic.classes", syn.classes, 2, 1000);
  r.read_in_range("data.synthetic.channels", syn.channels, 1, 1024);
  r.read_in_range("data.synthetic.steps", syn.steps, 1, 1 << 16);
  r.read_in_range("data.synthetic.image_channels", syn.image_channels, 1, 1024);
  if (syn.channels % syn.image_channels != 0)
    r.fail("data.synthetic.image_channels",
           fmt::format("{} does not divide data.synthetic.channels = {}", syn.image_channels, syn.channels));
  r.read_in_range("data.synthetic.train_per_class", syn.train_per_class, 1, 1 << 20);
  r.read_in_range("data.synthetic.test_per_class", syn.test_per_class, 1, 1 << 20);
  if (r.read("data.synthetic.noise", syn.noise) && !(syn.noise >= 0.0f))
    r.fail("data.synthetic.noise", "must be >= 0");
  // Sizes that would only fail at allocation are named here (models/common/errors.h).
  auto check_tensor = [&](const std::string& path, const std::string& what, std::initializer_list<long long> dims) {
    try {
      require_tensor_elements(what, dims);
    } catch (const ConfigError& e) {
      r.fail(path, e.what());
    }
  };
  if (s.data.dataset == "synthetic")
    check_tensor("data.synthetic", "the training split (classes x train_per_class) x (channels x steps)",
                 {syn.classes * (long long)syn.train_per_class, syn.channels * (long long)syn.steps});

  // The network: an MLP (network.hidden) or a named layer graph (network.preset), not both.
  std::vector<int>& hidden = s.network.hidden;
  const bool has_hidden = r.read("network.hidden", hidden);
  if (r.read("network.preset", s.network.preset)) {
    if (has_hidden)
      r.fail("network.preset", "network.hidden (an MLP) and network.preset (a layer graph) exclude each other; to "
                               "replace a file's MLP give the whole section: --set 'network={preset: cnn-small}'");
    if (std::ranges::find(network_presets(), s.network.preset) == network_presets().end())
      r.fail("network.preset",
             fmt::format("'{}' is not one of: {}", s.network.preset, fmt::join(network_presets(), ", ")));
    hidden.clear();
  }
  for (int w : hidden)
    if (w < 1 || w > (1 << 20)) r.fail("network.hidden", fmt::format("width {} is outside 1..{}", w, 1 << 20));
  for (std::size_t i = 0; i + 1 < hidden.size(); ++i)
    check_tensor("network.hidden", fmt::format("the weights of hidden layer {} ({} x {})", i + 1, hidden[i + 1], hidden[i]),
                 {hidden[i + 1], hidden[i]});

  ContinualSpec& c = s.continual;
  r.read_in_range("continual.classes_per_task", c.classes_per_task, 1, 1 << 20);
  r.read("continual.class_order_seed", c.class_order_seed);
  r.read("continual.method", c.method);
  if (std::ranges::find(continual_methods(), c.method) == continual_methods().end())
    r.fail("continual.method", fmt::format("'{}' is not one of: {}", c.method, fmt::join(continual_methods(), ", ")));
  r.read_in_range("continual.replay_capacity", c.replay_capacity, 0, 1 << 30);
  r.read_in_range("continual.replay_batch", c.replay_batch, 0, 1 << 20);
  // Herding and DER's concatenated representation use the last hidden layer's
  // features (a layer graph's: its trunk's output, network.h).
  if ((c.method == "icarl" || c.method == "bic" || c.method == "der") && !s.network.is_graph() && hidden.empty())
    r.fail("network.hidden", fmt::format("method {} needs at least one hidden layer (its features)", c.method));
  if (r.read("continual.kd_temperature", c.kd_temperature) && !(c.kd_temperature > 0.0f))
    r.fail("continual.kd_temperature", "must be > 0");
  if (r.read("continual.lwf_weight", c.lwf_weight) && !(c.lwf_weight >= 0.0f)) r.fail("continual.lwf_weight", "must be >= 0");
  if (r.read("continual.bic_val_fraction", c.bic_val_fraction) && !(c.bic_val_fraction > 0.0f && c.bic_val_fraction < 1.0f))
    r.fail("continual.bic_val_fraction", "must be in (0, 1)");
  r.read_in_range("continual.bic_epochs", c.bic_epochs, 0, 100000);
  if (r.read("continual.bic_lr", c.bic_lr) && !(c.bic_lr >= 0.0f)) r.fail("continual.bic_lr", "must be >= 0");

  TrainSpec& t = s.train;
  r.read_in_range("epochs", t.epochs, 1, 100000);
  r.read_in_range("batch", t.batch, 1, 1 << 16);
  if (!hidden.empty())
    check_tensor("batch", "the activations of the widest hidden layer (batch + replay_batch) x width",
                 {step_rows(s), *std::ranges::max_element(hidden)});
  if (r.read("lr", t.sgd.lr) && !(t.sgd.lr > 0.0f)) r.fail("lr", "must be > 0");
  if (r.read("momentum", t.sgd.momentum) && !(t.sgd.momentum >= 0.0f && t.sgd.momentum < 1.0f))
    r.fail("momentum", "must be in [0, 1)");
  if (r.read("weight_decay", t.sgd.weight_decay) && !(t.sgd.weight_decay >= 0.0f)) r.fail("weight_decay", "must be >= 0");
  r.read("milestones", t.milestones);
  for (std::size_t i = 0; i < t.milestones.size(); ++i)
    if (t.milestones[i] < 1 || (i > 0 && t.milestones[i] <= t.milestones[i - 1]))
      r.fail("milestones", "must be positive epochs in ascending order");
  if (r.read("gamma", t.gamma) && !(t.gamma > 0.0f && t.gamma <= 1.0f)) r.fail("gamma", "must be in (0, 1]");

  // HDQT knobs: preset, then the all-role shorthands, then groups, then single roles.
  r.read("preset", s.preset);
  try {
    s.hdqt = hdqt_preset(s.preset);
  } catch (const ConfigError& e) {
    r.fail("preset", e.what());
  }
  int operand_bits = 0, sr_bits = 0;
  if (r.read_in_range("operand_bits", operand_bits, 2, 8))
    for (auto& q : s.hdqt.quant) q.bits = operand_bits;
  if (r.read_in_range("sr_bits", sr_bits, 1, 23))
    for (auto& q : s.hdqt.quant) q.sr_bits = sr_bits;
  read_accumulator(r, "gemm.fwd", s.hdqt.acc(GemmRole::fwd));
  for (GemmRole g : {GemmRole::bwd_dx, GemmRole::bwd_dw}) read_accumulator(r, "gemm.bwd", s.hdqt.acc(g));
  for (GemmRole g : {GemmRole::bwd_dx, GemmRole::bwd_dw})
    read_accumulator(r, fmt::format("gemm.{}", name(g)), s.hdqt.acc(g));
  for (int g = 0; g < kGemmRoles; ++g) {
    const AccumulatorConfig& a = s.hdqt.gemm[g];
    if (a.outer_bits < a.acc_bits)
      r.fail(fmt::format("gemm.{}.outer_bits", name(GemmRole(g))),
             fmt::format("outer_bits = {} is below acc_bits = {}", a.outer_bits, a.acc_bits));
  }
  for (int q = 0; q < kQuantRoles; ++q) read_quant(r, fmt::format("quant.{}", name(QuantRole(q))), s.hdqt.quant[q]);
  int max_block = 0;
  if (r.read_in_range("hadamard.max_block", max_block, 0, 1 << 20)) {
    if (max_block == 0) s.hdqt.hadamard.max_block.reset();  // 0: no cap
    else if ((max_block & (max_block - 1)) != 0) r.fail("hadamard.max_block", fmt::format("{} is not a power of two", max_block));
    else s.hdqt.hadamard.max_block = max_block;
  }
  r.read("hadamard.pad", s.hdqt.hadamard.pad);
  if (s.hdqt.hadamard.pad && !s.hdqt.hadamard.max_block) r.fail("hadamard.pad", "pad = true requires hadamard.max_block");
  r.read_enum("ste", s.hdqt.ste, parse_ste);
  r.read_enum("conv_mapping", s.hdqt.conv_mapping, parse_conv_mapping);
  r.read_in_range("compare_every", s.compare_every, 0, 1 << 30);
  r.read("label", s.label);
  if (s.label != "fast" && s.label != "slow") r.fail("label", fmt::format("'{}' is not one of: fast, slow", s.label));
  read_expectations(r, s);

  r.reject_unknown();
  validate(s.hdqt);
  return s;
}

}  // namespace

long long step_rows(const Scenario& s) {
  const ContinualSpec& c = s.continual;
  return s.train.batch + (c.method == "er" ? (c.replay_batch ? c.replay_batch : s.train.batch) : 0);
}

Scenario parse_scenario(const std::string& yaml_text, const std::string& file, const std::vector<std::string>& overrides) {
  return parse_tree(yaml_fields::load_document<ScenarioError>(yaml_text, file), file, overrides);
}

namespace {

std::string scenario_text(const std::string& file) {
  return rethrow_input_error<ScenarioError>([&] { return read_input_file(file, kMaxConfigFileBytes, "a scenario file"); });
}

}  // namespace

Scenario load_scenario(const std::string& file, const std::vector<std::string>& overrides) {
  return parse_scenario(scenario_text(file), file, overrides);
}

nlohmann::json effective_scenario(const std::string& file, const std::vector<std::string>& overrides) {
  YAML::Node root = yaml_fields::load_document<ScenarioError>(scenario_text(file), file);
  yaml_fields::apply_overrides<ScenarioError>(root, overrides);
  return canonical(root);
}

namespace {
std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a offset basis and prime (64-bit)
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}
}  // namespace

std::string scenario_hash(const std::string& file, const std::vector<std::string>& overrides,
                          const std::vector<std::string>& per_run, const std::string& salt) {
  nlohmann::json j = effective_scenario(file, overrides);
  for (const char* k : {"name", "description", "label", "expect"}) j.erase(k);
  for (const auto& key : per_run) {
    const std::vector<std::string> path = yaml_fields::split_path(key);
    nlohmann::json* parent = &j;
    for (std::size_t i = 0; i + 1 < path.size() && parent; ++i)
      parent = parent->is_object() && parent->contains(path[i]) ? &(*parent)[path[i]] : nullptr;
    if (parent && parent->is_object()) parent->erase(path.back());
  }
  return fmt::format("{:016x}", fnv1a64(salt + "\n" + j.dump()));
}

void check_override_keys(const std::vector<std::string>& overrides) {
  const auto key_of = [](const std::string& o) { return o.substr(0, o.find('=')); };
  for (std::size_t i = 0; i < overrides.size(); ++i)
    for (std::size_t j = i + 1; j < overrides.size(); ++j) {
      const std::string a = key_of(overrides[i]), b = key_of(overrides[j]);
      if (a == b)
        throw ScenarioError(fmt::format("--set {}: given twice ({} and {}); give each key once", a, overrides[i],
                                        overrides[j]));
      const std::string& outer = a.size() < b.size() ? a : b;
      const std::string& inner = a.size() < b.size() ? b : a;
      if (inner.starts_with(outer + "."))
        throw ScenarioError(fmt::format("--set {} and --set {}: the second key is inside the first, so one value "
                                        "would silently win; give each field once",
                                        outer, inner));
    }
}

}  // namespace hdq
