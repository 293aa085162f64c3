// The enum knobs of the numeric core, declared on the common floor so that
// their spellings (names.h) and every layer above can use them without
// depending on one another. Their semantics live with the code that gives
// them meaning: AccMode and AccRange in models/accumulator/accumulator.h
// (docs/contract.md section 5), Rounding, Signedness and ScaleMode in
// models/quantizer/quantizer.h (sections 1, 2 and 8).
#pragma once

namespace hdq {

enum class AccMode { exact, clamp_tile, saturate, wrap };
enum class AccRange { symmetric, full };

enum class Rounding { nearest, stochastic, luq };
enum class Signedness { automatic, is_signed, is_unsigned };
enum class ScaleMode { f32, pow2 };

}  // namespace hdq
