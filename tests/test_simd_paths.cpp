// The quantizer's and the Hadamard transform's fast paths against their
// scalar references (quantizer_paths.h, hadamard_paths.h), bit for bit.
//
// Every expected value here is the one the reference path computes on the
// same input: the tests only ever compare paths. Sizes cover every length
// from 0 to 40 and the powers of two +-1 up to 2^12 + 1 (so every vector tail
// length and every block position occurs); values are random at several
// magnitudes, with exact ties, zeros of both signs, values at and beyond the
// clip bound, all-zero and all-non-negative tensors; the configurations cover
// every bits (2..8), rounding, sr_bits (1..23), signedness, scale mode and a
// few clips, at flat indices near 0 and far beyond 2^32.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "models/common/errors.h"
#include "models/common/names.h"
#include "models/hadamard/hadamard.h"
#include "models/hadamard/hadamard_paths.h"
#include "models/quantizer/quantizer.h"
#include "models/quantizer/quantizer_paths.h"

namespace hdq {
namespace {

std::vector<std::size_t> test_sizes() {
  std::vector<std::size_t> sizes;
  for (std::size_t n = 0; n <= 40; ++n) sizes.push_back(n);
  for (std::size_t p = 64; p <= 4096; p *= 2) {
    sizes.push_back(p - 1);
    sizes.push_back(p);
    sizes.push_back(p + 1);
  }
  return sizes;
}

enum class Fill { normal, ties, nonnegative, relu, zeros, tiny, huge_spread, integers };

std::vector<float> make_values(std::mt19937_64& rng, std::size_t n, Fill fill) {
  std::vector<float> x(n);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 15), small(-20, 20), exponent(-60, 60);
  for (std::size_t i = 0; i < n; ++i) {
    float v = normal(rng);
    switch (fill) {
      case Fill::normal: break;
      case Fill::ties: v = 0.5f * float(small(rng)); break;  // with max 10 and qmax 7 etc: many exact ties after scaling
      case Fill::nonnegative: v = std::fabs(v); break;
      case Fill::relu: v = pick(rng) < 2 ? -0.0f : std::max(v, 0.0f); break;  // ReLU outputs: +0, -0 and positives
      case Fill::zeros: v = pick(rng) < 12 ? (pick(rng) < 8 ? 0.0f : -0.0f) : v; break;
      case Fill::tiny: v *= 1e-30f; break;
      case Fill::huge_spread: v = std::ldexp(v, exponent(rng)); break;
      case Fill::integers: v = float(small(rng)); break;
    }
    x[i] = v;
  }
  return x;
}

std::vector<QuantConfig> configs() {
  std::vector<QuantConfig> out;
  for (int bits = 2; bits <= 8; ++bits)
    for (Rounding rounding : {Rounding::nearest, Rounding::stochastic})
      for (Signedness sg : {Signedness::automatic, Signedness::is_signed, Signedness::is_unsigned})
        for (ScaleMode sm : {ScaleMode::f32, ScaleMode::pow2})
          for (float clip : {1.0f, 0.975f, 0.5f}) {
            QuantConfig c;
            c.bits = bits;
            c.rounding = rounding;
            c.signedness = sg;
            c.scale_mode = sm;
            c.clip = clip;
            c.sr_bits = 1 + (bits * 7 + int(sg) * 5 + int(sm) * 3 + (clip < 1 ? 11 : 0)) % 23;  // spread over 1..23
            out.push_back(c);
          }
  return out;
}

std::string describe(const QuantConfig& c, std::size_t n, std::uint64_t first) {
  return "bits " + std::to_string(c.bits) + (c.rounding == Rounding::stochastic ? " stochastic r=" : " nearest r=") +
         std::to_string(c.sr_bits) + " sign " + std::to_string(int(c.signedness)) + " scale " +
         std::to_string(int(c.scale_mode)) + " clip " + std::to_string(c.clip) + " n " + std::to_string(n) +
         " first " + std::to_string(first);
}

std::uint32_t bits_of(float f) { return std::bit_cast<std::uint32_t>(f); }

TEST(SimdPaths, ReferenceIsAlwaysAvailableAndFirst) {
  EXPECT_EQ(detail::available_quant_paths().front(), KernelPath::reference);
  EXPECT_EQ(detail::available_hadamard_paths().front(), KernelPath::reference);
  EXPECT_EQ(detail::best_quant_path(), detail::available_quant_paths().back());
  EXPECT_EQ(detail::best_hadamard_path(), detail::available_hadamard_paths().back());
}

// Section 1's scan: the same max |x| (bits), sign decision and first non-finite index.
TEST(SimdPaths, ScaleScanEqualsReference) {
  std::mt19937_64 rng(1);
  for (std::size_t n : test_sizes())
    for (Fill fill : {Fill::normal, Fill::nonnegative, Fill::relu, Fill::zeros, Fill::huge_spread}) {
      const std::vector<float> x = make_values(rng, n, fill);
      const detail::ScaleScan ref = detail::scan_reference(x);
      for (KernelPath path : detail::available_quant_paths()) {
        const detail::ScaleScan got = detail::scan(x, path);
        ASSERT_EQ(bits_of(got.max_abs), bits_of(ref.max_abs)) << name(path) << " n " << n;
        ASSERT_EQ(got.nonnegative, ref.nonnegative) << name(path) << " n " << n;
        ASSERT_EQ(got.first_nonfinite, ref.first_nonfinite) << name(path) << " n " << n;
      }
    }
}

TEST(SimdPaths, ScaleScanFindsTheFirstNonFiniteElement) {
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::quiet_NaN()};
  std::mt19937_64 rng(2);
  for (std::size_t n : {1u, 7u, 8u, 9u, 16u, 31u, 33u, 100u, 1025u})
    for (std::size_t at : {std::size_t{0}, n / 2, n - 1})
      for (float special : specials) {
        std::vector<float> x = make_values(rng, n, Fill::normal);
        x[at] = special;
        if (at + 3 < n) x[at + 3] = specials[0];  // a later one must not be reported
        for (KernelPath path : detail::available_quant_paths()) {
          EXPECT_EQ(detail::scan(x, path).first_nonfinite, at) << name(path) << " n " << n << " at " << at;
        }
        // The public API: a NumericError naming the element, whichever path runs.
        try {
          choose_scale(x, QuantConfig{}, "t");
          ADD_FAILURE() << "no NumericError for n " << n << " at " << at;
        } catch (const NumericError& e) {
          EXPECT_NE(std::string(e.what()).find("element " + std::to_string(at) + " is"), std::string::npos) << e.what();
        }
      }
}

// Section 2: every path gives the reference's integers on every size, value
// mix, configuration and flat-index offset.
TEST(SimdPaths, QuantizeSpanEqualsReference) {
  std::mt19937_64 rng(3);
  const std::vector<QuantConfig> cfgs = configs();
  const std::vector<std::size_t> sizes = test_sizes();
  const Fill fills[] = {Fill::normal, Fill::ties, Fill::nonnegative, Fill::relu, Fill::zeros, Fill::tiny,
                        Fill::huge_spread, Fill::integers};
  std::size_t cases = 0;
  for (std::size_t c = 0; c < cfgs.size(); ++c) {
    const QuantConfig& cfg = cfgs[c];
    for (std::size_t s = 0; s < sizes.size(); ++s) {
      const std::size_t n = sizes[s];
      const Fill fill = fills[(c + s) % std::size(fills)];
      const std::vector<float> x = make_values(rng, n, fill);
      const QuantParams p = choose_scale(x, cfg, "x");
      const std::uint64_t first = (s % 3 == 0) ? 0 : (s % 3 == 1) ? rng() % 1000 : (std::uint64_t{1} << 40) + rng() % 99991;
      const std::uint64_t key = rng();
      std::vector<std::int16_t> ref(n, -999);
      detail::quantize_span(x, first, p, cfg, key, ref, KernelPath::reference);
      for (KernelPath path : detail::available_quant_paths()) {
        std::vector<std::int16_t> got(n, -999);
        detail::quantize_span(x, first, p, cfg, key, got, path);
        ASSERT_EQ(got, ref) << name(path) << ": " << describe(cfg, n, first);
      }
      ++cases;
    }
  }
  EXPECT_EQ(cases, cfgs.size() * sizes.size());
}

// Every r-bit random value matters: with v exactly k + m / 2^r the outcome is
// decided by R < F alone, on every lane position.
TEST(SimdPaths, StochasticRoundingEveryFractionAndLane) {
  for (int r : {1, 2, 8, 16, 23}) {
    QuantConfig cfg;
    cfg.rounding = Rounding::stochastic;
    cfg.sr_bits = r;
    cfg.signedness = Signedness::is_signed;
    const std::size_t n = 1000;
    std::vector<float> x(n);
    for (std::size_t i = 0; i < n; ++i) {
      const float frac = std::ldexp(float(i % (std::size_t(1) << std::min(r, 9))), -std::min(r, 9));
      x[i] = (i % 2 ? -1.0f : 1.0f) * (float(i % 7) + frac);
    }
    x[0] = 7.0f;  // max |x| = 7 at 4 bits signed: s = 1, v = x
    const QuantParams p = choose_scale(x, cfg, "x");
    ASSERT_EQ(p.scale, 1.0f);
    for (std::uint64_t first : {std::uint64_t{0}, std::uint64_t{5}, std::uint64_t{0xffffffffffULL}}) {
      std::vector<std::int16_t> ref(n);
      detail::quantize_span(x, first, p, cfg, 0x1234567887654321ULL, ref, KernelPath::reference);
      for (KernelPath path : detail::available_quant_paths()) {
        std::vector<std::int16_t> got(n);
        detail::quantize_span(x, first, p, cfg, 0x1234567887654321ULL, got, path);
        ASSERT_EQ(got, ref) << name(path) << " r " << r << " first " << first;
      }
    }
  }
}

// The public quantize() (which takes the fastest path) equals quantize_element
// per element, on a tensor cut into tiles (first_index offsets) as well.
TEST(SimdPaths, PublicQuantizeEqualsPerElementDefinition) {
  std::mt19937_64 rng(4);
  for (Rounding rounding : {Rounding::nearest, Rounding::stochastic}) {
    QuantConfig cfg;
    cfg.rounding = rounding;
    const std::vector<float> x = make_values(rng, 1000, Fill::normal);
    const RandomStream rs{7, 13, 99};
    const QuantizedTensor t = quantize(x, cfg, rs, "x");
    for (std::size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(t.q[i], quantize_element(x[i], i, t.params, cfg, rs.key())) << i;
    // Tiles of 37 elements through quantize_span with their flat offsets.
    std::vector<std::int16_t> tiled(x.size());
    for (std::size_t at = 0; at < x.size(); at += 37) {
      const std::size_t len = std::min<std::size_t>(37, x.size() - at);
      quantize_span(std::span(x).subspan(at, len), at, t.params, cfg, rs.key(), std::span(tiled).subspan(at, len));
    }
    EXPECT_EQ(tiled, t.q);
  }
}

// Hand-built params whose mx / s is too large for the fast paths' integer
// conversions: the dispatcher runs the reference (the definition) instead.
TEST(SimdPaths, OutOfDomainParamsFallBackToTheReference) {
  QuantParams p;
  p.mx = 1.0f;
  p.scale = 1e-9f;
  p.qmin = -7;
  p.qmax = 7;
  EXPECT_FALSE(detail::fast_paths_apply(p));
  std::vector<float> x{0.0f, 1e-12f, -1e-12f, 2e-9f, -2e-9f, 1e-10f, 3e-9f, 0.5e-9f, 1.5e-9f};
  std::vector<std::int16_t> ref(x.size()), got(x.size());
  QuantConfig cfg;
  detail::quantize_span(x, 0, p, cfg, 1, ref, KernelPath::reference);
  for (KernelPath path : detail::available_quant_paths()) {
    detail::quantize_span(x, 0, p, cfg, 1, got, path);
    EXPECT_EQ(got, ref) << name(path);
  }
}

// The quantizer has no AVX-512 loops: asking for that path is an error, not
// a call that leaves q unwritten.
TEST(SimdPaths, APathTheQuantizerLacksIsRefused) {
  const std::vector<float> x{0.5f, -0.25f};
  std::vector<std::int16_t> q(x.size());
  QuantConfig cfg;
  const QuantParams p = choose_scale(x, cfg, "x");
  EXPECT_THROW(detail::quantize_span(x, 0, p, cfg, 1, q, KernelPath::avx512), ConfigError);
}

TEST(SimdPaths, DequantizeEqualsReference) {
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<std::int32_t> any(std::numeric_limits<std::int32_t>::min(),
                                                   std::numeric_limits<std::int32_t>::max());
  std::uniform_real_distribution<float> factor(-3.0f, 3.0f);
  for (std::size_t n : test_sizes())
    for (std::size_t k = 0; k <= 6; ++k) {
      std::vector<std::int32_t> o(n);
      for (auto& v : o) v = (n % 2) ? any(rng) : std::int32_t(any(rng) % 1000);
      std::vector<float> f(k);
      for (auto& v : f) v = std::ldexp(factor(rng), int(rng() % 40) - 20);
      std::vector<float> ref(n), got(n), pub(n);
      detail::dequantize_reference(o, f, ref);
      detail::dequantize_portable(o, f, got);
      dequantize(o, f, pub);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_EQ(bits_of(got[i]), bits_of(ref[i])) << "n " << n << " factors " << k << " i " << i;
        ASSERT_EQ(bits_of(pub[i]), bits_of(ref[i])) << "n " << n << " factors " << k << " i " << i;
      }
    }
}

// Section 4, f32: every block size 1..2048, several blocks, random values at
// wide magnitudes (so roundings differ with the order) and a few infinities.
TEST(SimdPaths, FwhtF32EqualsReference) {
  std::mt19937_64 rng(6);
  for (int block = 1; block <= 2048; block *= 2)
    for (std::size_t blocks : {1u, 2u, 3u, 5u, 8u}) {
      const std::size_t n = std::size_t(block) * blocks;
      std::vector<float> x = make_values(rng, n, block % 3 ? Fill::huge_spread : Fill::normal);
      if (blocks == 5 && n > 4) x[n / 3] = std::numeric_limits<float>::infinity(), x[n / 2] = -x[n / 3];
      std::vector<float> ref = x;
      detail::fwht_f32(ref.data(), n, block, KernelPath::reference);
      for (KernelPath path : detail::available_hadamard_paths()) {
        std::vector<float> got = x;
        detail::fwht_f32(got.data(), n, block, path);
        for (std::size_t i = 0; i < n; ++i) {
          const bool both_nan = std::isnan(got[i]) && std::isnan(ref[i]);
          ASSERT_TRUE(both_nan || bits_of(got[i]) == bits_of(ref[i]))
              << name(path) << " block " << block << " n " << n << " i " << i << ": " << got[i] << " vs " << ref[i];
        }
      }
      // The public entry points take the fastest path.
      std::vector<float> pub = x;
      fwht_f32(pub, block);
      std::vector<float> rows = x;
      hadamard_rows_f32(rows, int(blocks), block, block);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_TRUE((std::isnan(pub[i]) && std::isnan(ref[i])) || bits_of(pub[i]) == bits_of(ref[i])) << i;
        ASSERT_TRUE((std::isnan(rows[i]) && std::isnan(ref[i])) || bits_of(rows[i]) == bits_of(ref[i])) << i;
      }
    }
}

// Section 4, int32: exact sums; near the overflow bound the fast path must
// hand over to the checked reference (same result or the same NumericError).
TEST(SimdPaths, FwhtI32EqualsReferenceAndOverflowsTheSameWay) {
  std::mt19937_64 rng(7);
  for (int block = 1; block <= 1024; block *= 2)
    for (std::size_t blocks : {1u, 3u, 4u})
      for (int magnitude : {1, 7, 1000, -1}) {  // -1: values just at/over max |x| * block = 2^31
        const std::size_t n = std::size_t(block) * blocks;
        const std::int64_t limit =
            magnitude > 0 ? magnitude : std::max<std::int64_t>(1, (std::int64_t{1} << 31) / block + (rng() % 2 ? 1 : -1));
        std::uniform_int_distribution<std::int64_t> dist(-limit, limit);
        std::vector<std::int32_t> x(n);
        for (auto& v : x) v = std::int32_t(std::clamp<std::int64_t>(dist(rng), INT32_MIN, INT32_MAX));
        if (magnitude < 0 && n > 0) x[rng() % n] = std::int32_t(std::clamp<std::int64_t>(limit, INT32_MIN, INT32_MAX));
        std::vector<std::int32_t> ref = x;
        bool ref_threw = false;
        try {
          detail::fwht_i32(ref.data(), n, block, KernelPath::reference);
        } catch (const NumericError&) {
          ref_threw = true;
        }
        for (KernelPath path : detail::available_hadamard_paths()) {
          std::vector<std::int32_t> got = x;
          bool threw = false;
          try {
            detail::fwht_i32(got.data(), n, block, path);
          } catch (const NumericError&) {
            threw = true;
          }
          ASSERT_EQ(threw, ref_threw) << name(path) << " block " << block << " n " << n;
          if (!threw) {
            ASSERT_EQ(got, ref) << name(path) << " block " << block << " n " << n;
          }
        }
      }
}

TEST(SimdPaths, FwhtI32ExtremeValues) {
  for (int block : {2, 4, 8, 16, 64, 256}) {
    // Every element c: the first output of each block is block * c. At c = 2^31 / block that
    // is 2^31, one past INT32_MAX: every path throws; at c = 2^31 / block - 1 none does.
    const std::int32_t c = std::int32_t((std::int64_t{1} << 31) / block);
    for (std::int32_t sign : {1, -1}) {
      for (KernelPath path : detail::available_hadamard_paths()) {
        std::vector<std::int32_t> over(std::size_t(block) * 3, c);
        over[std::size_t(block)] = sign * c;  // the second block too, whatever its sign
        EXPECT_THROW(detail::fwht_i32(over.data(), over.size(), block, path), NumericError)
            << name(path) << " block " << block;
      }
      std::vector<std::int32_t> fits(std::size_t(block) * 3, sign * (c - 1));
      std::vector<std::int32_t> ref = fits;
      detail::fwht_i32(ref.data(), ref.size(), block, KernelPath::reference);
      EXPECT_EQ(ref[0], sign * block * (c - 1));
      for (KernelPath path : detail::available_hadamard_paths()) {
        std::vector<std::int32_t> y = fits;
        detail::fwht_i32(y.data(), y.size(), block, path);
        EXPECT_EQ(y, ref) << name(path) << " block " << block;
      }
    }
  }
  for (int block : {2, 8, 16}) {
    // INT32_MIN alone with a block of 2 overflows (INT32_MIN - 1 and INT32_MIN + INT32_MIN).
    std::vector<std::int32_t> x(std::size_t(block) * 2, 0);
    x[0] = INT32_MIN;
    x[1] = 1;
    for (KernelPath path : detail::available_hadamard_paths()) {
      std::vector<std::int32_t> y = x;
      EXPECT_THROW(detail::fwht_i32(y.data(), y.size(), block, path), NumericError) << name(path);
    }
    // The largest magnitude the fast path accepts: max |x| * block == 2^31 - 1 is not reachable
    // exactly for block > 1; (2^31 - 1) / block in every element is, and fits.
    std::vector<std::int32_t> z(std::size_t(block) * 2, std::int32_t(0x7fffffff / block));
    std::vector<std::int32_t> ref = z;
    detail::fwht_i32(ref.data(), ref.size(), block, KernelPath::reference);
    for (KernelPath path : detail::available_hadamard_paths()) {
      std::vector<std::int32_t> y = z;
      detail::fwht_i32(y.data(), y.size(), block, path);
      EXPECT_EQ(y, ref) << name(path);
    }
  }
}

}  // namespace
}  // namespace hdq
