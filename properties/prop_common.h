// Shared generators and the contract's random-bit formula for the property
// tests of docs/contract.md.
//
// Nothing here calls into models/: every expected value in properties/ is
// computed from the contract text, independently of the code under test.
#pragma once

#include <rapidcheck.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <vector>

#include "models/common/names.h"

namespace hdqprop {

// RapidCheck scales gen::inRange by the test size (size 0 gives only `lo`).
// Contract parameters (bit widths, r, modes) should be uniform over their whole
// range in every case, so this fixes the size at the nominal maximum. Bounds
// are inclusive: uniform(lo, hi) gives lo..hi (hi < max of T). Shrinking still
// goes toward lo.
template <typename T>
rc::Gen<T> uniform(T lo, T hi) {
  return rc::gen::resize(100, rc::gen::inRange<T>(lo, static_cast<T>(hi + 1)));
}

inline rc::Gen<bool> coin() { return rc::gen::element(false, true); }

// Any 64-bit value (seeds, keys).
inline rc::Gen<std::uint64_t> any_u64() { return rc::gen::resize(100, rc::gen::arbitrary<std::uint64_t>()); }

// docs/contract.md §3, typed in again from the text (not from random_bits.h).
inline std::uint64_t contract_mix(std::uint64_t z) {
  z ^= z >> 30;
  z *= 0xbf58476d1ce4e5b9ULL;
  z ^= z >> 27;
  z *= 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return z;
}
inline std::uint64_t contract_key(std::uint64_t seed, std::uint64_t stream, std::uint64_t step) {
  return contract_mix(seed ^ contract_mix(stream ^ contract_mix(step)));
}
// R_i = mix(key + (i + 1) * 0x9e3779b97f4a7c15) >> (64 - r), for 1 <= r <= 32.
inline std::uint32_t contract_random_bits(std::uint64_t key, std::uint64_t i, int r) {
  return static_cast<std::uint32_t>(contract_mix(key + (i + 1) * 0x9e3779b97f4a7c15ULL) >> (64 - r));
}

// Non-negative finite f32 magnitudes of every kind the rounding rules care
// about, all below `limit` (a power of two, 2^12 <= limit <= 2^23): integers,
// halves, dyadic fractions n + j/2^e (on a multiple of 2^-r for r >= e when n
// is small enough for the sum to be exact in f32),
// the same moved one or two ulps either way, random exponent and mantissa, zero
// and subnormals.
inline rc::Gen<float> magnitude_below(float limit) {
  const auto lim_u = static_cast<std::uint32_t>(limit);
  const int lim_exp = std::ilogb(limit);
  auto dyadic = [=](std::uint32_t n, int e, std::uint32_t j) {
    const float f = float(n % lim_u) + std::ldexp(float(j & ((1u << e) - 1)), -e);
    return f < limit ? f : float(n % lim_u);
  };
  return rc::gen::weightedOneOf<float>({
      {3, rc::gen::map(uniform<std::uint32_t>(0, lim_u - 1), [](std::uint32_t n) { return float(n); })},
      {2, rc::gen::map(uniform(0, 64), [](int n) { return float(n) * 0.5f; })},
      {3, rc::gen::apply(dyadic, uniform<std::uint32_t>(0, lim_u - 1), uniform(1, 12),
                         uniform<std::uint32_t>(0, 4095))},
      {3, rc::gen::apply(
              [=](std::uint32_t n, int e, std::uint32_t j, int ulps) {
                float f = dyadic(n, e, j);
                for (int u = 0; u < std::abs(ulps); ++u) f = std::nextafter(f, ulps < 0 ? 0.0f : limit);
                return f < limit ? f : std::nextafter(limit, 0.0f);
              },
              uniform<std::uint32_t>(0, lim_u - 1), uniform(0, 12), uniform<std::uint32_t>(0, 4095),
              uniform(-2, 2))},
      {4, rc::gen::apply(
              [=](int e, std::uint32_t mant) {
                const float f = std::ldexp(1.0f + float(mant) * 0x1p-23f, e);
                return f < limit ? f : std::nextafter(limit, 0.0f);
              },
              uniform(-40, lim_exp - 1), uniform<std::uint32_t>(0, (1u << 23) - 1))},
      {1, rc::gen::element(0.0f, std::numeric_limits<float>::denorm_min(), 0x1p-130f)},
  });
}

// As magnitude_below, with a random sign (so -0.0f occurs too).
inline rc::Gen<float> signed_value_below(float limit) {
  return rc::gen::apply([](float m, bool neg) { return neg ? -m : m; }, magnitude_below(limit), coin());
}

// ---------------------------------------------------------------------------
// Integer GEMM operands, biased toward accumulator overflow.

// The operand range gemm.h accepts: [-2^(bits-1), 2^(bits-1) - 1] signed (the
// most negative value included: test vectors may hold it), [0, 2^bits - 1]
// unsigned.
struct OperandRange {
  int lo, hi;
};
inline OperandRange operand_range(int bits, bool is_unsigned) {
  return is_unsigned ? OperandRange{0, (1 << bits) - 1} : OperandRange{-(1 << (bits - 1)), (1 << (bits - 1)) - 1};
}

enum class FillStyle { uniform, extremes, same_sign_runs, constant, sparse, count };

// A `rows` x `cols` row-major matrix of operand values whose runs along the
// contraction index are laid out along `cols` when k_along_cols (A: M x K),
// or along `rows` otherwise (B: K x N). Styles:
//   uniform        every value uniform in [lo, hi];
//   extremes       45% lo, 45% hi, 10% uniform;
//   same_sign_runs along k, runs of 1..32 values all from the top quarter of
//                  one side (the positive or the negative end; for unsigned,
//                  the large or the small end), so products keep one sign;
//   constant       every value lo, or every value hi;
//   sparse         80% zero, the rest lo or hi.
inline std::vector<std::int16_t> fill_operand(std::mt19937_64& rng, int rows, int cols, bool k_along_cols,
                                              OperandRange range, FillStyle style) {
  std::vector<std::int16_t> m(std::size_t(rows) * std::size_t(cols));
  auto uni = [&](int lo, int hi) { return lo + int(rng() % std::uint64_t(hi - lo + 1)); };
  const int span = range.hi - range.lo;
  const int quarter = std::max(1, span / 4);
  const int outer = k_along_cols ? rows : cols;  // vectors along k
  const int len = k_along_cols ? cols : rows;
  const bool constant_hi = rng() & 1;
  for (int o = 0; o < outer; ++o) {
    int run_left = 0;
    bool run_high = false;
    for (int k = 0; k < len; ++k) {
      int v = 0;
      switch (style) {
        case FillStyle::uniform: v = uni(range.lo, range.hi); break;
        case FillStyle::extremes: {
          const int u = uni(0, 99);
          v = u < 45 ? range.lo : (u < 90 ? range.hi : uni(range.lo, range.hi));
          break;
        }
        case FillStyle::same_sign_runs:
          if (run_left == 0) {
            run_left = uni(1, 32);
            run_high = rng() & 1;
          }
          --run_left;
          v = run_high ? uni(range.hi - quarter, range.hi) : uni(range.lo, range.lo + quarter);
          break;
        case FillStyle::constant: v = constant_hi ? range.hi : range.lo; break;
        case FillStyle::sparse: v = uni(0, 9) < 8 ? 0 : ((rng() & 1) ? range.lo : range.hi); break;
        case FillStyle::count: break;
      }
      const std::size_t at = k_along_cols ? std::size_t(o) * cols + k : std::size_t(k) * cols + o;
      m[at] = static_cast<std::int16_t>(v);
    }
  }
  return m;
}

inline void showValue(FillStyle s, std::ostream& os) {
  static const char* const names[] = {"uniform", "extremes", "same_sign_runs", "constant", "sparse"};
  os << (s < FillStyle::count ? names[int(s)] : "?");
}

inline rc::Gen<FillStyle> fill_style_gen() {
  return rc::gen::weightedElement<FillStyle>({{2, FillStyle::uniform},
                                              {3, FillStyle::extremes},
                                              {3, FillStyle::same_sign_runs},
                                              {1, FillStyle::constant},
                                              {1, FillStyle::sparse}});
}

// The operands of a GEMM case (a struct with m, n, k, a_bits, b_bits,
// a_unsigned, b_unsigned and the vectors a, b), each in a random fill style.
template <typename Case>
void fill_case_operands(Case& g) {
  const auto a_style = *fill_style_gen();
  const auto b_style = *fill_style_gen();
  std::mt19937_64 rng(*any_u64());
  g.a = fill_operand(rng, g.m, g.k, true, operand_range(g.a_bits, g.a_unsigned), a_style);
  g.b = fill_operand(rng, g.k, g.n, false, operand_range(g.b_bits, g.b_unsigned), b_style);
}

// Operands of any width 2..8 and signedness, then fill_case_operands.
template <typename Case>
void random_case_operands(Case& g) {
  g.a_bits = *uniform(2, 8);
  g.b_bits = *uniform(2, 8);
  g.a_unsigned = *coin();
  g.b_unsigned = *coin();
  fill_case_operands(g);
}

// Accumulator bits W in 2..32, weighted toward narrow registers (where the
// products of 2..8-bit operands overflow) but covering every width.
inline rc::Gen<int> acc_bits_gen() {
  return rc::gen::weightedOneOf<int>({{4, uniform(2, 10)}, {2, uniform(11, 20)}, {2, uniform(21, 32)}});
}

// Outer width Wo in W..32, half the time within 4 bits of W (outer overflow).
inline rc::Gen<int> outer_bits_gen(int w) {
  return rc::gen::weightedOneOf<int>({{1, uniform(w, std::min(32, w + 4))}, {1, uniform(w, 32)}});
}

}  // namespace hdqprop

// RapidCheck prints generated values through showValue found by ADL; without
// these, enum knobs in a counterexample show as <???>.
namespace hdq {
inline void showValue(AccMode v, std::ostream& os) { os << name(v); }
inline void showValue(AccRange v, std::ostream& os) { os << name(v); }
inline void showValue(Rounding v, std::ostream& os) { os << name(v); }
inline void showValue(Signedness v, std::ostream& os) { os << name(v); }
inline void showValue(ScaleMode v, std::ostream& os) { os << name(v); }
}  // namespace hdq
