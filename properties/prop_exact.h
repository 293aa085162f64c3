// Exact rational arithmetic for the quantizer oracles (Boost.Multiprecision):
// written from the contract, nothing from models/ is reused.
#pragma once

#include <boost/multiprecision/cpp_int.hpp>
#include <cmath>
#include <cstdint>

namespace hdqprop {

using boost::multiprecision::cpp_int;
using boost::multiprecision::cpp_rational;

// The exact value of a finite float as a rational.
inline cpp_rational exact_rational(float f) {
  if (f == 0.0f) return cpp_rational(0);
  int e = 0;
  const float m = std::frexp(f, &e);                              // f = m * 2^e, 0.5 <= |m| < 1
  const auto mant = static_cast<std::int64_t>(std::ldexp(m, 24));  // exact: 24 significant bits
  e -= 24;
  cpp_rational r(mant);
  if (e >= 0) r *= cpp_rational(cpp_int(1) << e);
  else r /= cpp_rational(cpp_int(1) << -e);
  return r;
}

inline cpp_int floor_nonneg(const cpp_rational& a) { return numerator(a) / denominator(a); }

inline cpp_rational pow2(int e) {
  return e >= 0 ? cpp_rational(cpp_int(1) << e) : cpp_rational(cpp_int(1), cpp_int(1) << -e);
}

}  // namespace hdqprop
