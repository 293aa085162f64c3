#include "sim/blocks/hadamard_unit.h"

#include <fmt/format.h>

#include <algorithm>

#include "models/common/errors.h"
#include "models/hadamard/hadamard.h"
#include "sim/blocks/quantizer_unit.h"
#include "sim/cost/cycles.h"

namespace hdq::npu {

std::uint64_t HadamardDescriptor::output_elements(std::uint32_t opcode) const {
  return std::uint64_t(padded) * (opcode == kHadamardRows ? rows : cols);
}

void HadamardDescriptor::accesses(std::uint32_t opcode, Footprint& f) const {
  if (opcode == kHadamardColsInt) {
    f.push_back({Space::sram, false, src, std::uint64_t(rows) * packed_pitch(cols, bits)});
    f.push_back({Space::sram, false, record, sizeof(QuantRecord)});
  } else {
    f.push_back({Space::sram, false, src, std::uint64_t(rows) * cols * 4});
  }
  f.push_back({Space::sram, true, dst, output_elements(opcode) * 4});
}

std::uint64_t HadamardCore::run(std::uint32_t opcode, const HadamardDescriptor& d, MemoryPort& sram) {
  const std::size_t rows = d.rows, cols = d.cols, padded = d.padded;
  if (opcode == kHadamardRows) {
    const std::span<const float> x = sram.in<float>(d.src, rows * cols);
    const std::span<float> y = sram.out<float>(d.dst, rows * padded);
    for (std::size_t r = 0; r < rows; ++r) {
      std::copy_n(x.begin() + std::ptrdiff_t(r * cols), cols, y.begin() + std::ptrdiff_t(r * padded));
      std::fill_n(y.begin() + std::ptrdiff_t(r * padded + cols), padded - cols, 0.0f);
    }
    hadamard_rows_f32(y, int(rows), int(padded), int(d.block));
  } else if (opcode == kHadamardColsT) {
    const std::span<const float> x = sram.in<float>(d.src, rows * cols);
    const std::span<float> y = sram.out<float>(d.dst, cols * padded);
    transpose(x.data(), rows, cols, y.data(), padded);
    for (std::size_t c = 0; c < cols; ++c) std::fill_n(y.begin() + std::ptrdiff_t(c * padded + rows), padded - rows, 0.0f);
    hadamard_rows_f32(y, int(cols), int(padded), int(d.block));
  } else if (opcode == kHadamardColsInt) {
    // Along the rows dimension in place (hadamard_columns_i32: the integers of
    // a transpose, a row transform and a transpose back, without the copies).
    const bool is_unsigned = sram.read_struct<QuantRecord>(d.record).is_unsigned != 0;
    const std::span<const std::uint8_t> packed = sram.in<std::uint8_t>(d.src, rows * packed_pitch(cols, d.bits));
    for (const Recent& r : recent_)
      if (r.rows == d.rows && r.cols == d.cols && r.padded == d.padded && r.block == d.block && r.bits == d.bits &&
          r.is_unsigned == is_unsigned && std::ranges::equal(r.packed, packed)) {  // computed before: the same result
        const std::span<float> y = sram.out<float>(d.dst, padded * cols);
        std::ranges::copy(r.out, y.begin());
        return d.output_elements(opcode);
      }
    const std::span<std::int32_t> t = scratch(t_, padded * cols);
    unpack_rows(packed, rows, cols, d.bits, is_unsigned, t.first(rows * cols));
    std::fill(t.begin() + std::ptrdiff_t(rows * cols), t.end(), 0);
    hadamard_columns_i32(t, int(padded), int(cols), int(d.block));
    std::int32_t lo = 0, hi = 0;  // a min / max pass and a conversion pass: both vectorize
    for (const std::int32_t v : t) lo = std::min(lo, v), hi = std::max(hi, v);
    if (hi > (1 << 24) || lo < -(1 << 24)) throw NumericError("integer Hadamard result exceeds 2^24 (not exact in f32)");
    const std::span<float> y = sram.out<float>(d.dst, padded * cols);
    for (std::size_t i = 0; i < t.size(); ++i) y[i] = float(t[i]);
    // Kept, in the buffers of the oldest one when the cache is full (no new allocations in steady state).
    const std::size_t bytes = packed.size() + 4 * y.size();
    Recent r;
    while (!recent_.empty() && recent_bytes_ + bytes > kRecentBytes) {
      recent_bytes_ -= recent_.front().packed.size() + 4 * recent_.front().out.size();
      r = std::move(recent_.front());
      recent_.pop_front();
    }
    r.rows = d.rows, r.cols = d.cols, r.padded = d.padded, r.block = d.block, r.bits = d.bits;
    r.is_unsigned = is_unsigned;
    r.packed.assign(packed.begin(), packed.end());
    r.out.assign(y.begin(), y.end());
    recent_bytes_ += bytes;
    recent_.push_back(std::move(r));
  } else {
    throw ConfigError(fmt::format("hadamard_unit: unknown opcode {}", opcode));
  }
  return d.output_elements(opcode);
}

std::uint64_t HadamardUnit::execute(const Command& c) {
  const HadamardDescriptor d = c.as<HadamardDescriptor>();
  const std::uint64_t n = core_.run(c.header.opcode, d, sram_port_);
  const std::uint64_t adds = hadamard_adds(n, int(d.block));
  CostCell& cell = ctx_.cell();
  cell.hadamard_adds += adds;
  cell.energy_pj[int(EnergyKind::hadamard)] += double(adds) * ctx_.cfg().energy.hadamard_add();
  return hadamard_cycles(n, int(d.block), ctx_.cfg().hadamard_unit.points);
}

}  // namespace hdq::npu
