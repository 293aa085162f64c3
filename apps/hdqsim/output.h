// Process facts reported beside a command's results.
#pragma once

namespace hdq::cli {

// Peak resident memory of this process so far, MiB (getrusage ru_maxrss).
double peak_rss_mib();

}  // namespace hdq::cli
