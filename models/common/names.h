// The spelling of every enum knob in scenario files, test vectors and on the
// command line, in one table per enum. parse_* throws ConfigError listing the
// allowed names.
#pragma once

#include <string>
#include <string_view>

#include "models/common/kernel_path.h"
#include "models/common/knobs.h"

namespace hdq {

std::string_view name(AccMode v);
std::string_view name(AccRange v);
std::string_view name(Rounding v);
std::string_view name(Signedness v);
std::string_view name(ScaleMode v);
std::string_view name(KernelPath v);

// `field` names the setting in the error message.
AccMode parse_acc_mode(std::string_view s, std::string_view field = "acc_mode");
AccRange parse_acc_range(std::string_view s, std::string_view field = "acc_range");
Rounding parse_rounding(std::string_view s, std::string_view field = "rounding");
Signedness parse_signedness(std::string_view s, std::string_view field = "signedness");
ScaleMode parse_scale_mode(std::string_view s, std::string_view field = "scale_mode");
KernelPath parse_kernel_path(std::string_view s, std::string_view field = "path");

}  // namespace hdq
