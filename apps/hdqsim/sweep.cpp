// `hdqsim sweep` and `hdqsim merge`: run (a shard of) a grid of training runs,
// one result file per point, resumable; merge shards; summaries and report.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cerrno>
#include <cstring>

#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apps/hdqsim/commands.h"
#include "apps/hdqsim/engines.h"
#include "apps/hdqsim/report.h"
#include "models/common/output_files.h"
#include "sim/config/npu_config.h"
#include "training/continual.h"
#include "training/sweep.h"

namespace hdq::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Part of the scenario hash in sweep.json: change it when a point file's content changes meaning.
constexpr const char* kPointFormat = "hdqsim-sweep-point-1";

// The fixed overrides, then the point's settings and seed.
std::vector<std::string> point_overrides(const SweepSpec& spec, const SweepPoint& p) {
  std::vector<std::string> v = spec.overrides;
  for (const auto& o : p.overrides()) v.push_back(o);
  return v;
}

// A point's scenario and its NPU config overrides (npu.<key>=value).
struct PointSetup {
  Scenario scenario;
  std::vector<std::string> npu;
};
PointSetup load_point(const SweepSpec& spec, const SweepPoint& p) {
  const npu::SplitOverrides o = npu::split_overrides(point_overrides(spec, p));
  if (spec.engine != "npu" && !o.npu.empty())
    throw ConfigError(fmt::format("--set {}: npu.<key> applies to --engine npu only", o.npu.front()));
  PointSetup setup{load_scenario(spec.scenario, o.scenario), o.npu};
  if (!o.npu.empty()) npu::default_npu_config(o.npu);  // checked now, before any point runs
  return setup;
}

json run_point(const SweepSpec& spec, const SweepPoint& p, const PointSetup& setup, int threads) {
  const Scenario& s = setup.scenario;
  const datasets::TrainTest data = load_scenario_data(s);
  const auto engine = make_engine(s, spec.engine, threads, setup.npu);
  const ContinualResult r = run_continual(s, data, *engine);
  json m = result_json(r);
  if (const HdqtOverflow* o = engine->overflow_stats()) {
    m["fwd_inner_event_rate"] = o->inner_event_rate({GemmRole::fwd});
    m["bwd_inner_event_rate"] = o->inner_event_rate({GemmRole::bwd_dx, GemmRole::bwd_dw});
    std::uint64_t outer = 0;
    std::int64_t max_tile = 0;
    for (const auto& layer : o->layers)
      for (const auto& st : layer) outer += st.outer_overflows, max_tile = std::max(max_tile, st.max_abs_tile_sum);
    m["outer_overflows"] = outer;
    m["max_abs_tile_sum"] = max_tile;
  }
  if (const auto cost = engine->cost_per_step()) {
    m["cycles_per_step"] = cost->cycles;
    m["energy_pj_per_step"] = cost->energy_pj;
    m["mac_array_energy_pj_per_step"] = cost->mac_array_energy_pj;
    m["dram_bytes_per_step"] = cost->dram_bytes;
  }
  json settings = json::object();
  for (const auto& [k, v] : p.settings) settings[k] = v;
  return {{"index", p.index}, {"id", p.id()}, {"settings", settings}, {"seed", p.seed}, {"engine", spec.engine},
          {"metrics", m},     {"wall_s", r.wall_s}};
}

// Runs `hdqsim sweep-point` for point p in a child process (this executable)
// and returns its result: the NPU engine's SystemC kernel is one per process,
// so parallel NPU points need processes, not threads.
json run_point_in_child(const fs::path& dir, const SweepPoint& p, int threads) {
  const fs::path result = dir / "points" / (p.id() + ".tmp.child.json");  // a temporary name: a killed run's is removed
  std::vector<std::string> args{"/proc/self/exe", "sweep-point", "--dir", dir.string(), "--index", std::to_string(p.index),
                                "--threads", std::to_string(threads), "--result", result.string()};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (const int e = posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ))
    throw std::runtime_error(fmt::format("cannot start a child process: {}", std::strerror(e)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error(fmt::format("waitpid: {}", std::strerror(errno)));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::error_code ec;
    fs::remove(result, ec);
    throw std::runtime_error(WIFEXITED(status) ? fmt::format("the child process exited with {} (its error is above)", WEXITSTATUS(status))
                                               : fmt::format("the child process died of signal {}", WTERMSIG(status)));
  }
  json r = read_json_file(result);
  fs::remove(result);
  return r;
}

void write_summaries(const fs::path& dir, const SweepResults& r) {
  write_file_atomically(dir / "sweep.csv", sweep_csv(r));
  write_file_atomically(dir / "summary.json", sweep_json(r).dump(2) + "\n");
  write_file_atomically(dir / "report.html", sweep_report_html(r));
  if (const std::string svg = sweep_energy_svg(r); !svg.empty()) write_file_atomically(dir / "energy.svg", svg);
}

}  // namespace

int run_sweep(const SweepOptions& o) {
  // Everything is checked before the folder is touched: the settings, the
  // engine, the shard and the scenario of every point of the grid.
  SweepSpec spec;
  spec.scenario = o.scenario;
  spec.engine = o.engine;
  spec.seeds = o.seeds;
  for (const auto& kv : o.settings) add_sweep_setting(spec, kv);
  check_engine_name(spec.engine);
  // SystemC has one simulation kernel per process: parallel NPU points run in child processes.
  const bool in_children = spec.engine == "npu" && o.jobs > 1;
  const Shard shard = o.shard.empty() ? Shard{} : Shard::parse(o.shard);
  const std::vector<SweepPoint> all = enumerate_points(spec);
  std::vector<PointSetup> setups;  // by point index
  for (const auto& p : all) setups.push_back(load_point(spec, p));
  std::vector<std::string> per_point{"seed"};
  for (const auto& a : spec.axes)
    for (const auto& [key, value] : expand_setting(a.key, a.values.front())) per_point.push_back(key);
  // The NPU config overrides are in the identity as given (sweep.json); the hash covers the scenario.
  std::erase_if(per_point, [](const std::string& k) { return k.starts_with("npu."); });
  spec.scenario_hash = scenario_hash(spec.scenario, npu::split_overrides(spec.overrides).scenario, per_point, kPointFormat);

  const ResultFolder folder = open_sweep_dir(o.out, spec);
  std::vector<const SweepPoint*> mine;
  std::vector<GridCell> cells;
  for (const auto& p : all)
    if (shard.owns(p)) {
      mine.push_back(&p);
      cells.push_back({p.id(), fmt::format("{} ({})", p.id(), fmt::join(p.overrides(), " "))});
    }
  Grid grid("sweep", std::move(cells), &folder, [](const json& j) { return j.contains("metrics"); });
  fmt::print(stderr, "sweep: {} points in the grid, {} in this shard ({}), {} already done, {} to run\n", all.size(),
             mine.size(), o.shard.empty() ? "all" : o.shard, grid.reused(), grid.to_run());
  const GridReport report = grid.run(o.jobs, [&](std::size_t k) {
    const SweepPoint& p = *mine[k];
    json r = in_children ? run_point_in_child(folder.dir(), p, o.threads)
                         : run_point(spec, p, setups[std::size_t(p.index)], o.threads);
    const double acc = r["metrics"]["final_avg_accuracy"].get<double>();
    return CellOutcome{std::move(r), fmt::format("final avg acc {:.2f}%", acc)};
  });

  const SweepResults results = read_sweep_dir(folder.dir());
  write_summaries(folder.dir(), results);
  fmt::print("{} of {} grid points finished in {}; wrote sweep.csv, summary.json, report.html\n", results.points.size(),
             all.size(), folder.dir().string());
  for (const auto& e : report.errors) fmt::print(stderr, "error: {}\n", e);
  return report.errors.empty() ? 0 : 1;
}

int run_sweep_point(const SweepPointOptions& o) {
  // Die with the parent sweep (a killed sweep leaves no orphan running on).
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) return 1;
  const SweepSpec spec = SweepSpec::from_json(read_json_file(fs::path(o.dir) / "sweep.json"));
  const std::vector<SweepPoint> all = enumerate_points(spec);
  if (o.index < 0 || std::size_t(o.index) >= all.size())
    throw ConfigError(fmt::format("--index {}: the sweep in {} has points 0..{}", o.index, o.dir, all.size() - 1));
  const SweepPoint& p = all[std::size_t(o.index)];
  write_file_atomically(o.result, run_point(spec, p, load_point(spec, p), o.threads).dump(2) + "\n");
  return 0;
}

int run_merge(const MergeOptions& o) {
  SweepResults merged;
  for (std::size_t i = 0; i < o.dirs.size(); ++i) {
    const SweepResults r = read_sweep_dir(o.dirs[i]);
    if (i == 0) merged.spec = r.spec;
    else if (!(r.spec == merged.spec))
      throw ConfigError(fmt::format("{} is a different sweep from {}", o.dirs[i], o.dirs[0]));
    for (const auto& [index, p] : r.points) merged.points[index] = p;
  }
  const ResultFolder out = open_sweep_dir(o.out, merged.spec);
  for (const auto& [index, p] : merged.points) {
    const fs::path f = out.cell_file(p.at("id").get<std::string>());
    if (!fs::exists(f)) write_file_atomically(f, p.dump(2) + "\n");
  }
  const SweepResults all = read_sweep_dir(out.dir());
  write_summaries(out.dir(), all);
  const std::size_t grid = enumerate_points(all.spec).size();
  fmt::print("merged {} folder(s): {} of {} points into {}\n", o.dirs.size(), all.points.size(), grid,
             out.dir().string());
  return all.points.size() == grid ? 0 : 1;
}

}  // namespace hdq::cli
