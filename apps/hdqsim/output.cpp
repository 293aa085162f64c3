#include "apps/hdqsim/output.h"

#include <sys/resource.h>

namespace hdq::cli {

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace hdq::cli
