// Properties of docs/contract.md §5 against a third-party oracle: SystemC's
// fixed-point datatypes (IEEE 1666 sc_fix / sc_fixed) model W-bit registers
// with saturating (SC_SAT), symmetric saturating (SC_SAT_SYM) and wrapping
// (SC_WRAP) overflow. An integer register is a fixed-point type with word
// length W and W integer bits, truncating quantization (nothing to quantize).
#define SC_INCLUDE_FX
#include <systemc>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "models/accumulator/gemm.h"
#include "properties/prop_common.h"

namespace {

using hdqprop::uniform;
using namespace rc;

struct Step {
  std::int64_t value;  // the register after this step
  bool changed;        // whether the register differs from (previous + product)
  bool overflow_flag;  // SystemC's own overflow report for the assignment (SystemC only)
};

// The library: the register after each step of one output's single tile.
// A 1 x 1 GEMM over the first s products (tile = 0, one tile; Wo = 32 >= W so
// the outer stage passes the W-bit tile result through) gives the register
// after step s; changed_steps grows by one exactly when step s was narrowed.
std::vector<Step> library_steps(const std::vector<std::int16_t>& a, const std::vector<std::int16_t>& b, int a_bits,
                                bool a_unsigned, int b_bits, bool b_unsigned, hdq::AccumulatorConfig cfg) {
  cfg.tile = 0;
  cfg.outer_bits = 32;
  std::vector<Step> steps;
  std::uint64_t changed_before = 0;
  hdq::GemmContext ctx;
  for (std::size_t s = 1; s <= a.size(); ++s) {
    std::int32_t c = 0;
    const hdq::GemmStats st =
        hdq::gemm(ctx, {1, 1, int(s)}, {std::span<const std::int16_t>(a).first(s), a_bits, a_unsigned},
                  {std::span<const std::int16_t>(b).first(s), b_bits, b_unsigned}, cfg, std::span<std::int32_t>(&c, 1),
                  hdq::KernelPath::reference);
    steps.push_back({c, st.changed_steps != changed_before, false});
    changed_before = st.changed_steps;
  }
  return steps;
}

// SystemC with run-time word length: sc_fix(W, W, SC_TRN, mode, 0).
std::vector<Step> sc_fix_steps(const std::vector<std::int64_t>& products, int w, sc_dt::sc_o_mode mode) {
  sc_dt::sc_fix acc(w, w, sc_dt::SC_TRN, mode, 0);
  acc = 0;
  std::vector<Step> steps;
  for (std::int64_t p : products) {
    const std::int64_t raw = acc.to_int64() + p;
    acc = acc + p;
    steps.push_back({acc.to_int64(), acc.to_int64() != raw, acc.overflow_flag()});
  }
  return steps;
}

// SystemC with compile-time word length: sc_fixed<W, W, SC_TRN, Mode>.
template <int W, sc_dt::sc_o_mode Mode>
std::vector<Step> sc_fixed_steps(const std::vector<std::int64_t>& products) {
  sc_dt::sc_fixed<W, W, sc_dt::SC_TRN, Mode> acc = 0;
  std::vector<Step> steps;
  for (std::int64_t p : products) {
    const std::int64_t raw = acc.to_int64() + p;
    acc = acc + p;
    steps.push_back({acc.to_int64(), acc.to_int64() != raw, acc.overflow_flag()});
  }
  return steps;
}

template <int W>
std::vector<Step> sc_fixed_steps_mode(const std::vector<std::int64_t>& products, sc_dt::sc_o_mode mode) {
  switch (mode) {
    case sc_dt::SC_SAT: return sc_fixed_steps<W, sc_dt::SC_SAT>(products);
    case sc_dt::SC_SAT_SYM: return sc_fixed_steps<W, sc_dt::SC_SAT_SYM>(products);
    default: return sc_fixed_steps<W, sc_dt::SC_WRAP>(products);
  }
}

const std::vector<int> kFixedWidths{2, 4, 8, 12, 16, 24, 32};

std::vector<Step> sc_fixed_steps_any(const std::vector<std::int64_t>& products, int w, sc_dt::sc_o_mode mode) {
  switch (w) {
    case 2: return sc_fixed_steps_mode<2>(products, mode);
    case 4: return sc_fixed_steps_mode<4>(products, mode);
    case 8: return sc_fixed_steps_mode<8>(products, mode);
    case 12: return sc_fixed_steps_mode<12>(products, mode);
    case 16: return sc_fixed_steps_mode<16>(products, mode);
    case 24: return sc_fixed_steps_mode<24>(products, mode);
    default: return sc_fixed_steps_mode<32>(products, mode);
  }
}

struct SequenceCase {
  hdq::AccumulatorConfig cfg;
  sc_dt::sc_o_mode sc_mode = sc_dt::SC_SAT;
  int a_bits = 4, b_bits = 4;
  bool a_unsigned = false, b_unsigned = false;
  std::vector<std::int16_t> a, b;
  std::vector<std::int64_t> products;
};

// The pairing of contract modes with SystemC overflow modes:
//   saturate + full      <-> SC_SAT      (clamp to [-2^(W-1), 2^(W-1)-1])
//   saturate + symmetric <-> SC_SAT_SYM  (clamp to [-(2^(W-1)-1), 2^(W-1)-1])
//   wrap (either range)  <-> SC_WRAP     (modulo 2^W into the full range; the
//                                         contract says acc_range plays no part)
SequenceCase sequence_case_gen(Gen<int> width) {
  SequenceCase g;
  g.cfg.acc_bits = *width;
  const int kind = *uniform(0, 3);
  g.cfg.mode = kind < 2 ? hdq::AccMode::saturate : hdq::AccMode::wrap;
  g.cfg.range = (kind == 1 || kind == 3) ? hdq::AccRange::symmetric : hdq::AccRange::full;
  g.sc_mode = kind == 0 ? sc_dt::SC_SAT : (kind == 1 ? sc_dt::SC_SAT_SYM : sc_dt::SC_WRAP);
  g.a_bits = *uniform(2, 8);
  g.b_bits = *uniform(2, 8);
  g.a_unsigned = *hdqprop::coin();
  g.b_unsigned = *hdqprop::coin();
  const int length = *uniform(1, 64);
  std::mt19937_64 rng(*hdqprop::any_u64());
  g.a = hdqprop::fill_operand(rng, 1, length, true, hdqprop::operand_range(g.a_bits, g.a_unsigned),
                              *hdqprop::fill_style_gen());
  g.b = hdqprop::fill_operand(rng, length, 1, false, hdqprop::operand_range(g.b_bits, g.b_unsigned),
                              *hdqprop::fill_style_gen());
  for (int k = 0; k < length; ++k) g.products.push_back(std::int64_t{g.a[k]} * g.b[k]);
  return g;
}

void check_against(const SequenceCase& g, const std::vector<Step>& sc) {
  const std::vector<Step> lib = library_steps(g.a, g.b, g.a_bits, g.a_unsigned, g.b_bits, g.b_unsigned, g.cfg);
  RC_ASSERT(lib.size() == sc.size());
  for (std::size_t s = 0; s < lib.size(); ++s) {
    RC_LOG() << "step " << s << ": product " << g.products[s] << ", library " << lib[s].value << " (changed "
             << lib[s].changed << "), SystemC " << sc[s].value << " (overflow " << sc[s].overflow_flag << ")\n";
    RC_ASSERT(lib[s].value == sc[s].value);
    RC_ASSERT(lib[s].changed == sc[s].changed);
    RC_ASSERT(lib[s].changed == sc[s].overflow_flag);
  }
  bool any_changed = false;
  for (const Step& st : lib) any_changed = any_changed || st.changed;
  RC_CLASSIFY(any_changed, "register narrowed at some step");
}

// 5a. Section 5 saturate/wrap register semantics == SystemC sc_fix with the
// word length W (2..32) given at run time: on the same product sequence (2..8
// bit operands, extremes and same-sign runs so the register overflows often)
// every step's register value, whether the step changed the value, and
// SystemC's overflow_flag for that assignment agree with the library (hdq::gemm
// with KernelPath::reference, read step by step through prefix GEMMs).
RC_GTEST_PROP(SystemCOracle, RegisterStepsMatchScFixAnyWidth, ()) {
  const SequenceCase g = sequence_case_gen(hdqprop::acc_bits_gen());
  check_against(g, sc_fix_steps(g.products, g.cfg.acc_bits, g.sc_mode));
}

// 5b. The same with the compile-time type sc_fixed<W, W, SC_TRN, Mode> for W in
// {2, 4, 8, 12, 16, 24, 32}, a second code path of SystemC (the templated
// types carry their parameters in the type, not in a run-time object).
RC_GTEST_PROP(SystemCOracle, RegisterStepsMatchScFixedTemplates, ()) {
  const SequenceCase g = sequence_case_gen(gen::elementOf(kFixedWidths));
  check_against(g, sc_fixed_steps_any(g.products, g.cfg.acc_bits, g.sc_mode));
}

}  // namespace

