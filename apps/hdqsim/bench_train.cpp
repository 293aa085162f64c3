// `hdqsim bench train`: the functional engine's training step on a scenario's
// network and batch shape, timed step by step after a warm-up.
//
// One step is exactly what the class-incremental driver does per batch with
// the functional engine (training/continual.cpp): FunctionalEngine::gradients
// (Engine::gradients: HDQT forward, softmax cross-entropy, HDQT backward)
// followed by Sgd::step. The batches are real samples of the scenario's data
// set (load_scenario_data), or, with --synthetic, uniform values in [0, 1) of
// the same shape. Every class is active (the softmax of the last task). The
// final weights' signature is printed: two builds that time the same steps
// must print the same signature (fast paths change no bit).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "apps/hdqsim/commands.h"
#include "apps/hdqsim/output.h"
#include "engines/engine.h"
#include "engines/functional_engine.h"
#include "models/accumulator/gemm.h"
#include "models/common/errors.h"
#include "models/common/names.h"
#include "models/hadamard/hadamard_paths.h"
#include "models/quantizer/quantizer_paths.h"
#include "models/quantizer/random_bits.h"
#include "training/continual.h"

namespace hdq::cli {
namespace {

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median seconds of run() over at least 5 runs and min_seconds; prepare() runs
// untimed before each run (e.g. restores an input transformed in place).
double time_median(const std::function<void()>& run, double min_seconds, const std::function<void()>& prepare) {
  std::vector<double> t;
  double total = 0;
  while (t.size() < 5 || total < min_seconds) {
    if (prepare) prepare();
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t.push_back(dt);
    total += dt;
  }
  return median_of(t);
}

// One loop of the quantizer or the Hadamard transform: its scalar reference
// (the code before the fast paths) and the fastest path on the same input,
// elements per second of each and whether the outputs are the same bits.
nlohmann::json time_primitive(const std::string& what, const std::string& fast_path, std::size_t elements,
                              const std::function<void()>& reference, const std::function<void()>& fast,
                              const std::function<bool()>& same_bits, const std::function<void()>& prepare = {}) {
  const double ref_s = time_median(reference, 0.2, prepare), fast_s = time_median(fast, 0.2, prepare);
  const bool exact = same_bits();
  const double ref_rate = double(elements) / ref_s, fast_rate = double(elements) / fast_s;
  fmt::print("  {:<28} {:>7} elements: reference {:8.1f} M/s, {} {:8.1f} M/s ({:.1f}x), bit-exact: {}\n", what, elements,
             ref_rate * 1e-6, fast_path, fast_rate * 1e-6, fast_rate / ref_rate, exact ? "yes" : "NO");
  return {{"elements", elements},
          {"path", fast_path},
          {"reference_elements_per_s", ref_rate},
          {"fast_elements_per_s", fast_rate},
          {"ratio_fast_over_reference", fast_rate / ref_rate},
          {"bit_exact", exact}};
}

// The quantizer on a rows x cols tensor of gradient-like values (both
// roundings), its scale scan, and the f32 FWHT on rows x rows with blocks 32
// and `rows` (the dW gradient G'' at this batch), the int32 FWHT of X'.
nlohmann::json time_primitives(int rows, int cols) {
  using namespace detail;
  const std::size_t n = std::size_t(rows) * std::size_t(cols);
  std::vector<float> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = float(std::int64_t(mix64(i + 7) >> 40) - (std::int64_t{1} << 23)) * 0x1p-30f;
  const KernelPath qfast = best_quant_path();
  const KernelPath hfast = best_hadamard_path();
  nlohmann::json out = nlohmann::json::object();
  fmt::print("primitives (scalar reference = the loops before the fast paths; same inputs, same run):\n");
  for (const Rounding rounding : {Rounding::nearest, Rounding::stochastic}) {
    QuantConfig cfg;
    cfg.rounding = rounding;
    const QuantParams p = choose_scale(x, cfg, "x");
    std::vector<std::int16_t> q_ref(n), q_fast(n);
    const std::string what = rounding == Rounding::nearest ? "quantize_nearest" : "quantize_stochastic";
    out[what] = time_primitive(
        fmt::format("quantize {} {}x{}", rounding == Rounding::nearest ? "nearest" : "stochastic", rows, cols),
        std::string(name(qfast)), n, [&] { quantize_span(x, 0, p, cfg, 12345, q_ref, KernelPath::reference); },
        [&] { quantize_span(x, 0, p, cfg, 12345, q_fast, qfast); }, [&] { return q_ref == q_fast; });
  }
  {
    ScaleScan a, b;
    out["scale_scan"] = time_primitive(
        fmt::format("scale scan (max |x|) {}x{}", rows, cols), std::string(name(qfast)), n, [&] { a = scan(x, KernelPath::reference); },
        [&] { b = scan(x, qfast); },
        [&] { return a.max_abs == b.max_abs && a.nonnegative == b.nonnegative && a.first_nonfinite == b.first_nonfinite; });
  }
  for (const int block : {32, rows}) {
    const std::size_t m = std::size_t(rows) * std::size_t(rows);
    const std::vector<float> src(x.begin(), x.begin() + std::ptrdiff_t(m));
    std::vector<float> h_ref = src, h_fast = src;
    out[fmt::format("fwht_f32_block{}", block)] = time_primitive(
        fmt::format("fwht f32 block {} {}x{}", block, rows, rows), std::string(name(hfast)), m,
        [&] { fwht_f32(h_ref.data(), m, block, KernelPath::reference); },
        [&] { fwht_f32(h_fast.data(), m, block, hfast); },
        [&] {
          h_ref = src, h_fast = src;
          fwht_f32(h_ref.data(), m, block, KernelPath::reference);
          fwht_f32(h_fast.data(), m, block, hfast);
          return h_ref == h_fast;
        },
        [&] { h_ref = src, h_fast = src; });  // in place: restored (untimed) before each run
  }
  {
    std::vector<std::int32_t> src(n);
    for (std::size_t i = 0; i < n; ++i) src[i] = std::int32_t(mix64(i) % 15) - 7;
    std::vector<std::int32_t> i_ref = src, i_fast = src;
    out[fmt::format("fwht_i32_block{}", rows)] = time_primitive(
        fmt::format("fwht i32 block {} {}x{}", rows, cols, rows), std::string(name(hfast)), n,
        [&] { fwht_i32(i_ref.data(), n, rows, KernelPath::reference); },
        [&] { fwht_i32(i_fast.data(), n, rows, hfast); },
        [&] {
          i_ref = src, i_fast = src;
          fwht_i32(i_ref.data(), n, rows, KernelPath::reference);
          fwht_i32(i_fast.data(), n, rows, hfast);
          return i_ref == i_fast;
        },
        [&] { i_ref = src, i_fast = src; });
  }
  return out;
}

}  // namespace

int run_bench_train(const BenchTrainOptions& o) {
  require_in_range("--steps", o.steps, 1, 1000000);
  require_in_range("--warmup", o.warmup, 0, 1000000);
  require_in_range("--threads", o.threads, 1, 256);
  const Scenario s = load_scenario(o.scenario);
  const int B = o.batch > 0 ? o.batch : s.train.batch;
  require_in_range("--batch", B, 1, 1 << 20);

  // The data: real samples (consecutive rows of the train split, wrapping) or synthetic ones.
  std::vector<float> features;
  std::vector<int> labels;
  int dim = 0, classes = 0;
  std::vector<std::size_t> shape;  // of one sample
  std::string data_name;
  if (o.synthetic) {
    // Fashion-MNIST's shape unless the scenario names another data set (then: its shape, loaded once).
    if (s.data.dataset == "fashion-mnist") {
      dim = 28 * 28, classes = 10, shape = {28, 28};
    } else {
      const datasets::TrainTest d = load_scenario_data(s);
      dim = int(d.train.dim()), classes = d.train.num_classes, shape = d.train.shape;
    }
    require_tensor_elements("8 x --batch synthetic rows x features", {8ll * B, dim});
    const std::size_t rows = std::size_t(B) * 8;
    features.resize(rows * std::size_t(dim));
    labels.resize(rows);
    for (std::size_t i = 0; i < features.size(); ++i) features[i] = float(mix64(i + 1) >> 40) * 0x1p-24f;
    for (std::size_t i = 0; i < rows; ++i) labels[i] = int(mix64(~i) % std::uint64_t(classes));
    data_name = "synthetic";
  } else {
    const datasets::TrainTest d = load_scenario_data(s);
    dim = int(d.train.dim()), classes = d.train.num_classes, shape = d.train.shape;
    features = d.train.features;
    labels.assign(d.train.labels.begin(), d.train.labels.end());
    data_name = d.train.name;
  }
  require_tensor_elements("--batch rows x features", {B, dim});
  const std::size_t samples = labels.size();
  if (samples == 0) throw ConfigError("bench train: the scenario's training set is empty");

  MlpParams params = init_network(s.network, shape, classes, s.seed);
  std::vector<int> widths{dim};  // an MLP's; a layer graph is named by its preset
  widths.insert(widths.end(), s.network.hidden.begin(), s.network.hidden.end());
  widths.push_back(classes);
  const std::string network =
      s.network.is_graph() ? s.network.preset : fmt::format("MLP {}", fmt::join(widths, "-"));
  MlpGrads grads = zeros_like(params);
  FunctionalEngine engine(s.hdqt, s.seed, o.threads);
  Sgd sgd(s.train.sgd);
  const auto active_buf = std::make_unique<bool[]>(std::size_t(classes));
  std::fill_n(active_buf.get(), classes, true);
  const std::span<const bool> active(active_buf.get(), std::size_t(classes));

  Matrix x(B, dim);
  std::vector<int> y(static_cast<std::size_t>(B));
  std::size_t next_row = 0;
  const auto next_batch = [&] {
    for (int r = 0; r < B; ++r, next_row = (next_row + 1) % samples) {
      std::copy_n(features.begin() + std::ptrdiff_t(next_row * std::size_t(dim)), dim, x.v.begin() + std::ptrdiff_t(r) * dim);
      y[std::size_t(r)] = labels[next_row];
    }
  };

  std::uint64_t step = 0;
  double loss = 0;
  std::vector<double> ms;
  for (int i = 0; i < o.warmup + o.steps; ++i) {
    next_batch();  // outside the timed region: the driver's gather is not the engine's work
    const auto t0 = std::chrono::steady_clock::now();
    loss = engine.gradients(params, x, y, active, step, grads);
    sgd.step(params, grads);
    const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    ++step;
    if (i >= o.warmup) ms.push_back(dt);
  }
  const double median_ms = median_of(ms);
  const double mean_ms = std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size());
  const double min_ms = *std::min_element(ms.begin(), ms.end());
  const std::uint64_t sig = signature(params);

  fmt::print("train step: scenario {} (preset {}), {}, batch {}, {} data, {} threads, gemm path {}\n", s.name,
             s.preset, network, B, data_name, o.threads, name(best_gemm_path()));
  fmt::print("  {} steps after {} warm-up: median {:.3f} ms/step (mean {:.3f}, min {:.3f}); last loss {:.4f}\n", o.steps,
             o.warmup, median_ms, mean_ms, min_ms, loss);
  fmt::print("  signature of the weights after {} steps: {:016x}\n", step, sig);
  nlohmann::json j{{"scenario", s.name},
                         {"preset", s.preset},
                         {"data", data_name},
                         {"network", network},
                         {"batch", B},
                         {"threads", o.threads},
                         {"gemm_path", name(best_gemm_path())},
                         {"warmup", o.warmup},
                         {"steps", o.steps},
                         {"hdqsim_ms_per_step", median_ms},
                         {"mean_ms_per_step", mean_ms},
                         {"min_ms_per_step", min_ms},
                         {"last_loss", loss},
                         {"signature", fmt::format("{:016x}", sig)},
                         {"peak_rss_mib", peak_rss_mib()}};
  bool exact = true;
  if (o.primitives && std::has_single_bit(unsigned(B)) && B >= 32) {
    j["primitives"] = time_primitives(B, dim);
    for (const auto& [key, value] : j["primitives"].items()) exact = exact && value["bit_exact"].get<bool>();
  } else if (o.primitives) {
    fmt::print("  (--primitives needs a power-of-two batch >= 32: the FWHT block is the batch)\n");
  }
  fmt::print("{}\n", j.dump());
  return exact ? 0 : 1;
}

}  // namespace hdq::cli
