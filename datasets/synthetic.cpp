// The "synthetic" sensor-window generator (definition in data/synthetic.h).
#include "datasets/synthetic.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "models/common/splitmix64.h"
#include "models/common/errors.h"

namespace hdq::datasets {
namespace detail {
namespace {

// Taylor polynomials on |theta| <= pi/4 (+ a rounding), Horner in theta^2.
// Coefficients are (-1)^k / (2k+1)! and (-1)^k / (2k)!; every factorial up to
// 17! < 2^53 is exact in f64 and the compiler rounds each quotient once.
// Truncation error: (pi/4)^19 / 19! < 1e-18 for sin, (pi/4)^18 / 18! < 1e-17 for cos.
double sin_poly(double t) {
  const double w = t * t;
  return t * (1.0 + w * (-1.0 / 6.0 + w * (1.0 / 120.0 + w * (-1.0 / 5040.0 + w * (1.0 / 362880.0 + w * (-1.0 / 39916800.0 +
         w * (1.0 / 6227020800.0 + w * (-1.0 / 1307674368000.0 + w * (1.0 / 355687428096000.0)))))))));
}
double cos_poly(double t) {
  const double w = t * t;
  return 1.0 + w * (-1.0 / 2.0 + w * (1.0 / 24.0 + w * (-1.0 / 720.0 + w * (1.0 / 40320.0 + w * (-1.0 / 3628800.0 +
         w * (1.0 / 479001600.0 + w * (-1.0 / 87178291200.0 + w * (1.0 / 20922789888000.0))))))));
}

// sin(2 pi (x + shift / 4)) for shift 0 (sine) or 1 (cosine).
// r = x - floor(x) in [0, 1) and y = 4 r are exact; n = floor(y + 1/2) is the
// nearest quarter turn, f = y - n in about [-1/2, 1/2] is exact (n is an
// integer next to y); theta = f * pi/2. Then by quadrant q = (n + shift) mod 4:
// sin(2 pi x) = sin(theta), cos(theta), -sin(theta), -cos(theta).
double sin_quadrant(double x, int shift) {
  const double y = 4.0 * (x - std::floor(x));
  const double n = std::floor(y + 0.5);
  const double theta = (y - n) * (std::numbers::pi / 2.0);
  switch ((static_cast<int>(n) + shift) & 3) {
    case 0: return sin_poly(theta);
    case 1: return cos_poly(theta);
    case 2: return -sin_poly(theta);
    default: return -cos_poly(theta);
  }
}

}  // namespace

double sin_turns(double x) { return sin_quadrant(x, 0); }
double cos_turns(double x) { return sin_quadrant(x, 1); }

// u = m * 2^e with m in [1/sqrt2, sqrt2) (frexp gives [1/2, 1); double m and
// decrement e when m < 1/sqrt2). ln u = e ln2 + ln m, and with s = (m-1)/(m+1),
// |s| <= 0.1716: ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ... + s^23/23);
// the first omitted term 2 s^25 / 25 is below 1e-20.
double log_portable(double u) {
  int e = 0;
  double m = std::frexp(u, &e);
  if (m < std::numbers::sqrt2 / 2.0) {
    m *= 2.0;
    --e;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double w = s * s;
  double series = 2.0 / 23.0;
  for (int k = 21; k >= 1; k -= 2) series = 2.0 / k + w * series;
  return static_cast<double>(e) * std::numbers::ln2 + s * series;
}

}  // namespace detail

namespace {

std::uint64_t stream_key(std::uint64_t seed, std::uint64_t split, std::uint64_t index) {
  return mix64(seed ^ mix64(split ^ mix64(index)));
}

// One standard normal (Box-Muller, cosine half).
double standard_normal(SplitMix64& g) {
  const double u1 = uniform_open_closed(g);  // (0, 1]: log is finite
  const double u2 = uniform_closed_open(g);
  return std::sqrt(std::max(0.0, -2.0 * detail::log_portable(u1))) * detail::cos_turns(u2);
}

struct ClassWave {
  double freq, amp, phase;
};

}  // namespace

TrainTest make_synthetic(const SyntheticSpec& p) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ConfigError("synthetic: " + what);
  };
  need(p.classes >= 1, fmt::format("classes = {} must be >= 1", p.classes));
  need(p.channels >= 1, fmt::format("channels = {} must be >= 1", p.channels));
  need(p.steps >= 1, fmt::format("steps = {} must be >= 1", p.steps));
  need(p.image_channels >= 1 && p.channels % p.image_channels == 0,
       fmt::format("image_channels = {} must be >= 1 and divide channels = {}", p.image_channels, p.channels));
  need(p.train_per_class >= 1, fmt::format("train_per_class = {} must be >= 1", p.train_per_class));
  need(p.test_per_class >= 0, fmt::format("test_per_class = {} must be >= 0", p.test_per_class));
  need(std::isfinite(p.noise) && p.noise >= 0.0, fmt::format("noise = {} must be finite and >= 0", p.noise));
  need(p.phase_jitter >= 0.0 && p.phase_jitter <= 0.5,
       fmt::format("phase_jitter = {} must be in 0..0.5 turns", p.phase_jitter));
  const std::size_t K = static_cast<std::size_t>(p.classes), C = static_cast<std::size_t>(p.channels),
                    T = static_cast<std::size_t>(p.steps), D = C * T;
  // Each split is one N x D tensor (classes x per_class samples of channels x steps).
  require_tensor_elements("synthetic: the training split (classes x train_per_class) x (channels x steps)",
                          {p.classes * static_cast<long long>(p.train_per_class), p.channels * static_cast<long long>(p.steps)});
  if (p.test_per_class > 0)
    require_tensor_elements("synthetic: the test split (classes x test_per_class) x (channels x steps)",
                            {p.classes * static_cast<long long>(p.test_per_class), p.channels * static_cast<long long>(p.steps)});

  const double fmax = std::max(1.0, static_cast<double>(T) / 4.0);
  std::vector<ClassWave> wave(K * C);
  for (std::size_t k = 0; k < K; ++k) {
    SplitMix64 g(stream_key(p.seed, 0, k));
    for (std::size_t c = 0; c < C; ++c) {
      ClassWave& w = wave[k * C + c];
      w.freq = 1.0 + (fmax - 1.0) * uniform_closed_open(g);
      w.amp = 0.5 + uniform_closed_open(g);
      w.phase = uniform_closed_open(g);
    }
  }

  auto make = [&](std::uint64_t split, int per_class) {
    Dataset ds;
    ds.name = "synthetic";
    if (p.image_channels > 1) ds.shape = {std::size_t(p.image_channels), C / std::size_t(p.image_channels), T};
    else ds.shape = {C, T};
    ds.num_classes = p.classes;
    const std::size_t n = K * static_cast<std::size_t>(per_class);
    ds.features.resize(n * D);
    ds.labels.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t k = i % K;
      ds.labels[i] = static_cast<std::int32_t>(k);
      SplitMix64 g(stream_key(p.seed, split, i));
      const double phi = (2.0 * uniform_closed_open(g) - 1.0) * p.phase_jitter;
      float* x = ds.features.data() + i * D;
      for (std::size_t c = 0; c < C; ++c) {
        const ClassWave& w = wave[k * C + c];
        for (std::size_t t = 0; t < T; ++t) {
          const double cycles = w.freq * static_cast<double>(t) / static_cast<double>(T) + w.phase + phi;
          const double signal = w.amp * detail::sin_turns(cycles);
          x[c * T + t] = static_cast<float>(signal + p.noise * standard_normal(g));
        }
      }
    }
    return ds;
  };
  return TrainTest{make(1, p.train_per_class), make(2, p.test_per_class)};
}

}  // namespace hdq::datasets
