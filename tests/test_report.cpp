// The sweep report: every plot is drawn (non-empty SVG paths) with its axis
// labels, and the Pareto front appears when energies are known.
#include <gtest/gtest.h>

#include <regex>

#include "apps/hdqsim/report.h"

namespace hdq::cli {
namespace {

SweepResults two_axis_sweep(bool with_energy) {
  SweepResults r;
  r.spec.scenario = "s.yaml";
  r.spec.axes = {{"gemm.fwd.acc_bits", {"4", "8", "12"}}, {"gemm.fwd.tile", {"8", "32"}}};
  int index = 0;
  for (int w : {4, 8, 12})
    for (int t : {8, 32}) {
      nlohmann::json m{{"final_avg_accuracy", 20.0 + 5 * w - t / 8.0}, {"fwd_inner_event_rate", 1.0 / w},
                       {"bwd_inner_event_rate", 0.5 / w}, {"signature", "0123456789abcdef"}};
      if (with_energy) m["energy_pj_per_step"] = 1e6 * w, m["cycles_per_step"] = 1000.0 * w;
      r.points[index] = {{"index", index}, {"settings", {{"gemm.fwd.acc_bits", std::to_string(w)}, {"gemm.fwd.tile", std::to_string(t)}}},
                         {"seed", 1}, {"metrics", m}};
      ++index;
    }
  return r;
}

int count(const std::string& text, const std::string& re) {
  const std::regex r(re);
  return int(std::distance(std::sregex_iterator(text.begin(), text.end(), r), std::sregex_iterator()));
}

TEST(Report, PlotsHavePathsAndAxisLabels) {
  const std::string html = sweep_report_html(two_axis_sweep(false));
  EXPECT_EQ(count(html, "<svg "), 2);  // accuracy and overflow rate; no energy without the NPU
  // One line per tile length in the accuracy plot, two groups (fwd, bwd) in the rate plot;
  // each path has three points: "M x y L x y L x y".
  EXPECT_EQ(count(html, R"(class="series" d="M[0-9.]+ [0-9.]+ L[0-9.]+ [0-9.]+ L[0-9.]+ [0-9.]+ ")"), 2 + 4);
  EXPECT_EQ(count(html, R"(class="xlabel"[^>]*>gemm\.fwd\.acc_bits<)"), 2);
  EXPECT_EQ(count(html, R"(class="ylabel"[^>]*>accuracy \(%\)<)"), 1);
  EXPECT_NE(html.find("run the sweep with <code>--engine npu</code>"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);  // self-contained: nothing to fetch
}

TEST(Report, EnergyPlotsAndParetoFrontWhenEnergyIsKnown) {
  const std::string html = sweep_report_html(two_axis_sweep(true));
  EXPECT_EQ(count(html, "<svg "), 4);
  EXPECT_EQ(count(html, R"(class="pareto" d="M)"), 1);
  EXPECT_EQ(count(html, R"(class="xlabel"[^>]*>energy per step \(uJ\)<)"), 1);
  // Energy is 1e6 * acc_bits pJ and accuracy 20 + 5 w - t / 8: at each energy the
  // tile-8 point is the better one, and accuracy rises with energy, so the
  // front is the three tile-8 points (4, 39), (8, 59), (12, 79).
  EXPECT_EQ(count(html, R"(class="pareto" d="M[0-9.]+ [0-9.]+ L[0-9.]+ [0-9.]+ L[0-9.]+ [0-9.]+ ")"), 1);
  // The cost table: the w = 12 points use 12e6 / 4e6 = 3 times the first point's energy.
  EXPECT_EQ(count(html, R"(<td>gemm\.fwd\.acc_bits=12 gemm\.fwd\.tile=32</td><td>1</td><td>[0-9.]+</td><td>12</td><td>3\.000</td>)"), 1);
}

TEST(Report, TheEnergyChartAsAStandaloneSvgFile) {
  EXPECT_EQ(sweep_energy_svg(two_axis_sweep(false)), "");  // no energies: no file
  const std::string svg = sweep_energy_svg(two_axis_sweep(true));
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_EQ(count(svg, R"(<svg xmlns="http://www\.w3\.org/2000/svg" width=)"), 1);
  EXPECT_EQ(count(svg, R"(class="pareto")"), 1);
}

}  // namespace
}  // namespace hdq::cli
