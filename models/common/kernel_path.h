// One path type for every kernel family (integer GEMM, quantizer, Hadamard
// transform, the golden model's f32 matmul) and the one CPU-feature probe.
//
// Each family implements some of the paths and offers `available_*_paths()`
// (the paths it implements that this CPU runs, slowest first) and
// `best_*_path()` (the last of them). Every path of a family gives the same
// bits; `reference` is the family's definition where it has one.
#pragma once

#include <initializer_list>
#include <vector>

namespace hdq {

enum class KernelPath {
  reference,  // scalar loops: the definition
  portable,   // plain C++, baseline ISA (the compiler may vectorize it)
  avx2,       // x86-64 AVX2 kernels
  avx512,     // x86-64 AVX-512 F + BW + VL kernels (they also use AVX2)
};

// Spelled by name() and parse_kernel_path() in models/common/names.h.

// Whether this CPU runs the path's instructions; reference and portable always.
// The one place that asks the CPU (__builtin_cpu_supports), so a test or a
// user can trust that every family sees the same answer.
bool cpu_supports(KernelPath p);

// The paths of `implemented` (given slowest first) that this CPU runs.
std::vector<KernelPath> runnable_paths(std::initializer_list<KernelPath> implemented);

}  // namespace hdq
