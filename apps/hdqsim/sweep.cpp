// `hdqsim sweep` and `hdqsim merge`: run (a shard of) a grid of training runs,
// one result file per point, resumable; merge shards; summaries and report.
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "apps/hdqsim/commands.h"
#include "apps/hdqsim/engines.h"
#include "apps/hdqsim/output.h"
#include "apps/hdqsim/report.h"
#include "training/continual.h"
#include "training/sweep.h"

namespace hdq::cli {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

json run_point(const SweepSpec& spec, const SweepPoint& p, int threads) {
  std::vector<std::string> overrides = spec.overrides;
  for (const auto& o : p.overrides()) overrides.push_back(o);
  const Scenario s = load_scenario(spec.scenario, overrides);
  const datasets::TrainTest data = load_scenario_data(s);
  const auto engine = make_engine(s, spec.engine, threads);
  const ContinualResult r = run_continual(s, data, *engine);
  json m{{"final_avg_accuracy", r.final_avg_accuracy}, {"avg_incremental_accuracy", r.avg_incremental_accuracy},
         {"forgetting", r.forgetting},                 {"backward_transfer", r.backward_transfer},
         {"steps", r.steps},                           {"signature", fmt::format("{:016x}", r.signature)}};
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
  if (const auto cost = engine->cost_per_step()) m["cycles_per_step"] = cost->cycles, m["energy_pj_per_step"] = cost->energy_pj;
  json settings = json::object();
  for (const auto& [k, v] : p.settings) settings[k] = v;
  return {{"index", p.index}, {"id", p.id()}, {"settings", settings}, {"seed", p.seed}, {"engine", spec.engine},
          {"metrics", m},     {"wall_s", r.wall_s}};
}

void write_summaries(const fs::path& dir, const SweepResults& r) {
  write_file_atomically(dir / "sweep.csv", sweep_csv(r));
  write_file_atomically(dir / "summary.json", sweep_json(r).dump(2) + "\n");
  write_file_atomically(dir / "report.html", sweep_report_html(r));
}

}  // namespace

int run_sweep(const SweepOptions& o) {
  SweepSpec spec;
  spec.scenario = o.scenario;
  spec.engine = o.engine;
  spec.seeds = o.seeds;
  for (const auto& kv : o.settings) add_sweep_setting(spec, kv);
  const std::vector<SweepPoint> all = enumerate_points(spec);
  load_scenario(spec.scenario, [&] {  // fail fast on a bad key or value, before anything is written
    std::vector<std::string> v = spec.overrides;
    for (const auto& ov : all.front().overrides()) v.push_back(ov);
    return v;
  }());
  if (spec.engine == "npu" && o.jobs > 1)  // SystemC has one simulation kernel per process
    throw ConfigError("--jobs: the npu engine runs one simulation per process; use -j 1, or --shard in separate processes");
  const Shard shard = o.shard.empty() ? Shard{} : Shard::parse(o.shard);
  const fs::path dir = o.out;
  claim_sweep_dir(dir, spec);

  std::vector<SweepPoint> todo;
  int kept = 0;
  for (const auto& p : all) {
    if (!shard.owns(p)) continue;
    if (fs::exists(point_file(dir, p))) ++kept;  // finished in an earlier run
    else todo.push_back(p);
  }
  fmt::print(stderr, "sweep: {} points in the grid, {} in this shard ({}), {} already done, {} to run\n", all.size(),
             kept + todo.size(), o.shard.empty() ? "all" : o.shard, kept, todo.size());

  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<std::size_t> next{0}, done{0};
  std::mutex print;
  std::vector<std::string> errors;
  auto worker = [&] {
    for (std::size_t i; (i = next++) < todo.size();) {
      const SweepPoint& p = todo[i];
      std::string line;
      try {
        const json result = run_point(spec, p, o.threads);
        write_file_atomically(point_file(dir, p), result.dump(2) + "\n");
        line = fmt::format("{} acc {:.2f}%", p.id(), result["metrics"]["final_avg_accuracy"].get<double>());
      } catch (const std::exception& e) {
        std::lock_guard lock(print);
        errors.push_back(fmt::format("{} ({}): {}", p.id(), fmt::join(p.overrides(), " "), e.what()));
        line = fmt::format("{} FAILED", p.id());
      }
      const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const std::size_t d = ++done;
      std::lock_guard lock(print);
      fmt::print(stderr, "[sweep] {}/{} {} ({})  {:.0f}s elapsed, ~{:.0f}s left\n", d, todo.size(), line,
                 fmt::join(p.overrides(), " "), el, el / double(d) * double(todo.size() - d));
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < std::max(1, o.jobs); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();

  const SweepResults results = read_sweep_dir(dir);
  write_summaries(dir, results);
  fmt::print("{} of {} grid points finished in {}; wrote sweep.csv, summary.json, report.html\n", results.points.size(),
             all.size(), dir.string());
  for (const auto& e : errors) fmt::print(stderr, "error: {}\n", e);
  return errors.empty() ? 0 : 1;
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
  const fs::path out = o.out;
  claim_sweep_dir(out, merged.spec);
  for (const auto& [index, p] : merged.points) {
    const fs::path f = out / "points" / (p.at("id").get<std::string>() + ".json");
    if (!fs::exists(f)) write_file_atomically(f, p.dump(2) + "\n");
  }
  const SweepResults all = read_sweep_dir(out);
  write_summaries(out, all);
  const std::size_t grid = enumerate_points(all.spec).size();
  fmt::print("merged {} folder(s): {} of {} points into {}\n", o.dirs.size(), all.points.size(), grid, out.string());
  return all.points.size() == grid ? 0 : 1;
}

}  // namespace hdq::cli
