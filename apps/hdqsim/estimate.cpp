// `hdqsim estimate`: a few training steps of a scenario on the NPU model;
// prints cycles and energy per step by layer x phase x block and, with
// --out, writes estimate.json (totals at the top level) and estimate.csv.
//
// One warm-up step (reported apart: the device's first update reads no
// momentum), then steady-state steps of the scenario's first task: `batch` new
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
#include "models/common/output_files.h"
#include "sim/cost/area.h"
#include "sim/cost/dram_floor.h"
#include "sim/cost/energy.h"
#include "sim/npu_engine.h"
#include "sim/report/estimate.h"
#include "sim/report/topology.h"
#include "training/continual.h"

namespace hdq::cli {

namespace {

// --topology: SCALE-Sim's GEMM topology through the MAC array's timing model.
int run_topology(const EstimateOptions& o) {
  const npu::SplitOverrides overrides = npu::split_overrides(o.overrides);
  if (!overrides.scenario.empty())
    throw ConfigError(fmt::format("--set {}: with --topology only npu.<key> overrides apply", overrides.scenario.front()));
  const npu::NpuConfig cfg = npu::npu_config_or_default(o.npu, overrides.npu);
  int rows = cfg.mac_array.rows, cols = cfg.mac_array.cols;
  if (!o.array.empty()) npu::parse_array_size(o.array, "--array", rows, cols);
  const std::vector<npu::TopologyGemm> layers = npu::load_topology(o.topology);
  if (!o.out.empty()) prepare_output_dir(o.out, "--out");
  npu::Dataflow d = npu::Dataflow::output_stationary;
  if (!o.dataflow.empty()) {
    d = npu::parse_dataflow(o.dataflow, "--dataflow");
  } else if (cfg.mac_array.dataflow == "auto") {
    throw ConfigError(fmt::format(
        "--topology: the NPU config's mac_array.dataflow is auto; name one with --dataflow os|ws (a SCALE-Sim run has one)"));
  } else {
    d = npu::parse_dataflow(cfg.mac_array.dataflow == "weight_stationary" ? "ws" : "os", "mac_array.dataflow");
  }
  const std::string csv = npu::compute_report_csv(layers, d, rows, cols);
  fmt::print("topology {} ({} layers) on a {} x {} array, dataflow {}:\n\n{}", o.topology, layers.size(), rows, cols,
             npu::short_name(d), csv);
  if (!o.out.empty()) {
    const std::filesystem::path out = std::filesystem::path(o.out) / "COMPUTE_REPORT.csv";
    write_file_atomically(out, csv);
    fmt::print("wrote {}\n", out.string());
  }
  return 0;
}

}  // namespace

int run_estimate(const EstimateOptions& o) {
  check_override_keys(o.overrides);
  if (!o.topology.empty()) return run_topology(o);
  const npu::SplitOverrides overrides = npu::split_overrides(o.overrides);
  const Scenario s = load_scenario(o.scenario, overrides.scenario);
  const npu::NpuConfig cfg = npu::npu_config_or_default(o.npu, overrides.npu);
  // Where the results go is proven writable before the simulation, not after it.
  if (!o.vcd.empty()) prepare_output_file(o.vcd, "--vcd");
  if (!o.out.empty()) prepare_output_dir(o.out, "--out");
  const datasets::TrainTest data = load_scenario_data(s);

  const int classes = data.train.num_classes;
  const auto tasks = datasets::split_into_tasks(classes, s.continual.classes_per_task, s.continual.class_order_seed);
  const datasets::Dataset task = datasets::subset_by_classes(data.train, tasks.front());
  if (task.size() == 0) throw ConfigError(fmt::format("{}: the first task has no training samples", s.file));
  const int replay = s.continual.method == "er" ? (s.continual.replay_batch ? s.continual.replay_batch : s.train.batch) : 0;
  const int B = s.train.batch + replay;
  MlpParams params = init_network(s.network, data.train.shape, classes, s.seed);
  std::vector<int> widths{int(data.train.dim())};
  widths.insert(widths.end(), s.network.hidden.begin(), s.network.hidden.end());
  widths.push_back(classes);
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
  // One warm-up step first (the device's first update reads no momentum),
  // reported apart; then o.steps steady-state steps.
  for (int step = 0; step < o.steps + 1; ++step) {
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

  const std::string network = s.network.is_graph()
                                  ? fmt::format("network {} on {}", s.network.preset, fmt::join(data.train.shape, " x "))
                                  : fmt::format("MLP {}", fmt::join(widths, "-"));
  fmt::print("scenario {} ({}), preset {}, {}, batch {} ({} new + {} replayed)\n", s.name, s.file, s.preset, network, B,
             s.train.batch, replay);
  fmt::print("NPU {} ({}): {} x {} MAC array at {} MHz, {} KiB SRAM; operands {} bits, accumulators fwd {} / bwd_dx {} / bwd_dw {} bits\n",
             cfg.name, cfg.file, cfg.mac_array.rows, cfg.mac_array.cols, cfg.clock_mhz, cfg.sram.size_bytes / 1024,
             s.hdqt.q(QuantRole::fwd_x).bits, s.hdqt.acc(GemmRole::fwd).acc_bits, s.hdqt.acc(GemmRole::bwd_dx).acc_bits,
             s.hdqt.acc(GemmRole::bwd_dw).acc_bits);
  fmt::print("{}", npu::defaults_note(cfg));
  fmt::print("{} steady-state training steps (after 1 warm-up step) simulated in {:.2f} s; per step:\n\n", o.steps,
             wall_s);
  fmt::print("{}", npu::estimate_table(engine.train_costs(), engine.train_steps(), cfg));

  // The architect's headline figures (docs/npu.md, "Estimates").
  const npu::CostCell total = engine.train_costs().total();
  const double steps = double(engine.train_steps());
  npu::PeWidths pe;
  for (int r = 0; r < kQuantRoles; ++r) pe.a_bits = std::max(pe.a_bits, operand_bits(s.hdqt.q(QuantRole(r))));
  pe.b_bits = pe.a_bits;
  pe.acc_bits = pe.outer_bits = 0;
  for (int g = 0; g < kGemmRoles; ++g) {
    pe.acc_bits = std::max(pe.acc_bits, npu::tile_add_bits(s.hdqt.acc(GemmRole(g))));
    pe.outer_bits = std::max(pe.outer_bits, s.hdqt.acc(GemmRole(g)).outer_bits);
  }
  const npu::BlockAreas area = npu::block_areas(cfg, pe);
  // The compulsory DRAM floor is modelled for MLPs only (docs/npu.md "Estimates").
  const bool graph = s.network.is_graph();
  npu::DramFloor floor_value{};
  if (!graph)
    floor_value = npu::dram_floor({widths, std::uint64_t(B), pe.a_bits, npu::record_area_bytes(widths),
                                   cfg.sram.size_bytes, total.commands / engine.train_steps()});
  const npu::DramFloor* floor = graph ? nullptr : &floor_value;
  const double dram = double(total.dram_bytes) / steps, mac_pj = total.energy_pj[int(npu::EnergyKind::mac_array)] / steps;
  const std::string vs_floor =
      floor ? fmt::format("{:.2f}x the compulsory floor of {:.0f} ({})", dram / double(floor->total()),
                          double(floor->total()), floor->state_on_chip ? "state on chip" : "state through DRAM")
            : std::string("no floor model for layer graphs");
  fmt::print("whole step {:.1f} nJ, MAC array {:.1f} nJ ({:.1f}%); DRAM {:.0f} bytes per step, {}; area {:.3f} mm^2 "
             "(PEs built for {}x{}-bit operands, W = {}, Wo = {})\n",
             total.energy() / steps / 1e3, mac_pj / 1e3, 100.0 * mac_pj / (total.energy() / steps), dram, vs_floor,
             area.total() / 1e6, pe.a_bits, pe.b_bits, pe.acc_bits, pe.outer_bits);

  if (!o.out.empty()) {
    nlohmann::json j = npu::estimate_json(engine.train_costs(), engine.train_steps(), cfg);
    j["mac_array_energy_pj_per_step"] = mac_pj;
    j["dram_bytes_per_step"] = dram;
    if (floor) {
      j["dram_floor_bytes_per_step"] = floor->total();
      j["dram_floor"] = {{"inputs", floor->inputs}, {"records", floor->records}, {"state", floor->state},
                         {"weight_rereads", floor->weight_rereads}, {"input_rereads", floor->input_rereads},
                         {"live_rereads", floor->live_rereads}, {"commands", floor->commands},
                         {"state_on_chip", floor->state_on_chip}};
    } else {  // the keys stay, without a model behind them
      j["dram_floor_bytes_per_step"] = nullptr;
      j["dram_floor"] = nullptr;
    }
    j["area_mm2"] = area.total() / 1e6;
    j["area_mm2_by_block"] = {{"mac_array", area.mac_array / 1e6}, {"hadamard", area.hadamard / 1e6},
                              {"quantizer", area.quantizer / 1e6}, {"vector", area.vector / 1e6},
                              {"sram", area.sram / 1e6}};
    j["pe_widths"] = {{"a_bits", pe.a_bits}, {"b_bits", pe.b_bits}, {"acc_bits", pe.acc_bits},
                      {"outer_bits", pe.outer_bits}};
    const npu::CostCell warm = engine.warmup_costs().total();
    j["warmup"] = {{"steps", engine.warmup_steps()},
                   {"cycles_per_step", double(warm.cycles()) / double(engine.warmup_steps())},
                   {"energy_pj_per_step", warm.energy() / double(engine.warmup_steps())},
                   {"dram_bytes_per_step", double(warm.dram_bytes) / double(engine.warmup_steps())}};
    j["scenario"] = s.name;
    j["scenario_file"] = s.file;
    j["preset"] = s.preset;
    j["overrides"] = o.overrides;
    j["npu_config"] = cfg.file;
    j["npu_name"] = cfg.name;
    if (graph) j["network"] = s.network.preset;
    j["widths"] = graph ? std::vector<int>{} : widths;  // an MLP's layer widths
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
