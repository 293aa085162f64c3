#include "vectors/rtl_vectors.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "models/accumulator/gemm.h"
#include "models/common/errors.h"
#include "models/common/names.h"
#include "models/hadamard/hadamard.h"
#include "models/quantizer/quantizer.h"

namespace hdq::vectors {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Case generator: SplitMix64 over a counter, so a set depends only on its seed
// (std:: distributions differ between standard libraries).
struct CaseRng {
  std::uint64_t state;
  std::uint64_t next() { return mix64(state += 0x9e3779b97f4a7c15ULL); }
  int uniform(int lo, int hi) { return lo + int(next() % std::uint64_t(hi - lo + 1)); }  // [lo, hi]
  bool chance(int percent) { return uniform(0, 99) < percent; }
  float unit() { return float(next() >> 40) * 0x1p-24f; }  // [0, 1)
  template <typename T>
  T pick(std::initializer_list<T> xs) { return *(xs.begin() + uniform(0, int(xs.size()) - 1)); }
};

std::string f32_hex(float f) { return fmt::format("0x{:08x}", std::bit_cast<std::uint32_t>(f)); }
float f32_from_hex(const std::string& s) { return std::bit_cast<float>(std::uint32_t(std::stoul(s, nullptr, 16))); }

// One value per line, the low `bits` bits as ceil(bits / 4) lowercase hex digits.
template <typename T>
void write_hex(const fs::path& file, const std::vector<T>& values, int bits) {
  std::ofstream out(file);
  const int digits = (bits + 3) / 4;
  const std::uint64_t mask = bits == 64 ? ~0ULL : (1ULL << bits) - 1;
  for (T v : values) {
    std::uint64_t raw;
    if constexpr (std::is_same_v<T, float>)
      raw = std::bit_cast<std::uint32_t>(v);
    else
      raw = static_cast<std::uint64_t>(static_cast<std::int64_t>(v));
    out << fmt::format("{:0{}x}\n", raw & mask, digits);
  }
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", file.string()));
}

// Reads `bits`-bit patterns; sign-extends when `is_signed`.
std::vector<std::int64_t> read_hex(const fs::path& file, int bits, bool is_signed) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", file.string()));
  std::vector<std::int64_t> values;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::uint64_t raw = std::stoull(line, nullptr, 16);
    std::int64_t v = std::int64_t(raw);
    if (is_signed && bits < 64 && (raw >> (bits - 1)) & 1) v -= std::int64_t(1) << bits;
    values.push_back(v);
  }
  return values;
}

std::vector<float> read_f32_hex(const fs::path& file) {
  std::vector<float> out;
  for (auto v : read_hex(file, 32, false)) out.push_back(std::bit_cast<float>(std::uint32_t(v)));
  return out;
}

void write_json(const fs::path& file, const json& j) {
  std::ofstream out(file);
  out << j.dump(2) << "\n";
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", file.string()));
}

json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error(fmt::format("cannot read {}", file.string()));
  return json::parse(in);
}

// ---------------------------------------------------------------- gemm
struct GemmCase {
  GemmShape shape;
  int a_bits, b_bits;
  bool a_unsigned, b_unsigned;
  AccumulatorConfig acc;
  std::vector<std::int16_t> a, b;
};

std::vector<std::int16_t> random_operand(CaseRng& rng, std::size_t n, int bits, bool is_unsigned, bool stress) {
  const int lo = is_unsigned ? 0 : -(1 << (bits - 1)), hi = is_unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
  std::vector<std::int16_t> v(n);
  for (auto& x : v) {
    // Stress cases sit at the extremes with one sign, so sums run away fast.
    x = std::int16_t(stress ? (rng.chance(85) ? hi : rng.uniform(lo, hi)) : rng.uniform(lo, hi));
  }
  return v;
}

GemmCase make_gemm_case(CaseRng& rng, int index) {
  GemmCase c;
  c.shape = {rng.uniform(1, 12), rng.uniform(1, 12), rng.uniform(1, 80)};
  c.a_bits = rng.pick({2, 3, 4, 4, 4, 5, 8});
  c.b_bits = rng.pick({2, 4, 4, 4, 6, 8});
  c.a_unsigned = rng.chance(25);
  c.b_unsigned = rng.chance(10);
  c.acc.mode = std::array{AccMode::exact, AccMode::clamp_tile, AccMode::saturate, AccMode::wrap}[index % 4];
  c.acc.range = rng.chance(50) ? AccRange::full : AccRange::symmetric;
  c.acc.acc_bits = rng.chance(70) ? rng.pick({4, 6, 8, 8, 8, 12, 16}) : rng.uniform(2, 32);
  c.acc.tile = rng.pick({0, 1, 3, 8, 16, 32, rng.uniform(1, 80)});
  c.acc.outer_bits = rng.chance(80) ? 32 : rng.uniform(c.acc.acc_bits, 32);
  const bool stress = rng.chance(40);
  c.a = random_operand(rng, std::size_t(c.shape.m) * c.shape.k, c.a_bits, c.a_unsigned, stress);
  c.b = random_operand(rng, std::size_t(c.shape.k) * c.shape.n, c.b_bits, c.b_unsigned, stress);
  return c;
}

json gemm_case_json(const GemmCase& c) {
  return {{"primitive", "gemm"},       {"m", c.shape.m},
          {"n", c.shape.n},            {"k", c.shape.k},
          {"a_bits", c.a_bits},        {"a_signed", !c.a_unsigned},
          {"b_bits", c.b_bits},        {"b_signed", !c.b_unsigned},
          {"tile", c.acc.tile},        {"acc_bits", c.acc.acc_bits},
          {"acc_mode", name(c.acc.mode)}, {"acc_range", name(c.acc.range)},
          {"outer_bits", c.acc.outer_bits}};
}

GemmStats run_gemm(const GemmCase& c, std::vector<std::int32_t>& out) {
  out.assign(std::size_t(c.shape.m) * c.shape.n, 0);
  GemmContext ctx;  // one thread, the reference path: no workspace is kept
  return gemm(ctx, c.shape, {c.a, c.a_bits, c.a_unsigned}, {c.b, c.b_bits, c.b_unsigned}, c.acc, out,
              KernelPath::reference);
}

json stats_json(const GemmStats& s) {
  return {{"inner_events", s.inner_events()},   {"outer_overflows", s.outer_overflows},
          {"max_abs_tile_sum", s.max_abs_tile_sum}, {"products", s.products},
          {"clamped_tiles", s.clamped_tiles},   {"changed_steps", s.changed_steps}};
}

GemmStats write_gemm(const fs::path& d, const GemmCase& c) {
  std::vector<std::int32_t> out;
  const GemmStats st = run_gemm(c, out);
  write_json(d / "case.json", gemm_case_json(c));
  write_hex(d / "a.hex", c.a, c.a_bits);
  write_hex(d / "b.hex", c.b, c.b_bits);
  write_hex(d / "c.hex", out, 32);
  write_json(d / "stats.json", stats_json(st));
  return st;
}

std::vector<std::int16_t> narrow16(const std::vector<std::int64_t>& v) { return {v.begin(), v.end()}; }

void check_gemm(const fs::path& d, const json& j, std::vector<std::string>& errors) {
  GemmCase c;
  c.shape = {j.at("m"), j.at("n"), j.at("k")};
  c.a_bits = j.at("a_bits");
  c.b_bits = j.at("b_bits");
  c.a_unsigned = !j.at("a_signed").get<bool>();
  c.b_unsigned = !j.at("b_signed").get<bool>();
  c.acc = {j.at("acc_bits"), j.at("tile"), parse_acc_mode(j.at("acc_mode").get<std::string>()),
           parse_acc_range(j.at("acc_range").get<std::string>()), j.at("outer_bits")};
  c.a = narrow16(read_hex(d / "a.hex", c.a_bits, !c.a_unsigned));
  c.b = narrow16(read_hex(d / "b.hex", c.b_bits, !c.b_unsigned));
  std::vector<std::int32_t> out;
  const GemmStats st = run_gemm(c, out);
  const auto expected = read_hex(d / "c.hex", 32, true);
  if (expected != std::vector<std::int64_t>(out.begin(), out.end()))
    errors.push_back(fmt::format("{}: c.hex differs from the reference GEMM", d.string()));
  if (read_json(d / "stats.json") != stats_json(st))
    errors.push_back(fmt::format("{}: stats.json differs from the reference GEMM", d.string()));
}

// ---------------------------------------------------------------- quantize
struct QuantCase {
  QuantConfig cfg;
  RandomStream rs;
  std::vector<float> x;
};

QuantCase make_quant_case(CaseRng& rng, int index) {
  QuantCase c;
  c.cfg.bits = rng.uniform(2, 8);
  c.cfg.rounding = index % 2 ? Rounding::stochastic : Rounding::nearest;
  c.cfg.sr_bits = rng.chance(50) ? 16 : rng.uniform(1, 23);
  c.cfg.clip = rng.pick({1.0f, 1.0f, 0.975f, 0.5f + 0.5f * rng.unit()});
  c.cfg.signedness = rng.pick({Signedness::automatic, Signedness::automatic, Signedness::is_signed,
                               Signedness::is_unsigned});
  c.cfg.scale_mode = rng.chance(70) ? ScaleMode::f32 : ScaleMode::pow2;
  c.rs = {rng.next(), std::uint64_t(rng.uniform(0, 63)), std::uint64_t(rng.uniform(0, 100000))};
  c.x.resize(std::size_t(rng.uniform(1, 256)));
  const int kind = rng.uniform(0, 9);
  const float magnitude = std::ldexp(1.0f, rng.uniform(-20, 20));
  const float qmax = float((1 << (c.cfg.bits - 1)) - 1);
  for (auto& v : c.x) {
    if (kind == 0) v = 0.0f;                                             // all-zero tensor
    else if (kind == 1) v = float(rng.uniform(-2 * int(qmax), 2 * int(qmax))) * 0.5f;  // ties at s = 1
    else if (kind == 2) v = magnitude * rng.unit();                      // non-negative (after ReLU)
    else v = magnitude * (2.0f * rng.unit() - 1.0f);
  }
  if (kind == 1) c.x[0] = qmax;  // pins s = 1 for a signed tensor so the halves are exact ties
  return c;
}

json quant_case_json(const QuantCase& c, const QuantParams& p) {
  return {{"primitive", "quantize"},
          {"bits", c.cfg.bits},
          {"rounding", name(c.cfg.rounding)},
          {"sr_bits", c.cfg.sr_bits},
          {"clip", f32_hex(c.cfg.clip)},
          {"signedness", name(c.cfg.signedness)},
          {"scale_mode", name(c.cfg.scale_mode)},
          {"seed", c.rs.seed},
          {"stream", c.rs.stream},
          {"step", c.rs.step},
          {"count", c.x.size()},
          {"scale", f32_hex(p.scale)},
          {"q_signed", !p.is_unsigned}};
}

void write_quant(const fs::path& d, const QuantCase& c) {
  const QuantizedTensor t = quantize(c.x, c.cfg, c.rs, "x");
  write_json(d / "case.json", quant_case_json(c, t.params));
  write_hex(d / "x.hex", c.x, 32);
  write_hex(d / "q.hex", t.q, 8);
}

void check_quant(const fs::path& d, const json& j, std::vector<std::string>& errors) {
  QuantCase c;
  c.cfg.bits = j.at("bits");
  c.cfg.rounding = parse_rounding(j.at("rounding").get<std::string>());
  c.cfg.sr_bits = j.at("sr_bits");
  c.cfg.clip = f32_from_hex(j.at("clip"));
  c.cfg.signedness = parse_signedness(j.at("signedness").get<std::string>());
  c.cfg.scale_mode = parse_scale_mode(j.at("scale_mode").get<std::string>());
  c.rs = {j.at("seed"), j.at("stream"), j.at("step")};
  c.x = read_f32_hex(d / "x.hex");
  const QuantizedTensor t = quantize(c.x, c.cfg, c.rs, "x");
  if (f32_hex(t.params.scale) != j.at("scale").get<std::string>())
    errors.push_back(fmt::format("{}: scale {} != reference {}", d.string(), j.at("scale").get<std::string>(),
                                 f32_hex(t.params.scale)));
  const auto q = read_hex(d / "q.hex", 8, !t.params.is_unsigned);
  if (q != std::vector<std::int64_t>(t.q.begin(), t.q.end()))
    errors.push_back(fmt::format("{}: q.hex differs from the reference quantizer", d.string()));
}

// ---------------------------------------------------------------- hadamard
void write_hadamard(const fs::path& d, CaseRng& rng) {
  const int block = 1 << rng.uniform(0, 6);
  const int rows = rng.uniform(1, 8), cols = block * rng.uniform(1, 4);
  std::vector<float> x(std::size_t(rows) * cols);
  const float magnitude = std::ldexp(1.0f, rng.uniform(-10, 30));
  for (auto& v : x) v = magnitude * (2.0f * rng.unit() - 1.0f);
  std::vector<float> y = x;
  hadamard_rows_f32(y, rows, cols, block);
  write_json(d / "case.json", {{"primitive", "hadamard"}, {"rows", rows}, {"cols", cols}, {"block", block}});
  write_hex(d / "x.hex", x, 32);
  write_hex(d / "y.hex", y, 32);
}

void check_hadamard(const fs::path& d, const json& j, std::vector<std::string>& errors) {
  std::vector<float> y = read_f32_hex(d / "x.hex");
  hadamard_rows_f32(y, j.at("rows"), j.at("cols"), j.at("block"));
  const auto expected = read_f32_hex(d / "y.hex");
  if (expected.size() != y.size() ||
      !std::equal(y.begin(), y.end(), expected.begin(),
                  [](float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }))
    errors.push_back(fmt::format("{}: y.hex differs from the reference FWHT", d.string()));
}

// Builds a case folder under a temporary name, then renames it into place.
template <typename Fill>
void write_case_atomically(const fs::path& dir, const std::string& name, Fill fill) {
  const fs::path tmp = dir / (".tmp-" + name), final_dir = dir / name;
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  fill(tmp);
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
}

}  // namespace

WriteSummary write_vectors(const fs::path& dir, std::uint64_t seed, int count) {
  require_in_range("count", count, 1, 100000);
  fs::create_directories(dir);
  WriteSummary sum;
  CaseRng rng{mix64(seed)};
  for (int i = 0; i < count; ++i) {
    const GemmCase g = make_gemm_case(rng, i);
    write_case_atomically(dir, fmt::format("gemm_{:04d}", i), [&](const fs::path& d) {
      const GemmStats st = write_gemm(d, g);
      sum.saturating_gemms += (st.inner_events() + st.outer_overflows) > 0;
    });
    ++sum.gemm;
    const QuantCase q = make_quant_case(rng, i);
    write_case_atomically(dir, fmt::format("quantize_{:04d}", i), [&](const fs::path& d) { write_quant(d, q); });
    ++sum.quantize;
    write_case_atomically(dir, fmt::format("hadamard_{:04d}", i), [&](const fs::path& d) { write_hadamard(d, rng); });
    ++sum.hadamard;
  }
  return sum;
}

std::vector<std::string> check_vectors(const fs::path& dir, int* checked) {
  std::vector<std::string> errors;
  int n = 0;
  if (!fs::is_directory(dir)) return {fmt::format("{}: not a directory", dir.string())};
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && fs::exists(e.path() / "case.json")) cases.push_back(e.path());
  std::sort(cases.begin(), cases.end());
  for (const auto& d : cases) {
    try {
      const json j = read_json(d / "case.json");
      const std::string primitive = j.at("primitive");
      if (primitive == "gemm") check_gemm(d, j, errors);
      else if (primitive == "quantize") check_quant(d, j, errors);
      else if (primitive == "hadamard") check_hadamard(d, j, errors);
      else errors.push_back(fmt::format("{}: unknown primitive '{}'", d.string(), primitive));
      ++n;
    } catch (const std::exception& e) {
      errors.push_back(fmt::format("{}: {}", d.string(), e.what()));
    }
  }
  if (checked) *checked = n;
  return errors;
}

}  // namespace hdq::vectors
