// Properties of docs/contract.md §4 (Hadamard transform).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <vector>

#include "models/common/errors.h"
#include "models/hadamard/hadamard.h"
#include "properties/prop_common.h"

namespace {

using hdqprop::uniform;
using namespace rc;

constexpr int kMaxLog2Block = 8;  // b up to 256

// H_1 = [1], H_2n = [[H_n, H_n], [H_n, -H_n]], built by that recursion (not
// by the popcount formula), once, for n = 1, 2, ..., 256.
const std::vector<std::vector<int>>& sylvester_recursive(int log2n) {
  static const auto all = [] {
    std::vector<std::vector<std::vector<int>>> hs;
    hs.push_back({{1}});
    for (int l = 1; l <= kMaxLog2Block; ++l) {
      const auto& h = hs.back();
      const std::size_t n = h.size();
      std::vector<std::vector<int>> h2(2 * n, std::vector<int>(2 * n));
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < n; ++c) {
          h2[r][c] = h[r][c];
          h2[r][c + n] = h[r][c];
          h2[r + n][c] = h[r][c];
          h2[r + n][c + n] = -h[r][c];
        }
      hs.push_back(std::move(h2));
    }
    return hs;
  }();
  return all[std::size_t(log2n)];
}

// Section 4's f32 order, typed in from the text: for h = 1, 2, ..., b/2; for
// i from 0 in steps of 2h; for j in [i, i+h): (u, w) = (x[j], x[j+h]);
// x[j] = u + w; x[j+h] = u - w; on every run of b consecutive elements.
void fwht_f32_as_stated(std::vector<float>& x, int b) {
  for (std::size_t base = 0; base < x.size(); base += std::size_t(b))
    for (int h = 1; h <= b / 2; h *= 2)
      for (int i = 0; i < b; i += 2 * h)
        for (int j = i; j < i + h; ++j) {
          const float u = x[base + j], w = x[base + j + h];
          x[base + j] = u + w;
          x[base + j + h] = u - w;
        }
}

// Finite f32 values of varied magnitude (|x| < 2^100, so no sum of 256 of
// them overflows), signs, zeros of both signs and subnormals.
std::vector<float> float_values(std::mt19937_64& rng, std::size_t n) {
  std::vector<float> x(n);
  const int style = int(rng() % 3);  // 0: one magnitude; 1: mixed magnitudes; 2: mostly tiny/zero
  const int base_exp = int(rng() % 121) - 60;
  for (float& v : x) {
    const float mant = 1.0f + float(rng() >> 41) * 0x1p-23f;
    int e = base_exp;
    if (style == 1) e += int(rng() % 41) - 20;
    if (style == 2) e = (rng() % 4 == 0) ? -140 : -200;  // subnormal, or 0 after ldexp
    v = std::ldexp(mant, e);
    if (rng() & 1) v = -v;
  }
  return x;
}

// 7a. Section 4: the Sylvester matrices are unnormalized, H_b H_b^T = b I and
// (being symmetric) H_b H_b = b I. hdq::sylvester_entry must equal the
// recursive definition entry by entry, and row r of H_b H_b computed from
// sylvester_entry must be b e_r, for b = 1..256 and a random row (b^2 work per
// case; the full matrices are covered over the 1000 cases).
RC_GTEST_PROP(Hadamard, SylvesterEntryIsTheRecursiveMatrixAndSquaresToBTimesIdentity, ()) {
  const int l = *uniform(0, kMaxLog2Block);
  const int b = 1 << l;
  const auto r = std::uint32_t(*uniform(0, b - 1));
  const auto& h = sylvester_recursive(l);
  for (std::uint32_t c = 0; c < std::uint32_t(b); ++c) {
    RC_ASSERT(hdq::sylvester_entry(r, c) == h[r][c]);
    RC_ASSERT(hdq::sylvester_entry(c, r) == hdq::sylvester_entry(r, c));
    long dot = 0;
    for (std::uint32_t k = 0; k < std::uint32_t(b); ++k) dot += hdq::sylvester_entry(r, k) * hdq::sylvester_entry(k, c);
    RC_ASSERT(dot == (r == c ? long(b) : 0L));
  }
}

// 7b. Section 4: "On integer data the transform is exact (int32)." One
// fwht_i32 must equal the dense product with the recursive H_b in int64 (per
// block of b), and since H_b H_b = b I, applying it twice gives b times the
// input. Inputs are bounded by (2^31 - 1) / b^2 so no stage of either pass can
// leave int32 (after s stages |value| <= 2^s max|x|). hadamard_rows_i32 on a
// rows x cols view of the same data gives the same bits.
RC_GTEST_PROP(Hadamard, IntegerFwhtIsExactAndTwiceIsBTimesInput, ()) {
  const int l = *uniform(0, kMaxLog2Block);
  const int b = 1 << l;
  const int blocks = *uniform(1, 4);
  const int rows = *uniform(1, 3);
  const std::int64_t bound = (std::int64_t{1} << 31) / (std::int64_t(b) * b) - 1;
  std::mt19937_64 rng(*hdqprop::any_u64());
  const int style = *uniform(0, 2);
  const std::size_t n = std::size_t(rows) * blocks * b;
  std::vector<std::int32_t> x(n);
  for (auto& v : x) {
    const std::int64_t u = std::int64_t(rng() % std::uint64_t(2 * bound + 1)) - bound;
    v = std::int32_t(style == 0 ? u : (style == 1 ? ((rng() & 1) ? bound : -bound) : u % 8));
  }
  const auto& h = sylvester_recursive(l);
  std::vector<std::int64_t> dense(n, 0);
  for (std::size_t base = 0; base < n; base += std::size_t(b))
    for (int r = 0; r < b; ++r)
      for (int c = 0; c < b; ++c) dense[base + r] += std::int64_t(h[r][c]) * x[base + c];

  std::vector<std::int32_t> y = x;
  hdq::fwht_i32(y, b);
  for (std::size_t i = 0; i < n; ++i) RC_ASSERT(std::int64_t{y[i]} == dense[i]);
  std::vector<std::int32_t> y_rows = x;
  hdq::hadamard_rows_i32(y_rows, rows, blocks * b, b);
  RC_ASSERT(y_rows == y);
  hdq::fwht_i32(y, b);
  for (std::size_t i = 0; i < n; ++i) RC_ASSERT(std::int64_t{y[i]} == std::int64_t{b} * x[i]);
}

// 7c. Section 4: on f32 data the order is the in-place iterative FWHT as
// stated, each output one f32 rounding of one add per stage. fwht_f32 and
// hadamard_rows_f32 must give exactly the bits (compared as bit patterns, so
// -0 vs +0 counts) of the loop typed in from the text above.
RC_GTEST_PROP(Hadamard, FloatFwhtEqualsStatedOrderBitForBit, ()) {
  const int l = *uniform(0, kMaxLog2Block);
  const int b = 1 << l;
  const int blocks = *uniform(1, 4);
  const int rows = *uniform(1, 3);
  std::mt19937_64 rng(*hdqprop::any_u64());
  const std::vector<float> x = float_values(rng, std::size_t(rows) * blocks * b);
  std::vector<float> expected = x;
  fwht_f32_as_stated(expected, b);
  std::vector<float> y = x;
  hdq::fwht_f32(y, b);
  std::vector<float> y_rows = x;
  hdq::hadamard_rows_f32(y_rows, rows, blocks * b, b);
  for (std::size_t i = 0; i < x.size(); ++i) {
    RC_ASSERT(std::bit_cast<std::uint32_t>(y[i]) == std::bit_cast<std::uint32_t>(expected[i]));
    RC_ASSERT(std::bit_cast<std::uint32_t>(y_rows[i]) == std::bit_cast<std::uint32_t>(expected[i]));
  }
}

// 7d. Section 4, accuracy of the f32 FWHT against the exact transform.
// Derivation of the bound. Let L = log2 b and u = 2^-24 (f32, round to
// nearest). Every stage output is fl(p +- q) = (p +- q)(1 + d) with |d| <= u:
// there is no overflow (|x| < 2^100, b <= 256) and a sum whose exact value is
// subnormal is exact, so the model holds for every addition. Input j reaches
// output i through exactly one chain of L stage additions, with sign H_ij, so
//   y_i = sum_j H_ij x_j prod_{s=1..L} (1 + d_{s,ij}),
//   |y_i - (H x)_i| <= ((1 + u)^L - 1) sum_j |x_j| <= gamma_L(u) sum_j |x_j|,
// with gamma_n(u) = n u / (1 - n u). The comparison value z_i is the dense
// product computed in f64 by summing the b exact terms H_ij x_j in order
// (recursive summation, u' = 2^-53): |z_i - (H x)_i| <= gamma_{b-1}(u') sum_j
// |x_j|. Hence
//   |y_i - z_i| <= (gamma_L(2^-24) + gamma_{b-1}(2^-53)) * sum_j |x_j|.
// The check evaluates both sides in f64; the few roundings there (relative
// 2^-53 each, and sum |x_j| itself within gamma_b(2^-53)) are covered by a
// relative slack of 1e-12 on the bound (gamma_256(2^-53) < 3e-14).
RC_GTEST_PROP(Hadamard, FloatFwhtWithinDerivedBoundOfDenseF64Product, ()) {
  const int l = *uniform(0, kMaxLog2Block);
  const int b = 1 << l;
  const int blocks = *uniform(1, 3);
  std::mt19937_64 rng(*hdqprop::any_u64());
  const std::vector<float> x = float_values(rng, std::size_t(blocks) * b);
  std::vector<float> y = x;
  hdq::fwht_f32(y, b);
  const auto& h = sylvester_recursive(l);
  auto gamma = [](double n, double u) { return n * u / (1.0 - n * u); };
  const double coeff = gamma(l, 0x1p-24) + gamma(b - 1, 0x1p-53);
  for (std::size_t base = 0; base < x.size(); base += std::size_t(b)) {
    double l1 = 0.0;
    for (int c = 0; c < b; ++c) l1 += std::fabs(double(x[base + c]));
    const double bound = coeff * l1 * (1.0 + 1e-12);
    for (int r = 0; r < b; ++r) {
      double z = 0.0;
      for (int c = 0; c < b; ++c) z += double(h[r][c]) * double(x[base + c]);
      const double err = std::fabs(double(y[base + r]) - z);
      RC_ASSERT(err <= bound);
    }
  }
}

// 7e. Section 4 block plan: b is the largest power of two dividing d, then
// min(b, max_block) when capped; with pad (which requires max_block) d is
// padded to a multiple of max_block and b = max_block. So: b is a power of
// two, b divides the padded length, b <= max_block when set, padded_length ==
// d without padding and d <= padded_length < d + max_block with it. The exact
// values are also checked against the rule computed here by repeated halving.
RC_GTEST_PROP(Hadamard, PlanBlockIsPowerOfTwoDividingPaddedLength, ()) {
  const int d = *gen::weightedOneOf<int>({
      {2, uniform(1, 1000)},
      {2, gen::apply([](int odd, int e) { return odd * (1 << e); }, uniform(1, 64), uniform(0, 14))},
      {1, uniform(1, 1 << 24)},
  });
  hdq::HadamardConfig cfg;
  if (*hdqprop::coin()) cfg.max_block = 1 << *uniform(0, 12);
  cfg.pad = *hdqprop::coin();
  if (cfg.pad && !cfg.max_block) {
    RC_ASSERT_THROWS_AS(hdq::plan_hadamard(d, cfg), hdq::ConfigError);
    return;
  }
  const hdq::HadamardPlan p = hdq::plan_hadamard(d, cfg);
  RC_ASSERT(p.block >= 1);
  RC_ASSERT(std::has_single_bit(unsigned(p.block)));
  RC_ASSERT(p.padded_length % p.block == 0);
  if (cfg.max_block) RC_ASSERT(p.block <= *cfg.max_block);
  if (cfg.pad) {
    RC_ASSERT(p.block == *cfg.max_block);
    RC_ASSERT(p.padded_length >= d);
    RC_ASSERT(p.padded_length < d + *cfg.max_block);
  } else {
    RC_ASSERT(p.padded_length == d);
    int largest = 1;
    for (int rest = d; rest % 2 == 0; rest /= 2) largest *= 2;
    RC_ASSERT(p.block == (cfg.max_block ? std::min(largest, *cfg.max_block) : largest));
    RC_ASSERT(hdq::largest_pow2_factor(d) == largest);
  }
}

}  // namespace
