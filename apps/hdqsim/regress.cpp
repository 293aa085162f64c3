// `hdqsim regress`: run scenario files' expectations in parallel, print a
// pass/fail table with the reason of every failure, optionally JUnit XML and
// signature updates.
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <regex>

#include "apps/hdqsim/commands.h"
#include "apps/hdqsim/engines.h"
#include "models/common/output_files.h"
#include "training/grid.h"
#include "training/regress.h"

namespace hdq::cli {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> scenario_files(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& p : paths) {
    if (fs::is_directory(p)) {
      std::vector<std::string> in_dir;
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file() && e.path().extension() == ".yaml") in_dir.push_back(e.path().string());
      std::sort(in_dir.begin(), in_dir.end());
      files.insert(files.end(), in_dir.begin(), in_dir.end());
    } else if (fs::is_regular_file(p)) {
      files.push_back(p);
    } else {
      throw ConfigError(fmt::format("{}: no such scenario file or folder", p));
    }
  }
  return files;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string junit(const std::vector<RegressOutcome>& outcomes) {
  int failures = 0;
  double total = 0;
  for (const auto& o : outcomes) failures += !o.passed(), total += o.wall_s;
  std::string x = fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
                              "  <testsuite name=\"hdqsim-regress\" tests=\"{}\" failures=\"{}\" time=\"{:.3f}\">\n",
                              outcomes.size(), failures, total);
  for (const auto& o : outcomes) {
    x += fmt::format("    <testcase classname=\"scenarios.{}\" name=\"{}\" file=\"{}\" time=\"{:.3f}\"", o.label,
                     xml_escape(o.name), xml_escape(o.file), o.wall_s);
    if (o.passed()) {
      x += "/>\n";
      continue;
    }
    std::string body;
    for (const auto& f : o.failures) body += f + "\n";
    x += fmt::format(">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n", xml_escape(o.failures.front()),
                     xml_escape(body));
  }
  return x + "  </testsuite>\n</testsuites>\n";
}

}  // namespace

int run_regress(const RegressOptions& o) {
  const std::regex filter(o.filter.empty() ? ".*" : o.filter);
  std::vector<Scenario> scenarios;
  std::vector<RegressOutcome> outcomes;
  for (const auto& f : scenario_files(o.paths)) {
    Scenario s;
    try {
      s = load_scenario(f);
    } catch (const ConfigError& e) {  // a broken scenario is a failed regression, named
      outcomes.push_back({f, fs::path(f).stem().string(), "fast", {fmt::format("error: {}", e.what())}, {}, 0});
      continue;
    }
    if (!std::regex_search(s.name, filter) && !std::regex_search(f, filter)) continue;
    if (!o.label.empty() && s.label != o.label) continue;
    scenarios.push_back(std::move(s));
  }
  if (scenarios.empty() && outcomes.empty()) throw ConfigError("regress: no scenario matched");

  // Output paths are proven writable before anything runs.
  if (!o.junit.empty()) prepare_output_file(o.junit, "--junit");
  if (o.update_signatures)
    for (const auto& s : scenarios) prepare_output_file(s.file, "--update-signatures");

  // One grid cell per scenario, each writing only its own slot; no result
  // folder (a regression always runs). Scenarios that simulate the NPU run
  // one after another on this thread (SystemC has one simulation kernel per
  // process), the rest -j at a time.
  std::vector<GridCell> cells;
  for (const auto& s : scenarios) {
    const bool npu =
        std::any_of(s.expect.begin(), s.expect.end(), [](const EngineExpect& e) { return e.engine == "npu"; });
    cells.push_back({s.file, s.name, npu});
  }
  std::vector<RegressOutcome> results(scenarios.size());
  Grid("regress", std::move(cells)).run(o.jobs, [&](std::size_t i) {
    results[i] = regress_scenario(
        scenarios[i], [](const Scenario& s, const std::string& e, int t) { return make_engine(s, e, t); }, o.threads);
    return CellOutcome{nullptr, results[i].passed() ? "PASS" : "FAIL"};
  });
  outcomes.insert(outcomes.end(), results.begin(), results.end());

  int failed = 0;
  fmt::print("{:<32} {:<6} {:<6} {:>8}  {}\n", "scenario", "label", "result", "time", "reason");
  for (const auto& r : outcomes) {
    failed += !r.passed();
    fmt::print("{:<32} {:<6} {:<6} {:>7.1f}s  {}\n", r.name, r.label, r.passed() ? "pass" : "FAIL", r.wall_s,
               r.passed() ? "" : r.failures.front());
    for (std::size_t k = 1; k < r.failures.size(); ++k) fmt::print("{:<57}{}\n", "", r.failures[k]);
  }
  fmt::print("{} passed, {} failed\n", outcomes.size() - failed, failed);
  if (!o.junit.empty()) write_file_atomically(o.junit, junit(outcomes));
  if (o.update_signatures) {
    int changed = 0;
    for (std::size_t i = 0; i < scenarios.size(); ++i)
      for (const auto& line : update_signatures(scenarios[i], results[i])) fmt::print("updated {}\n", line), ++changed;
    fmt::print("{} signature(s) changed\n", changed);
  }
  return failed ? 1 : 0;
}

}  // namespace hdq::cli
