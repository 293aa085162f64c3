// "synthetic": seeded sensor windows, C channels x T time steps, K classes.
//
// Class parameters (per class k and channel c, drawn from the stream
// key(0, k), in the order c = 0..C-1, three draws each):
//   f[k][c]     = 1 + (fmax - 1) * u      cycles per window, fmax = max(1, T / 4)
//   a[k][c]     = 0.5 + u                 amplitude in [0.5, 1.5)
//   theta[k][c] = u                       base phase in turns, [0, 1)
// (u = uniform_closed_open, models/common/splitmix64.h). A class does not depend on K,
// so adding classes leaves the existing ones unchanged.
//
// Sample i of a split (split tag s = 1 train, 2 test) has label k = i % K
// (classes interleaved, exactly *_per_class samples each) and its own stream
// key(s, i), so it depends on neither the other samples nor the split sizes:
//   phi         = (2 u - 1) * phase_jitter                      per-sample phase shift, turns
//   x[c*T + t]  = f32( a * sin_turns(f * t / T + theta + phi) + noise * z )
// for c = 0..C-1, t = 0..T-1 (channel-major; shape = {C, T}), where each z is a
// fresh standard normal from Box-Muller: z = sqrt(-2 ln u1) * cos_turns(u2),
// u1 = uniform_open_closed, u2 = uniform_closed_open (two draws per element,
// the sine half is not used). Everything is evaluated in f64 left to right
// and rounded once to f32.
//   key(s, i) = mix64(seed ^ mix64(s ^ mix64(i)))    (SplitMix64 state)
//
// Portability: the generator uses only +, -, *, /, sqrt (correctly rounded by
// IEEE 754), floor and frexp (exact), with sin/cos/log built from them below
// (the library compiles with -ffp-contract=off, so nothing is fused into an
// FMA); the data are therefore bit-identical with every compiler and C
// library. std::sin / std::log are not required to round the same way
// everywhere, std:: distributions even less.
//
// Learnability: with phi uniform in [-J, J] turns the class mean of a channel is
// a * rho * sin(2 pi (f t / T + theta)) with rho = sin(2 pi J) / (2 pi J)
// (rho = 2/pi for the default J = 1/4), so the classes have distinct means and a
// linear model (even nearest class mean) is well above chance; the jitter and the
// noise leave room for a nonlinear model (MLP) to do better.
#pragma once

#include <cstdint>

#include "datasets/datasets.h"

namespace hdq::datasets {

struct SyntheticSpec {
  int classes = 10;            // K >= 1
  int channels = 6;            // C >= 1
  int steps = 32;              // T >= 1; D = C * T
  int train_per_class = 500;   // >= 1
  int test_per_class = 100;    // >= 0
  double noise = 2.0;          // std of the additive Gaussian noise, >= 0
  double phase_jitter = 0.25;  // J: max |per-sample phase shift| in turns, 0..0.5
  std::uint64_t seed = 1;
  // > 1: the samples are images of image_channels x (C / image_channels) x T
  // (shape {image_channels, C / image_channels, T}; C must be a multiple), the
  // same values in the same order; 1: shape {C, T}.
  int image_channels = 1;
};

// ConfigError for a parameter out of range (or more than 2^31 features in total).
TrainTest make_synthetic(const SyntheticSpec& spec);

namespace detail {
// sin(2 pi x) and cos(2 pi x) for finite x (argument in turns, so the
// reduction x - floor(x) is exact); absolute error below 1e-15.
double sin_turns(double x);
double cos_turns(double x);
// Natural logarithm of a finite u > 0; relative error below 1e-15.
double log_portable(double u);
}  // namespace detail

}  // namespace hdq::datasets
