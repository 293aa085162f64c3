// The micro-kernel of golden/matmul.cpp, included by one translation unit per
// instruction set (matmul.cpp: baseline ISA, matmul_avx2.cpp: -mavx2).
// Everything here has internal linkage (anonymous namespace) and uses nothing
// from the standard library, so no AVX2 code can be merged by the linker into
// functions the baseline TU calls.
//
// Packed operands (built by matmul.cpp):
//   ap: MR rows of A, k-major: ap[k * MR + i] = A[m0 + i][k0 + k]
//   bp: NR columns of B, k-major: bp[k * NR + j] = B[k0 + k][n0 + j]
//   c:  the MR x NR block of C (row stride ldc). With accumulate it holds the
//       partial sums of the k-blocks before this one; without, the sums start
//       from +0.
// For each output (i, j) the kernel performs, for k = 0, 1, ..., kc-1 in that
// order, c[i][j] = c[i][j] + ap[k][i] * bp[k][j], one f32 rounding for the
// product and one for the add. Lanes of a vector are different outputs j, so
// the vector width changes nothing but speed.
#ifndef HDQ_GOLDEN_MATMUL_KERNEL_H
#define HDQ_GOLDEN_MATMUL_KERNEL_H

namespace {

// V: a GCC/Clang vector of floats; MR rows x NV vectors of accumulators.
template <typename V, int MR, int NV>
inline void micro_kernel(int kc, const float* __restrict ap, const float* __restrict bp, float* __restrict c, long ldc,
                         bool accumulate) {
  constexpr int lanes = int(sizeof(V) / sizeof(float));
  constexpr int nr = NV * lanes;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) {
      if (accumulate)
        __builtin_memcpy(&acc[i][j], c + i * ldc + j * lanes, sizeof(V));
      else
        acc[i][j] = V{};  // +0 in every lane
    }
  for (int k = 0; k < kc; ++k) {
    V b[NV];
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) __builtin_memcpy(&b[j], bp + k * nr + j * lanes, sizeof(V));
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const float a = ap[k * MR + i];
#pragma GCC unroll 16
      for (int j = 0; j < NV; ++j) acc[i][j] = acc[i][j] + a * b[j];  // product rounded, then the add rounded
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NV; ++j) __builtin_memcpy(c + i * ldc + j * lanes, &acc[i][j], sizeof(V));
}

}  // namespace

#endif
