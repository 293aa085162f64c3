// The NPU config reader. Input: a config file, then after a NUL byte one
// `--set npu.key=value` override per line. Only NpuConfigError (a
// ConfigError) may come out; anything else is a finding.
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "sim/config/npu_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hdq;
  const auto parts = fuzz::split_parts(data, size, 2);
  const auto overrides = fuzz::lines(parts[1]);
  try {
    const npu::NpuConfig c = npu::parse_npu_config(parts[0], "fuzz.yaml", overrides);
    npu::defaults_note(c);
  } catch (const ConfigError&) {
  }
  return 0;
}
