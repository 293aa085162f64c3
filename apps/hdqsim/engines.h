// The one place that turns an engine name into an Engine.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engines/engine.h"
#include "training/scenario.h"

namespace hdq::cli {

// ConfigError naming --engine unless `engine` is functional, golden or npu.
void check_engine_name(const std::string& engine);

// "functional" | "golden" | "npu" (the NPU model: the default config with
// `npu_overrides`, "npu.<key>=value" as on the command line);
// check_engine_name's error otherwise, and a ConfigError when NPU overrides
// are given to another engine.
std::unique_ptr<Engine> make_engine(const Scenario& s, const std::string& engine, int threads,
                                    const std::vector<std::string>& npu_overrides = {});

}  // namespace hdq::cli
