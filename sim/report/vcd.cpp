#include "sim/report/vcd.h"

#include <fmt/format.h>

#include <algorithm>
#include <bitset>

namespace hdq::npu {
namespace {
// VCD identifiers: busy of unit u is '!' + 2u, its command id '!' + 2u + 1.
char busy_id(Unit u) { return char('!' + 2 * int(u)); }
char cmd_id(Unit u) { return char('!' + 2 * int(u) + 1); }
}  // namespace

VcdWriter::VcdWriter(const std::string& path) : file_(path), out_(file_.stream()) {
  out_ << "$comment hdqsim NPU block activity: busy per block and the id of its command $end\n"
       << "$timescale 1ps $end\n$scope module npu $end\n";
  for (int u = 0; u < kUnits; ++u) {
    out_ << fmt::format("$scope module {} $end\n", name(Unit(u)));
    out_ << fmt::format("$var wire 1 {} busy $end\n", busy_id(Unit(u)));
    out_ << fmt::format("$var reg 32 {} command $end\n", cmd_id(Unit(u)));
    out_ << "$upscope $end\n";
  }
  out_ << "$upscope $end\n$enddefinitions $end\n#0\n$dumpvars\n";
  for (int u = 0; u < kUnits; ++u) out_ << '0' << busy_id(Unit(u)) << "\nb0 " << cmd_id(Unit(u)) << '\n';
  out_ << "$end\n";
}

void VcdWriter::command(Unit unit, std::uint32_t id, const sc_core::sc_time& start, const sc_core::sc_time& end) {
  const auto ps = [](const sc_core::sc_time& t) { return std::uint64_t(t.to_seconds() * 1e12 + 0.5); };
  changes_.push_back({ps(start), true, unit, id});
  changes_.push_back({ps(end), false, unit, id});
}

void VcdWriter::end_of_run() {
  std::stable_sort(changes_.begin(), changes_.end());
  for (const Change& c : changes_) {
    if (c.ps > now_) {
      out_ << '#' << c.ps << '\n';
      now_ = c.ps;
    }
    out_ << (c.busy ? '1' : '0') << busy_id(c.unit) << '\n';
    if (c.busy) out_ << 'b' << std::bitset<32>(c.id).to_string() << ' ' << cmd_id(c.unit) << '\n';
  }
  changes_.clear();
}

void VcdWriter::close() {
  if (!open_) return;
  open_ = false;
  file_.commit();  // on failure the temporary file is removed and the error names the file
}

}  // namespace hdq::npu
