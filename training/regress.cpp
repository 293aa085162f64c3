#include "training/regress.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>

#include "models/common/output_files.h"

namespace hdq {
namespace {

std::string describe(const Bound& b) {
  if (b.min && b.max) return fmt::format("in [{}, {}]", *b.min, *b.max);
  if (b.min) return fmt::format(">= {}", *b.min);
  return fmt::format("<= {}", *b.max);
}

void check(std::vector<std::string>& failures, const std::string& what, const Bound& b, double got) {
  if (!b.empty() && !b.holds(got)) failures.push_back(fmt::format("{}: expected {}, got {:.6g}", what, describe(b), got));
}

double metric(const GemmStats& s, const std::string& m) {
  return m == "inner_event_rate" ? s.inner_event_rate() : double(s.outer_overflows);
}

void check_overflow(std::vector<std::string>& failures, const std::string& prefix, const EngineExpect& e,
                    const HdqtOverflow* stats) {
  for (const auto& o : e.overflow) {
    const std::string what = fmt::format("{}.overflow.{}.{}.{}", prefix, o.layer, o.role, o.metric);
    if (!stats) {
      failures.push_back(fmt::format("{}: engine {} reports no overflow statistics", what, e.engine));
      continue;
    }
    bool matched = false;
    for (std::size_t l = 0; l < stats->layers.size(); ++l) {
      if (o.layer != "all" && o.layer != fmt::format("layer{}", l)) continue;
      for (int r = 0; r < kGemmRoles; ++r) {
        const GemmStats& st = stats->layers[l][r];
        if ((o.role != "all" && o.role != name(GemmRole(r))) || st.products == 0) continue;
        matched = true;
        check(failures, fmt::format("{} (layer{}.{})", what, l, name(GemmRole(r))), o.bound, metric(st, o.metric));
      }
    }
    if (!matched) failures.push_back(fmt::format("{}: no such layer/role in this network", what));
  }
}

}  // namespace

RegressOutcome regress_scenario(const Scenario& s, const EngineFactory& make_engine, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  RegressOutcome out{s.file, s.name, s.label, {}, {}, 0};
  try {
    if (s.expect.empty()) throw ConfigError("the scenario has no `expect` section");
    const datasets::TrainTest data = load_scenario_data(s);
    bool need_golden = false;
    for (const auto& e : s.expect) need_golden |= e.engine == "golden" || !e.gap_to_golden.empty();
    std::optional<ContinualResult> golden;
    if (need_golden) {
      const auto engine = make_engine(s, "golden", threads);
      golden = run_continual(s, data, *engine);
      out.signatures["golden"] = fmt::format("{:016x}", golden->signature);
    }
    for (const auto& e : s.expect) {
      const std::string prefix = "expect." + e.engine;
      std::optional<ContinualResult> own;
      std::unique_ptr<Engine> engine;
      if (e.engine != "golden") {
        engine = make_engine(s, e.engine, threads);
        own = run_continual(s, data, *engine);
        out.signatures[e.engine] = fmt::format("{:016x}", own->signature);
      }
      const ContinualResult& r = e.engine == "golden" ? *golden : *own;
      const std::string sig = fmt::format("{:016x}", r.signature);
      if (e.signature && *e.signature != sig)
        out.failures.push_back(fmt::format("{}.signature: expected {}, got {}", prefix,
                                           e.signature->empty() ? "(empty)" : *e.signature, sig));
      check(out.failures, prefix + ".final_avg_accuracy", e.final_avg_accuracy, r.final_avg_accuracy);
      check(out.failures, prefix + ".forgetting", e.forgetting, r.forgetting);
      if (!e.gap_to_golden.empty())
        check(out.failures, prefix + ".gap_to_golden", e.gap_to_golden, r.final_avg_accuracy - golden->final_avg_accuracy);
      check_overflow(out.failures, prefix, e, engine ? engine->overflow_stats() : nullptr);
      if (!e.cycles_per_step.empty() || !e.energy_pj_per_step.empty()) {
        const auto cost = engine ? engine->cost_per_step() : std::nullopt;
        if (!cost) {
          out.failures.push_back(fmt::format("{}: engine {} reports no cycles or energy", prefix, e.engine));
        } else {
          check(out.failures, prefix + ".cycles_per_step", e.cycles_per_step, cost->cycles);
          check(out.failures, prefix + ".energy_pj_per_step", e.energy_pj_per_step, cost->energy_pj);
        }
      }
    }
  } catch (const std::exception& ex) {
    out.failures.push_back(fmt::format("error: {}", ex.what()));
  }
  out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

std::vector<std::string> update_signatures(const Scenario& s, const RegressOutcome& o) {
  std::ifstream in(s.file);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::vector<std::string> changes;
  for (const auto& e : s.expect) {
    const auto measured = o.signatures.find(e.engine);
    if (!e.signature || measured == o.signatures.end() || *e.signature == measured->second) continue;
    std::string& line = lines.at(std::size_t(e.signature_line - 1));
    const auto key = line.find("signature:");
    if (key == std::string::npos)
      throw ConfigError(fmt::format("{}:{}: expect.{}.signature: write it as `signature: <hex>` on one line to update it",
                                    s.file, e.signature_line, e.engine));
    std::string rest = line.substr(key + 10);
    const auto comment = rest.find('#');
    const std::string trailer = comment == std::string::npos ? "" : "  " + rest.substr(comment);
    line = line.substr(0, key) + "signature: \"" + measured->second + "\"" + trailer;
    changes.push_back(fmt::format("{}: expect.{}.signature {} -> {}", s.file, e.engine,
                                  e.signature->empty() ? "(empty)" : *e.signature, measured->second));
  }
  if (!changes.empty()) {
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    write_file_atomically(s.file, text);
  }
  return changes;
}

}  // namespace hdq
