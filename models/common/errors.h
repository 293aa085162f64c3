// Error types of the numeric core.
//
// ConfigError: an impossible configuration or a malformed call (bits out of
// range, shape mismatch). The message names the parameter and what is allowed.
// NumericError: a value the contract forbids reached a primitive (NaN/Inf at a
// quantizer, an unrepresentable scale). The message names the tensor.
#pragma once

#include <stdexcept>
#include <string>

namespace hdq {

struct ConfigError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct NumericError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws ConfigError "<name> = <value> is outside <lo>..<hi>" unless lo <= value <= hi.
void require_in_range(const char* name, long long value, long long lo, long long hi);

}  // namespace hdq
