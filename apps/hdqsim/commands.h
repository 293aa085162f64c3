// The hdqsim subcommands. main.cpp parses the command line (CLI11) and calls
// one of these; each returns the process exit code.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hdq::cli {

struct VectorsOptions {
  std::string out;
  std::uint64_t seed = 1;
  int count = 16;
  std::string check;  // when set: verify the set in this folder instead of writing
};
int run_vectors(const VectorsOptions& o);

struct BenchGemmOptions {
  int m = 256, n = 256, k = 256;
  int tile = 32;
  int acc_bits = 8;
  std::string mode = "saturate";
  std::string range = "full";
  int operand_bits = 4;
  int threads = 1;
  std::string path;        // empty: the fastest available
  double min_seconds = 1;  // time each path at least this long
};
int run_bench_gemm(const BenchGemmOptions& o);

struct BenchTrainOptions {
  std::string scenario = "scenarios/fmnist-5x2-er.yaml";
  int steps = 30;          // timed steps
  int warmup = 3;          // untimed steps first
  int threads = 1;         // threads of the engine (GEMMs)
  int batch = 0;           // 0: the scenario's batch
  bool synthetic = false;  // uniform [0, 1) features of the data set's shape instead of real samples
  bool primitives = false;  // also time quantizer / Hadamard loops: scalar reference vs fast path, elements/s
};
int run_bench_train(const BenchTrainOptions& o);

struct TrainOptions {
  std::string scenario;
  std::string engine = "functional";  // functional | golden | npu
  std::vector<std::string> overrides;  // --set key=value (npu.<key>=value: the NPU config)
  std::string out;                     // default: out/<scenario name>
  int threads = 1;
  bool with_golden = true;  // functional engine: also run the golden model for the comparison table
  std::string npu;          // --npu CONFIG (engine npu; default: the built-in edge-npu)
  std::string vcd;          // --vcd FILE: block activity of the NPU (engine npu)
};
int run_train(const TrainOptions& o);

struct EstimateOptions {
  std::string scenario;
  std::string npu;                     // NPU config file (default: the built-in edge-npu)
  std::vector<std::string> overrides;  // --set key=value (npu.<key>=value: the NPU config)
  int steps = 3;                       // training steps simulated
  std::string out;                     // write estimate.json and estimate.csv here
  std::string vcd;                     // --vcd FILE: block activity
  // SCALE-Sim interop: a GEMM topology instead of a scenario.
  std::string topology;  // --topology FILE.csv
  std::string array;     // --array RxC (default: the NPU config's)
  std::string dataflow;  // --dataflow os|ws (default: the NPU config's; `auto` picks per layer)
};
int run_estimate(const EstimateOptions& o);

struct RegressOptions {
  std::vector<std::string> paths{"scenarios"};  // files or folders of *.yaml
  int jobs = 1;                                 // scenarios in parallel
  int threads = 1;                              // threads per scenario
  std::string junit;                            // JUnit XML output file
  std::string filter;                           // regex on scenario name or path
  std::string label;                            // only scenarios with this label (fast | slow)
  bool update_signatures = false;
};
int run_regress(const RegressOptions& o);

struct SweepOptions {
  std::string scenario;
  std::vector<std::string> settings;  // --set key=v1,v2,... (an axis) or key=v (fixed)
  int seeds = 1;
  std::string engine = "functional";
  std::string out;
  std::string shard;  // "I/N"
  int jobs = 1;       // points in parallel
  int threads = 1;    // threads per point
};
int run_sweep(const SweepOptions& o);

// One point of a sweep folder, run in a child process of `sweep -j N --engine
// npu` (SystemC has one simulation kernel per process): reads DIR/sweep.json,
// writes the point's result to `result`. Not for direct use.
struct SweepPointOptions {
  std::string dir;
  int index = 0;
  int threads = 1;
  std::string result;
};
int run_sweep_point(const SweepPointOptions& o);

struct CompareOptions {
  std::string scenario;
  std::vector<std::string> methods;    // continual.method values (validated by the scenario parser)
  std::vector<std::string> presets;    // "golden" (float model) or HDQT preset names
  int seeds = 3;                       // seeds s0, s0+1, ... (s0: the scenario's seed after --set)
  std::vector<std::string> overrides;  // --set key=value applied to every cell
  std::string out;                     // default: out/<scenario name>-compare
  int jobs = 0;                        // cells in parallel (0: one per core)
  int threads = 0;                     // threads per cell (0: cores / jobs, at least 1)
};
int run_compare(const CompareOptions& o);

struct MergeOptions {
  std::vector<std::string> dirs;
  std::string out;
};
int run_merge(const MergeOptions& o);

}  // namespace hdq::cli
