// `hdqsim compare`: the grid continual-learning method x preset x seed of one
// scenario, run in parallel, each finished cell stored as its own file (so a
// rerun resumes and an interrupted run loses nothing finished), summarized as
// a Markdown and a CSV table: per method, per preset, mean and sample standard
// deviation over the seeds of final average accuracy, average incremental
// accuracy and forgetting, and the HDQT-minus-golden gap.
//
// Folder layout (--out DIR):
//   DIR/cells/<method>-<preset>-s<seed>-<hash>.json  one finished cell
//   DIR/compare.md, DIR/compare.csv                   the table of this grid
// <hash> is a hash of the effective scenario (file after --set) without the
// fields a cell sets itself (seed, preset, continual.method) and without the
// fields that do not change training (name, description, label, expect), so an
// edited scenario never reuses a stale cell. The hash does not cover the
// simulator's own code: after a deliberate change of the numerics, use a new
// folder (or delete DIR/cells).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "apps/hdqsim/commands.h"
#include "apps/hdqsim/engines.h"
#include "apps/hdqsim/output.h"
#include "training/continual.h"

namespace hdq::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// The preset name that means "the float golden model" instead of an HDQT preset.
constexpr const char* kGolden = "golden";
// Part of the hash input: change it when a cell file's content changes meaning.
constexpr const char* kCellFormat = "hdqsim-compare-cell-1";

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
  std::vector<std::string> overrides;  // user --set, then continual.method, preset, seed
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

// ---- the scenario hash ----

std::uint64_t fnv1a64(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a offset basis and prime (64-bit)
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Hash of the effective scenario minus the per-cell and non-training fields.
// Call after load_scenario accepted the same file and overrides.
std::string scenario_hash(const std::string& file, const std::vector<std::string>& overrides) {
  json j = effective_scenario(file, overrides);
  for (const char* k : {"name", "description", "label", "expect", "seed", "preset"}) j.erase(k);
  if (j.contains("continual") && j["continual"].is_object()) j["continual"].erase("method");
  return fmt::format("{:016x}", fnv1a64(std::string(kCellFormat) + "\n" + j.dump()));
}

// ---- one cell ----

// What a cell contributes to the table. `metrics` are the fixed columns;
// `extra_metrics` the accuracy summaries of a method's other classifiers
// (iCaRL: "nme_..." beside the head), each of which gets its own mean/std
// column per preset; `records` the method's mechanism records (memory sizes,
// bias-layer values, distillation loss), kept in the cell file only.
json cell_json(const Cell& c, const Scenario& s, const std::string& engine, int threads, const ContinualResult& r) {
  const json metrics{{"final_avg_accuracy", r.final_avg_accuracy},
                     {"avg_incremental_accuracy", r.avg_incremental_accuracy},
                     {"forgetting", r.forgetting},
                     {"backward_transfer", r.backward_transfer}};
  json extra = json::object(), records = json::object();
  for (const auto& [k, v] : r.extra_metrics)
    (k.ends_with("_accuracy") || k.ends_with("_forgetting") ? extra : records)[k] = v;
  return {{"key", c.key},
          {"method", c.method},
          {"preset", c.preset},
          {"seed", c.seed},
          {"engine", engine},
          {"scenario", s.file},
          {"scenario_name", s.name},
          {"overrides", c.overrides},
          {"metrics", metrics},
          {"extra_metrics", extra},
          {"records", records},
          {"acc", r.acc},
          {"tasks", r.tasks},
          {"steps", r.steps},
          {"signature", fmt::format("{:016x}", r.signature)},
          {"threads", threads},
          {"wall_s", r.wall_s}};
}

json run_cell(const std::string& file, const Cell& c, int threads) {
  const Scenario s = load_scenario(file, c.overrides);
  const datasets::TrainTest data = load_scenario_data(s);
  const std::string engine = c.preset == kGolden ? "golden" : "functional";
  const auto e = make_engine(s, engine, threads);
  return cell_json(c, s, engine, threads, run_continual(s, data, *e));
}

// A finished cell's file, or nothing when absent or unreadable (then it is rerun).
std::optional<json> read_cell(const fs::path& f) {
  std::ifstream in(f);
  if (!in) return std::nullopt;
  try {
    json j = json::parse(in);
    if (j.at("metrics").at("final_avg_accuracy").is_number()) return j;
  } catch (const json::exception&) {
  }
  fmt::print(stderr, "[compare] {} is not a finished cell; running it again\n", f.string());
  return std::nullopt;
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
  for (const auto& [key, j] : done)
    if (j.contains("extra_metrics"))
      for (const auto& [k, v] : j.at("extra_metrics").items())
        if (v.is_number()) extra.insert(k);
  for (const auto& k : extra) t.metrics.push_back({k, k});
  for (const auto& m : methods)
    for (const auto& p : presets) {
      std::vector<Stats>& row = t.cells[{m, p}];
      for (const auto& metric : t.metrics) {
        std::vector<double> v;
        for (const auto& c : grid) {  // grid order: seeds ascending
          if (c.method != m || c.preset != p || !done.count(c.key)) continue;
          const json& j = done.at(c.key);
          const json& src = j.at("metrics").contains(metric.key) ? j.at("metrics")
                                                                 : j.value("extra_metrics", json::object());
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

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int run_compare(const CompareOptions& o) {
  // Everything is checked before the output folder is touched.
  check_list("--methods", o.methods);
  check_list("--presets", o.presets);
  if (o.seeds < 1) throw ConfigError(fmt::format("--seeds = {}: need at least 1", o.seeds));
  for (const auto& kv : o.overrides) {
    const std::string key = kv.substr(0, kv.find('='));
    if (key == "preset" || key == "continual.method")
      throw ConfigError(fmt::format("--set {}: set by {}, not --set", key, key == "preset" ? "--presets" : "--methods"));
  }
  const Scenario base = load_scenario(o.scenario, o.overrides);  // errors name the file or the --set key
  for (const auto& m : o.methods) load_naming(o.scenario, o.overrides, {"continual.method=" + m}, "--methods " + m);
  for (const auto& p : o.presets)
    if (p != kGolden) load_naming(o.scenario, o.overrides, {"preset=" + p}, "--presets " + p);
  const std::string hash = scenario_hash(o.scenario, o.overrides);

  std::vector<Cell> grid;  // methods, then presets, then seeds, in the order given
  for (const auto& m : o.methods)
    for (const auto& p : o.presets) {
      std::vector<std::string> cell_overrides = o.overrides;
      cell_overrides.push_back("continual.method=" + m);
      if (p != kGolden) cell_overrides.push_back("preset=" + p);
      // Combinations a method may reject for a preset: caught here, not in a worker.
      load_naming(o.scenario, cell_overrides, {}, fmt::format("--methods {} with --presets {}", m, p));
      for (int k = 0; k < o.seeds; ++k) {
        Cell c{m, p, base.seed + std::uint64_t(k), {}, cell_overrides};
        c.overrides.push_back(fmt::format("seed={}", c.seed));
        c.key = fmt::format("{}-{}-s{}-{}", m, p, c.seed, hash);
        grid.push_back(std::move(c));
      }
    }

  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const int jobs = o.jobs > 0 ? o.jobs : int(hw);
  const int threads = o.threads > 0 ? o.threads : std::max(1, int(hw) / jobs);  // bits do not depend on it
  const fs::path dir = o.out.empty() ? fs::path("out") / (base.name + "-compare") : fs::path(o.out);
  const fs::path cells = dir / "cells";
  auto cell_file = [&](const Cell& c) { return cells / (c.key + ".json"); };

  std::map<std::string, json> done;  // key -> cell result
  std::vector<const Cell*> todo;
  for (const auto& c : grid) {
    if (auto j = read_cell(cell_file(c))) {
      fmt::print(stderr, "[compare] skipped {}: finished earlier ({})\n", c.label(), cell_file(c).string());
      done[c.key] = std::move(*j);
    } else {
      todo.push_back(&c);
    }
  }
  fmt::print(stderr,
             "compare: {} methods x {} presets x {} seeds ({}..{}) = {} cells, {} already done, {} to run "
             "({} in parallel, {} thread(s) each), scenario hash {}\n",
             o.methods.size(), o.presets.size(), o.seeds, base.seed, base.seed + std::uint64_t(o.seeds - 1),
             grid.size(), done.size(), todo.size(), std::min<std::size_t>(jobs, todo.size()),
             threads, hash);
  fs::create_directories(cells);

  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<std::size_t> next{0}, finished{0};
  std::mutex lock;  // guards done, errors and the progress lines
  std::vector<std::string> errors;
  auto worker = [&] {
    for (std::size_t i; (i = next++) < todo.size();) {
      const Cell& c = *todo[i];
      {
        std::lock_guard g(lock);
        fmt::print(stderr, "[compare] started  {} ({} of {} to run)\n", c.label(), i + 1, todo.size());
      }
      const auto t1 = std::chrono::steady_clock::now();
      std::string line;
      try {
        json r = run_cell(o.scenario, c, threads);
        write_file_atomically(cell_file(c), r.dump(2) + "\n");
        line = fmt::format("finished {} in {:.2f}s: final avg acc {:.2f}%", c.label(), seconds_since(t1),
                           r["metrics"]["final_avg_accuracy"].get<double>());
        std::lock_guard g(lock);
        done[c.key] = std::move(r);
      } catch (const std::exception& e) {
        line = fmt::format("FAILED   {} after {:.2f}s: {}", c.label(), seconds_since(t1), e.what());
        std::lock_guard g(lock);
        errors.push_back(fmt::format("{}: {}", c.label(), e.what()));
      }
      const std::size_t d = ++finished;
      const double el = seconds_since(t0);
      std::lock_guard g(lock);
      fmt::print(stderr, "[compare] {}  [{}/{}, {:.0f}s elapsed, ~{:.0f}s left]\n", line, d, todo.size(), el,
                 el / double(d) * double(todo.size() - d));
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::min<int>(jobs, int(todo.size())); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();

  const Table table = make_table(o.methods, o.presets, o.seeds, grid, done);
  const std::string intro = fmt::format(
      "# hdqsim compare: {}\n\n"
      "Scenario `{}`{}{} (hash {}); seeds {}..{}. Cells: mean ± sample standard deviation (n - 1) over the seeds; "
      "accuracies and forgetting in percent. `golden` is the float model, every other preset HDQT on the functional "
      "engine; gap vs golden = mean final avg acc of the preset minus that of golden.\n\n",
      base.name, o.scenario, o.overrides.empty() ? "" : " with --set ", fmt::join(o.overrides, " "), hash, base.seed,
      base.seed + std::uint64_t(o.seeds - 1));
  const std::string md = markdown(table, intro);
  write_file_atomically(dir / "compare.csv", csv(table));
  write_file_atomically(dir / "compare.md", md);
  fmt::print("{}\n{} of {} cells finished; wrote {} and {}\n", md, done.size(), grid.size(),
             (dir / "compare.md").string(), (dir / "compare.csv").string());
  for (const auto& e : errors) fmt::print(stderr, "error: {}\n", e);
  return errors.empty() ? 0 : 1;
}

}  // namespace hdq::cli
