// Hadamard transform (docs/contract.md §4).
//
// Sylvester matrices, unnormalized: H_1 = [1], H_2n = [[H_n, H_n], [H_n, -H_n]].
// Block size for a dimension of length d:
//   b = largest power of two dividing d, then min(b, max_block) when capped;
//   with pad (requires max_block): d is zero-padded at its end to a multiple
//   of max_block and b = max_block.
// Applied along a dimension: every run of b consecutive indices is replaced by
// H_b times it. f32 data use the in-place iterative FWHT in this exact order
// (indices local to the block):
//   for h = 1, 2, 4, ..., b/2: for i = 0, 2h, 4h, ...: for j in [i, i+h):
//     (u, w) = (x[j], x[j+h]); x[j] = u + w; x[j+h] = u - w
// Integer data are transformed exactly in int32 (overflow is a NumericError).
// H_b H_b^T = b I, so a product transformed on both sides is divided by b.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace hdq {

struct HadamardConfig {
  std::optional<int> max_block;  // a hardware unit's fixed size (power of two >= 1)
  bool pad = false;              // requires max_block
};

struct HadamardPlan {
  int block = 1;          // b
  int padded_length = 0;  // d, rounded up to a multiple of b when padding
};

// Block size and padded length for a dimension of length d >= 1.
HadamardPlan plan_hadamard(int d, const HadamardConfig& cfg);

// Largest power of two dividing d (d >= 1).
int largest_pow2_factor(int d);

// In place, along a contiguous vector whose length is a multiple of `block`
// (a power of two): every run of `block` elements becomes H_block times it.
void fwht_f32(std::span<float> x, int block);
void fwht_i32(std::span<std::int32_t> x, int block);

// In place along each row of a row-major rows x cols matrix (the transformed
// dimension is cols, a multiple of block).
void hadamard_rows_f32(std::span<float> x, int rows, int cols, int block);
void hadamard_rows_i32(std::span<std::int32_t> x, int rows, int cols, int block);

// In place along each column of a row-major rows x cols matrix (the
// transformed dimension is rows, a multiple of block): the same integers as
// transposing, hadamard_rows_i32 and transposing back (integer sums are exact
// in any order), but each butterfly adds two contiguous rows, so nothing is
// transposed. NumericError when max|x| * block exceeds int32 (an
// intermediate could overflow).
void hadamard_columns_i32(std::span<std::int32_t> x, int rows, int cols, int block);

// Entry (r, c) of the Sylvester matrix H_n (n a power of two): (-1)^popcount(r & c).
constexpr int sylvester_entry(std::uint32_t r, std::uint32_t c) {
  return (__builtin_popcount(r & c) & 1) ? -1 : 1;
}

}  // namespace hdq
