#include "training/grid.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "models/common/errors.h"

namespace hdq {

namespace fs = std::filesystem;
using json = nlohmann::json;

json read_json_file(const fs::path& f) {
  std::ifstream in(f);
  if (!in) throw ConfigError(fmt::format("{}: cannot read", f.string()));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw ConfigError(fmt::format("{}: not valid JSON: {}", f.string(), e.what()));
  }
}

namespace {

const fs::path& prepared(const fs::path& dir) {
  prepare_output_dir(dir, "--out");
  return dir;
}

// The top-level fields in which two identities differ.
std::vector<std::string> differing_fields(const json& a, const json& b) {
  if (!a.is_object() || !b.is_object()) return {"(the whole file)"};
  std::set<std::string> keys;
  for (const auto& [k, v] : a.items()) keys.insert(k);
  for (const auto& [k, v] : b.items()) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys)
    if (!a.contains(k) || !b.contains(k) || a.at(k) != b.at(k)) out.push_back(k);
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

ResultFolder::ResultFolder(const fs::path& dir, const std::string& kind, const json& identity, const std::string& cells)
    : dir_(prepared(dir)), cells_(dir / cells), lock_(dir_) {
  remove_temporary_files(dir_);
  const fs::path f = dir_ / (kind + ".json");
  if (fs::exists(f)) {
    const json there = read_json_file(f);
    if (there != identity)
      throw ConfigError(fmt::format("{} holds the results of a different {} (see {}; it differs in {}); use another "
                                    "--out folder",
                                    dir_.string(), kind, f.string(), fmt::join(differing_fields(there, identity), ", ")));
  } else {
    for (const auto& e : fs::directory_iterator(dir_))
      if (e.path().filename() != ".lock")
        throw ConfigError(fmt::format("{} is not empty and holds no {}: not the folder of a {}; use another (or an "
                                      "empty) --out folder",
                                      dir_.string(), f.filename().string(), kind));
    write_file_atomically(f, identity.dump(2) + "\n");
  }
  fs::create_directories(cells_);
  remove_temporary_files(cells_);
}

Grid::Grid(std::string name, std::vector<GridCell> cells, const ResultFolder* folder,
           const std::function<bool(const json&)>& finished)
    : name_(std::move(name)), cells_(std::move(cells)), folder_(folder) {
  std::set<std::string> ids;
  for (const auto& c : cells_)
    if (!ids.insert(c.id).second) throw std::logic_error(fmt::format("{}: two cells with the id {}", name_, c.id));
  for (std::size_t i = 0; i < cells_.size(); ++i) {
    const GridCell& c = cells_[i];
    if (folder_) {
      const fs::path f = folder_->cell_file(c.id);
      std::ifstream in(f);
      if (in) {
        const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
        if (!j.is_discarded() && (!finished || finished(j))) {
          fmt::print(stderr, "[{}] skipped {}: finished earlier ({})\n", name_, c.label, f.string());
          report_.results[c.id] = j;
          continue;
        }
        fmt::print(stderr, "[{}] {} is not a finished cell; running it again\n", name_, f.string());
      }
    }
    todo_.push_back(i);
  }
}

GridReport Grid::run(int jobs, const std::function<CellOutcome(std::size_t)>& run_cell) {
  const std::size_t total = todo_.size();
  const auto t0 = std::chrono::steady_clock::now();
  std::mutex lock;  // guards report_, errors, finished and the progress lines
  std::vector<std::pair<std::size_t, std::string>> errors;  // (cell index, message)
  std::size_t finished = 0;
  const auto one = [&](std::size_t k) {
    const std::size_t i = todo_[k];
    const GridCell& c = cells_[i];
    {
      std::lock_guard g(lock);
      fmt::print(stderr, "[{}] started  {} ({} of {} to run)\n", name_, c.label, k + 1, total);
    }
    const auto t1 = std::chrono::steady_clock::now();
    std::string line;
    try {
      CellOutcome out = run_cell(i);
      if (folder_) write_file_atomically(folder_->cell_file(c.id), out.result.dump(2) + "\n");
      line = fmt::format("finished {} in {:.2f}s: {}", c.label, seconds_since(t1), out.summary);
      std::lock_guard g(lock);
      report_.results[c.id] = std::move(out.result);
    } catch (const std::exception& e) {
      line = fmt::format("FAILED   {} after {:.2f}s: {}", c.label, seconds_since(t1), e.what());
      std::lock_guard g(lock);
      errors.emplace_back(i, fmt::format("{}: {}", c.label, e.what()));
    }
    std::lock_guard g(lock);
    const std::size_t d = ++finished;
    const double el = seconds_since(t0);
    fmt::print(stderr, "[{}] {}  [{}/{}, {:.0f}s elapsed, ~{:.0f}s left]\n", name_, line, d, total, el,
               el / double(d) * double(total - d));
  };

  std::vector<std::size_t> pooled, serial;  // positions in todo_
  for (std::size_t k = 0; k < total; ++k) (cells_[todo_[k]].serial ? serial : pooled).push_back(k);
  std::atomic<std::size_t> next{0};
  const auto worker = [&] {
    for (std::size_t n; (n = next++) < pooled.size();) one(pooled[n]);
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < std::min(std::size_t(std::max(1, jobs)), pooled.size()); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  for (std::size_t k : serial) one(k);

  std::sort(errors.begin(), errors.end());
  for (auto& [i, e] : errors) report_.errors.push_back(std::move(e));
  return std::move(report_);
}

}  // namespace hdq
