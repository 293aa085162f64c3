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

// Writes `count` cases per primitive into dir/<primitive>_<NNNN>/, then
// dir/manifest.json (the case list, and per file its size, FNV-1a 64 and,
// for hex files, its number of values). Each case folder is built under a
// temporary name and renamed into place, and the manifest is removed first
// and written last, so an interrupted run leaves a set that the check
// refuses. Case folders of an earlier run with a larger count are removed.
// Deterministic in `seed`.
WriteSummary write_vectors(const std::filesystem::path& dir, std::uint64_t seed, int count);

// Checks a set against its manifest and recomputes every case with the
// reference code. Returns one line per problem (empty: all agree), each
// naming the file and, for a malformed line, the line: a missing manifest,
// case or file; an entry the manifest does not list; a file whose size or
// hash differs from the manifest; a malformed case.json (types, ranges,
// unknown keys), a malformed hex line, or a hex file with another number of
// values than case.json implies; results that differ from the reference.
// `checked` receives the number of cases read.
std::vector<std::string> check_vectors(const std::filesystem::path& dir, int* checked = nullptr);

// One case folder alone (no manifest): read strictly, then recomputed.
std::vector<std::string> check_case(const std::filesystem::path& case_dir);

}  // namespace hdq::vectors
