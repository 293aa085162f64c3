// hdqsim: the command line. Parsing only; the work is in the run_* functions.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/hdqsim/commands.h"
#include "models/common/errors.h"

int main(int argc, char** argv) {
  using namespace hdq::cli;
  CLI::App app{"hdqsim: bit-exact simulation of integer HDQT training hardware"};
  app.require_subcommand(1);

  VectorsOptions vec;
  auto* vectors = app.add_subcommand("vectors", "write (or --check) test vectors for RTL testbenches");
  vectors->add_option("--out", vec.out, "folder to write the cases into");
  vectors->add_option("--seed", vec.seed, "seed of the case generator")->capture_default_str();
  vectors->add_option("--count", vec.count, "cases per primitive (gemm, quantize, hadamard)")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  vectors->add_option("--check", vec.check, "re-read a written set and verify it with the reference code");
  vectors->callback([&] {
    if (vec.out.empty() == vec.check.empty()) throw CLI::ValidationError("vectors", "give exactly one of --out DIR or --check DIR");
  });

  auto* bench = app.add_subcommand("bench", "benchmarks that print the ratio against a baseline measured in the same run");
  bench->require_subcommand(1);
  BenchGemmOptions bg;
  auto* bench_gemm = bench->add_subcommand("gemm", "time the scalar reference GEMM and a fast path on the same inputs");
  bench_gemm->add_option("--m", bg.m)->capture_default_str();
  bench_gemm->add_option("--n", bg.n)->capture_default_str();
  bench_gemm->add_option("--k", bg.k)->capture_default_str();
  bench_gemm->add_option("--tile", bg.tile, "tile length t (0 = K)")->capture_default_str();
  bench_gemm->add_option("--acc-bits", bg.acc_bits, "accumulator bits W")->capture_default_str();
  bench_gemm->add_option("--mode", bg.mode, "exact | clamp_tile | saturate | wrap")->capture_default_str();
  bench_gemm->add_option("--range", bg.range, "symmetric | full")->capture_default_str();
  bench_gemm->add_option("--operand-bits", bg.operand_bits, "signed operand bits (2..8)")->capture_default_str();
  bench_gemm->add_option("--threads", bg.threads, "threads of the fast path (the reference runs on 1)")->capture_default_str();
  bench_gemm->add_option("--path", bg.path, "fast path to time (default: the fastest available)");
  bench_gemm->add_option("--min-seconds", bg.min_seconds, "time each path at least this long")->capture_default_str();
  BenchTrainOptions bt;
  auto* bench_train = bench->add_subcommand("train", "time the functional engine's training step (HDQT gradients + SGD) on a scenario's network");
  bench_train->add_option("--scenario", bt.scenario, "scenario file")->capture_default_str()->check(CLI::ExistingFile);
  bench_train->add_option("--steps", bt.steps, "timed steps")->capture_default_str()->check(CLI::Range(1, 1000000));
  bench_train->add_option("--warmup", bt.warmup, "untimed steps first")->capture_default_str()->check(CLI::Range(0, 1000000));
  bench_train->add_option("--threads", bt.threads, "threads")->capture_default_str()->check(CLI::Range(1, 256));
  bench_train->add_option("--batch", bt.batch, "batch rows (0 = the scenario's batch; 256 = batch + replay after task 1)")->capture_default_str();
  bench_train->add_flag("--synthetic", bt.synthetic, "synthetic data of the same shape instead of the real samples");
  bench_train->add_flag("--primitives", bt.primitives, "also time the quantizer and Hadamard loops (scalar reference vs fast path, elements/s)");

  TrainOptions tr;
  auto* train = app.add_subcommand("train", "class-incremental training of a scenario (HDQT and/or the float golden model)");
  train->add_option("--scenario", tr.scenario, "scenario file (YAML, see docs/scenarios.md)")->required()->check(CLI::ExistingFile);
  train->add_option("--engine", tr.engine, "functional (HDQT, bit-exact) | golden (float only) | npu (HDQT on the SystemC NPU model, bit-exact, with cycles and energy)")->capture_default_str();
  train->add_option("--set", tr.overrides, "override a scenario field: key=value (dotted path, e.g. gemm.fwd.acc_bits=6)");
  train->add_option("--out", tr.out, "output folder (default out/<scenario name>)");
  train->add_option("--threads", tr.threads, "threads")->capture_default_str()->check(CLI::Range(1, 256));
  train->add_flag("!--no-golden", tr.with_golden, "functional engine: skip the golden run of the comparison table");
  train->add_option("--npu", tr.npu, "engine npu: NPU config file (default: the built-in sim/configs/edge-npu.yaml)")->check(CLI::ExistingFile);
  train->add_option("--vcd", tr.vcd, "engine npu: write a value-change dump of block activity (GTKWave)");

  EstimateOptions es;
  auto* estimate = app.add_subcommand("estimate", "simulate a few training steps on the NPU model; cycles and energy per step by layer x phase x block");
  auto* es_scenario = estimate->add_option("--scenario", es.scenario, "scenario file (YAML)")->check(CLI::ExistingFile);
  auto* es_topology = estimate->add_option("--topology", es.topology, "SCALE-Sim GEMM topology (Layer name, M, N, K): per-layer compute cycles and utilization, DIR/COMPUTE_REPORT.csv")->check(CLI::ExistingFile);
  es_scenario->excludes(es_topology);
  estimate->add_option("--array", es.array, "with --topology: array size RxC (default: the NPU config's)")->needs(es_topology);
  estimate->add_option("--dataflow", es.dataflow, "with --topology: os or ws (default: the NPU config's mac_array.dataflow)")->needs(es_topology);
  estimate->add_option("--npu", es.npu, "NPU config file (default: the built-in sim/configs/edge-npu.yaml; fields in docs/npu.md)")->check(CLI::ExistingFile);
  estimate->add_option("--set", es.overrides, "override a scenario field key=value, or an NPU config field npu.key=value");
  estimate->add_option("--steps", es.steps, "training steps to simulate")->capture_default_str()->check(CLI::Range(1, 100000));
  estimate->add_option("--out", es.out, "write estimate.json and estimate.csv into this folder");
  estimate->add_option("--vcd", es.vcd, "write a value-change dump of block activity (GTKWave)");

  RegressOptions rg;
  auto* regress = app.add_subcommand("regress", "run scenarios' expectations; pass/fail table, JUnit XML, signature updates");
  regress->add_option("paths", rg.paths, "scenario files or folders")->capture_default_str();
  regress->add_option("-j,--jobs", rg.jobs, "scenarios run in parallel")->capture_default_str()->check(CLI::Range(1, 64));
  regress->add_option("--threads", rg.threads, "threads per scenario")->capture_default_str()->check(CLI::Range(1, 256));
  regress->add_option("--junit", rg.junit, "write JUnit XML here");
  regress->add_option("--filter", rg.filter, "regex on scenario name or file path");
  regress->add_option("--label", rg.label, "only scenarios with this label")->check(CLI::IsMember({"fast", "slow"}));
  regress->add_flag("--update-signatures", rg.update_signatures,
                    "rewrite expected signatures that differ from the measured ones (prints each change)");

  SweepOptions sw;
  auto* sweep = app.add_subcommand("sweep", "cartesian product of --set value lists; resumable, shardable");
  sweep->add_option("--scenario", sw.scenario, "scenario file")->required()->check(CLI::ExistingFile);
  sweep->add_option("--set", sw.settings, "key=v1,v2,... sweeps a key; key=v fixes it");
  sweep->add_option("--seeds", sw.seeds, "seeds 1..N per grid point")->capture_default_str()->check(CLI::Range(1, 1000));
  sweep->add_option("--engine", sw.engine, "functional | golden | npu (npu with -j N: one process per point)")->capture_default_str();
  sweep->add_option("--out", sw.out, "sweep folder (resumes the sweep already there)")->required();
  sweep->add_option("--shard", sw.shard, "I/N: run only points with index % N == I (0 <= I < N)");
  sweep->add_option("-j,--jobs", sw.jobs, "points in parallel")->capture_default_str()->check(CLI::Range(1, 64));
  sweep->add_option("--threads", sw.threads, "threads per point")->capture_default_str()->check(CLI::Range(1, 256));

  MergeOptions mg;
  SweepPointOptions spo;
  auto* sweep_point = app.add_subcommand("sweep-point", "one point of a sweep folder (the child process of sweep -j N --engine npu)");
  sweep_point->group("");  // internal: not listed in --help
  sweep_point->add_option("--dir", spo.dir)->required();
  sweep_point->add_option("--index", spo.index)->required();
  sweep_point->add_option("--threads", spo.threads)->check(CLI::Range(1, 256));
  sweep_point->add_option("--result", spo.result)->required();
  auto* merge = app.add_subcommand("merge", "combine sweep shards into one folder with summaries and report");
  merge->add_option("dirs", mg.dirs, "sweep folders (shards of one sweep)")->required();
  merge->add_option("--out", mg.out, "merged sweep folder")->required();

  CompareOptions cmp;
  auto* compare = app.add_subcommand(
      "compare", "continual-learning methods x presets x seeds of one scenario; resumable; Markdown and CSV table");
  compare->add_option("--scenario", cmp.scenario, "scenario file")->required()->check(CLI::ExistingFile);
  compare->add_option("--methods", cmp.methods, "comma-separated continual.method values, e.g. naive,er,lwf")
      ->required()->delimiter(',');
  compare->add_option("--presets", cmp.presets,
                      "comma-separated: golden (the float model) and/or HDQT presets (functional engine), e.g. golden,paper,npu")
      ->required()->delimiter(',');
  compare->add_option("--seeds", cmp.seeds, "seeds per cell: s0, s0+1, ..., s0+N-1 with s0 the scenario's seed (after --set); "
                      "the table gives mean and sample std (n-1) over them")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  compare->add_option("--set", cmp.overrides, "override a scenario field in every cell: key=value (not preset or continual.method)");
  compare->add_option("--out", cmp.out, "output folder (default out/<scenario name>-compare); finished cells there are reused");
  compare->add_option("-j,--jobs", cmp.jobs, "cells in parallel (default: one per core)")->check(CLI::Range(1, 64));
  compare->add_option("--threads", cmp.threads, "threads per cell (default: cores / jobs, at least 1; results do not depend on it)")
      ->check(CLI::Range(1, 256));

  CLI11_PARSE(app, argc, argv);
  try {
    if (vectors->parsed()) return run_vectors(vec);
    if (bench_gemm->parsed()) return run_bench_gemm(bg);
    if (bench_train->parsed()) return run_bench_train(bt);
    if (train->parsed()) return run_train(tr);
    if (estimate->parsed()) {
      if (es.scenario.empty() && es.topology.empty()) throw hdq::ConfigError("estimate: give --scenario FILE or --topology FILE.csv");
      return run_estimate(es);
    }
    if (regress->parsed()) return run_regress(rg);
    if (sweep->parsed()) return run_sweep(sw);
    if (sweep_point->parsed()) return run_sweep_point(spo);
    if (merge->parsed()) return run_merge(mg);
    if (compare->parsed()) return run_compare(cmp);
  } catch (const hdq::ConfigError& e) {
    fmt::print(stderr, "hdqsim: configuration error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "hdqsim: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
