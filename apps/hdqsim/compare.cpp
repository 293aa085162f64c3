// `hdqsim compare`: the grid continual-learning method x preset x seed of one
// scenario, run in parallel, each finished cell stored as its own file (so a
// rerun resumes and an interrupted run loses nothing finished), summarized as
// a Markdown and a CSV table: per method, per preset, mean and sample standard
// deviation over the seeds of final average accuracy, average incremental
// accuracy and forgetting, and the HDQT-minus-golden gap.
//
// Folder layout (--out DIR, a ResultFolder of training/grid.h):
//   DIR/compare.json                                  the grid's identity
//   DIR/cells/<method>-<preset>-s<seed>-<hash>.json  one finished cell
//   DIR/compare.md, DIR/compare.csv                   the table of this grid
// <hash> is scenario_hash(): the effective scenario (file after --set)
// without the fields a cell sets itself (seed, preset, continual.method) and
// without the fields that do not change training (name, description, label,
// expect), so an edited scenario never reuses a stale cell. The identity is
// the hash, the methods, the presets and the seeds: a folder holding another
// grid is refused before its table is replaced. The hash does not cover the
// simulator's own code: after a deliberate change of the numerics, use a new
// folder.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "apps/hdqsim/commands.h"
#include "apps/hdqsim/engines.h"
#include "models/common/output_files.h"
#include "training/continual.h"
#include "training/grid.h"

namespace hdq::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// The preset name that means "the float golden model" instead of an HDQT preset.
constexpr const char* kGolden = "golden";
// Part of the hash input: change it when a cell file's content changes meaning.
// 2: the result under `metrics` in the one form of result_json().
constexpr const char* kCellFormat = "hdqsim-compare-cell-2";

// The table's metrics, in column order (fields of ContinualResult, percent / points).
struct Metric {
  std::string key, label;
};
const std::vector<Metric> kMetrics{{"final_avg_accuracy", "final avg acc"},
                                   {"avg_incremental_accuracy", "avg incr acc"},
                                   {"forgetting", "forgetting"}};

struct Cell {
  std::string method, preset;
  std::uint64_t seed = 0;
  std::string key;                     // file stem: <method>-<preset>-s<seed>-<hash>
  std::vector<std::string> overrides;  // user --set (but seed), then continual.method, preset, seed
  Scenario scenario;                   // loaded (so validated) before anything runs
  std::string label() const { return fmt::format("{}/{}/seed {}", method, preset, seed); }
};

// ---- input validation (before anything touches the disk) ----

// A scenario loaded with extra overrides; a ScenarioError is re-thrown naming `flag`.
Scenario load_naming(const std::string& file, std::vector<std::string> overrides, const std::vector<std::string>& extra,
                     const std::string& flag) {
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  try {
    return load_scenario(file, overrides);
  } catch (const ConfigError& e) {
    throw ConfigError(fmt::format("{}: {}", flag, e.what()));
  }
}

void check_list(const std::string& flag, const std::vector<std::string>& values) {
  if (values.empty()) throw ConfigError(fmt::format("{}: give at least one name", flag));
  std::set<std::string> seen;
  for (const auto& v : values) {
    if (v.empty()) throw ConfigError(fmt::format("{}: empty name in the list", flag));
    // Names become file names: keep them to a safe alphabet.
    if (v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.") != std::string::npos)
      throw ConfigError(fmt::format("{}: '{}' has characters other than letters, digits, '_', '+', '.'", flag, v));
    if (!seen.insert(v).second) throw ConfigError(fmt::format("{}: '{}' is listed twice", flag, v));
  }
}

// ---- one cell ----

// A method's other classifiers' accuracy summaries (iCaRL: "head_..." beside
// the nearest-mean classifier) among its extra_metrics get table columns; the
// rest (memory sizes, bias-layer values, distillation loss) stay in the cell
// files.
bool is_table_metric(const std::string& key) { return key.ends_with("_accuracy") || key.ends_with("_forgetting"); }

json run_cell(const Cell& c, int threads) {
  const datasets::TrainTest data = load_scenario_data(c.scenario);
  const std::string engine = c.preset == kGolden ? "golden" : "functional";
  const auto e = make_engine(c.scenario, engine, threads);
  const ContinualResult r = run_continual(c.scenario, data, *e);
  return {{"key", c.key},
          {"method", c.method},
          {"preset", c.preset},
          {"seed", c.seed},
          {"engine", engine},
          {"scenario", c.scenario.file},
          {"scenario_name", c.scenario.name},
          {"overrides", c.overrides},
          {"metrics", result_json(r)},
          {"threads", threads},
          {"wall_s", r.wall_s}};
}

bool is_finished_cell(const json& j) {
  const json::json_pointer acc("/metrics/final_avg_accuracy");
  return j.contains(acc) && j.at(acc).is_number();
}

// ---- the table ----

struct Stats {
  std::size_t n = 0;
  double mean = 0, std = 0;  // std: sample standard deviation (n - 1); 0 when n < 2
};

Stats stats(const std::vector<double>& v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  if (v.size() < 2) return s;
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(ss / double(v.size() - 1));
  return s;
}

struct Table {
  std::vector<std::string> methods, presets;
  std::vector<Metric> metrics;  // kMetrics, then every extra metric found in the grid (sorted by name)
  std::map<std::pair<std::string, std::string>, std::vector<Stats>> cells;  // (method, preset) -> per metric
  bool golden = false;                                                      // golden is in the grid: gap columns
  int seeds = 0;

  const Stats& at(const std::string& m, const std::string& p, std::size_t metric) const {
    return cells.at({m, p})[metric];
  }
  std::optional<double> gap(const std::string& m, const std::string& p) const {
    const Stats &h = at(m, p, 0), &g = at(m, kGolden, 0);
    if (!golden || p == kGolden || h.n == 0 || g.n == 0) return std::nullopt;
    return h.mean - g.mean;
  }
};

// Metric values of the finished cells, seeds in order.
Table make_table(const std::vector<std::string>& methods, const std::vector<std::string>& presets, int seeds,
                 const std::vector<Cell>& grid, const std::map<std::string, json>& done) {
  Table t{methods, presets, kMetrics, {}, false, seeds};
  t.golden = std::find(presets.begin(), presets.end(), kGolden) != presets.end();
  std::set<std::string> extra;
  for (const auto& [key, j] : done) {
    const json cell_extra = j.at("metrics").value("extra_metrics", json::object());
    for (const auto& [k, v] : cell_extra.items())
      if (v.is_number() && is_table_metric(k)) extra.insert(k);
  }
  for (const auto& k : extra) t.metrics.push_back({k, k});
  for (const auto& m : methods)
    for (const auto& p : presets) {
      std::vector<Stats>& row = t.cells[{m, p}];
      for (const auto& metric : t.metrics) {
        std::vector<double> v;
        for (const auto& c : grid) {  // grid order: seeds ascending
          if (c.method != m || c.preset != p || !done.count(c.key)) continue;
          const json& m = done.at(c.key).at("metrics");
          const json& src = m.contains(metric.key) ? m : m.value("extra_metrics", json::object());
          if (src.contains(metric.key) && src.at(metric.key).is_number()) v.push_back(src.at(metric.key).get<double>());
        }
        row.push_back(stats(v));
      }
    }
  return t;
}

std::string markdown(const Table& t, const std::string& intro) {
  std::string s = intro;
  std::string head = "| method |", rule = "|---|";
  for (const auto& p : t.presets) {
    for (const auto& m : t.metrics) head += fmt::format(" {} {} |", p, m.label), rule += "---:|";
    if (t.golden && p != kGolden) head += fmt::format(" {} gap vs golden |", p), rule += "---:|";
  }
  s += head + "\n" + rule + "\n";
  for (const auto& m : t.methods) {
    s += fmt::format("| {} |", m);
    for (const auto& p : t.presets) {
      for (std::size_t k = 0; k < t.metrics.size(); ++k) {
        const Stats& st = t.at(m, p, k);
        if (st.n == 0) s += " – |";
        else if (st.n == 1) s += fmt::format(" {:.2f} |", st.mean);
        else s += fmt::format(" {:.2f} ± {:.2f} |", st.mean, st.std);
        if (st.n > 0 && int(st.n) < t.seeds) s.insert(s.size() - 2, fmt::format(" (n={})", st.n));
      }
      if (t.golden && p != kGolden) {
        const auto g = t.gap(m, p);
        s += g ? fmt::format(" {:+.2f} |", *g) : std::string(" – |");
      }
    }
    s += "\n";
  }
  return s;
}

std::string csv(const Table& t) {
  std::string s = "method";
  for (const auto& p : t.presets) {
    for (const auto& m : t.metrics) s += fmt::format(",{0}.{1}.mean,{0}.{1}.std", p, m.key);
    s += fmt::format(",{}.n", p);
    if (t.golden && p != kGolden) s += fmt::format(",{}.gap_vs_golden", p);
  }
  s += "\n";
  for (const auto& m : t.methods) {
    s += m;
    for (const auto& p : t.presets) {
      for (std::size_t k = 0; k < t.metrics.size(); ++k) {
        const Stats& st = t.at(m, p, k);
        s += st.n == 0 ? std::string(",,") : fmt::format(",{:.6g},", st.mean);
        if (st.n >= 2) s += fmt::format("{:.6g}", st.std);
      }
      s += fmt::format(",{}", t.at(m, p, 0).n);
      if (t.golden && p != kGolden) {
        const auto g = t.gap(m, p);
        s += g ? fmt::format(",{:.6g}", *g) : std::string(",");
      }
    }
    s += "\n";
  }
  return s;
}

}  // namespace

int run_compare(const CompareOptions& o) {
  // Everything is checked before the output folder is touched.
  check_list("--methods", o.methods);
  check_list("--presets", o.presets);
  if (o.seeds < 1) throw ConfigError(fmt::format("--seeds = {}: need at least 1", o.seeds));
  std::vector<std::string> common;  // the user's --set, but seed: each cell sets its own
  for (const auto& kv : o.overrides) {
    const std::string key = kv.substr(0, kv.find('='));
    if (key == "preset" || key == "continual.method")
      throw ConfigError(fmt::format("--set {}: set by {}, not --set", key, key == "preset" ? "--presets" : "--methods"));
    if (key != "seed") common.push_back(kv);
  }
  const Scenario base = load_scenario(o.scenario, o.overrides);  // errors name the file or the --set key
  for (const auto& m : o.methods) load_naming(o.scenario, o.overrides, {"continual.method=" + m}, "--methods " + m);
  for (const auto& p : o.presets)
    if (p != kGolden) load_naming(o.scenario, o.overrides, {"preset=" + p}, "--presets " + p);
  const std::string hash = scenario_hash(o.scenario, o.overrides, {"seed", "preset", "continual.method"}, kCellFormat);

  std::vector<Cell> grid;  // methods, then presets, then seeds, in the order given
  for (const auto& m : o.methods)
    for (const auto& p : o.presets) {
      std::vector<std::string> cell_overrides = common;
      cell_overrides.push_back("continual.method=" + m);
      if (p != kGolden) cell_overrides.push_back("preset=" + p);
      for (int k = 0; k < o.seeds; ++k) {
        const std::uint64_t seed = base.seed + std::uint64_t(k);
        std::vector<std::string> overrides = cell_overrides;
        overrides.push_back(fmt::format("seed={}", seed));
        // Combinations a method may reject for a preset: caught here, not in a worker.
        Scenario s = load_naming(o.scenario, overrides, {}, fmt::format("--methods {} with --presets {}", m, p));
        grid.push_back({m, p, seed, fmt::format("{}-{}-s{}-{}", m, p, seed, hash), std::move(overrides), std::move(s)});
      }
    }

  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const int jobs = o.jobs > 0 ? o.jobs : int(hw);
  const int threads = o.threads > 0 ? o.threads : std::max(1, int(hw) / jobs);  // bits do not depend on it
  const std::uint64_t last_seed = base.seed + std::uint64_t(o.seeds - 1);
  const json identity{{"cell_format", kCellFormat}, {"scenario_hash", hash}, {"methods", o.methods},
                      {"presets", o.presets},       {"seeds", {base.seed, last_seed}}};
  const ResultFolder folder(o.out.empty() ? fs::path("out") / (base.name + "-compare") : fs::path(o.out), "compare",
                            identity, "cells");
  const fs::path& dir = folder.dir();

  std::vector<GridCell> cells;
  for (const auto& c : grid) cells.push_back({c.key, c.label()});
  Grid runner("compare", std::move(cells), &folder, is_finished_cell);
  fmt::print(stderr,
             "compare: {} methods x {} presets x {} seeds ({}..{}) = {} cells, {} already done, {} to run "
             "({} in parallel, {} thread(s) each), scenario hash {}\n",
             o.methods.size(), o.presets.size(), o.seeds, base.seed, last_seed, grid.size(), runner.reused(),
             runner.to_run(), std::min<std::size_t>(jobs, runner.to_run()), threads, hash);
  const GridReport report = runner.run(jobs, [&](std::size_t i) {
    json r = run_cell(grid[i], threads);
    const double acc = r["metrics"]["final_avg_accuracy"].get<double>();
    return CellOutcome{std::move(r), fmt::format("final avg acc {:.2f}%", acc)};
  });

  const Table table = make_table(o.methods, o.presets, o.seeds, grid, report.results);
  const std::string intro = fmt::format(
      "# hdqsim compare: {}\n\n"
      "Scenario `{}`{}{} (hash {}); seeds {}..{}. Cells: mean ± sample standard deviation (n - 1) over the seeds; "
      "accuracies and forgetting in percent. `golden` is the float model, every other preset HDQT on the functional "
      "engine; gap vs golden = mean final avg acc of the preset minus that of golden.\n\n",
      base.name, o.scenario, o.overrides.empty() ? "" : " with --set ", fmt::join(o.overrides, " "), hash, base.seed,
      last_seed);
  const std::string md = markdown(table, intro);
  write_file_atomically(dir / "compare.csv", csv(table));
  write_file_atomically(dir / "compare.md", md);
  fmt::print("{}\n{} of {} cells finished; wrote {} and {}\n", md, report.results.size(), grid.size(),
             (dir / "compare.md").string(), (dir / "compare.csv").string());
  for (const auto& e : report.errors) fmt::print(stderr, "error: {}\n", e);
  return report.errors.empty() ? 0 : 1;
}

}  // namespace hdq::cli
