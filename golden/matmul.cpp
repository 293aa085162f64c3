// Cache-blocked, vectorized f32 C = A B with the reduction order of matmul.h.
//
// Blocking: A is packed into panels of MR rows, B into panels of NR columns
// (both k-major, zero-padded at the M/N edges; padded outputs are computed and
// dropped). The contraction is cut into blocks of KC; the partial sums of an
// MR x NR output block are carried from one k-block to the next through C
// (storing and reloading an f32 is exact), and the k-blocks run in ascending
// order, so each output still sees k = 0, 1, ..., K-1 in order. The threads
// of the context's pool take disjoint ranges of output panels (of the
// N-panels or of the M-panels, whichever are more numerous); no reduction is
// ever split.
#include "golden/matmul.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "golden/matmul_kernel.h"
#include "models/common/errors.h"
#include "models/common/names.h"

namespace hdq::golden {

namespace detail {
bool avx2_kernel_compiled();
void kernel_avx2(int kc, const float* ap, const float* bp, float* c, long ldc, bool accumulate);
}  // namespace detail

namespace {

constexpr int kKc = 256;  // k-block: a 256 x 16 B panel slice is 16 KiB (L1)
constexpr int kMaxTile = 6 * 16;

void kernel_portable(int kc, const float* ap, const float* bp, float* c, long ldc, bool accumulate) {
  typedef float v4 __attribute__((vector_size(16)));
  micro_kernel<v4, 4, 2>(kc, ap, bp, c, ldc, accumulate);  // 4 x 8 block: 8 xmm accumulators (SSE2 has 16 registers)
}

struct Kernel {
  int mr, nr;
  void (*fn)(int, const float*, const float*, float*, long, bool);
};

Kernel kernel_for(KernelPath path) {
  if (path == KernelPath::avx2) return {6, 16, detail::kernel_avx2};
  return {4, 8, kernel_portable};
}

// Pack a K x w block S(k, j) = src[k * sk + j * sj] (j < width valid, the
// rest zero) k-major into dst[k * w + j]. The inner loop runs over j, so the
// writes are contiguous and the reads come from at most w sequential streams.
template <int W>
void pack_full(const float* src, std::ptrdiff_t sk, std::ptrdiff_t sj, int K, float* dst) {
  for (int k = 0; k < K; ++k)
#pragma GCC unroll 16
    for (int j = 0; j < W; ++j) dst[std::size_t(k) * W + j] = src[k * sk + j * sj];
}

void pack_panel(const float* src, std::ptrdiff_t sk, std::ptrdiff_t sj, int K, int width, int w, float* dst) {
  if (sj == 1) {
    if (width < w) std::fill(dst, dst + std::size_t(K) * w, 0.0f);
    for (int k = 0; k < K; ++k) std::copy_n(src + k * sk, width, dst + std::size_t(k) * w);
    return;
  }
  if (width == w) {  // the unrolled copies are ~2x faster than the loop below
    if (w == 4) return pack_full<4>(src, sk, sj, K, dst);
    if (w == 6) return pack_full<6>(src, sk, sj, K, dst);
    if (w == 8) return pack_full<8>(src, sk, sj, K, dst);
    if (w == 16) return pack_full<16>(src, sk, sj, K, dst);
  }
  if (width < w) std::fill(dst, dst + std::size_t(K) * w, 0.0f);
  for (int k = 0; k < K; ++k)
    for (int j = 0; j < width; ++j) dst[std::size_t(k) * w + j] = src[k * sk + j * sj];
}

// Rows [p*mr, p*mr+mr) of A: S(k, i) = A(p*mr + i, k).
void pack_a(ConstView a, int p, int mr, float* dst) {
  const int m0 = p * mr;
  pack_panel(a.data + m0 * a.row_stride, a.col_stride, a.row_stride, a.cols, std::min(mr, a.rows - m0), mr, dst);
}

// Columns [q*nr, q*nr+nr) of B: S(k, j) = B(k, q*nr + j).
void pack_b(ConstView b, int q, int nr, float* dst) {
  const int n0 = q * nr;
  pack_panel(b.data + n0 * b.col_stride, b.row_stride, b.col_stride, b.rows, std::min(nr, b.cols - n0), nr, dst);
}

// Chunk t of `parts` contiguous chunks of [0, n).
inline int chunk(int n, int t, int parts) { return int((long long)n * t / parts); }

}  // namespace

std::vector<KernelPath> available_matmul_paths() {
  if (!detail::avx2_kernel_compiled()) return {KernelPath::portable};
  return runnable_paths({KernelPath::portable, KernelPath::avx2});
}

KernelPath best_matmul_path() {
  static const KernelPath best = available_matmul_paths().back();  // the CPU does not change
  return best;
}

namespace {
void check_shapes(const char* who, ConstView a, ConstView b, std::ptrdiff_t ldc) {
  if (a.rows < 0 || a.cols < 0 || b.rows < 0 || b.cols < 0 || a.cols != b.rows || ldc < b.cols)
    throw ConfigError(fmt::format("{}: shapes do not chain: A is {} x {}, B is {} x {}, ldc {}", who, a.rows, a.cols,
                                  b.rows, b.cols, ldc));
}
}  // namespace

void matmul_reference(ConstView a, ConstView b, float* c, std::ptrdiff_t ldc) {
  check_shapes("matmul_reference", a, b, ldc);
  for (int m = 0; m < a.rows; ++m)
    for (int n = 0; n < b.cols; ++n) {
      float acc = 0.0f;
      for (int k = 0; k < a.cols; ++k) acc = acc + a.at(m, k) * b.at(k, n);  // k ascending, 2 roundings per step
      c[m * ldc + n] = acc;
    }
}

void matmul(MatmulContext& ctx, ConstView a, ConstView b, float* c, std::ptrdiff_t ldc, KernelPath path) {
  check_shapes("matmul", a, b, ldc);
  const std::vector<KernelPath> paths = available_matmul_paths();
  if (std::find(paths.begin(), paths.end(), path) == paths.end())
    throw ConfigError(fmt::format("matmul: path {} is not available on this CPU/build", name(path)));
  const int M = a.rows, N = b.cols, K = a.cols;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int m = 0; m < M; ++m) std::fill(c + m * ldc, c + m * ldc + N, 0.0f);
    return;
  }
  const Kernel kern = kernel_for(path);
  const int mr = kern.mr, nr = kern.nr;
  const int mp = (M + mr - 1) / mr, np = (N + nr - 1) / nr;
  // The context's packing buffers, kept between calls (no page faults per
  // call); their contents never outlive the call.
  if (ctx.apack.size() < std::size_t(mp) * mr * K) ctx.apack.resize(std::size_t(mp) * mr * K);
  if (ctx.bpack.size() < std::size_t(np) * nr * K) ctx.bpack.resize(std::size_t(np) * nr * K);
  float* const apack = ctx.apack.data();
  float* const bpack = ctx.bpack.data();

  // Output panels [q0, q1) x [p0, p1), packed operands ready.
  auto compute = [&](int q0, int q1, int p0, int p1) {
    float tile[kMaxTile];
    for (int q = q0; q < q1; ++q) {
      const int n0 = q * nr, cols = std::min(nr, N - n0);
      for (int k0 = 0; k0 < K; k0 += kKc) {  // k-blocks ascending
        const int kc = std::min(kKc, K - k0);
        const float* bp = bpack + (std::size_t(q) * K + k0) * nr;
        for (int p = p0; p < p1; ++p) {
          const int m0 = p * mr, rows = std::min(mr, M - m0);
          const float* ap = apack + (std::size_t(p) * K + k0) * mr;
          if (rows == mr && cols == nr) {  // full block: the kernel works on C itself
            kern.fn(kc, ap, bp, c + m0 * ldc + n0, long(ldc), k0 > 0);
            continue;
          }
          // Edge block: through a full-size tile; the padded outputs are dropped.
          std::fill(tile, tile + mr * nr, 0.0f);
          if (k0 > 0)
            for (int i = 0; i < rows; ++i) std::copy_n(c + (m0 + i) * ldc + n0, cols, tile + i * nr);
          kern.fn(kc, ap, bp, tile, nr, true);
          for (int i = 0; i < rows; ++i) std::copy_n(tile + i * nr, cols, c + (m0 + i) * ldc + n0);
        }
      }
    }
  };

  // Each thread packs its share of the A and B panels; once all are packed,
  // each computes its share of the output panels (N-panels if there are at
  // least as many of them as M-panels, else M-panels). Packing only copies,
  // so how it is shared changes no bits.
  const int threads = std::min(ctx.pool().threads(), std::max(mp, np));
  const bool split_n = np >= mp;
  ctx.pool().run(threads, [&](int t) {
    for (int p = chunk(mp, t, threads); p < chunk(mp, t + 1, threads); ++p)
      pack_a(a, p, mr, apack + std::size_t(p) * mr * K);
    for (int q = chunk(np, t, threads); q < chunk(np, t + 1, threads); ++q)
      pack_b(b, q, nr, bpack + std::size_t(q) * nr * K);
  });
  ctx.pool().run(threads, [&](int t) {
    if (split_n)
      compute(chunk(np, t, threads), chunk(np, t + 1, threads), 0, mp);
    else
      compute(0, np, chunk(mp, t, threads), chunk(mp, t + 1, threads));
  });
}

}  // namespace hdq::golden
