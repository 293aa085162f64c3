// `hdqsim bench gemm`: the scalar reference and a fast path on the same random
// operands, each timed repeatedly in this run; medians and their ratio.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <vector>

#include "apps/hdqsim/commands.h"
#include "models/accumulator/gemm.h"
#include "models/common/errors.h"
#include "models/common/names.h"
#include "models/quantizer/random_bits.h"

namespace hdq::cli {
namespace {

struct Timing {
  double median_s = 0;
  int reps = 0;
};

template <typename F>
Timing time_median(F run, double min_seconds) {
  std::vector<double> t;
  double total = 0;
  while (t.size() < 3 || total < min_seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t.push_back(dt);
    total += dt;
  }
  std::nth_element(t.begin(), t.begin() + t.size() / 2, t.end());
  return {t[t.size() / 2], int(t.size())};
}

std::vector<std::int16_t> random_signed(std::size_t n, int bits, std::uint64_t seed) {
  std::vector<std::int16_t> v(n);
  const int span = 1 << bits, lo = -(1 << (bits - 1));
  for (std::size_t i = 0; i < n; ++i) v[i] = std::int16_t(lo + int(mix64(seed + i) % std::uint64_t(span)));
  return v;
}

}  // namespace

int run_bench_gemm(const BenchGemmOptions& o) {
  const GemmShape shape{o.m, o.n, o.k};
  const AccumulatorConfig cfg{o.acc_bits, o.tile, parse_acc_mode(o.mode, "--mode"), parse_acc_range(o.range, "--range"), 32};
  const GemmPath fast = o.path.empty() ? best_gemm_path() : parse_gemm_path(o.path, "--path");
  require_in_range("--operand-bits", o.operand_bits, 2, 8);
  const auto a = random_signed(std::size_t(o.m) * o.k, o.operand_bits, 1);
  const auto b = random_signed(std::size_t(o.k) * o.n, o.operand_bits, 1u << 31);
  const IntOperand ao{a, o.operand_bits, false}, bo{b, o.operand_bits, false};
  std::vector<std::int32_t> c_ref(std::size_t(o.m) * o.n), c_fast(c_ref.size());

  GemmStats s_ref, s_fast;
  const Timing ref = time_median([&] { s_ref = gemm(shape, ao, bo, cfg, c_ref, GemmPath::reference, 1); }, o.min_seconds);
  const Timing fst = time_median([&] { s_fast = gemm(shape, ao, bo, cfg, c_fast, fast, o.threads); }, o.min_seconds);
  const bool bit_exact = c_ref == c_fast && s_ref == s_fast;

  const double macs = double(o.m) * o.n * o.k;
  const double ref_gmacs = macs / ref.median_s * 1e-9, fast_gmacs = macs / fst.median_s * 1e-9;
  fmt::print("gemm {}x{}x{} t={} W={} {} {} int{} operands\n", o.m, o.n, o.k, o.tile, o.acc_bits, o.mode, o.range,
             o.operand_bits);
  fmt::print("  reference (1 thread): median {:.3f} ms over {} runs, {:.2f} GMAC/s\n", ref.median_s * 1e3, ref.reps,
             ref_gmacs);
  fmt::print("  {} ({} threads): median {:.3f} ms over {} runs, {:.2f} GMAC/s\n", name(fast), o.threads,
             fst.median_s * 1e3, fst.reps, fast_gmacs);
  fmt::print("  ratio {:.1f}x, bit-exact: {}, inner events {}, outer overflows {}\n", fast_gmacs / ref_gmacs,
             bit_exact ? "yes" : "NO", s_ref.inner_events(), s_ref.outer_overflows);
  const nlohmann::json j{{"m", o.m},
                         {"n", o.n},
                         {"k", o.k},
                         {"tile", o.tile},
                         {"acc_bits", o.acc_bits},
                         {"mode", o.mode},
                         {"range", o.range},
                         {"operand_bits", o.operand_bits},
                         {"threads", o.threads},
                         {"path", name(fast)},
                         {"reference_median_s", ref.median_s},
                         {"fast_median_s", fst.median_s},
                         {"reference_gmacs", ref_gmacs},
                         {"fast_gmacs", fast_gmacs},
                         {"ratio_fast_over_reference", fast_gmacs / ref_gmacs},
                         {"bit_exact", bit_exact}};
  fmt::print("{}\n", j.dump());
  return bit_exact ? 0 : 1;
}

}  // namespace hdq::cli
