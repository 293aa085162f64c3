// `hdqsim train`: one class-incremental run of a scenario, with progress on
// stderr, a final table on stdout and metrics.json / curve.csv / alignment.csv
// written atomically into --out.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "apps/hdqsim/commands.h"
#include "apps/hdqsim/engines.h"
#include "apps/hdqsim/output.h"
#include "engines/functional_engine.h"
#include "engines/golden_engine.h"
#include "models/common/output_files.h"
#include "sim/npu_engine.h"
#include "sim/report/estimate.h"
#include "training/continual.h"

namespace hdq::cli {
namespace {

using json = nlohmann::json;

void print_progress(const std::string& engine, const EpochRecord& r, std::uint64_t total_steps, int tasks, int epochs) {
  const double left = r.steps ? r.elapsed_s * double(total_steps - r.steps) / double(r.steps) : 0.0;
  fmt::print(stderr, "[{}] task {}/{} epoch {}/{}  loss {:.4f}  seen-class test acc {:6.2f}%  step {}/{}  {:.1f}s elapsed, ~{:.0f}s left\n",
             engine, r.task + 1, tasks, r.epoch + 1, epochs, r.mean_loss, r.seen_accuracy, r.steps, total_steps,
             r.elapsed_s, left);
}

json stats_json(const GemmStats& s) {
  return {{"products", s.products},
          {"tile_results", s.tile_results},
          {"inner_events", s.inner_events()},
          {"inner_event_rate", s.inner_event_rate()},
          {"outer_overflows", s.outer_overflows},
          {"max_abs_tile_sum", s.max_abs_tile_sum}};
}

// Per layer and task: mean gradient cosines (vs float, and vs the float
// backward of HDQT's own forward) and mean forward SQNR over the logged steps.
json alignment_summary(const ContinualResult& r) {
  json out = json::array();
  if (r.alignment.empty()) return out;
  const std::size_t layers = r.alignment.front().weight_grad_cosine.size();
  for (std::size_t t = 0; t < r.tasks.size(); ++t) {
    json per_layer = json::array();
    for (std::size_t l = 0; l < layers; ++l) {
      double cos = 0, backward_cos = 0, sqnr = 0;
      int n = 0;
      for (const auto& a : r.alignment)
        if (a.task == int(t) && std::isfinite(a.output_sqnr_db[l])) {
          cos += a.weight_grad_cosine[l], sqnr += a.output_sqnr_db[l], ++n;
          if (l < a.backward_grad_cosine.size()) backward_cos += a.backward_grad_cosine[l];
        }
      json entry{{"layer", l}, {"samples", n}, {"mean_weight_grad_cosine", n ? cos / n : 0.0},
                 {"mean_output_sqnr_db", n ? sqnr / n : 0.0}};
      if (!r.alignment.front().backward_grad_cosine.empty())
        entry["mean_backward_grad_cosine"] = n ? backward_cos / n : 0.0;
      per_layer.push_back(entry);
    }
    out.push_back({{"task", t}, {"layers", per_layer}});
  }
  return out;
}

std::string curve_csv(const std::vector<std::pair<std::string, const ContinualResult*>>& runs) {
  std::string s = "engine,task,epoch,steps,mean_loss,mean_distill_loss,seen_accuracy,lr,elapsed_s\n";
  for (const auto& [engine, r] : runs)
    for (const auto& e : r->curve)
      s += fmt::format("{},{},{},{},{:.6f},{:.6f},{:.4f},{:.6g},{:.3f}\n", engine, e.task, e.epoch, e.steps, e.mean_loss,
                       e.mean_distill_loss, e.seen_accuracy, e.lr, e.elapsed_s);
  return s;
}

std::string alignment_csv(const ContinualResult& r) {
  std::string s = "step,task,layer,weight_grad_cosine,backward_grad_cosine,output_sqnr_db,fwd_inner_event_rate,"
                  "bwd_dx_inner_event_rate,bwd_dw_inner_event_rate,outer_overflows\n";
  for (const auto& a : r.alignment)
    for (std::size_t l = 0; l < a.weight_grad_cosine.size(); ++l) {
      const std::string backward = l < a.backward_grad_cosine.size() ? fmt::format("{:.6f}", a.backward_grad_cosine[l]) : "";
      s += fmt::format("{},{},{},{:.6f},{},{:.3f}", a.step, a.task, l, a.weight_grad_cosine[l], backward,
                       a.output_sqnr_db[l]);
      if (l < a.overflow.size()) {
        const auto& o = a.overflow[l];
        s += fmt::format(",{:.6g},{:.6g},{:.6g},{}\n", o[0].inner_event_rate(), o[1].inner_event_rate(),
                         o[2].inner_event_rate(), o[0].outer_overflows + o[1].outer_overflows + o[2].outer_overflows);
      } else {
        s += ",,,,\n";
      }
    }
  return s;
}

void print_table(const Scenario& s, const ContinualResult* hdqt, const ContinualResult* golden) {
  const ContinualResult& any = hdqt ? *hdqt : *golden;
  fmt::print("\nscenario {} ({}), preset {}, seed {}: accuracy (%) on each task's test set after the last task\n",
             s.name, s.file, s.preset, s.seed);
  fmt::print("{:>6}  {:>10}  {:>8}  {:>8}  {:>7}\n", "task", "classes", "golden", "HDQT", "gap");
  for (std::size_t j = 0; j < any.tasks.size(); ++j) {
    const std::string classes = fmt::format("{}", fmt::join(any.tasks[j], ","));
    const auto cell = [&](const ContinualResult* r) { return r ? fmt::format("{:8.2f}", r->acc.back()[j]) : std::string(8, '-'); };
    const std::string gap = hdqt && golden ? fmt::format("{:+7.2f}", hdqt->acc.back()[j] - golden->acc.back()[j]) : "";
    fmt::print("{:>6}  {:>10}  {}  {}  {}\n", j, classes, cell(golden), cell(hdqt), gap);
  }
  const auto row = [&](const char* label, auto get) {
    const std::string g = golden ? fmt::format("{:8.2f}", get(*golden)) : std::string(8, '-');
    const std::string h = hdqt ? fmt::format("{:8.2f}", get(*hdqt)) : std::string(8, '-');
    const std::string gap = hdqt && golden ? fmt::format("{:+7.2f}", get(*hdqt) - get(*golden)) : "";
    fmt::print("{:>18}  {}  {}  {}\n", label, g, h, gap);
  };
  row("final avg acc", [](const ContinualResult& r) { return r.final_avg_accuracy; });
  row("avg incremental", [](const ContinualResult& r) { return r.avg_incremental_accuracy; });
  row("forgetting", [](const ContinualResult& r) { return r.forgetting; });
  // The method's other classifiers (iCaRL: the head, the table above being NME).
  for (const auto& [key, v] : any.extra_metrics)
    if (key.ends_with("_final_avg_accuracy"))
      row(key.c_str(), [&, k = key](const ContinualResult& r) { return r.extra_metrics.count(k) ? r.extra_metrics.at(k) : 0.0; });
  if (hdqt) fmt::print("signature (HDQT final weights): {:016x}\n", hdqt->signature);
  if (golden) fmt::print("signature (golden final weights): {:016x}\n", golden->signature);
}

}  // namespace

int run_train(const TrainOptions& o) {
  check_override_keys(o.overrides);
  const npu::SplitOverrides overrides = npu::split_overrides(o.overrides);
  const Scenario s = load_scenario(o.scenario, overrides.scenario);
  check_engine_name(o.engine);
  if (o.engine != "npu" && (!o.npu.empty() || !o.vcd.empty() || !overrides.npu.empty()))
    throw ConfigError("--npu, --vcd and --set npu.<key> apply to --engine npu only");
  // Where the results go is proven writable before training, not after it.
  const std::filesystem::path out = o.out.empty() ? std::filesystem::path("out") / s.name : std::filesystem::path(o.out);
  if (!o.vcd.empty()) prepare_output_file(o.vcd, "--vcd");
  prepare_output_dir(out, "--out");
  const datasets::TrainTest data = load_scenario_data(s);
  fmt::print(stderr, "scenario {}: {} train / {} test samples, {} features, {} classes, {} engine, {} threads\n", s.name,
             data.train.size(), data.test.size(), data.train.dim(), data.train.num_classes, o.engine, o.threads);
  const int tasks = int((data.train.num_classes + s.continual.classes_per_task - 1) / s.continual.classes_per_task);

  GoldenEngine golden_engine(o.threads);
  std::optional<ContinualResult> hdqt_result, golden_result;
  std::unique_ptr<Engine> hdqt_engine;
  npu::NpuEngine* npu_engine = nullptr;
  if (o.engine == "functional") hdqt_engine = std::make_unique<FunctionalEngine>(s.hdqt, s.seed, o.threads);
  if (o.engine == "npu") {
    auto e = std::make_unique<npu::NpuEngine>(npu::npu_config_or_default(o.npu, overrides.npu), s.hdqt, s.seed, s.train.sgd);
    if (!o.vcd.empty()) e->trace_vcd(o.vcd);
    npu_engine = e.get();
    fmt::print("{}", npu::defaults_note(e->config()));
    hdqt_engine = std::move(e);
  }
  if (hdqt_engine) {
    ContinualOptions opt;
    opt.reference = &golden_engine;
    opt.on_epoch = [&](const EpochRecord& r, std::uint64_t total) {
      print_progress(fmt::format("HDQT {}{}", s.preset, npu_engine ? " on npu" : ""), r, total, tasks, s.train.epochs);
    };
    hdqt_result = run_continual(s, data, *hdqt_engine, opt);
  }
  if (o.engine == "golden" || o.with_golden) {
    ContinualOptions opt;
    opt.on_epoch = [&](const EpochRecord& r, std::uint64_t total) { print_progress("golden", r, total, tasks, s.train.epochs); };
    golden_result = run_continual(s, data, golden_engine, opt);
  }

  const ContinualResult* h = hdqt_result ? &*hdqt_result : nullptr;
  const ContinualResult* g = golden_result ? &*golden_result : nullptr;
  print_table(s, h, g);

  json m{{"scenario", s.name}, {"scenario_file", s.file}, {"engine", o.engine}, {"preset", s.preset},
         {"seed", s.seed},     {"overrides", o.overrides}, {"threads", o.threads}};
  const ContinualResult& main = h ? *h : *g;
  m.update(result_json(main));
  m["wall_s"] = main.wall_s;
  if (h) {
    json overflow = json::object();
    const HdqtOverflow& stats = *hdqt_engine->overflow_stats();
    for (std::size_t l = 0; l < stats.layers.size(); ++l)
      for (int r = 0; r < kGemmRoles; ++r)
        overflow[fmt::format("layer{}", l)][std::string(name(GemmRole(r)))] = stats_json(stats.layers[l][r]);
    m["overflow"] = overflow;
    m["alignment"] = alignment_summary(*h);
  }
  if (h && g) {
    m["golden"] = result_json(*g);
    m["golden"]["wall_s"] = g->wall_s;
    m["gap_final_avg_accuracy"] = h->final_avg_accuracy - g->final_avg_accuracy;
  }
  if (npu_engine) {
    npu_engine->close_vcd();
    const npu::NpuConfig& cfg = npu_engine->config();
    m["npu_config"] = cfg.file;
    m["npu"] = npu::estimate_json(npu_engine->train_costs(), npu_engine->train_steps(), cfg);
    m["npu_evaluation_total"] = {{"cycles", npu_engine->eval_costs().total().cycles()},
                                 {"energy_pj", npu_engine->eval_costs().total().energy()}};
    fmt::print("NPU ({}): {:.0f} cycles and {:.3f} uJ per training step (mean of {} steps)\n", cfg.name,
               m["npu"]["cycles_per_step"].get<double>(), m["npu"]["energy_uj_per_step"].get<double>(),
               npu_engine->train_steps());
  }
  std::vector<std::pair<std::string, const ContinualResult*>> runs;
  if (h) runs.emplace_back(o.engine, h);
  if (g) runs.emplace_back("golden", g);
  write_file_atomically(out / "curve.csv", curve_csv(runs));
  if (h) write_file_atomically(out / "alignment.csv", alignment_csv(*h));
  m["peak_rss_mib"] = peak_rss_mib();
  fmt::print("peak resident memory: {:.1f} MiB\n", m["peak_rss_mib"].get<double>());
  write_file_atomically(out / "metrics.json", m.dump(2) + "\n");  // last: its presence means the run finished
  fmt::print("wrote {}\n", (out / "metrics.json").string());
  return 0;
}

}  // namespace hdq::cli
