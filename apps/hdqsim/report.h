// The self-contained HTML report of a sweep: inline SVG plots, no scripts,
// nothing fetched from the network.
#pragma once

#include <string>

#include "training/sweep.h"

namespace hdq::cli {

std::string sweep_report_html(const SweepResults& r);

// The accuracy vs energy chart of report.html as a standalone SVG file
// (energy.svg, for a README); empty when no point has energies (not the NPU).
std::string sweep_energy_svg(const SweepResults& r);

}  // namespace hdq::cli
