// `hdqsim vectors --check` on a case folder. Input: up to six parts separated
// by NUL bytes: case.json, then the case's files in docs/test-vectors.md's
// order (gemm: a.hex, b.hex, c.hex, stats.json; quantize: x.hex, q.hex;
// hadamard: x.hex, y.hex), then a manifest.json. The folder is named for the
// primitive its case.json mentions. check_case() and check_vectors() report
// problems as lines; no exception may come out of them.
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "vectors/rtl_vectors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fz = hdq::fuzz;
  const auto parts = fz::split_parts(data, size, 6);
  const std::string& json = parts[0];
  const bool quantize = json.find("\"quantize\"") != std::string::npos;
  const bool hadamard = !quantize && json.find("\"hadamard\"") != std::string::npos;
  const auto set = fz::scratch("vectors", true);  // no case folder of an earlier input may stay
  const auto dir = set / (quantize ? "quantize_0000" : hadamard ? "hadamard_0000" : "gemm_0000");
  std::filesystem::create_directories(dir);
  const std::vector<const char*> names = quantize ? std::vector<const char*>{"x.hex", "q.hex"}
                                         : hadamard ? std::vector<const char*>{"x.hex", "y.hex"}
                                                    : std::vector<const char*>{"a.hex", "b.hex", "c.hex", "stats.json"};
  fz::write_file(dir / "case.json", json);
  for (std::size_t i = 0; i < names.size(); ++i) fz::write_file(dir / names[i], parts[i + 1]);
  fz::write_file(set / "manifest.json", parts[5]);
  hdq::vectors::check_case(dir);
  hdq::vectors::check_vectors(set);
  return 0;
}
