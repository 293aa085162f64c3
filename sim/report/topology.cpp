#include "sim/report/topology.h"

#include <fmt/format.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "models/common/errors.h"

namespace hdq::npu {
namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::uint64_t positive(const std::string& v, const std::string& where, const char* field) {
  std::uint64_t x = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
  if (ec != std::errc() || p != v.data() + v.size() || x == 0 || x > (std::uint64_t{1} << 31))
    throw ConfigError(fmt::format("{}: {} = '{}' is not an integer in 1..2^31", where, field, v));
  return x;
}

}  // namespace

std::vector<TopologyGemm> parse_topology(const std::string& text, const std::string& file) {
  std::vector<TopologyGemm> layers;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (n == 1 || trim(line).empty()) continue;  // the header
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(trim(cell));
    if (!f.empty() && f.back().empty()) f.pop_back();  // the trailing comma
    const std::string where = fmt::format("{}:{}", file, n);
    if (f.size() < 4)
      throw ConfigError(fmt::format("{}: expected 'name, M, N, K', got {} field(s)", where, f.size()));
    layers.push_back({f[0], positive(f[1], where, "M"), positive(f[2], where, "N"), positive(f[3], where, "K")});
  }
  if (layers.empty()) throw ConfigError(fmt::format("{}: no layer lines after the header", file));
  return layers;
}

std::vector<TopologyGemm> load_topology(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(fmt::format("{}: cannot open the topology file", file));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_topology(text.str(), file);
}

void parse_array_size(const std::string& s, const std::string& field, int& rows, int& cols) {
  const auto x = s.find('x');
  auto part = [&](std::string_view v) {
    int r = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), r);
    if (ec != std::errc() || p != v.data() + v.size() || r < 1 || r > 4096)
      throw ConfigError(fmt::format("{} = '{}' is not RxC with R and C in 1..4096 (e.g. 16x16)", field, s));
    return r;
  };
  if (x == std::string::npos)
    throw ConfigError(fmt::format("{} = '{}' is not RxC with R and C in 1..4096 (e.g. 16x16)", field, s));
  rows = part(std::string_view(s).substr(0, x));
  cols = part(std::string_view(s).substr(x + 1));
}

Dataflow parse_dataflow(const std::string& s, const std::string& field) {
  if (s == "os") return Dataflow::output_stationary;
  if (s == "ws") return Dataflow::weight_stationary;
  throw ConfigError(fmt::format("{} = '{}' is not one of: os, ws", field, s));
}

std::string compute_report_csv(const std::vector<TopologyGemm>& layers, Dataflow d, int rows, int cols) {
  std::string out =
      "LayerID, Layer Name, M, N, K, Dataflow, Folds, Compute Cycles, Overall Util %, Mapping Efficiency %, "
      "Compute Util %,\n";
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const TopologyGemm& g = layers[i];
    const FoldGeometry fg = fold_geometry(d, g.m, g.n, g.k, rows, cols);
    const Utilization u = utilization(d, g.m, g.n, g.k, rows, cols);
    out += fmt::format("{}, {}, {}, {}, {}, {}, {}, {}, {:.6g}, {:.6g}, {:.6g},\n", i, g.name, g.m, g.n, g.k,
                       short_name(d), fg.folds(), fg.cycles(), 100 * u.overall, 100 * u.mapping_efficiency,
                       100 * u.compute);
  }
  return out;
}

}  // namespace hdq::npu
