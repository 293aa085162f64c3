// The one runner of grids of training runs: `hdqsim sweep` (points), `compare`
// (method x preset x seed cells) and `regress` (scenarios). Each cell has a
// stable id; cells run `jobs` at a time; with a result folder every finished
// cell's result is written atomically as its own file, so an interrupted run
// (SIGINT, SIGKILL) loses nothing finished and a rerun skips it; progress
// lines go to stderr as "[<grid>] started / finished / FAILED <cell> ...".
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/common/output_files.h"

namespace hdq {

// A JSON file; ConfigError naming the file when it is unreadable or not JSON.
nlohmann::json read_json_file(const std::filesystem::path& f);

// The folder of one grid's results:
//   DIR/<kind>.json   the grid's identity: everything that decides its cells' results
//   DIR/<cells>/<id>.json  one finished cell each
//   DIR/.lock         the advisory lock of the run using the folder
// Opening it creates the folder (proving it writable), takes its lock
// (FolderBusy while another run holds it), removes the temporary files a
// killed run left, and writes the identity or checks that the one there is
// equal: a folder holding a different grid, or anything else but no identity,
// is refused (ConfigError naming the folder and the differing fields) before
// anything in it is replaced.
class ResultFolder {
 public:
  ResultFolder(const std::filesystem::path& dir, const std::string& kind, const nlohmann::json& identity,
               const std::string& cells);
  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path cell_file(const std::string& id) const { return cells_ / (id + ".json"); }

 private:
  std::filesystem::path dir_, cells_;
  FolderLock lock_;
};

struct GridCell {
  std::string id;       // stable across runs: the stem of the cell's result file
  std::string label;    // names the cell in progress lines and errors
  bool serial = false;  // runs on the calling thread after the parallel cells (SystemC: one kernel per process)
};

// What running a cell gives: its result (written to the folder, if any) and
// the tail of its progress line.
struct CellOutcome {
  nlohmann::json result;
  std::string summary;
};

struct GridReport {
  std::map<std::string, nlohmann::json> results;  // by cell id: every finished cell, reused or run now
  std::vector<std::string> errors;                // "<label>: <what>" per failed cell, in cell order
};

class Grid {
 public:
  // Reads the cells the folder already holds (none without a folder): a
  // result file that parses and satisfies `finished` (when given) is reused,
  // any other is run again.
  Grid(std::string name, std::vector<GridCell> cells, const ResultFolder* folder = nullptr,
       const std::function<bool(const nlohmann::json&)>& finished = {});
  std::size_t reused() const { return report_.results.size(); }
  std::size_t to_run() const { return todo_.size(); }

  // Runs every cell not reused, `jobs` at a time; run_cell(index into the
  // cells) throws to fail its cell, which does not stop the others. Once per
  // Grid: the report is moved out.
  GridReport run(int jobs, const std::function<CellOutcome(std::size_t)>& run_cell);

 private:
  std::string name_;
  std::vector<GridCell> cells_;
  const ResultFolder* folder_;
  std::vector<std::size_t> todo_;
  GridReport report_;
};

}  // namespace hdq
