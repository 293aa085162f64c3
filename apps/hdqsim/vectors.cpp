#include <fmt/format.h>

#include "apps/hdqsim/commands.h"
#include "vectors/rtl_vectors.h"

namespace hdq::cli {

int run_vectors(const VectorsOptions& o) {
  if (!o.check.empty()) {
    int checked = 0;
    const auto errors = vectors::check_vectors(o.check, &checked);
    for (const auto& e : errors) fmt::print(stderr, "{}\n", e);
    fmt::print("checked {} cases in {}: {} problems\n", checked, o.check, errors.size());
    return errors.empty() && checked > 0 ? 0 : 1;
  }
  const auto s = vectors::write_vectors(o.out, o.seed, o.count);
  fmt::print("wrote {} gemm ({} with overflow events), {} quantize, {} hadamard cases to {}\n", s.gemm,
             s.saturating_gemms, s.quantize, s.hadamard, o.out);
  return 0;
}

}  // namespace hdq::cli
