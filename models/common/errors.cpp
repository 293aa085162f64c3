#include "models/common/errors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace hdq {

void require_in_range(const char* name, long long value, long long lo, long long hi) {
  if (value < lo || value > hi)
    throw ConfigError(fmt::format("{} = {} is outside the allowed range {}..{}", name, value, lo, hi));
}

std::uint64_t require_tensor_elements(std::string_view what, std::initializer_list<long long> dims) {
  std::uint64_t n = 1;
  bool over = false;
  for (long long d : dims) {
    if (d < 1) throw ConfigError(fmt::format("{}: {}: every dimension must be >= 1", what, fmt::join(dims, " x ")));
    // n <= 2^28 and d < 2^63 before the test, so the product cannot wrap once it is known to stay small.
    over = over || std::uint64_t(d) > kMaxTensorElements || n * std::uint64_t(d) > kMaxTensorElements;
    if (!over) n *= std::uint64_t(d);
  }
  if (over) {
    // The exact product in long double for the message (it may exceed 2^64).
    long double p = 1;
    for (long long d : dims) p *= static_cast<long double>(d);
    throw ConfigError(fmt::format("{}: {} = {:.0f} elements is more than the limit of 2^28 = {} per tensor", what,
                                  fmt::join(dims, " x "), static_cast<double>(p), kMaxTensorElements));
  }
  return n;
}

}  // namespace hdq
