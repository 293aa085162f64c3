// Drives a verilated rtl/mac_array.sv cycle by cycle: one reset cycle per
// GEMM with its configuration, then per fold K feed cycles, the fill until
// fold_done, and R drain cycles (rtl/mac_array.sv: K + 2R + C - 2 cycles a
// fold). The one place that knows the array's port protocol; the vector
// testbench (rtl/tb/gemm_vectors_tb.cpp) and the NPU model's RTL MAC array
// (sim/blocks/rtl_mac_array.cpp) both drive the array through it.
//
// V is the verilated top (any --prefix). The array's parameters are not
// visible from C++: the caller passes the R, C, operand port width and Wo
// port width it gave Verilator.
#pragma once

#include <verilated.h>

#include <cstdint>
#include <memory>

namespace hdq::rtl {

// ---------------------------------------------------------------- port bit fields
template <typename T>
void set_field(T& port, int index, int width, std::uint64_t value) {
  const T mask = static_cast<T>((std::uint64_t{1} << width) - 1);
  const int shift = index * width;
  port = static_cast<T>((port & ~static_cast<T>(mask << shift)) | static_cast<T>((value & mask) << shift));
}
template <std::size_t N>
void set_field(VlWide<N>& port, int index, int width, std::uint64_t value) {
  for (int b = 0; b < width; ++b) {
    const int bit = index * width + b;
    EData& word = port.at(std::size_t(bit / 32));
    word = (word & ~(EData{1} << (bit % 32))) | (EData((value >> b) & 1) << (bit % 32));
  }
}
template <typename T>
std::uint64_t get_field(const T& port, int index, int width) {
  return (std::uint64_t(port) >> (index * width)) & ((std::uint64_t{1} << width) - 1);
}
template <std::size_t N>
std::uint64_t get_field(const VlWide<N>& port, int index, int width) {
  std::uint64_t v = 0;
  for (int b = 0; b < width; ++b) {
    const int bit = index * width + b;
    v |= std::uint64_t((port.at(std::size_t(bit / 32)) >> (bit % 32)) & 1) << b;
  }
  return v;
}

inline std::int64_t sign_extend(std::uint64_t raw, int bits) {
  const std::uint64_t sign = std::uint64_t{1} << (bits - 1);
  raw &= (sign << 1) - 1;
  return std::int64_t(raw ^ sign) - std::int64_t(sign);
}

// The configuration inputs of one GEMM (rtl/mac_array.sv's cfg_* ports).
struct ArraySetup {
  bool a_signed = true, b_signed = true;
  int mode = 2;  // 0 exact, 1 clamp_tile, 2 saturate, 3 wrap
  bool full_range = true;
  int acc_bits = 8, outer_bits = 32;
  std::uint32_t k = 1, tile = 0;  // tile 0: one tile of K
};

// The statistics outputs, accumulated since the GEMM's reset cycle.
struct ArrayCounters {
  std::uint64_t products = 0, changed_steps = 0, clamped_tiles = 0, inner_events = 0, outer_overflows = 0;
  std::uint64_t max_abs_tile_sum = 0;
};

template <class V>
class MacArrayDriver {
 public:
  MacArrayDriver(int rows, int cols, int port_bits, int out_bits)
      : rows_(rows), cols_(cols), port_bits_(port_bits), out_bits_(out_bits),
        ctx_(std::make_unique<VerilatedContext>()), top_(std::make_unique<V>(ctx_.get())) {
    top_->clk = 0;
    top_->eval();
  }
  ~MacArrayDriver() { top_->final(); }
  MacArrayDriver(const MacArrayDriver&) = delete;
  MacArrayDriver& operator=(const MacArrayDriver&) = delete;

  int rows() const { return rows_; }
  int cols() const { return cols_; }
  std::uint64_t cycle() const { return cycle_; }  // clock cycles since construction

  // The GEMM's reset cycle: configuration applied, controller and statistics cleared.
  void begin(const ArraySetup& s) {
    V& io = *top_;
    io.cfg_a_signed = s.a_signed;
    io.cfg_b_signed = s.b_signed;
    io.cfg_mode = std::uint8_t(s.mode);
    io.cfg_full_range = s.full_range;
    io.cfg_acc_bits = std::uint8_t(s.acc_bits);
    io.cfg_outer_bits = std::uint8_t(s.outer_bits);
    io.cfg_k = s.k;
    io.cfg_tile = s.tile;
    k_ = s.k;
    io.in_valid = 0;
    io.drain = 0;
    io.stats_clear = 0;
    io.rst = 1;
    tick();
    io.rst = 0;
  }

  // One fold of the GEMM begun last: PE rows 0 .. rows_valid - 1 and columns
  // 0 .. cols_valid - 1 hold real outputs. a(r, k) and b(k, c) give operand
  // values (called for valid rows / columns only; signed values are sign
  // extended to the port by the port's masking). out(r, c, value, cycle)
  // receives every valid PE's Wo-bit result during the drain (rows R-1 first),
  // with the cycle it is read in. Returns the cycles from the last feed cycle
  // to fold_done (R + C - 2 by design), or -1 when fold_done never came.
  template <class A, class B, class Out>
  int fold(int rows_valid, int cols_valid, A&& a, B&& b, Out&& out) {
    V& io = *top_;
    io.row_en = 0;
    io.col_en = 0;
    for (int r = 0; r < rows_; ++r) set_field(io.row_en, r, 1, r < rows_valid);
    for (int c = 0; c < cols_; ++c) set_field(io.col_en, c, 1, c < cols_valid);
    for (std::uint32_t k = 0; k < k_; ++k) {
      for (int r = 0; r < rows_; ++r) set_field(io.a_col, r, port_bits_, r < rows_valid ? std::uint64_t(a(r, k)) : 0);
      for (int c = 0; c < cols_; ++c) set_field(io.b_row, c, port_bits_, c < cols_valid ? std::uint64_t(b(k, c)) : 0);
      io.in_valid = 1;
      tick();
    }
    io.in_valid = 0;
    int waited = 0;
    while (!io.fold_done) {
      if (++waited > rows_ + cols_ + 4) return -1;
      tick();
    }
    for (int d = 0; d < rows_; ++d) {
      const int r = rows_ - 1 - d;
      if (r < rows_valid)
        for (int c = 0; c < cols_valid; ++c)
          out(r, c, sign_extend(get_field(io.c_out, c, out_bits_), out_bits_), cycle_);
      io.drain = 1;
      tick();
    }
    io.drain = 0;
    return waited;
  }

  ArrayCounters counters() const {
    const V& io = *top_;
    return {io.cnt_products, io.cnt_changed_steps, io.cnt_clamped_tiles, io.cnt_inner_events, io.cnt_outer_ovf,
            io.max_abs_tile_sum};
  }

 private:
  void tick() {
    top_->clk = 0;
    top_->eval();
    top_->clk = 1;
    top_->eval();
    ++cycle_;
  }

  int rows_, cols_, port_bits_, out_bits_;
  std::uint32_t k_ = 1;
  std::unique_ptr<VerilatedContext> ctx_;
  std::unique_ptr<V> top_;
  std::uint64_t cycle_ = 0;
};

}  // namespace hdq::rtl
