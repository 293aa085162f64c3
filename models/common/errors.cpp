#include "models/common/errors.h"

#include <fmt/format.h>

namespace hdq {

void require_in_range(const char* name, long long value, long long lo, long long hi) {
  if (value < lo || value > hi)
    throw ConfigError(fmt::format("{} = {} is outside the allowed range {}..{}", name, value, lo, hi));
}

}  // namespace hdq
