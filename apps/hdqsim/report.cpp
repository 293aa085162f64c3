#include "apps/hdqsim/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <map>

namespace hdq::cli {
namespace {

using json = nlohmann::json;

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // sorted by x
};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}

// Axis ticks: about five round numbers spanning [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double span = hi - lo, raw = span / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag < 2 ? 2 * mag : raw / mag < 5 ? 5 * mag : 10 * mag;
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step)
    t.push_back(std::abs(v) < 1e-9 * span ? 0.0 : v);  // no "-0" label
  return t;
}

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};

// A line chart (lines = true) or scatter; `front` draws a dashed polyline through the given points.
std::string chart(const std::string& title, const std::string& xlabel, const std::string& ylabel,
                  const std::vector<Series>& series, bool lines, const std::vector<std::pair<double, double>>& front = {}) {
  constexpr double W = 560, H = 340, L = 70, R = 150, T = 40, B = 55;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const auto& s : series)
    for (auto [x, y] : s.points) x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
  if (!(x0 <= x1)) return fmt::format("<p>{}: no data</p>\n", esc(title));
  if (x0 == x1) x0 -= 1, x1 += 1;
  if (y0 == y1) y0 -= 1, y1 += 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::string s = fmt::format("<svg width=\"{}\" height=\"{}\" class=\"plot\">\n", W, H);
  s += fmt::format("<text x=\"{}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{}</text>\n", L, esc(title));
  s += fmt::format("<path class=\"axis\" d=\"M{} {} V{} H{}\" stroke=\"#000\" fill=\"none\"/>\n", L, T, H - B, W - R);
  for (double t : ticks(x0, x1))
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">{:g}</text>\n", px(t), H - B + 16, t);
  for (double t : ticks(y0, y1))
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" font-size=\"11\" text-anchor=\"end\">{:g}</text>"
                     "<path d=\"M{} {:.1f} H{}\" stroke=\"#ddd\"/>\n", L - 6, py(t) + 4, t, L, py(t), W - R);
  s += fmt::format("<text class=\"xlabel\" x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text>\n",
                   (L + W - R) / 2, H - 12, esc(xlabel));
  s += fmt::format("<text class=\"ylabel\" transform=\"translate(16 {}) rotate(-90)\" font-size=\"12\" "
                   "text-anchor=\"middle\">{}</text>\n", (T + H - B) / 2, esc(ylabel));
  for (std::size_t i = 0; i < series.size(); ++i) {
    const char* color = kColors[i % 8];
    std::string d;
    for (auto [x, y] : series[i].points) d += fmt::format("{}{:.1f} {:.1f} ", d.empty() ? "M" : "L", px(x), py(y));
    if (lines) s += fmt::format("<path class=\"series\" d=\"{}\" stroke=\"{}\" stroke-width=\"2\" fill=\"none\"/>\n", d, color);
    for (auto [x, y] : series[i].points)
      s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\"><title>{}: ({:g}, {:g})</title></circle>\n",
                       px(x), py(y), color, esc(series[i].name), x, y);
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" "
                     "font-size=\"11\">{}</text>\n", W - R + 12, T + 16 * i, color, W - R + 26, T + 9 + 16 * i,
                     esc(series[i].name));
  }
  if (!front.empty()) {
    std::string d;
    for (auto [x, y] : front) d += fmt::format("{}{:.1f} {:.1f} ", d.empty() ? "M" : "L", px(x), py(y));
    s += fmt::format("<path class=\"pareto\" d=\"{}\" stroke=\"#000\" stroke-dasharray=\"5 4\" fill=\"none\"/>\n", d);
  }
  return s + "</svg>\n";
}

double number(const std::string& s) {
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    return used == s.size() ? v : NAN;
  } catch (const std::exception&) {
    return NAN;
  }
}

// The mean over seeds of one metric at one point (of a chart or the grid).
double seed_mean(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return sum / double(values.size());
}

// One grid point (its settings, all seeds): means of the cost and accuracy metrics.
struct GridMean {
  std::string settings;  // "key=value ..." in axis order
  std::string values;    // "value ..." in axis order (chart legends)
  double accuracy = 0, energy_pj = 0, mac_energy_pj = 0, dram_bytes = 0, cycles = 0;
  int seeds = 0;
};

// Grid points in order of first appearance; only points with energy (NPU runs).
std::vector<GridMean> grid_means(const SweepResults& r) {
  // GridMean's metrics in its order: the values over seeds of each grid point.
  constexpr const char* kMetrics[] = {"final_avg_accuracy", "energy_pj_per_step", "mac_array_energy_pj_per_step",
                                      "dram_bytes_per_step", "cycles_per_step"};
  constexpr std::size_t kN = std::size(kMetrics);
  std::vector<GridMean> out;
  std::vector<std::array<std::vector<double>, kN>> seed_values;  // parallel to out
  for (const auto& [index, p] : r.points) {
    const json& m = p.at("metrics");
    if (!m.contains("energy_pj_per_step") || !m.at("energy_pj_per_step").is_number()) continue;
    std::string settings, values;
    for (const auto& a : r.spec.axes) {
      const std::string v = p.at("settings").value(a.key, "");
      settings += fmt::format("{}{}={}", settings.empty() ? "" : " ", a.key, v);
      values += fmt::format("{}{}", values.empty() ? "" : " ", v);
    }
    auto it = std::find_if(out.begin(), out.end(), [&](const GridMean& g) { return g.settings == settings; });
    if (it == out.end()) {
      it = out.insert(out.end(), GridMean{settings, values.empty() ? "all" : values});
      seed_values.emplace_back();
    }
    auto& sv = seed_values[std::size_t(it - out.begin())];
    for (std::size_t k = 0; k < kN; ++k) sv[k].push_back(m.value(kMetrics[k], 0.0));
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& sv = seed_values[i];
    GridMean& g = out[i];
    g.accuracy = seed_mean(sv[0]), g.energy_pj = seed_mean(sv[1]), g.mac_energy_pj = seed_mean(sv[2]);
    g.dram_bytes = seed_mean(sv[3]), g.cycles = seed_mean(sv[4]);
    g.seeds = int(sv[0].size());
  }
  return out;
}

// Accuracy vs energy per step of the grid points (seed means), with the
// Pareto front: the points no other point beats on both (less energy and at
// least the accuracy). Empty without energies.
std::string energy_chart(const std::vector<GridMean>& means) {
  if (means.empty()) return {};
  std::vector<Series> series;
  std::vector<std::pair<double, double>> pts;
  for (const auto& g : means) {
    series.push_back({g.values, {{g.energy_pj * 1e-6, g.accuracy}}});
    pts.emplace_back(g.energy_pj * 1e-6, g.accuracy);
  }
  std::sort(pts.begin(), pts.end(), [](auto a, auto b) { return a.first < b.first || (a.first == b.first && a.second > b.second); });
  std::vector<std::pair<double, double>> front;
  for (auto p : pts)
    if (front.empty() || p.second > front.back().second) front.push_back(p);
  return chart("Accuracy vs energy per step (Pareto front dashed)", "energy per step (uJ)", "final avg accuracy (%)",
               series, false, front);
}

// Cost of every grid point against the first one's (seed means).
std::string cost_table(const std::vector<GridMean>& means) {
  if (means.empty()) return {};
  const GridMean& base = means.front();
  std::string html = fmt::format("<h2>Cost per training step, relative to the first grid point ({})</h2>\n"
                                 "<table><tr><th>grid point</th><th>seeds</th><th>accuracy</th><th>energy (uJ)</th>"
                                 "<th>x first</th><th>MAC array (uJ)</th><th>x first</th><th>DRAM (MB)</th>"
                                 "<th>cycles</th></tr>\n", esc(base.settings));
  for (const auto& g : means)
    html += fmt::format("<tr><td>{}</td><td>{}</td><td>{:.2f}</td><td>{:.4g}</td><td>{:.3f}</td><td>{:.4g}</td>"
                        "<td>{:.3f}</td><td>{:.4g}</td><td>{:.4g}</td></tr>\n",
                        esc(g.settings), g.seeds, g.accuracy, g.energy_pj * 1e-6, g.energy_pj / base.energy_pj,
                        g.mac_energy_pj * 1e-6, base.mac_energy_pj > 0 ? g.mac_energy_pj / base.mac_energy_pj : 0.0,
                        g.dram_bytes * 1e-6, g.cycles);
  return html + "</table>\n";
}

}  // namespace

std::string sweep_energy_svg(const SweepResults& r) {
  std::string svg = energy_chart(grid_means(r));
  if (svg.empty()) return svg;
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg.replace(0, 5, "<svg xmlns=\"http://www.w3.org/2000/svg\" ");
}

std::string sweep_report_html(const SweepResults& r) {
  const auto& axes = r.spec.axes;
  // x: the first axis with numeric values; series: the combination of the other axes.
  int xa = -1;
  for (std::size_t a = 0; a < axes.size() && xa < 0; ++a)
    if (std::all_of(axes[a].values.begin(), axes[a].values.end(), [](const std::string& v) { return !std::isnan(number(v)); }))
      xa = int(a);
  const std::string xkey = xa >= 0 ? axes[xa].key : "point";

  // metric -> series name -> x -> values over seeds
  std::map<std::string, std::map<std::string, std::map<double, std::vector<double>>>> acc;
  std::vector<std::string> series_order;  // first appearance = the axis values' order
  for (const auto& [index, p] : r.points) {
    std::string series;
    for (std::size_t a = 0; a < axes.size(); ++a)
      if (int(a) != xa) series += fmt::format("{}{}={}", series.empty() ? "" : " ", axes[a].key, p.at("settings").value(axes[a].key, ""));
    if (series.empty()) series = "all";
    if (std::find(series_order.begin(), series_order.end(), series) == series_order.end()) series_order.push_back(series);
    const double x = xa >= 0 ? number(p.at("settings").value(xkey, "")) : double(index);
    const json& m = p.at("metrics");
    for (const char* k : {"final_avg_accuracy", "fwd_inner_event_rate", "bwd_inner_event_rate", "cycles_per_step", "energy_pj_per_step"})
      if (m.contains(k) && m.at(k).is_number()) acc[k][series][x].push_back(m.at(k).get<double>());
  }
  auto series_of = [&](const std::string& metric, double scale) {
    std::vector<Series> out;
    for (const auto& name : series_order) {
      if (!acc[metric].count(name)) continue;
      const auto& by_x = acc[metric][name];
      Series s{name, {}};
      for (const auto& [x, ys] : by_x) s.points.emplace_back(x, seed_mean(ys) * scale);
      out.push_back(std::move(s));
    }
    return out;
  };

  std::string html = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>hdqsim sweep</title>\n"
                     "<style>body{font-family:sans-serif;margin:24px;max-width:1200px} .plots{display:flex;flex-wrap:wrap;gap:12px}"
                     " table{border-collapse:collapse;font-size:12px} td,th{border:1px solid #ccc;padding:2px 6px}</style>\n"
                     "</head><body>\n";
  html += fmt::format("<h1>Sweep of {}</h1>\n<p>engine {}, {} point(s) finished of the grid", esc(r.spec.scenario),
                      esc(r.spec.engine), r.points.size());
  for (const auto& a : axes) html += fmt::format("; {} in {{{}}}", esc(a.key), esc(fmt::format("{}", fmt::join(a.values, ", "))));
  html += fmt::format("; seeds 1..{}. Values are means over seeds.</p>\n<div class=\"plots\">\n", r.spec.seeds);
  html += chart("Final average accuracy", xkey, "accuracy (%)", series_of("final_avg_accuracy", 1.0), true);
  std::vector<Series> rates = series_of("fwd_inner_event_rate", 100.0);
  for (auto& s : rates) s.name = "fwd " + s.name;
  for (auto s : series_of("bwd_inner_event_rate", 100.0)) s.name = "bwd " + s.name, rates.push_back(std::move(s));
  html += chart("Inner accumulator overflow rate", xkey, "events per opportunity (%)", rates, true);
  const std::vector<GridMean> means = grid_means(r);
  if (!means.empty()) {
    html += energy_chart(means);
    html += chart("Cycles per training step", xkey, "cycles", series_of("cycles_per_step", 1.0), true);
  } else {
    html += "<p>Energy and cycles per step come from the NPU model: run the sweep with <code>--engine npu</code>.</p>\n";
  }
  html += "</div>\n" + cost_table(means);
  html += "<h2>Points</h2>\n<table><tr><th>index</th>";
  for (const auto& a : axes) html += fmt::format("<th>{}</th>", esc(a.key));
  html += "<th>seed</th><th>accuracy</th><th>fwd rate</th><th>bwd rate</th><th>signature</th></tr>\n";
  for (const auto& [index, p] : r.points) {
    html += fmt::format("<tr><td>{}</td>", index);
    for (const auto& a : axes) html += fmt::format("<td>{}</td>", esc(p.at("settings").value(a.key, "")));
    const json& m = p.at("metrics");
    html += fmt::format("<td>{}</td><td>{:.2f}</td><td>{:.4g}</td><td>{:.4g}</td><td>{}</td></tr>\n", p.at("seed").get<int>(),
                        m.value("final_avg_accuracy", 0.0), m.value("fwd_inner_event_rate", 0.0),
                        m.value("bwd_inner_event_rate", 0.0), esc(m.value("signature", "")));
  }
  return html + "</table>\n</body></html>\n";
}

}  // namespace hdq::cli
