// The self-contained HTML report of a sweep: inline SVG plots, no scripts,
// nothing fetched from the network.
#pragma once

#include <string>

#include "training/sweep.h"

namespace hdq::cli {

std::string sweep_report_html(const SweepResults& r);

}  // namespace hdq::cli
