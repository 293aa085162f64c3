// Regression runs: a scenario's `expect` section checked against what its
// engines produce. Every failed expectation is one line naming it, with the
// expected and the measured value.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "training/continual.h"
#include "training/scenario.h"

namespace hdq {

struct RegressOutcome {
  std::string file, name, label;
  std::vector<std::string> failures;             // empty: passed
  std::map<std::string, std::string> signatures;  // engine -> measured signature (hex)
  double wall_s = 0;
  bool passed() const { return failures.empty(); }
};

// Makes the engine named in an expectation ("functional", "golden", "npu").
using EngineFactory = std::function<std::unique_ptr<Engine>(const Scenario&, const std::string& engine, int threads)>;

// Runs every engine the scenario expects something of (and the golden model
// when a gap_to_golden bound needs it) and checks the expectations. Errors
// while loading data or running are failures of the scenario, not exceptions.
RegressOutcome regress_scenario(const Scenario& s, const EngineFactory& make_engine, int threads);

// Rewrites the `signature:` values of the scenario file whose measured
// signature differs from the expectation; returns one line per change.
std::vector<std::string> update_signatures(const Scenario& s, const RegressOutcome& o);

}  // namespace hdq
