// The f32 matrix product of the golden model: C = A B with one fixed,
// thread-count- and ISA-independent reduction order. Written independently of
// the integer GEMM (models/accumulator/): no quantization, no narrow
// accumulators, plain f32.
#pragma once

#include <cstddef>
#include <vector>

#include "models/common/kernel_path.h"
#include "models/common/thread_pool.h"
#include "models/nn/mlp.h"

namespace hdq::golden {

// Read-only strided view of an f32 matrix: element (r, c) is
// data[r * row_stride + c * col_stride]. Lets the layers pass W^T, G^T, ...
// without copying.
struct ConstView {
  const float* data = nullptr;
  int rows = 0, cols = 0;
  std::ptrdiff_t row_stride = 0, col_stride = 1;
  float at(int r, int c) const { return data[r * row_stride + c * col_stride]; }
};

inline ConstView view(const Matrix& m) { return {m.v.data(), m.rows, m.cols, m.cols, 1}; }
inline ConstView transposed(const Matrix& m) { return {m.v.data(), m.cols, m.rows, 1, m.cols}; }

// The micro-kernel's paths (models/common/kernel_path.h): portable, and avx2
// when it is compiled in and the CPU has it. The result bits do not depend on
// the choice (see matmul()); matmul_reference() below is the definition.
std::vector<KernelPath> available_matmul_paths();
KernelPath best_matmul_path();  // the last of available_matmul_paths()

// What matmul() computes with: the thread pool its output blocks are split
// over (threads: 1..256, ConfigError otherwise) and the packing buffers it
// reuses from call to call (no allocation once they have grown). Owned by the
// caller and passed down; one calling thread at a time.
class MatmulContext {
 public:
  explicit MatmulContext(int threads = 1) : pool_(threads) {}
  ThreadPool& pool() { return pool_; }
  std::vector<float> apack, bpack;  // matmul.cpp: the packed panels of A and B

 private:
  ThreadPool pool_;
};

// C = A B, A is M x K, B is K x N, C is M x N row-major with row stride ldc
// (ldc >= N); C is overwritten.
//
// Reduction order (the definition, matmul_reference() spells it out):
//   c[m][n] = (...((0 + a[m][0]*b[0][n]) + a[m][1]*b[1][n]) + ...) + a[m][K-1]*b[K-1][n]
// k ascending, every product and every add rounded once to f32 (the build uses
// -ffp-contract=off and no -mfma, so no FMA). K = 0 gives +0.
// The fast path vectorizes across independent outputs n and splits the output
// blocks (never a reduction) between ctx's threads, so the bits are the same
// for every thread count and every KernelPath.
void matmul(MatmulContext& ctx, ConstView a, ConstView b, float* c, std::ptrdiff_t ldc,
            KernelPath path = best_matmul_path());

// The definition above as a plain triple loop (slow; for tests).
void matmul_reference(ConstView a, ConstView b, float* c, std::ptrdiff_t ldc);

}  // namespace hdq::golden
