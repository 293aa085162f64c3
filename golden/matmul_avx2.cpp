// The AVX2 build of the golden micro-kernel (this file is compiled with -mavx2,
// never -mfma; it is only called when the CPU has AVX2). 8 lanes = 8
// independent outputs, so the bits equal the baseline kernel's.
#include "golden/matmul_kernel.h"

namespace hdq::golden::detail {

#if defined(__AVX2__)
bool avx2_kernel_compiled() { return true; }

void kernel_avx2(int kc, const float* ap, const float* bp, float* c, long ldc, bool accumulate) {
  typedef float v8 __attribute__((vector_size(32)));
  micro_kernel<v8, 6, 2>(kc, ap, bp, c, ldc, accumulate);  // 6 x 16 block: 12 ymm accumulators
}
#else
bool avx2_kernel_compiled() { return false; }
void kernel_avx2(int, const float*, const float*, float*, long, bool) {}  // never called: avx2 is reported unavailable
#endif

}  // namespace hdq::golden::detail
