#include "vectors/rtl_vectors.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "models/accumulator/gemm.h"
#include "models/common/errors.h"
#include "models/common/input_file.h"
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

void write_json(const fs::path& file, const json& j) {
  std::ofstream out(file);
  out << j.dump(2) << "\n";
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", file.string()));
}

// ------------------------------------------------------- reading a case
// A malformed or inconsistent file of a set; the message names the file
// (and the line or the key).
struct SetError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr std::uint64_t kMaxJsonBytes = 1 << 16;  // case.json, stats.json

json read_json(const fs::path& file, std::uint64_t max_bytes = kMaxJsonBytes) {
  const std::string text = rethrow_input_error<SetError>(
      [&] { return read_input_file(file, max_bytes, "a JSON file of a test-vector set"); });
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    // A syntax error or a number out of range (found by fuzz_vectors: 580e959);
    // e.what() is "[json.exception.parse_error.101] parse error at line L, column C: ...".
    const std::string what = e.what();
    throw SetError(fmt::format("{}: not valid JSON: {}", file.string(), what.substr(what.find(']') + 2)));
  }
}

// The fields of a JSON object (case.json, or one object of manifest.json at
// `where`, e.g. "cases[3]."), each checked for type and range.
class JsonFields {
 public:
  JsonFields(const fs::path& file, json j, std::string where = "") : file_(file), j_(std::move(j)), where_(std::move(where)) {
    if (!j_.is_object())
      throw SetError(fmt::format("{}: {}expected a JSON object", file_.string(), where_.empty() ? "" : where_ + ": "));
  }
  const json& at(const char* key) {
    used_.insert(key);
    if (!j_.contains(key)) fail(key, "missing");
    return j_[key];
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw SetError(fmt::format("{}: {}{}: {}", file_.string(), where_, key, what));
  }
  long long integer(const char* key, long long lo, long long hi) {
    const json& v = at(key);
    if (v.is_number_integer()) {
      const bool big = v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(hi);
      const long long x = big ? hi : v.get<long long>();
      if (!big && x >= lo && x <= hi) return x;
    }
    fail(key, fmt::format("{} is not an integer in {}..{}", v.dump(), lo, hi));
  }
  const json& array(const char* key) {
    const json& v = at(key);
    if (!v.is_array()) fail(key, "expected a JSON array");
    return v;
  }
  std::uint64_t u64(const char* key) {
    const json& v = at(key);
    if (!v.is_number_unsigned()) fail(key, fmt::format("{} is not an integer in 0..2^64-1", v.dump()));
    return v.get<std::uint64_t>();
  }
  bool boolean(const char* key) {
    const json& v = at(key);
    if (!v.is_boolean()) fail(key, fmt::format("{} is not true or false", v.dump()));
    return v.get<bool>();
  }
  std::string text(const char* key) {
    const json& v = at(key);
    if (!v.is_string()) fail(key, fmt::format("{} is not a string", v.dump()));
    return v.get<std::string>();
  }
  // A spelled enum, turned into its value by `parse` (which names the allowed ones).
  template <typename Parse>
  auto spelled(const char* key, Parse parse) {
    const std::string v = text(key);
    try {
      return parse(v, key);
    } catch (const ConfigError& e) {
      fail(key, e.what());
    }
  }
  // "0x" and the 8 lowercase hex digits of an f32's bits.
  float f32(const char* key) {
    const std::string v = text(key);
    if (v.size() != 10 || v.compare(0, 2, "0x") != 0 || v.find_first_not_of("0123456789abcdef", 2) != std::string::npos)
      fail(key, fmt::format("'{}' is not 0x and 8 lowercase hex digits", v.substr(0, 40)));
    return std::bit_cast<float>(std::uint32_t(std::stoul(v.substr(2), nullptr, 16)));
  }
  // Every key of the file must have been read.
  void reject_unknown() const {
    for (const auto& [k, v] : j_.items())
      if (!used_.count(k)) fail(k, "unknown key (docs/test-vectors.md)");
  }
  const fs::path& file() const { return file_; }

 private:
  fs::path file_;
  json j_;
  std::string where_;
  std::set<std::string> used_;
};

// The element count of a tensor described by case.json, within the tensor limit.
std::size_t elements(const JsonFields& f, const std::string& what, std::initializer_list<long long> dims) {
  try {
    return std::size_t(require_tensor_elements(what, dims));
  } catch (const ConfigError& e) {
    throw SetError(fmt::format("{}: {}", f.file().string(), e.what()));
  }
}

// Reads exactly `count` values of `bits` bits (one per line, ceil(bits / 4)
// lowercase hex digits, nothing else); sign-extends when `is_signed`.
// `promised` says where the count comes from ("case.json m x k").
std::vector<std::int64_t> read_hex(const fs::path& file, int bits, bool is_signed, std::size_t count,
                                   const std::string& promised) {
  return rethrow_input_error<SetError>([&] {
    InputLines in(file, "a hex file of a test-vector set", kMaxDataFileBytes, 64);
    const std::size_t digits = std::size_t(bits + 3) / 4;
    std::vector<std::int64_t> values;  // grows with the lines there are, whatever case.json promises
    std::string line;
    while (in.next(line)) {
      auto fail = [&](const std::string& what) {
        throw SetError(fmt::format("{}:{}: {}", file.string(), in.line(), what));
      };
      if (values.size() == count) fail(fmt::format("more values than the {} of {}", count, promised));
      const auto bad = line.find_first_not_of("0123456789abcdef");
      if (bad != std::string::npos)
        fail(fmt::format("'{}' is not a lowercase hex digit (line '{}')", line[bad] == '\r' ? std::string("\\r") : std::string(1, line[bad]),
                         line.substr(0, 20)));
      if (line.size() != digits)
        fail(fmt::format("'{}' has {} hex digits, expected {} for {}-bit values", line.substr(0, 20), line.size(), digits, bits));
      const std::uint64_t raw = std::stoull(line, nullptr, 16);
      if (bits < 64 && (raw >> bits) != 0) fail(fmt::format("0x{} does not fit in {} bits", line, bits));
      std::int64_t v = std::int64_t(raw);
      if (is_signed && bits < 64 && (raw >> (bits - 1)) & 1) v -= std::int64_t(1) << bits;
      values.push_back(v);
    }
    if (values.size() != count)
      throw SetError(fmt::format("{}: {} values, but {} promises {} (truncated?)", file.string(), values.size(), promised, count));
    return values;
  });
}

std::vector<float> read_f32_hex(const fs::path& file, std::size_t count, const std::string& promised) {
  std::vector<float> out;
  for (auto v : read_hex(file, 32, false, count, promised)) out.push_back(std::bit_cast<float>(std::uint32_t(v)));
  return out;
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

void check_gemm(const fs::path& d, JsonFields& f, bool compare, std::vector<std::string>& errors) {
  GemmCase c;
  const long long m = f.integer("m", 1, INT32_MAX), n = f.integer("n", 1, INT32_MAX), k = f.integer("k", 1, INT32_MAX);
  c.shape = {int(m), int(n), int(k)};
  c.a_bits = int(f.integer("a_bits", 2, 8));
  c.b_bits = int(f.integer("b_bits", 2, 8));
  c.a_unsigned = !f.boolean("a_signed");
  c.b_unsigned = !f.boolean("b_signed");
  c.acc.acc_bits = int(f.integer("acc_bits", 2, 32));
  c.acc.tile = int(f.integer("tile", 0, INT32_MAX));
  c.acc.mode = f.spelled("acc_mode", parse_acc_mode);
  c.acc.range = f.spelled("acc_range", parse_acc_range);
  c.acc.outer_bits = int(f.integer("outer_bits", c.acc.acc_bits, 32));
  f.text("primitive");
  f.reject_unknown();
  const std::size_t a_n = elements(f, "A (m x k)", {m, k}), b_n = elements(f, "B (k x n)", {k, n}),
                    c_n = elements(f, "C (m x n)", {m, n});
  c.a = narrow16(read_hex(d / "a.hex", c.a_bits, !c.a_unsigned, a_n, "case.json's m x k"));
  c.b = narrow16(read_hex(d / "b.hex", c.b_bits, !c.b_unsigned, b_n, "case.json's k x n"));
  const auto expected = read_hex(d / "c.hex", 32, true, c_n, "case.json's m x n");
  const json stats = read_json(d / "stats.json");
  if (!compare) return;
  std::vector<std::int32_t> out;
  const GemmStats st = run_gemm(c, out);
  if (expected != std::vector<std::int64_t>(out.begin(), out.end()))
    errors.push_back(fmt::format("{}: c.hex differs from the reference GEMM", d.string()));
  if (stats != stats_json(st))
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

void check_quant(const fs::path& d, JsonFields& f, bool compare, std::vector<std::string>& errors) {
  QuantCase c;
  c.cfg.bits = int(f.integer("bits", 2, 8));
  c.cfg.rounding = f.spelled("rounding", parse_rounding);
  c.cfg.sr_bits = int(f.integer("sr_bits", 1, 23));
  c.cfg.clip = f.f32("clip");
  c.cfg.signedness = f.spelled("signedness", parse_signedness);
  c.cfg.scale_mode = f.spelled("scale_mode", parse_scale_mode);
  c.rs = {f.u64("seed"), f.u64("stream"), f.u64("step")};
  const std::size_t count = elements(f, "x", {f.integer("count", 1, INT32_MAX)});
  const float scale = f.f32("scale");
  const bool q_signed = f.boolean("q_signed");
  f.text("primitive");
  f.reject_unknown();
  c.x = read_f32_hex(d / "x.hex", count, "case.json's count");
  const auto q = read_hex(d / "q.hex", 8, q_signed, count, "case.json's count");
  if (!compare) return;
  const QuantizedTensor t = quantize(c.x, c.cfg, c.rs, "x");
  if (std::bit_cast<std::uint32_t>(t.params.scale) != std::bit_cast<std::uint32_t>(scale))
    errors.push_back(fmt::format("{}: scale {} != reference {}", d.string(), f32_hex(scale), f32_hex(t.params.scale)));
  if (q_signed == t.params.is_unsigned)
    errors.push_back(fmt::format("{}: q_signed {} != reference {}", d.string(), q_signed, !t.params.is_unsigned));
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

void check_hadamard(const fs::path& d, JsonFields& f, bool compare, std::vector<std::string>& errors) {
  const long long rows = f.integer("rows", 1, INT32_MAX), cols = f.integer("cols", 1, INT32_MAX);
  const long long block = f.integer("block", 1, 1 << 30);
  if ((block & (block - 1)) != 0 || cols % block != 0)
    f.fail("block", fmt::format("{} is not a power of two dividing cols = {}", block, cols));
  f.text("primitive");
  f.reject_unknown();
  const std::size_t count = elements(f, "x (rows x cols)", {rows, cols});
  std::vector<float> y = read_f32_hex(d / "x.hex", count, "case.json's rows x cols");
  const auto expected = read_f32_hex(d / "y.hex", count, "case.json's rows x cols");
  if (!compare) return;
  hadamard_rows_f32(y, int(rows), int(cols), int(block));
  if (!std::equal(y.begin(), y.end(), expected.begin(),
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

// ---------------------------------------------------------------- manifest
constexpr const char* kManifest = "manifest.json";
constexpr const char* kManifestFormat = "hdqsim test vectors 1";
constexpr std::uint64_t kMaxManifestBytes = std::uint64_t{256} << 20;

const std::vector<std::string>& files_of(const std::string& primitive) {
  static const std::vector<std::string> gemm{"case.json", "a.hex", "b.hex", "c.hex", "stats.json"},
      quantize{"case.json", "x.hex", "q.hex"}, hadamard{"case.json", "x.hex", "y.hex"}, none;
  return primitive == "gemm" ? gemm : primitive == "quantize" ? quantize : primitive == "hadamard" ? hadamard : none;
}

// A case folder's name: the primitive, '_' and at least 4 decimal digits.
bool is_case_name(const std::string& name, const std::string& primitive) {
  const std::size_t p = primitive.size();
  return name.size() >= p + 5 && name.compare(0, p, primitive) == 0 && name[p] == '_' &&
         name.find_first_not_of("0123456789", p + 1) == std::string::npos;
}

// Size, FNV-1a 64 and line count of a file, read in chunks.
struct FileFacts {
  std::uint64_t bytes = 0, lines = 0, fnv = 0xcbf29ce484222325ull;  // FNV-1a 64 offset basis
};
FileFacts file_facts(const fs::path& file) {
  return rethrow_input_error<SetError>([&] {
    InputFile in(file, kMaxDataFileBytes, "a file of a test-vector set");
    FileFacts f;
    std::vector<char> buf(1 << 16);
    while (const std::size_t n = in.read(buf.data(), buf.size())) {
      for (std::size_t i = 0; i < n; ++i) {
        f.fnv = (f.fnv ^ std::uint8_t(buf[i])) * 0x100000001b3ull;  // FNV-1a 64 prime
        f.lines += buf[i] == '\n';
      }
      f.bytes += n;
    }
    return f;
  });
}

json manifest_case(const fs::path& dir, const std::string& name, const std::string& primitive) {
  json files = json::array();
  for (const auto& f : files_of(primitive)) {
    const FileFacts facts = file_facts(dir / name / f);
    json e{{"name", f}, {"bytes", facts.bytes}, {"fnv1a64", fmt::format("{:016x}", facts.fnv)}};
    if (f.ends_with(".hex")) e["values"] = facts.lines;
    files.push_back(std::move(e));
  }
  return {{"name", name}, {"primitive", primitive}, {"files", std::move(files)}};
}

struct ListedFile {
  std::string name;
  std::uint64_t bytes = 0;
  std::string fnv;
};
struct ListedCase {
  std::string name, primitive;
  std::vector<ListedFile> files;
};

std::vector<ListedCase> read_manifest(const fs::path& file) {
  JsonFields top(file, read_json(file, kMaxManifestBytes));
  if (top.text("format") != kManifestFormat)
    top.fail("format", fmt::format("expected \"{}\" (written by hdqsim vectors)", kManifestFormat));
  const long long count = top.integer("count", 1, 100000);
  top.u64("seed");
  const json& cases = top.array("cases");
  top.reject_unknown();
  if (cases.size() != std::size_t(3 * count))
    top.fail("cases", fmt::format("{} cases listed, count = {} promises {} (gemm, quantize and hadamard each)", cases.size(),
                                  count, 3 * count));
  std::vector<ListedCase> out;
  std::set<std::string> names;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string where = fmt::format("cases[{}].", i);
    JsonFields c(file, cases[i], where);
    ListedCase lc{c.text("name"), c.text("primitive"), {}};
    if (files_of(lc.primitive).empty()) c.fail("primitive", fmt::format("'{}' is not gemm, quantize or hadamard", lc.primitive));
    if (!is_case_name(lc.name, lc.primitive))
      c.fail("name", fmt::format("'{}' is not {}_ and at least 4 digits", lc.name.substr(0, 40), lc.primitive));
    if (!names.insert(lc.name).second) c.fail("name", fmt::format("'{}' is listed twice", lc.name));
    const json& files = c.array("files");
    c.reject_unknown();
    const auto& expected = files_of(lc.primitive);
    if (files.size() != expected.size())
      c.fail("files", fmt::format("{} files listed, a {} case has {}", files.size(), lc.primitive, expected.size()));
    for (std::size_t k = 0; k < files.size(); ++k) {
      JsonFields f(file, files[k], fmt::format("{}files[{}].", where, k));
      ListedFile lf{f.text("name"), f.u64("bytes"), f.text("fnv1a64")};
      if (lf.name != expected[k]) f.fail("name", fmt::format("'{}', expected {}", lf.name.substr(0, 40), expected[k]));
      if (lf.fnv.size() != 16 || lf.fnv.find_first_not_of("0123456789abcdef") != std::string::npos)
        f.fail("fnv1a64", "expected 16 lowercase hex digits");
      if (lf.name.ends_with(".hex")) f.u64("values");
      f.reject_unknown();
      lc.files.push_back(std::move(lf));
    }
    out.push_back(std::move(lc));
  }
  return out;
}

// Missing, extra, truncated or altered files of one listed case; true when
// every listed file is there (whatever its content).
bool check_listed_files(const fs::path& d, const ListedCase& c, std::vector<std::string>& errors, bool& intact) {
  std::set<std::string> listed;
  for (const auto& f : c.files) listed.insert(f.name);
  for (const auto& e : fs::directory_iterator(d))
    if (!listed.count(e.path().filename().string()))
      errors.push_back(fmt::format("{}: not listed in {} (an extra file)", e.path().string(), kManifest));
  bool complete = true;
  intact = true;
  for (const auto& f : c.files) {
    const fs::path p = d / f.name;
    std::error_code ec;
    if (!fs::exists(p, ec)) {
      errors.push_back(fmt::format("{}: missing ({} lists it)", p.string(), kManifest));
      complete = intact = false;
      continue;
    }
    try {
      const FileFacts facts = file_facts(p);
      if (facts.bytes != f.bytes) {
        errors.push_back(fmt::format("{}: {} bytes, {} lists {} ({})", p.string(), facts.bytes, kManifest, f.bytes,
                                     facts.bytes < f.bytes ? "truncated" : "longer than written"));
        intact = false;
      } else if (fmt::format("{:016x}", facts.fnv) != f.fnv) {
        errors.push_back(fmt::format("{}: content differs from {} (FNV-1a 64 {:016x}, listed {})", p.string(), kManifest,
                                     facts.fnv, f.fnv));
        intact = false;
      }
    } catch (const SetError& e) {
      errors.push_back(e.what());
      complete = intact = false;
    }
  }
  return complete;
}

// Reads one case folder and, when `compare`, recomputes it.
void check_case(const fs::path& d, bool compare, std::vector<std::string>& errors) {
  JsonFields f(d / "case.json", read_json(d / "case.json"));
  const std::string primitive = f.text("primitive");
  if (primitive == "gemm") check_gemm(d, f, compare, errors);
  else if (primitive == "quantize") check_quant(d, f, compare, errors);
  else if (primitive == "hadamard") check_hadamard(d, f, compare, errors);
  else f.fail("primitive", fmt::format("'{}' is not gemm, quantize or hadamard", primitive.substr(0, 40)));
}

// check_case, every problem as one line of `errors`; true when the case was read.
bool check_case_reporting(const fs::path& d, bool compare, std::vector<std::string>& errors) {
  try {
    check_case(d, compare, errors);
    return true;
  } catch (const SetError& e) {
    errors.push_back(e.what());  // names its file
  } catch (const std::exception& e) {
    errors.push_back(fmt::format("{}: {}", d.string(), e.what()));
  }
  return false;
}

}  // namespace

WriteSummary write_vectors(const fs::path& dir, std::uint64_t seed, int count) {
  require_in_range("count", count, 1, 100000);
  fs::create_directories(dir);
  // An old manifest goes first, so an interrupted run leaves a set that
  // --check refuses; so do case folders of an earlier, larger run.
  fs::remove(dir / kManifest);
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    for (const char* primitive : {"gemm", "quantize", "hadamard"})
      if (is_case_name(name, primitive) && std::stoll(name.substr(std::string(primitive).size() + 1)) >= count)
        fs::remove_all(e.path());
  }
  WriteSummary sum;
  json cases = json::array();
  CaseRng rng{mix64(seed)};
  for (int i = 0; i < count; ++i) {
    const GemmCase g = make_gemm_case(rng, i);
    const std::string gemm_name = fmt::format("gemm_{:04d}", i);
    write_case_atomically(dir, gemm_name, [&](const fs::path& d) {
      const GemmStats st = write_gemm(d, g);
      sum.saturating_gemms += (st.inner_events() + st.outer_overflows) > 0;
    });
    cases.push_back(manifest_case(dir, gemm_name, "gemm"));
    ++sum.gemm;
    const QuantCase q = make_quant_case(rng, i);
    const std::string quant_name = fmt::format("quantize_{:04d}", i);
    write_case_atomically(dir, quant_name, [&](const fs::path& d) { write_quant(d, q); });
    cases.push_back(manifest_case(dir, quant_name, "quantize"));
    ++sum.quantize;
    const std::string hadamard_name = fmt::format("hadamard_{:04d}", i);
    write_case_atomically(dir, hadamard_name, [&](const fs::path& d) { write_hadamard(d, rng); });
    cases.push_back(manifest_case(dir, hadamard_name, "hadamard"));
    ++sum.hadamard;
  }
  // Cases in the order written (gemm, quantize, hadamard per index).
  const json manifest{{"format", kManifestFormat}, {"seed", seed}, {"count", count}, {"cases", std::move(cases)}};
  const fs::path tmp = dir / (std::string(".tmp-") + kManifest);
  write_json(tmp, manifest);
  fs::rename(tmp, dir / kManifest);
  return sum;
}

std::vector<std::string> check_case(const fs::path& case_dir) {
  std::vector<std::string> errors;
  check_case_reporting(case_dir, true, errors);
  return errors;
}

std::vector<std::string> check_vectors(const fs::path& dir, int* checked) {
  if (checked) *checked = 0;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {fmt::format("{}: not a directory", dir.string())};
  std::vector<ListedCase> cases;
  try {
    cases = read_manifest(dir / kManifest);
  } catch (const SetError& e) {
    return {e.what()};  // without the list nothing else can be judged
  }
  std::vector<std::string> errors;
  std::set<std::string> listed;
  for (const auto& c : cases) listed.insert(c.name);
  std::vector<fs::path> extra;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != kManifest && !listed.count(e.path().filename().string())) extra.push_back(e.path());
  std::sort(extra.begin(), extra.end());
  for (const auto& p : extra) errors.push_back(fmt::format("{}: not listed in {} (an extra file or case)", p.string(), kManifest));
  int n = 0;
  for (const auto& c : cases) {
    const fs::path d = dir / c.name;
    if (!fs::is_directory(d, ec)) {
      errors.push_back(fmt::format("{}: missing ({} lists this case)", d.string(), kManifest));
      continue;
    }
    bool intact = true;
    if (!check_listed_files(d, c, errors, intact)) continue;
    // A file that differs from the manifest is already reported; its case is
    // still read (for a malformed line), but not recomputed.
    n += check_case_reporting(d, intact, errors);
  }
  if (checked) *checked = n;
  return errors;
}

}  // namespace hdq::vectors
