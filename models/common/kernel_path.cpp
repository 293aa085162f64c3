#include "models/common/kernel_path.h"

namespace hdq {

bool cpu_supports(KernelPath p) {
  switch (p) {
    case KernelPath::reference:
    case KernelPath::portable:
      return true;
#if defined(__x86_64__) || defined(__i386__)
    case KernelPath::avx2:
      return __builtin_cpu_supports("avx2");
    case KernelPath::avx512:  // every extension the AVX-512 kernels are compiled for
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    case KernelPath::avx2:
    case KernelPath::avx512:
      return false;
#endif
  }
  return false;
}

std::vector<KernelPath> runnable_paths(std::initializer_list<KernelPath> implemented) {
  std::vector<KernelPath> paths;
  for (const KernelPath p : implemented)
    if (cpu_supports(p)) paths.push_back(p);
  return paths;
}

}  // namespace hdq
