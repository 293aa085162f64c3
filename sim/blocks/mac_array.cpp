#include "sim/blocks/mac_array.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"
#include "sim/blocks/quantizer_unit.h"
#include "sim/cost/cycles.h"
#include "sim/cost/energy.h"

namespace hdq::npu {

AccumulatorConfig MacDescriptor::accumulator() const {
  return {acc_bits, tile, AccMode(acc_mode), AccRange(acc_range), outer_bits};
}

void MacDescriptor::set_accumulator(const AccumulatorConfig& a) {
  acc_bits = std::uint8_t(a.acc_bits);
  tile = a.tile;
  acc_mode = std::uint8_t(a.mode);
  acc_range = std::uint8_t(a.range);
  outer_bits = std::uint8_t(a.outer_bits);
}

std::uint64_t MacDescriptor::a_bytes() const { return std::uint64_t(m) * packed_pitch(k, a_bits); }

std::uint64_t MacDescriptor::b_bytes() const {
  return b_layout == BLayout::n_by_k ? std::uint64_t(n) * packed_pitch(k, b_bits)
                                     : std::uint64_t(k) * packed_pitch(n, b_bits);
}

void MacDescriptor::accesses(Footprint& f) const {
  f.push_back({Space::sram, false, a, a_bytes()});
  f.push_back({Space::sram, false, b, b_bytes()});
  f.push_back({Space::sram, false, a_record, sizeof(QuantRecord)});
  f.push_back({Space::sram, false, b_record, sizeof(QuantRecord)});
  f.push_back({Space::sram, true, c, std::uint64_t(m) * n * 4});
  f.push_back({Space::sram, true, stats, sizeof(GemmStatsRecord)});
}

IntOperand MacArrayCore::operand_b(const MacDescriptor& d, bool is_unsigned, std::span<const std::uint8_t> packed) {
  UnpackedB& c = b_;
  if (c.id != 0 && c.n == d.n && c.k == d.k && c.bits == d.b_bits && c.layout == d.b_layout &&
      c.is_unsigned == is_unsigned &&
      (d.b_panel != 0 ? c.panel == d.b_panel
                      : c.panel == 0 && std::equal(packed.begin(), packed.end(), c.packed.begin(), c.packed.end())))
    return {scratch(c.values, std::size_t(d.k) * d.n), d.b_bits, is_unsigned, c.id};
  ++c.id;
  c.panel = d.b_panel;
  if (d.b_panel == 0) c.packed.assign(packed.begin(), packed.end());
  else c.packed.clear();
  c.n = d.n, c.k = d.k, c.bits = d.b_bits, c.layout = d.b_layout, c.is_unsigned = is_unsigned;
  const std::span<std::int16_t> values = scratch(c.values, std::size_t(d.k) * d.n);
  if (d.b_layout == BLayout::n_by_k) {
    const std::span<std::int16_t> bt = scratch(bt_, values.size());
    unpack_rows(packed, d.n, d.k, d.b_bits, is_unsigned, bt);
    transpose(bt.data(), d.n, d.k, values.data());
  } else {
    unpack_rows(packed, d.k, d.n, d.b_bits, is_unsigned, values);
  }
  return {values, d.b_bits, is_unsigned, c.id};
}

GemmStats MacArrayCore::continue_gemm(GemmShape shape, IntOperand a, IntOperand b, const AccumulatorConfig& acc,
                                      std::span<std::int32_t> c) {
  // The chunk from O = 0 with the fast kernels, C_c. If no prefix of the
  // continued sum O_prev + P_1 + ... + P_j can leave the Wo range, neither
  // can one of C_c's, so no outer clamp fires in either and O = O_prev + C_c
  // exactly; the per-tile statistics do not depend on O. |P| <= pmax: the
  // largest |exact tile sum| for exact and clamp_tile (a clamp only shrinks
  // it); for saturate and wrap, whose register may end away from the exact
  // sum, the register's 2^(W-1) or the sum of the tile's |products|, at most
  // t' max|a| max|b| (neither saturating nor wrapping ever grows |acc + p|,
  // so |acc| never exceeds the sum of the |products| so far). So the test is
  // max |O_prev| + tiles * pmax <= 2^(Wo-1) - 1. Otherwise the reference
  // continues the sum literally (the contract's definition; slow, and rare:
  // it needs a narrow Wo or a C near its limit).
  const GemmStats s = gemm(gemm_, shape, a, b, acc, c);
  const std::int64_t t = tile_length(acc, shape.k);
  const std::int64_t tiles = t ? (shape.k + t - 1) / t : 0;
  const std::int64_t pmax = acc.mode == AccMode::saturate || acc.mode == AccMode::wrap
                                ? std::min(std::int64_t{1} << (acc.acc_bits - 1), t * operand_max_abs(a) * operand_max_abs(b))
                                : s.max_abs_tile_sum;
  std::int64_t o_max = 0;
  for (const std::int32_t o : o_prev_) o_max = std::max(o_max, std::abs(std::int64_t{o}));
  if (s.outer_overflows == 0 && o_max + tiles * pmax <= (std::int64_t{1} << (acc.outer_bits - 1)) - 1) {
    for (std::size_t i = 0; i < c.size(); ++i) c[i] += o_prev_[i];
    return s;
  }
  return gemm_continue_reference(shape, a, b, acc, o_prev_, c);
}

GemmStats MacArrayCore::run(const MacDescriptor& d, MemoryPort& sram, RtlMacArray* rtl, RtlGemmRun* rtl_run) {
  const bool a_unsigned = sram.read_struct<QuantRecord>(d.a_record).is_unsigned != 0;
  const bool b_unsigned = sram.read_struct<QuantRecord>(d.b_record).is_unsigned != 0;
  const std::span<std::int16_t> a = scratch(a_, std::size_t(d.m) * d.k);
  unpack_rows(sram.in<std::uint8_t>(d.a, d.a_bytes()), d.m, d.k, d.a_bits, a_unsigned, a);
  const IntOperand b = operand_b(d, b_unsigned, sram.in<std::uint8_t>(d.b, d.b_bytes()));
  const GemmShape shape{int(d.m), int(d.n), int(d.k)};
  if (d.accumulate) {  // the O of the chunks before, read
    const std::span<const std::int32_t> prev = sram.in<std::int32_t>(d.c, std::size_t(d.m) * d.n);
    o_prev_.assign(prev.begin(), prev.end());
  }
  const std::span<std::int32_t> c = sram.out<std::int32_t>(d.c, std::size_t(d.m) * d.n);
  GemmStats s;
  if (d.accumulate) {
    if (rtl)
      throw ConfigError(
          "mac_array.impl: rtl: the verilated array cannot continue a K-chunked GEMM (its outer accumulators start "
          "at 0); this GEMM only fits SRAM in K-chunks: use mac_array.impl: model or a larger sram.size_bytes");
    s = continue_gemm(shape, {a, d.a_bits, a_unsigned}, b, d.accumulator(), c);
  } else if (rtl) {
    *rtl_run = rtl->gemm(shape, {a, d.a_bits, a_unsigned}, b, d.accumulator(), c);
    s = rtl_run->stats;
  } else {
    s = gemm(gemm_, shape, {a, d.a_bits, a_unsigned}, b, d.accumulator(), c);
  }
  GemmStats total = d.init_stats ? GemmStats{} : sram.read_struct<GemmStatsRecord>(d.stats).stats();
  total.merge(s);
  sram.write_struct(d.stats, GemmStatsRecord::from(total));
  return s;
}

RtlMacArray& MacArray::rtl_array(const NpuConfig& cfg) {
  const RtlArrayVariant* v = find_rtl_array(cfg.mac_array.rows, cfg.mac_array.cols, cfg.mac_array.rtl_bug);
  if (!v)  // the config reader refuses impl: rtl without a verilated array of its geometry
    throw ConfigError(fmt::format("mac_array.impl: rtl: no verilated {}x{} array (BUG = {}) in this build",
                                  cfg.mac_array.rows, cfg.mac_array.cols, cfg.mac_array.rtl_bug));
  if (v != rtl_variant_) {
    rtl_ = v->make();
    rtl_variant_ = v;
  }
  return *rtl_;
}

std::uint64_t MacArray::execute(const Command& c) {
  if (c.header.opcode != kMacGemm) throw ConfigError(fmt::format("mac_array: unknown opcode {}", c.header.opcode));
  const MacDescriptor d = c.as<MacDescriptor>();
  const NpuConfig& cfg = ctx_.cfg();
  RtlMacArray* rtl = cfg.mac_array.impl == "rtl" ? &rtl_array(cfg) : nullptr;
  RtlGemmRun rtl_run;
  const GemmStats s = core_.run(d, sram_port_, rtl, &rtl_run);

  // Operand streams: the core moved each panel and C once (and C's O once
  // more, read, for accumulate); later folds re-read.
  const AccumulatorConfig acc = d.accumulator();
  const ArrayTraffic t = array_traffic(d.dataflow, d.m, d.n, d.k, packed_pitch(d.k, d.a_bits), cfg.mac_array.rows,
                                       cfg.mac_array.cols, acc.acc_bits, acc.outer_bits, d.accumulate != 0,
                                       [&](std::uint64_t j0, std::uint64_t j1) {
                                   return d.b_layout == BLayout::n_by_k
                                              ? (j1 - j0) * packed_pitch(d.k, d.b_bits)
                                              : std::uint64_t(d.k) * (packed_pitch(j1, d.b_bits) - (j0 * d.b_bits) / 8);
                                 });
  ctx_.charge_sram(t.total() - d.a_bytes() - d.b_bytes() - t.c_bytes - t.c_in_bytes);

  CostCell& cell = ctx_.cell();
  cell.macs += s.products;
  if (rtl) {
    cell.rtl_commands += 1;
    cell.rtl_folds += rtl_run.folds;
    cell.rtl_cycles += rtl_run.cycles;
  }
  cell.energy_pj[int(EnergyKind::mac_array)] +=
      mac_array_energy_pj(d.dataflow, s.products, s.tile_results, std::uint64_t(d.k) * d.n, d.a_bits, d.b_bits, acc,
                          cfg.energy);
  return compute_cycles(d.dataflow, d.m, d.n, d.k, cfg.mac_array.rows, cfg.mac_array.cols);
}

}  // namespace hdq::npu
