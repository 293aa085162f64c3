// GEMM path throughput (docs/contract.md §5): GMAC/s of every path on the
// issue's reference problem, 256 x 256 x 256, t = 32, W = 8, 4-bit signed
// operands, per accumulator mode and range, 1 and 2 threads.
//
//   gemm_kernels --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// The reference path is measured in the same run, so speed-ups are ratios of
// numbers taken under the same machine load. Times are wall-clock (the paths
// run row blocks on a thread pool); `GMAC/s` = M * N * K / time. Three input
// sets: uniform random 4-bit operands (every tile saturates somewhere: the
// headroom statistic needs exact tile sums almost everywhere), rounded
// N(0, 2^2) operands clipped to [-7, 7] (HDQT-like: events are rare), and
// uniform random 8-bit operands (the int16-lane word kernel).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "models/accumulator/gemm.h"

namespace {

using namespace hdq;

constexpr int kM = 256, kN = 256, kK = 256;

enum Data { uniform = 0, gaussian = 1, wide8 = 2 };

const std::vector<std::int16_t>& operand(int which, Data data) {
  static std::vector<std::int16_t> cache[2][3];
  auto& v = cache[which][data];
  if (v.empty()) {
    std::mt19937_64 rng(1234 + which);
    std::uniform_int_distribution<int> uni(-8, 7), uni8(-128, 127);
    std::normal_distribution<double> nd(0.0, 2.0);
    v.resize(std::size_t(kM) * kK);
    for (auto& x : v)
      x = static_cast<std::int16_t>(data == uniform  ? uni(rng)
                                    : data == wide8 ? uni8(rng)
                                                    : std::clamp(int(std::lround(nd(rng))), -7, 7));
  }
  return v;
}

// args: path, mode, range, threads, data
void BM_Gemm(benchmark::State& state) {
  const auto path = static_cast<KernelPath>(state.range(0));
  AccumulatorConfig cfg;
  cfg.acc_bits = 8;
  cfg.tile = 32;
  cfg.mode = static_cast<AccMode>(state.range(1));
  cfg.range = static_cast<AccRange>(state.range(2));
  cfg.outer_bits = 32;
  const int threads = int(state.range(3));
  const Data data = static_cast<Data>(state.range(4));
  const auto paths = available_gemm_paths();
  if (std::find(paths.begin(), paths.end(), path) == paths.end()) {
    state.SkipWithError("path not available on this CPU");
    return;
  }
  const int bits = data == wide8 ? 8 : 4;
  const IntOperand a{operand(0, data), bits, false}, b{operand(1, data), bits, false};
  std::vector<std::int32_t> c(std::size_t(kM) * kN);
  GemmContext ctx(threads);
  for (auto _ : state) {
    const GemmStats st = gemm(ctx, {kM, kN, kK}, a, b, cfg, c, path);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GMAC/s"] =
      benchmark::Counter(double(kM) * kN * kK * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}

void Args(benchmark::internal::Benchmark* b) {
  const AccMode modes[] = {AccMode::saturate, AccMode::clamp_tile, AccMode::wrap, AccMode::exact};
  for (const int data : {uniform, gaussian, wide8}) {
    for (const AccMode mode : modes) {
      for (const AccRange range : {AccRange::full, AccRange::symmetric}) {
        if (mode != AccMode::saturate && range == AccRange::symmetric) continue;
        b->Args({int(KernelPath::reference), int(mode), int(range), 1, data});
        b->Args({int(KernelPath::portable), int(mode), int(range), 1, data});
        for (const int threads : {1, 2}) b->Args({int(KernelPath::avx2), int(mode), int(range), threads, data});
      }
    }
  }
  b->ArgNames({"path", "mode", "range", "threads", "data"});
}

BENCHMARK(BM_Gemm)->Apply(Args)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(0.2);

}  // namespace

BENCHMARK_MAIN();
