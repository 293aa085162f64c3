// The Hadamard transform's loops, one function per path (internal to models/;
// hadamard.h's fwht_* and hadamard_rows_* dispatch to the fastest path this
// CPU runs). `reference` is the definition (docs/contract.md §4: the
// in-place iterative FWHT in the contract's order); tests/test_simd_paths.cpp
// checks that every other path gives the same bits.
//   avx2 (hadamard_avx2.cpp): stages h = 1, 2, 4 inside one 8-lane register
//   (shuffle, add, subtract, blend), stages h >= 8 on whole registers. Each
//   output of a stage is one f32 add or subtract of the same two operands in
//   the same order as the reference, so the bits are the same; the integer
//   transform adds exactly and takes this path only when no sum can leave int32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "models/common/kernel_path.h"

namespace hdq::detail {

// The paths this machine can run, reference first; the last is the fastest.
std::vector<KernelPath> available_hadamard_paths();
KernelPath best_hadamard_path();

// In place over n elements (n a multiple of block, block a power of two >= 1;
// the callers check both).
void fwht_f32_reference(float* x, std::size_t n, int block);
void fwht_f32_avx2(float* x, std::size_t n, int block);
void fwht_f32(float* x, std::size_t n, int block, KernelPath path);

// The reference checks every add and subtract and throws NumericError on an
// int32 overflow (x is then partly transformed). The avx2 path first bounds
// every intermediate by max |x_i| * block; when that bound does not fit int32
// it runs the reference instead (same result, same exception).
void fwht_i32_reference(std::int32_t* x, std::size_t n, int block);
void fwht_i32_avx2(std::int32_t* x, std::size_t n, int block);
void fwht_i32(std::int32_t* x, std::size_t n, int block, KernelPath path);

}  // namespace hdq::detail
