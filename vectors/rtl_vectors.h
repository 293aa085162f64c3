// Test vectors for RTL testbenches: random cases of every numeric primitive,
// written as $readmemh-compatible text (one lowercase hex value per line) plus
// a case.json that says how the case was configured. docs/test-vectors.md
// describes the layout; `hdqsim vectors` writes and checks sets.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hdq::vectors {

struct WriteSummary {
  int gemm = 0, quantize = 0, hadamard = 0;
  std::uint64_t saturating_gemms = 0;  // gemm cases whose inner or outer counters are non-zero
};

// Writes `count` cases per primitive into dir/<primitive>_<NNNN>/. Each case
// folder is built under a temporary name and renamed into place, so an
// interrupted run leaves only whole cases. Deterministic in `seed`.
WriteSummary write_vectors(const std::filesystem::path& dir, std::uint64_t seed, int count);

// Re-reads every case folder under dir and recomputes it with the reference
// code. Returns one line per mismatch or unreadable case (empty: all agree).
// `checked` receives the number of cases read.
std::vector<std::string> check_vectors(const std::filesystem::path& dir, int* checked = nullptr);

}  // namespace hdq::vectors
