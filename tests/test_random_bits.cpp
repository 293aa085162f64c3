#include <gtest/gtest.h>

#include "models/quantizer/random_bits.h"

namespace hdq {
namespace {

// SplitMix64's published first output for seed 0 is 0xe220a8397b1dcdaf: the
// generator adds the golden gamma 0x9e3779b97f4a7c15 to the state and applies
// exactly this finalizer, so mix64(0x9e3779b97f4a7c15) must reproduce it.
TEST(RandomBits, Mix64IsTheSplitMix64Finalizer) {
  EXPECT_EQ(mix64(0x9e3779b97f4a7c15ULL), 0xe220a8397b1dcdafULL);
  // The finalizer maps 0 to 0 (every step is a xor-shift or multiply of 0).
  EXPECT_EQ(mix64(0), 0u);
}

// Element 0 uses counter (0 + 1) * gamma, i.e. the same argument as above when
// the key is 0, so its top r bits are the top r bits of 0xe220a8397b1dcdaf.
TEST(RandomBits, ElementBitsAreTheTopRBits) {
  EXPECT_EQ(element_random_bits(0, 0, 16), 0xe220u);
  EXPECT_EQ(element_random_bits(0, 0, 4), 0xeu);
  EXPECT_EQ(element_random_bits(0, 0, 23), 0xe220a8397b1dcdafULL >> 41);
}

// The key is mix(seed ^ mix(stream ^ mix(step))) - written out once more here.
TEST(RandomBits, KeyFollowsTheContractFormula) {
  const RandomStream rs{.seed = 7, .stream = 8 * 2 + 5, .step = 41};
  EXPECT_EQ(rs.key(), mix64(7 ^ mix64((8 * 2 + 5) ^ mix64(41))));
  // Changing any of the three inputs changes the key.
  EXPECT_NE(rs.key(), (RandomStream{8, 21, 41}.key()));
  EXPECT_NE(rs.key(), (RandomStream{7, 22, 41}.key()));
  EXPECT_NE(rs.key(), (RandomStream{7, 21, 42}.key()));
}

}  // namespace
}  // namespace hdq
