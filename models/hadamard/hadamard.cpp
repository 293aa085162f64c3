#include "models/hadamard/hadamard.h"

#include <algorithm>
#include <bit>
#include <limits>
#include <fmt/format.h>

#include "models/common/errors.h"
#include "models/hadamard/hadamard_paths.h"

namespace hdq {

int largest_pow2_factor(int d) {
  require_in_range("hadamard dimension", d, 1, INT32_MAX);
  return d & -d;
}

HadamardPlan plan_hadamard(int d, const HadamardConfig& cfg) {
  require_in_range("hadamard dimension", d, 1, INT32_MAX);
  if (cfg.max_block) {
    require_in_range("hadamard.max_block", *cfg.max_block, 1, 1 << 30);
    if (!std::has_single_bit(static_cast<unsigned>(*cfg.max_block)))
      throw ConfigError(fmt::format("hadamard.max_block = {} is not a power of two", *cfg.max_block));
  } else if (cfg.pad) {
    throw ConfigError("hadamard.pad = true requires hadamard.max_block");
  }
  if (cfg.pad) {
    const int b = *cfg.max_block;
    return {b, (d + b - 1) / b * b};
  }
  int b = largest_pow2_factor(d);
  if (cfg.max_block) b = std::min(b, *cfg.max_block);
  return {b, d};
}

namespace {

void check_block(std::size_t length, int block) {
  if (block < 1 || !std::has_single_bit(static_cast<unsigned>(block)))
    throw ConfigError(fmt::format("hadamard block = {} is not a power of two >= 1", block));
  if (length % static_cast<std::size_t>(block) != 0)
    throw ConfigError(fmt::format("hadamard: length {} is not a multiple of block {}", length, block));
}

}  // namespace

void fwht_f32(std::span<float> x, int block) {
  check_block(x.size(), block);
  detail::fwht_f32(x.data(), x.size(), block, detail::best_hadamard_path());
}

void fwht_i32(std::span<std::int32_t> x, int block) {
  check_block(x.size(), block);
  detail::fwht_i32(x.data(), x.size(), block, detail::best_hadamard_path());
}

// ---------------------------------------------------------------------------
// The paths (hadamard_paths.h).
namespace detail {

namespace {

void require_avx2() {
  if (!cpu_supports(KernelPath::avx2)) throw ConfigError("hadamard: path avx2 requested on a CPU without AVX2");
}

}  // namespace

std::vector<KernelPath> available_hadamard_paths() {
  return runnable_paths({KernelPath::reference, KernelPath::avx2});
}

KernelPath best_hadamard_path() {
  static const KernelPath best = available_hadamard_paths().back();
  return best;
}


void fwht_f32_reference(float* x, std::size_t n, int block) {
  for (std::size_t base = 0; base < n; base += block) {
    float* v = x + base;
    for (int h = 1; h < block; h *= 2)
      for (int i = 0; i < block; i += 2 * h)
        for (int j = i; j < i + h; ++j) {
          const float u = v[j], w = v[j + h];
          v[j] = u + w;
          v[j + h] = u - w;
        }
  }
}

void fwht_i32_reference(std::int32_t* x, std::size_t n, int block) {
  for (std::size_t base = 0; base < n; base += block) {
    std::int32_t* v = x + base;
    for (int h = 1; h < block; h *= 2)
      for (int i = 0; i < block; i += 2 * h)
        for (int j = i; j < i + h; ++j) {
          std::int32_t sum, diff;
          if (__builtin_add_overflow(v[j], v[j + h], &sum) || __builtin_sub_overflow(v[j], v[j + h], &diff))
            throw NumericError(fmt::format("integer Hadamard transform overflows int32 (block {})", block));
          v[j] = sum;
          v[j + h] = diff;
        }
  }
}

void fwht_f32(float* x, std::size_t n, int block, KernelPath path) {
  if (path == KernelPath::avx2) {
    require_avx2();
    return fwht_f32_avx2(x, n, block);
  }
  fwht_f32_reference(x, n, block);
}

void fwht_i32(std::int32_t* x, std::size_t n, int block, KernelPath path) {
  if (path == KernelPath::avx2) {
    require_avx2();
    return fwht_i32_avx2(x, n, block);
  }
  fwht_i32_reference(x, n, block);
}

}  // namespace detail

namespace {

void check_matrix(std::size_t size, int rows, int cols) {
  if (rows < 0 || cols < 0 || size != static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols))
    throw ConfigError(fmt::format("hadamard: buffer of {} elements is not {} x {}", size, rows, cols));
}

}  // namespace

// Rows are contiguous and blocks never straddle rows (cols % block == 0), so
// transforming the whole buffer transforms each row.
void hadamard_rows_f32(std::span<float> x, int rows, int cols, int block) {
  check_matrix(x.size(), rows, cols);
  check_block(static_cast<std::size_t>(cols), block);
  fwht_f32(x, block);
}

void hadamard_rows_i32(std::span<std::int32_t> x, int rows, int cols, int block) {
  check_matrix(x.size(), rows, cols);
  check_block(static_cast<std::size_t>(cols), block);
  fwht_i32(x, block);
}

// Compiled for AVX2 and for the baseline, chosen at load time by the
// CPU (the contiguous row additions vectorize; integer results are the same).
// Not under ThreadSanitizer: it instruments the clones' resolver, which the
// loader runs before the sanitizer's runtime exists (a crash at start-up).
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
__attribute__((target_clones("avx2", "default")))
#endif
void hadamard_columns_i32(std::span<std::int32_t> x, int rows, int cols, int block) {
  check_matrix(x.size(), rows, cols);
  check_block(static_cast<std::size_t>(rows), block);
  // |every intermediate| <= max|x| * block: below 2^31 no butterfly can overflow.
  std::int64_t max_abs = 0;
  for (std::int32_t v : x) max_abs = std::max<std::int64_t>(max_abs, v < 0 ? -std::int64_t(v) : v);
  if (max_abs * block > std::numeric_limits<std::int32_t>::max())
    throw NumericError(fmt::format("integer Hadamard transform may overflow int32 (max |x| {}, block {})", max_abs, block));
  const std::size_t n = std::size_t(cols);
  for (int base = 0; base < rows; base += block)
    for (int h = 1; h < block; h *= 2)
      for (int i = base; i < base + block; i += 2 * h)
        for (int j = i; j < i + h; ++j) {
          std::int32_t* u = x.data() + std::size_t(j) * n;
          std::int32_t* w = u + std::size_t(h) * n;
          for (std::size_t c = 0; c < n; ++c) {
            const std::int32_t a = u[c], b = w[c];
            u[c] = a + b;
            w[c] = a - b;
          }
        }
}

}  // namespace hdq
