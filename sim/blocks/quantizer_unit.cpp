#include "sim/blocks/quantizer_unit.h"

#include <fmt/format.h>

#include "models/common/errors.h"
#include "sim/cost/cycles.h"

namespace hdq::npu {

QuantConfig QuantizerDescriptor::config() const {
  QuantConfig q;
  q.bits = bits;
  q.rounding = Rounding(rounding);
  q.sr_bits = sr_bits;
  q.clip = clip;
  q.signedness = Signedness(signedness);
  q.scale_mode = ScaleMode(scale_mode);
  return q;
}

void QuantizerDescriptor::set_config(const QuantConfig& q) {
  bits = std::uint8_t(q.bits);
  rounding = std::uint8_t(q.rounding);
  sr_bits = std::uint8_t(q.sr_bits);
  clip = q.clip;
  signedness = std::uint8_t(q.signedness);
  scale_mode = std::uint8_t(q.scale_mode);
}

void QuantizerDescriptor::accesses(std::uint32_t opcode, Footprint& f) const {
  if (opcode != kQuantFinalize && opcode != kQuantFinalizeKeep) f.push_back({Space::sram, false, src, elements() * 4});
  f.push_back({Space::sram, opcode != kQuantRound, record, sizeof(QuantRecord)});
  if (opcode == kQuantRound) {
    if (rows) f.push_back({Space::sram, true, dst, std::uint64_t(rows - 1) * out_pitch() + packed_pitch(cols, bits)});
    if (write_mask) f.push_back({Space::sram, true, mask, std::uint64_t(rows) * mask_pitch(cols)});
  }
}

QuantizerWork QuantizerCore::run(std::uint32_t opcode, const QuantizerDescriptor& d, int layer, int lanes,
                                 MemoryPort& sram) {
  const std::string tensor = fmt::format("layer{}.{}", layer, name(QuantRole(d.role)));
  const QuantConfig cfg = d.config();
  QuantRecord rec = sram.read_struct<QuantRecord>(d.record);
  QuantizerWork w;
  const std::uint64_t n = d.elements();
  if (opcode == kQuantReduce || opcode == kQuantReduceKeep) {
    // The core's scan of this chunk, merged into the tensor's running summary.
    const std::span<const float> x = sram.in<float>(d.src, n);
    auto summary = [&] {
      ScaleSummary s = scale_summary(d.stride() == d.cols ? x : x.first(d.cols), tensor, d.first_index);
      if (d.stride() != d.cols)  // a block of columns: every row with its own flat index
        for (std::uint64_t r = 1; r < d.rows; ++r)
          s.merge(scale_summary(x.subspan(r * d.cols, d.cols), tensor, d.first_index + r * d.stride()));
      return s;
    };
    if (d.init) rec.nonfinite = 0;
    ScaleSummary s;
    if (opcode == kQuantReduce) s = summary();
    else {
      try {
        s = summary();
      } catch (const NumericError&) {  // recorded for the host, not an error of this job
        rec.nonfinite = 1;
      }
    }
    if (!d.init) s.merge({rec.max_abs, rec.negative == 0});
    rec.max_abs = s.max_abs;
    rec.negative = s.nonnegative ? 0u : 1u;
    sram.write_struct(d.record, rec);
    w.ops = quantizer_reduce_ops(n);
    w.cycles = lane_cycles(n, lanes);
  } else if (opcode == kQuantFinalize || opcode == kQuantFinalizeKeep) {
    QuantParams p;
    if (opcode == kQuantFinalize) p = choose_scale(ScaleSummary{rec.max_abs, rec.negative == 0}, cfg, tensor);
    else if (!rec.nonfinite) {
      try {
        p = choose_scale(ScaleSummary{rec.max_abs, rec.negative == 0}, cfg, tensor);
      } catch (const NumericError&) {  // the next step's own Q(W) fails on it, as the functional engine's
        rec.nonfinite = 1;
      }
    }
    rec.scale = p.scale;
    rec.mx = p.mx;
    rec.qmin = p.qmin;
    rec.qmax = p.qmax;
    rec.is_unsigned = p.is_unsigned;
    sram.write_struct(d.record, rec);
    w.ops = {0, 1};  // the division mx / qmax
    w.cycles = 1;
  } else if (opcode == kQuantRound && rec.nonfinite) {
    w.cycles = lane_cycles(n, lanes);  // an unusable carry record: nothing to round
  } else if (opcode == kQuantRound) {
    const QuantParams p = rec.params();
    const std::span<const float> x = sram.in<float>(d.src, n);
    const std::span<std::int16_t> q = scratch(q_, n);
    if (d.stride() == d.cols) quantize_span(x, d.first_index, p, cfg, d.key, q);
    else
      for (std::uint64_t r = 0; r < d.rows; ++r)
        quantize_span(x.subspan(r * d.cols, d.cols), d.first_index + r * d.stride(), p, cfg, d.key,
                      q.subspan(r * d.cols, d.cols));
    const std::uint64_t row = packed_pitch(d.cols, cfg.bits), pitch = d.out_pitch();
    if (pitch == row) pack_rows(q, d.rows, d.cols, cfg.bits, sram.out<std::uint8_t>(d.dst, d.rows * row));
    else
      for (std::uint64_t r = 0; r < d.rows; ++r)
        pack_rows(q.subspan(r * d.cols, d.cols), 1, d.cols, cfg.bits, sram.out<std::uint8_t>(d.dst + r * pitch, row));
    if (d.write_mask) {
      const float lo = p.is_unsigned ? 0.0f : -p.mx;
      const std::span<std::uint8_t> flags = scratch(flags_, n);
      for (std::uint64_t i = 0; i < n; ++i) flags[i] = x[i] > p.mx || x[i] < lo;
      pack_mask(flags, d.rows, d.cols, sram.out<std::uint8_t>(d.mask, d.rows * mask_pitch(d.cols)));
    }
    w.ops = quantizer_round_ops(n, cfg.rounding);
    w.random_bits = quantizer_random_bits(n, cfg);
    w.cycles = lane_cycles(n, lanes);
  } else {
    throw ConfigError(fmt::format("quantizer: unknown opcode {}", opcode));
  }
  return w;
}

std::uint64_t QuantizerUnit::execute(const Command& c) {
  const QuantizerWork w =
      core_.run(c.header.opcode, c.as<QuantizerDescriptor>(), c.header.layer, ctx_.cfg().quantizer_unit.lanes, sram_port_);
  CostCell& cell = ctx_.cell();
  const EnergyTable& e = ctx_.cfg().energy;
  cell.random_bits += w.random_bits;
  cell.energy_pj[int(EnergyKind::quantizer)] += f32_energy_pj(w.ops, e) + double(w.random_bits) * e.random_bit();
  return w.cycles;
}

}  // namespace hdq::npu
