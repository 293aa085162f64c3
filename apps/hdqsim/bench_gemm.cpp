// `hdqsim bench gemm`: the scalar reference and a fast path on the same random
// operands, each timed repeatedly in this run; medians and their ratio.
//
// One mode (default saturate): the reference on 1 thread, the fast path on 1
// thread and, when --threads > 1, also on --threads; the last line is JSON
// (fast_gmacs is the --threads figure).
// `--mode all`: every mode (saturate full and symmetric, clamp_tile, wrap,
// exact; --range is ignored), each with its own reference timing, the fast
// path (without --path: every vector path of this CPU, e.g. avx2 and avx512,
// to compare them in one run) on 1 and max(2, --threads) threads; a table,
// then one JSON line with a row per path, mode and thread count. Exit status
// 1 when any result differs from the reference.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>
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

namespace {

struct Row {
  KernelPath path = KernelPath::reference;
  std::string mode, range;
  int threads = 1;
  double ref_s = 0, fast_s = 0;
  int ref_reps = 0, fast_reps = 0;
  bool bit_exact = false;
  std::uint64_t inner_events = 0, outer_overflows = 0;
};

// Times the reference once and each fast path at each thread count for one config.
std::vector<Row> measure(const BenchGemmOptions& o, const std::string& mode, const std::string& range,
                         const std::vector<int>& threads, const std::vector<KernelPath>& fast, const IntOperand& ao,
                         const IntOperand& bo) {
  const GemmShape shape{o.m, o.n, o.k};
  const AccumulatorConfig cfg{o.acc_bits, o.tile, parse_acc_mode(mode, "--mode"), parse_acc_range(range, "--range"),
                              32};
  std::vector<std::int32_t> c_ref(std::size_t(o.m) * o.n), c_fast(c_ref.size());
  GemmStats s_ref;
  GemmContext ref_ctx;
  const Timing ref =
      time_median([&] { s_ref = gemm(ref_ctx, shape, ao, bo, cfg, c_ref, KernelPath::reference); }, o.min_seconds);
  std::vector<Row> rows;
  for (const KernelPath path : fast)
    for (const int t : threads) {
      GemmStats s_fast;
      std::fill(c_fast.begin(), c_fast.end(), 0x5a5a5a5a);
      GemmContext ctx(t);
      const Timing fst = time_median([&] { s_fast = gemm(ctx, shape, ao, bo, cfg, c_fast, path); }, o.min_seconds);
      rows.push_back({path, mode, range, t, ref.median_s, fst.median_s, ref.reps, fst.reps,
                      c_ref == c_fast && s_ref == s_fast, s_ref.inner_events(), s_ref.outer_overflows});
    }
  return rows;
}

}  // namespace

int run_bench_gemm(const BenchGemmOptions& o) {
  const KernelPath fast = o.path.empty() ? best_gemm_path() : parse_kernel_path(o.path, "--path");
  require_in_range("--operand-bits", o.operand_bits, 2, 8);
  require_in_range("--threads", o.threads, 1, 256);
  require_tensor_elements("--m x --k (operand A)", {o.m, o.k});
  require_tensor_elements("--k x --n (operand B)", {o.k, o.n});
  require_tensor_elements("--m x --n (result C)", {o.m, o.n});
  const auto a = random_signed(std::size_t(o.m) * o.k, o.operand_bits, 1);
  const auto b = random_signed(std::size_t(o.k) * o.n, o.operand_bits, 1u << 31);
  const IntOperand ao{a, o.operand_bits, false}, bo{b, o.operand_bits, false};
  const double macs = double(o.m) * o.n * o.k;
  const auto gmacs = [&](double s) { return macs / s * 1e-9; };

  if (o.mode == "all") {
    std::vector<KernelPath> paths{fast};
    if (o.path.empty()) {
      paths.clear();
      for (const KernelPath p : available_gemm_paths())
        if (p != KernelPath::reference && p != KernelPath::portable) paths.push_back(p);
      if (paths.empty()) paths.push_back(fast);
    }
    const std::pair<const char*, const char*> configs[] = {
        {"saturate", "full"}, {"saturate", "symmetric"}, {"clamp_tile", "full"}, {"wrap", "full"}, {"exact", "full"}};
    const std::vector<int> threads{1, std::max(2, o.threads)};
    fmt::print("gemm {}x{}x{} t={} W={} int{} operands; medians, reference on 1 thread in the same run\n", o.m, o.n,
               o.k, o.tile, o.acc_bits, o.operand_bits);
    fmt::print("  {:<8} {:<10} {:<9} {:>7} {:>10} {:>10} {:>9} {:>9} {:>9}\n", "path", "mode", "range", "threads",
               "ref GMAC/s", "GMAC/s", "ratio", "vs sat", "bit-exact");
    std::vector<Row> all;
    for (const auto& [mode, range] : configs)
      for (const Row& r : measure(o, mode, range, threads, paths, ao, bo)) all.push_back(r);
    bool ok = true;
    nlohmann::json rows = nlohmann::json::array();
    for (const Row& r : all) {
      // Speed relative to saturate/full on the same path and thread count (the "within 1.5x").
      double sat = 0;
      for (const Row& q : all)
        if (q.path == r.path && q.mode == "saturate" && q.range == "full" && q.threads == r.threads)
          sat = gmacs(q.fast_s);
      fmt::print("  {:<8} {:<10} {:<9} {:>7} {:>10.2f} {:>10.2f} {:>8.1f}x {:>8.2f}x {:>9}\n", name(r.path), r.mode,
                 r.range, r.threads, gmacs(r.ref_s), gmacs(r.fast_s), r.ref_s / r.fast_s, gmacs(r.fast_s) / sat,
                 r.bit_exact ? "yes" : "NO");
      ok = ok && r.bit_exact;
      rows.push_back({{"path", name(r.path)},
                      {"mode", r.mode},
                      {"range", r.range},
                      {"threads", r.threads},
                      {"reference_median_s", r.ref_s},
                      {"fast_median_s", r.fast_s},
                      {"reference_gmacs", gmacs(r.ref_s)},
                      {"fast_gmacs", gmacs(r.fast_s)},
                      {"ratio_fast_over_reference", r.ref_s / r.fast_s},
                      {"bit_exact", r.bit_exact}});
    }
    const nlohmann::json j{{"m", o.m},         {"n", o.n},       {"k", o.k},
                           {"tile", o.tile},   {"acc_bits", o.acc_bits}, {"operand_bits", o.operand_bits},
                           {"path", name(fast)}, {"rows", rows},   {"bit_exact", ok}};
    fmt::print("{}\n", j.dump());
    return ok ? 0 : 1;
  }

  std::vector<int> threads{1};
  if (o.threads != 1) threads.push_back(o.threads);
  const std::vector<Row> rows = measure(o, o.mode, o.range, threads, {fast}, ao, bo);
  const Row& main_row = rows.back();
  fmt::print("gemm {}x{}x{} t={} W={} {} {} int{} operands\n", o.m, o.n, o.k, o.tile, o.acc_bits, o.mode, o.range,
             o.operand_bits);
  fmt::print("  reference (1 thread): median {:.3f} ms over {} runs, {:.2f} GMAC/s\n", main_row.ref_s * 1e3,
             main_row.ref_reps, gmacs(main_row.ref_s));
  bool ok = true;
  for (const Row& r : rows) {
    fmt::print("  {} ({} thread{}): median {:.3f} ms over {} runs, {:.2f} GMAC/s, ratio {:.1f}x, bit-exact: {}\n",
               name(fast), r.threads, r.threads == 1 ? "" : "s", r.fast_s * 1e3, r.fast_reps, gmacs(r.fast_s),
               r.ref_s / r.fast_s, r.bit_exact ? "yes" : "NO");
    ok = ok && r.bit_exact;
  }
  fmt::print("  inner events {}, outer overflows {}\n", main_row.inner_events, main_row.outer_overflows);
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
                         {"reference_median_s", main_row.ref_s},
                         {"fast_median_s", main_row.fast_s},
                         {"reference_gmacs", gmacs(main_row.ref_s)},
                         {"fast_gmacs", gmacs(main_row.fast_s)},
                         {"fast_1thread_gmacs", gmacs(rows.front().fast_s)},
                         {"ratio_fast_over_reference", main_row.ref_s / main_row.fast_s},
                         {"bit_exact", ok}};
  fmt::print("{}\n", j.dump());
  return ok ? 0 : 1;
}

}  // namespace hdq::cli
