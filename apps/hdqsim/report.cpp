#include "apps/hdqsim/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
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

}  // namespace

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
  std::vector<std::pair<double, double>> energy_vs_accuracy;
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
    if (m.contains("energy_pj_per_step") && m.at("energy_pj_per_step").is_number())
      energy_vs_accuracy.emplace_back(m.at("energy_pj_per_step").get<double>() * 1e-6, m.at("final_avg_accuracy").get<double>());
  }
  auto series_of = [&](const std::string& metric, double scale) {
    std::vector<Series> out;
    for (const auto& name : series_order) {
      if (!acc[metric].count(name)) continue;
      const auto& by_x = acc[metric][name];
      Series s{name, {}};
      for (const auto& [x, ys] : by_x) {
        double mean = 0;
        for (double y : ys) mean += y / double(ys.size());
        s.points.emplace_back(x, mean * scale);
      }
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
  if (!energy_vs_accuracy.empty()) {
    // Pareto front: lowest energy for each accuracy level (walk by energy, keep accuracy records).
    auto pts = energy_vs_accuracy;
    std::sort(pts.begin(), pts.end());
    std::vector<std::pair<double, double>> front;
    for (auto p : pts)
      if (front.empty() || p.second > front.back().second) front.push_back(p);
    html += chart("Energy per training step vs accuracy (Pareto front dashed)", "energy per step (uJ)", "accuracy (%)",
                  {Series{"points", energy_vs_accuracy}}, false, front);
    html += chart("Cycles per training step", xkey, "cycles", series_of("cycles_per_step", 1.0), true);
  } else {
    html += "<p>Energy and cycles per step come from the NPU model: run the sweep with <code>--engine npu</code>.</p>\n";
  }
  html += "</div>\n<h2>Points</h2>\n<table><tr><th>index</th>";
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
