#include "training/sweep.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <sstream>

#include "models/common/errors.h"

namespace hdq {

namespace fs = std::filesystem;
using json = nlohmann::json;

json SweepSpec::to_json() const {
  json axes_j = json::array();
  for (const auto& a : axes) axes_j.push_back({{"key", a.key}, {"values", a.values}});
  return {{"scenario", scenario}, {"scenario_hash", scenario_hash}, {"engine", engine},
          {"axes", axes_j},       {"seeds", seeds},                 {"overrides", overrides}};
}

SweepSpec SweepSpec::from_json(const json& j) {
  SweepSpec s;
  s.scenario = j.at("scenario");
  s.scenario_hash = j.value("scenario_hash", "");  // absent in folders of older versions: never equal
  s.engine = j.at("engine");
  for (const auto& a : j.at("axes")) s.axes.push_back({a.at("key"), a.at("values")});
  s.seeds = j.at("seeds");
  s.overrides = j.at("overrides").get<std::vector<std::string>>();
  return s;
}

namespace {
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::stringstream ss(s);
  for (std::string v; std::getline(ss, v, sep);) parts.push_back(v);
  if (!s.empty() && s.back() == sep) parts.emplace_back();
  return parts;
}
}  // namespace

std::vector<std::pair<std::string, std::string>> expand_setting(const std::string& key, const std::string& value) {
  if (key.find('+') == std::string::npos) return {{key, value}};
  const std::vector<std::string> keys = split(key, '+'), parts = split(value, '+');
  if (parts.size() != keys.size())
    throw ConfigError(fmt::format("--set {}: value '{}' has {} part(s) joined by '+', the zipped keys are {}", key, value,
                                  parts.size(), keys.size()));
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (parts[i].empty()) throw ConfigError(fmt::format("--set {}: empty part in value '{}'", key, value));
    out.emplace_back(keys[i], parts[i]);
  }
  return out;
}

void add_sweep_setting(SweepSpec& spec, const std::string& kv) {
  const auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) throw ConfigError(fmt::format("--set '{}': expected key=value[,value...]", kv));
  const std::string key = kv.substr(0, eq), rest = kv.substr(eq + 1);
  const std::vector<std::string> keys = split(key, '+');
  for (const auto& k : keys) {
    if (k.empty()) throw ConfigError(fmt::format("--set {}: empty key in the zipped keys", key));
    if (k == "seed")
      throw ConfigError("--set seed: a sweep sets the seed of each point (1..N with --seeds N); remove --set seed");
    const std::string which = keys.size() == 1 ? "the key" : k;  // in a zipped axis, name the part
    for (const auto& a : spec.axes)
      for (const auto& ak : split(a.key, '+'))
        if (ak == k)
          throw ConfigError(fmt::format("--set {}: {} is already swept ({}{}); give it once", key, which,
                                        a.key == k ? "" : a.key + "=", fmt::join(a.values, ",")));
    for (const auto& o : spec.overrides)
      if (o.substr(0, o.find('=')) == k)
        throw ConfigError(fmt::format("--set {}: {} is already fixed ({}); give it once", key, which, o));
    if (std::count(keys.begin(), keys.end(), k) > 1)
      throw ConfigError(fmt::format("--set {}: {} is zipped twice; give it once", key, k));
  }
  // A YAML list value ("[1,2]") is one value, not an axis; zipped keys always make an axis.
  if (keys.size() == 1 && (rest.find(',') == std::string::npos || rest.front() == '[')) {
    spec.overrides.push_back(kv);
    return;
  }
  SweepAxis axis{key, {}};
  for (const std::string& v : split(rest, ',')) {
    if (v.empty()) throw ConfigError(fmt::format("--set {}: empty value in '{}'", key, rest));
    expand_setting(key, v);  // checks the part count
    axis.values.push_back(v);
  }
  spec.axes.push_back(axis);
}

std::vector<std::string> SweepPoint::overrides() const {
  std::vector<std::string> o;
  for (const auto& [k, v] : settings)
    for (const auto& [key, value] : expand_setting(k, v)) o.push_back(fmt::format("{}={}", key, value));
  o.push_back(fmt::format("seed={}", seed));
  return o;
}

std::string SweepPoint::id() const { return fmt::format("p{:04d}", index); }

std::vector<SweepPoint> enumerate_points(const SweepSpec& spec) {
  require_in_range("--seeds", spec.seeds, 1, 1000);
  std::size_t grid = 1;
  for (const auto& a : spec.axes) grid *= a.values.size();
  std::vector<SweepPoint> points;
  for (std::size_t g = 0; g < grid; ++g) {
    // Mixed-radix digits of g, the last axis fastest.
    std::vector<std::pair<std::string, std::string>> settings(spec.axes.size());
    std::size_t rest = g;
    for (std::size_t a = spec.axes.size(); a-- > 0;) {
      const auto& vals = spec.axes[a].values;
      settings[a] = {spec.axes[a].key, vals[rest % vals.size()]};
      rest /= vals.size();
    }
    for (int s = 1; s <= spec.seeds; ++s) {
      SweepPoint p;
      p.index = int(points.size());
      p.settings = settings;
      p.seed = s;
      points.push_back(std::move(p));
    }
  }
  return points;
}

Shard Shard::parse(const std::string& s) {
  Shard sh;
  const auto slash = s.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    sh.index = std::stoi(s.substr(0, slash));
    sh.count = std::stoi(s.substr(slash + 1));
  } catch (const std::exception&) {
    throw ConfigError(fmt::format("--shard '{}': expected I/N, e.g. 0/3", s));
  }
  if (sh.count < 1 || sh.index < 0 || sh.index >= sh.count)
    throw ConfigError(fmt::format("--shard {}: need 0 <= I < N", s));
  return sh;
}

ResultFolder open_sweep_dir(const fs::path& dir, const SweepSpec& spec) {
  return ResultFolder(dir, "sweep", spec.to_json(), "points");
}

SweepResults read_sweep_dir(const fs::path& dir) {
  SweepResults r;
  r.spec = SweepSpec::from_json(read_json_file(dir / "sweep.json"));
  if (fs::is_directory(dir / "points"))
    for (const auto& e : fs::directory_iterator(dir / "points"))
      if (e.path().extension() == ".json") {
        json p = read_json_file(e.path());
        const int index = p.at("index");
        r.points[index] = std::move(p);
      }
  return r;
}

namespace {
const std::vector<std::string> kMetrics{"final_avg_accuracy", "avg_incremental_accuracy", "forgetting",
                                        "backward_transfer",  "fwd_inner_event_rate",     "bwd_inner_event_rate",
                                        "outer_overflows",    "max_abs_tile_sum",         "cycles_per_step",
                                        "energy_pj_per_step", "mac_array_energy_pj_per_step", "dram_bytes_per_step",
                                        "steps",              "signature"};

std::string cell(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{:.6g}", v.get<double>());
  return v.dump();
}
}  // namespace

std::string sweep_csv(const SweepResults& r) {
  std::string s = "index";
  // Appended piece by piece: GCC 12 warns (-Wrestrict, falsely) on "," + std::string here.
  for (const auto& a : r.spec.axes) s.append(",").append(a.key);
  s += ",seed";
  for (const auto& m : kMetrics) s.append(",").append(m);
  s += "\n";
  for (const auto& [index, p] : r.points) {
    s += std::to_string(index);
    for (const auto& a : r.spec.axes) s.append(",").append(p.at("settings").value(a.key, std::string()));
    s += fmt::format(",{}", p.at("seed").get<int>());
    const json& m = p.at("metrics");
    for (const auto& k : kMetrics) s.append(",").append(cell(m.contains(k) ? m.at(k) : json()));
    s += "\n";
  }
  return s;
}

json sweep_json(const SweepResults& r) {
  json points = json::array();
  for (const auto& [index, p] : r.points)
    points.push_back({{"index", index}, {"settings", p.at("settings")}, {"seed", p.at("seed")}, {"metrics", p.at("metrics")}});
  return {{"sweep", r.spec.to_json()}, {"points", points}};
}

}  // namespace hdq
