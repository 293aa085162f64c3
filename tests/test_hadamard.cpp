#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "models/common/errors.h"
#include "models/hadamard/hadamard.h"

namespace hdq {
namespace {

TEST(Hadamard, LargestPow2Factor) {
  EXPECT_EQ(largest_pow2_factor(405), 1);  // 405 = 3^4 * 5 is odd: the authors' code leaves it untransformed
  EXPECT_EQ(largest_pow2_factor(784), 16);  // 784 = 16 * 49
  EXPECT_EQ(largest_pow2_factor(256), 256);
  EXPECT_EQ(largest_pow2_factor(24), 8);
}

TEST(Hadamard, PlanCapsAndPads) {
  EXPECT_EQ(plan_hadamard(256, {}).block, 256);
  EXPECT_EQ(plan_hadamard(256, {.max_block = 32}).block, 32);  // cap applies to the pow2 factor
  EXPECT_EQ(plan_hadamard(24, {.max_block = 32}).block, 8);    // factor 8 is below the cap
  const auto padded = plan_hadamard(405, {.max_block = 32, .pad = true});
  EXPECT_EQ(padded.block, 32);
  EXPECT_EQ(padded.padded_length, 416);  // 405 -> ceil(405 / 32) * 32 = 13 * 32
  EXPECT_EQ(plan_hadamard(64, {.max_block = 32, .pad = true}).padded_length, 64);  // already a multiple
  EXPECT_THROW(plan_hadamard(64, {.max_block = std::nullopt, .pad = true}), ConfigError);            // pad needs a cap
  EXPECT_THROW(plan_hadamard(64, {.max_block = 24}), ConfigError);        // not a power of two
  EXPECT_THROW(plan_hadamard(0, {}), ConfigError);
}

// H_4 in Sylvester order has rows ++++, +-+-, ++--, +--+, so
// H_4 [1,2,3,4] = [10, 1-2+3-4, 1+2-3-4, 1-2-3+4] = [10, -2, -4, 0].
TEST(Hadamard, FourPointTransformByHand) {
  std::vector<float> f{1, 2, 3, 4};
  fwht_f32(f, 4);
  EXPECT_EQ(f, (std::vector<float>{10, -2, -4, 0}));
  std::vector<std::int32_t> i{1, 2, 3, 4, 0, 1, 0, 0};  // two blocks of 4
  fwht_i32(i, 4);
  // Second block: H_4 e_1 is column 1 of H_4 = [1, -1, 1, -1].
  EXPECT_EQ(i, (std::vector<std::int32_t>{10, -2, -4, 0, 1, -1, 1, -1}));
}

// The f32 order is part of the contract. On [2^24, 1, 1, 0]:
// stage h=1, pairs (0,1), (2,3): 2^24 + 1 is a tie and rounds to even 2^24;
//   2^24 - 1 is exact; 1 + 0 = 1, 1 - 0 = 1          -> [2^24, 2^24 - 1, 1, 1]
// stage h=2, pairs (0,2), (1,3): 2^24 + 1 -> 2^24 again; 2^24 - 1; 2^24 - 1 + 1 = 2^24;
//   2^24 - 1 - 1 = 2^24 - 2                           -> [2^24, 2^24, 2^24 - 1, 2^24 - 2]
// The exact product is [2^24 + 2, 2^24, 2^24, 2^24 - 2]: elements 0 and 2 carry
// the rounding of this particular order.
TEST(Hadamard, F32OrderIsTheStatedButterflyOrder) {
  std::vector<float> f{16777216.0f, 1.0f, 1.0f, 0.0f};
  fwht_f32(f, 4);
  EXPECT_EQ(f, (std::vector<float>{16777216.0f, 16777216.0f, 16777215.0f, 16777214.0f}));
}

TEST(Hadamard, RowsTransformIndependently) {
  std::vector<std::int32_t> m{1, 0, 0, 0,   // row 0 -> [1, 1, 1, 1]
                              0, 0, 0, 2};  // row 1 -> 2 * column 3 of H_4 = [2, -2, -2, 2]
  hadamard_rows_i32(m, 2, 4, 4);
  EXPECT_EQ(m, (std::vector<std::int32_t>{1, 1, 1, 1, 2, -2, -2, 2}));
}

// Along columns = transpose, along rows, transpose back: integer sums are
// exact, so the two give the same integers for every block size.
TEST(Hadamard, ColumnsEqualRowsOfTheTranspose) {
  const int rows = 32, cols = 5;
  std::vector<std::int32_t> x(std::size_t(rows) * cols);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::int32_t((i * 2654435761u) % 31) - 15;
  for (int block : {1, 2, 8, 32}) {
    std::vector<std::int32_t> by_columns = x, t(x.size());
    hadamard_columns_i32(by_columns, rows, cols, block);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) t[std::size_t(c) * rows + r] = x[std::size_t(r) * cols + c];
    hadamard_rows_i32(t, cols, rows, block);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c)
        ASSERT_EQ(by_columns[std::size_t(r) * cols + c], t[std::size_t(c) * rows + r]) << block << " " << r << "," << c;
  }
  // max |x| * block beyond int32 could overflow: refused before any change.
  std::vector<std::int32_t> big(4, 1 << 30);
  EXPECT_THROW(hadamard_columns_i32(big, 4, 1, 4), NumericError);
  EXPECT_EQ(big[0], 1 << 30);
}

TEST(Hadamard, IntegerOverflowIsANumericError) {
  std::vector<std::int32_t> x{INT32_MAX, 1};
  EXPECT_THROW(fwht_i32(x, 2), NumericError);
}

TEST(Hadamard, BadBlockIsAConfigError) {
  std::vector<float> x(6);
  EXPECT_THROW(fwht_f32(x, 3), ConfigError);   // not a power of two
  EXPECT_THROW(fwht_f32(x, 4), ConfigError);   // 6 is not a multiple of 4
  EXPECT_THROW(fwht_f32(x, 0), ConfigError);
  EXPECT_THROW(hadamard_rows_f32(x, 2, 3, 4), ConfigError);
  EXPECT_THROW(hadamard_rows_f32(x, 4, 2, 2), ConfigError);  // 4 x 2 != 6 elements
}

TEST(Hadamard, SylvesterEntries) {
  // H_2 = [[1, 1], [1, -1]]; H_4 row 3 = [1, -1, -1, 1].
  EXPECT_EQ(sylvester_entry(1, 1), -1);
  EXPECT_EQ(sylvester_entry(0, 1), 1);
  EXPECT_EQ(sylvester_entry(3, 1), -1);
  EXPECT_EQ(sylvester_entry(3, 2), -1);
  EXPECT_EQ(sylvester_entry(3, 3), 1);
}

}  // namespace
}  // namespace hdq
