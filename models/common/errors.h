// Error types of the numeric core.
//
// ConfigError: an impossible configuration or a malformed call (bits out of
// range, shape mismatch). The message names the parameter and what is allowed.
// NumericError: a value the contract forbids reached a primitive (NaN/Inf at a
// quantizer, an unrepresentable scale). The message names the tensor.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hdq {

struct ConfigError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

struct NumericError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws ConfigError "<name> = <value> is outside <lo>..<hi>" unless lo <= value <= hi.
void require_in_range(const char* name, long long value, long long lo, long long hi);

// The largest tensor any input may ask for: 2^28 elements (1 GiB of f32).
// Every size that comes from a file or the command line (network widths,
// batches, data sets, test-vector cases) is checked against it before
// anything is allocated, so an absurd configuration is a ConfigError naming
// the field instead of std::bad_alloc.
inline constexpr std::uint64_t kMaxTensorElements = std::uint64_t{1} << 28;

// The product of `dims` (each >= 1). Throws ConfigError naming `what` and the
// dimensions ("<what>: 3 x -3: every dimension must be >= 1", "<what>: 65536 x
// 1048576 = 68719476736 elements is more than the limit of 2^28 per tensor").
std::uint64_t require_tensor_elements(std::string_view what, std::initializer_list<long long> dims);

}  // namespace hdq
