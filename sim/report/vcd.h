// A value-change dump of block activity for GTKWave: per unit a `busy` wire
// and the 32-bit id of the command it runs (its position in the step's
// queue). Times are the simulated times of the loosely-timed model, in ps;
// the commands of a run are sorted by time when the run ends.
// Written through an AtomicFile and renamed to FILE by close(), so an
// interrupted or failed run leaves no half-written dump under the requested
// name, and no temporary file either.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "models/common/output_files.h"
#include "sim/blocks/command_processor.h"

namespace hdq::npu {

class VcdWriter final : public ActivityObserver {
 public:
  explicit VcdWriter(const std::string& path);
  void command(Unit unit, std::uint32_t id, const sc_core::sc_time& start, const sc_core::sc_time& end) override;
  void end_of_run() override;
  // Finishes the dump and moves it to its name.
  void close();

 private:
  struct Change {
    std::uint64_t ps;
    bool busy;  // false sorts first: an end and a start at one time leave the unit busy
    Unit unit;
    std::uint32_t id;
    bool operator<(const Change& o) const { return std::tie(ps, busy) < std::tie(o.ps, o.busy); }
  };

  AtomicFile file_;
  std::ostream& out_;
  std::vector<Change> changes_;
  std::uint64_t now_ = 0;
  bool open_ = true;
};

}  // namespace hdq::npu
