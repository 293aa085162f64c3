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

GemmStats MacArrayCore::run(const MacDescriptor& d, MemoryPort& sram, RtlMacArray* rtl, RtlGemmRun* rtl_run) {
  const bool a_unsigned = sram.read_struct<QuantRecord>(d.a_record).is_unsigned != 0;
  const bool b_unsigned = sram.read_struct<QuantRecord>(d.b_record).is_unsigned != 0;
  const std::span<std::int16_t> a = scratch(a_, std::size_t(d.m) * d.k);
  unpack_rows(sram.in<std::uint8_t>(d.a, d.a_bytes()), d.m, d.k, d.a_bits, a_unsigned, a);
  const IntOperand b = operand_b(d, b_unsigned, sram.in<std::uint8_t>(d.b, d.b_bytes()));
  const GemmShape shape{int(d.m), int(d.n), int(d.k)};
  const std::span<std::int32_t> c = sram.out<std::int32_t>(d.c, std::size_t(d.m) * d.n);
  GemmStats s;
  if (rtl) {
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

  // Operand streams: the core moved each panel and C once; later folds re-read.
  const AccumulatorConfig acc = d.accumulator();
  const ArrayTraffic t = array_traffic(d.dataflow, d.m, d.n, d.k, packed_pitch(d.k, d.a_bits), cfg.mac_array.rows,
                                       cfg.mac_array.cols, acc.acc_bits, acc.outer_bits,
                                       [&](std::uint64_t j0, std::uint64_t j1) {
                                   return d.b_layout == BLayout::n_by_k
                                              ? (j1 - j0) * packed_pitch(d.k, d.b_bits)
                                              : std::uint64_t(d.k) * (packed_pitch(j1, d.b_bits) - (j0 * d.b_bits) / 8);
                                 });
  ctx_.charge_sram(t.total() - d.a_bytes() - d.b_bytes() - std::uint64_t(d.m) * d.n * 4);

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
