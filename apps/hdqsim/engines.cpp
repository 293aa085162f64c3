#include "apps/hdqsim/engines.h"

#include <fmt/format.h>

namespace hdq::cli {

std::unique_ptr<Engine> make_engine(const Scenario& s, const std::string& engine, int threads) {
  if (engine == "functional") return std::make_unique<FunctionalEngine>(s.hdqt, s.seed, threads);
  if (engine == "golden") return std::make_unique<GoldenEngine>(threads);
  throw ConfigError(fmt::format("--engine = '{}' is not one of: functional, golden", engine));
}

}  // namespace hdq::cli
