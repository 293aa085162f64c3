#include "apps/hdqsim/engines.h"

#include <fmt/format.h>

#include "sim/npu_engine.h"
#include "engines/functional_engine.h"
#include "engines/golden_engine.h"

namespace hdq::cli {

void check_engine_name(const std::string& engine) {
  if (engine != "functional" && engine != "golden" && engine != "npu")
    throw ConfigError(fmt::format("--engine = '{}' is not one of: functional, golden, npu", engine));
}

std::unique_ptr<Engine> make_engine(const Scenario& s, const std::string& engine, int threads,
                                    const std::vector<std::string>& npu_overrides) {
  check_engine_name(engine);
  if (engine != "npu" && !npu_overrides.empty())
    throw ConfigError(fmt::format("--set {}: npu.<key> applies to --engine npu only", npu_overrides.front()));
  if (engine == "functional") return std::make_unique<FunctionalEngine>(s.hdqt, s.seed, threads);
  if (engine == "golden") return std::make_unique<GoldenEngine>(threads);
  return std::make_unique<npu::NpuEngine>(npu::default_npu_config(npu_overrides), s.hdqt, s.seed, s.train.sgd);
}

}  // namespace hdq::cli
