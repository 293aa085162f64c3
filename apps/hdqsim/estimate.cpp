// `hdqsim estimate`: a few training steps of a scenario on the NPU model;
// prints cycles and energy per step by layer x phase x block and, with
// --out, writes estimate.json (totals at the top level) and estimate.csv.
//
// The steps are steady-state steps of the scenario's first task: `batch` new
// samples plus, with experience replay, `replay_batch` replayed ones (taken
// from the same task here; the NPU's costs depend on shapes, not values),
// the first task's classes active, the weights updated by SGD between steps
// as the driver does.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/hdqsim/commands.h"
#include "apps/hdqsim/output.h"
#include "sim/npu_engine.h"
#include "sim/report/estimate.h"
#include "training/continual.h"

namespace hdq::cli {

int run_estimate(const EstimateOptions& o) {
  const npu::SplitOverrides overrides = npu::split_overrides(o.overrides);
  const Scenario s = load_scenario(o.scenario, overrides.scenario);
  const npu::NpuConfig cfg = npu::npu_config_or_default(o.npu, overrides.npu);
  const datasets::TrainTest data = load_scenario_data(s);

  const int classes = data.train.num_classes;
  const auto tasks = datasets::split_into_tasks(classes, s.continual.classes_per_task, s.continual.class_order_seed);
  const datasets::Dataset task = datasets::subset_by_classes(data.train, tasks.front());
  if (task.size() == 0) throw ConfigError(fmt::format("{}: the first task has no training samples", s.file));
  const int replay = s.continual.method == "er" ? (s.continual.replay_batch ? s.continual.replay_batch : s.train.batch) : 0;
  const int B = s.train.batch + replay;
  MlpSpec spec{{int(data.train.dim())}};
  for (int h : s.hidden) spec.widths.push_back(h);
  spec.widths.push_back(classes);
  MlpParams params = init_mlp(spec, s.seed);
  const auto active = std::make_unique<bool[]>(std::size_t(classes));
  for (int c : tasks.front()) active[std::size_t(c)] = true;

  npu::NpuEngine engine(cfg, s.hdqt, s.seed, s.train.sgd);
  if (!o.vcd.empty()) engine.trace_vcd(o.vcd);
  Sgd sgd(s.train.sgd);
  Matrix x(B, int(data.train.dim()));
  std::vector<int> y(static_cast<std::size_t>(B));
  MlpGrads grads;
  std::size_t next = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int step = 0; step < o.steps; ++step) {
    for (int r = 0; r < B; ++r, next = (next + 1) % task.size()) {
      const auto row = task.row(next);
      std::copy(row.begin(), row.end(), x.row(r).begin());
      y[std::size_t(r)] = task.labels[next];
    }
    engine.gradients(params, x, y, std::span<const bool>(active.get(), std::size_t(classes)), std::uint64_t(step), grads);
    sgd.step(params, grads);
  }
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  engine.close_vcd();

  fmt::print("scenario {} ({}), preset {}, MLP {}, batch {} ({} new + {} replayed)\n", s.name, s.file, s.preset,
             fmt::join(spec.widths, "-"), B, s.train.batch, replay);
  fmt::print("NPU {} ({}): {} x {} MAC array at {} MHz, {} KiB SRAM; operands {} bits, accumulators fwd {} / bwd_dx {} / bwd_dw {} bits\n",
             cfg.name, cfg.file, cfg.mac_array.rows, cfg.mac_array.cols, cfg.clock_mhz, cfg.sram.size_bytes / 1024,
             s.hdqt.q(QuantRole::fwd_x).bits, s.hdqt.acc(GemmRole::fwd).acc_bits, s.hdqt.acc(GemmRole::bwd_dx).acc_bits,
             s.hdqt.acc(GemmRole::bwd_dw).acc_bits);
  fmt::print("{}", npu::defaults_note(cfg));
  fmt::print("{} training steps simulated in {:.2f} s; per step:\n\n", o.steps, wall_s);
  fmt::print("{}", npu::estimate_table(engine.train_costs(), engine.train_steps(), cfg));

  if (!o.out.empty()) {
    nlohmann::json j = npu::estimate_json(engine.train_costs(), engine.train_steps(), cfg);
    j["scenario"] = s.name;
    j["scenario_file"] = s.file;
    j["preset"] = s.preset;
    j["overrides"] = o.overrides;
    j["npu_config"] = cfg.file;
    j["npu_name"] = cfg.name;
    j["widths"] = spec.widths;
    j["batch"] = B;
    j["simulation_wall_s"] = wall_s;
    const std::filesystem::path out(o.out);
    write_file_atomically(out / "estimate.csv", npu::estimate_csv(engine.train_costs(), engine.train_steps(), cfg));
    write_file_atomically(out / "estimate.json", j.dump(2) + "\n");  // last: its presence means the run finished
    fmt::print("wrote {}\n", (out / "estimate.json").string());
  }
  return 0;
}

}  // namespace hdq::cli
