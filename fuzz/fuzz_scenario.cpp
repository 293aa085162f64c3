// The scenario reader and the --set parser. Input: a scenario file, then
// after a NUL byte one `--set key=value` override per line. The reader may
// only refuse with its own error (ScenarioError, a ConfigError); any other
// exception, a crash or a sanitizer report is a finding. An accepted input is
// read again from a file, with its canonical form (the cache key of compare).
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "training/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hdq;
  const auto parts = fuzz::split_parts(data, size, 2);
  const auto overrides = fuzz::lines(parts[1]);
  try {
    parse_scenario(parts[0], "fuzz.yaml", overrides);
  } catch (const ConfigError&) {
    return 0;
  }
  const auto file = fuzz::scratch("scenario") / "fuzz.yaml";
  fuzz::write_file(file, parts[0]);
  load_scenario(file.string(), overrides);
  effective_scenario(file.string(), overrides);
  return 0;
}
