// The one place that turns an engine name into an Engine.
#pragma once

#include <memory>
#include <string>

#include "engines/engine.h"
#include "training/scenario.h"

namespace hdq::cli {

// ConfigError naming --engine unless `engine` is functional, golden or npu.
void check_engine_name(const std::string& engine);

// "functional" | "golden" | "npu" (the NPU model with its default config);
// check_engine_name's error otherwise.
std::unique_ptr<Engine> make_engine(const Scenario& s, const std::string& engine, int threads);

}  // namespace hdq::cli
