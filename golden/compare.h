// Agreement measures between the golden model and a quantized engine (the
// paper's "gradient alignment" and signal-to-quantization-noise ratio). Both
// accumulate in f64 over the index ascending; inputs are f32 as stored.
#pragma once

#include <span>

namespace hdq::golden {

// cos(a, b) = sum a_i b_i / (sqrt(sum a_i^2) * sqrt(sum b_i^2)), the three sums
// in f64, i ascending, clamped to [-1, 1] (rounding can leave |cos| a few ulp
// above 1). Zero vectors: both zero -> 1 (they agree exactly); exactly one
// zero -> 0 (no alignment). NaN inputs give NaN. Throws ConfigError when the
// sizes differ.
double cosine(std::span<const float> a, std::span<const float> b);

// SQNR in dB = 10 log10(sum ref_i^2 / sum (ref_i - test_i)^2), f64, i
// ascending (each difference taken in f64, so it is exact). No error at all
// (test == reference, including both all-zero) -> +infinity; a zero reference
// with a nonzero error -> -infinity. Throws ConfigError when the sizes differ.
double sqnr_db(std::span<const float> reference, std::span<const float> test);

}  // namespace hdq::golden
