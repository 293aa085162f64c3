// Verilator testbench: replays every GEMM case of a folder written by
// `hdqsim vectors` through the verilated rtl/mac_array.sv and compares C and
// the statistics, bit for bit, with the files.
//
//   gemm_vectors_tb DIR [--verbose]
//
// Prints each failing case's first mismatching element (i, j, expected, got)
// and the cycle it was drained, or else the first differing statistic, or a
// fold that did not take K + 2R + C - 2 cycles; then a coverage line (what the
// set exercised, read from the files) and, last, exactly
// "N cases, M mismatches" (M = cases with at least one difference).
// Exit 0 only when every GEMM case matches (and there was at least one).
//
// This is the RTL side of the check, so it is deliberately independent of
// hdqsim: it reads case.json, the .hex files and stats.json itself
// (docs/test-vectors.md) and shares no code with the reference or its checker.
// The array's port protocol (feed, fill, drain) is rtl/driver/mac_array_driver.h,
// which the NPU model's RTL MAC array (mac_array.impl: rtl) drives too.
//
// One verilated model serves every case: widths are the array's parameters at
// their largest (8-bit operand ports, W <= 32, Wo <= 32, 48-bit exact tile
// sums), and mode, range, W, Wo, operand signedness, K and t are run-time
// configuration inputs, so a vector set with hundreds of different
// configurations needs one Verilator build, not one per configuration. The
// arithmetic is the same pe.sv that rtl/pe_synth.sv ties to constants for the
// per-configuration area (scripts/synth_area.sh). Operands narrower than 8
// bits are fed sign- or zero-extended to the 8-bit ports, which is how a
// narrower operand reaches a wider multiplier.
#include <verilated.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "Vmac_array.h"
#include "rtl/driver/mac_array_driver.h"

#ifndef TB_R
#error "TB_R (array rows) must match the verilated mac_array's R"
#endif
#ifndef TB_C
#error "TB_C (array columns) must match the verilated mac_array's C"
#endif

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// The verilated array's parameters (rtl/CMakeLists.txt passes the same values
// to Verilator and here). The default build has the largest widths and runs
// every case; a narrower build (TB_SKIP_UNSUPPORTED = 1) skips the cases it
// cannot hold instead of failing them.
#ifndef TB_PORT_BITS
#define TB_PORT_BITS 8
#endif
#ifndef TB_ACC_BITS
#define TB_ACC_BITS 32
#endif
#ifndef TB_OUT_BITS
#define TB_OUT_BITS 32
#endif
#ifndef TB_EXACT_BITS
#define TB_EXACT_BITS 48
#endif
#ifndef TB_SKIP_UNSUPPORTED
#define TB_SKIP_UNSUPPORTED 0
#endif
constexpr int kR = TB_R, kC = TB_C;
constexpr int kPortBits = TB_PORT_BITS;    // A_BITS = B_BITS
constexpr int kMaxAccBits = TB_ACC_BITS;   // ACC_BITS
constexpr int kMaxOuterBits = TB_OUT_BITS; // OUT_BITS
constexpr int kExactBits = TB_EXACT_BITS;  // EXACT_BITS
using hdq::rtl::sign_extend;

// ---------------------------------------------------------------- case files
struct GemmCase {
  std::string name;
  int m = 0, n = 0, k = 0;
  int a_bits = 0, b_bits = 0;
  bool a_signed = true, b_signed = true;
  int tile = 0, acc_bits = 0, outer_bits = 0;
  std::string mode, range;
  std::vector<std::int64_t> a, b, c;
  json stats;
};

std::vector<std::int64_t> read_hex(const fs::path& file, int bits, bool is_signed) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::vector<std::int64_t> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::uint64_t raw = std::stoull(line, nullptr, 16);
    out.push_back(is_signed ? sign_extend(raw, bits) : std::int64_t(raw));
  }
  return out;
}

json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  return json::parse(in);
}

GemmCase load_case(const fs::path& dir, const json& j) {
  GemmCase c;
  c.name = dir.filename().string();
  c.m = j.at("m");
  c.n = j.at("n");
  c.k = j.at("k");
  c.a_bits = j.at("a_bits");
  c.b_bits = j.at("b_bits");
  c.a_signed = j.at("a_signed");
  c.b_signed = j.at("b_signed");
  c.tile = j.at("tile");
  c.acc_bits = j.at("acc_bits");
  c.outer_bits = j.at("outer_bits");
  c.mode = j.at("acc_mode");
  c.range = j.at("acc_range");
  c.a = read_hex(dir / "a.hex", c.a_bits, c.a_signed);
  c.b = read_hex(dir / "b.hex", c.b_bits, c.b_signed);
  c.c = read_hex(dir / "c.hex", 32, true);
  c.stats = read_json(dir / "stats.json");
  if (c.m < 1 || c.n < 1 || c.k < 1) throw std::runtime_error("empty shape");
  if (c.a.size() != std::size_t(c.m) * c.k || c.b.size() != std::size_t(c.k) * c.n ||
      c.c.size() != std::size_t(c.m) * c.n)
    throw std::runtime_error("a.hex/b.hex/c.hex sizes do not match m, n, k");
  return c;
}

int mode_code(const std::string& mode) {
  static const std::map<std::string, int> codes{{"exact", 0}, {"clamp_tile", 1}, {"saturate", 2}, {"wrap", 3}};
  const auto it = codes.find(mode);
  if (it == codes.end()) throw std::runtime_error("unknown acc_mode '" + mode + "'");
  return it->second;
}

// ---------------------------------------------------------------- the array
using Array = hdq::rtl::MacArrayDriver<Vmac_array>;

// "" when the verilated array can run the case, else why not.
std::string unsupported(const GemmCase& gc) {
  if (gc.a_bits > kPortBits || gc.b_bits > kPortBits || gc.acc_bits < 2 || gc.acc_bits > kMaxAccBits ||
      gc.outer_bits < gc.acc_bits || gc.outer_bits > kMaxOuterBits)
    return "configuration outside what the verilated array supports (operands <= " + std::to_string(kPortBits) +
           " bits, 2 <= W <= Wo, W <= " + std::to_string(kMaxAccBits) + ", Wo <= " + std::to_string(kMaxOuterBits) +
           ")";
  const auto largest = [](int bits, bool is_signed) {
    return is_signed ? std::uint64_t{1} << (bits - 1) : (std::uint64_t{1} << bits) - 1;
  };
  const std::uint64_t t = (gc.tile == 0 || gc.tile > gc.k) ? std::uint64_t(gc.k) : std::uint64_t(gc.tile);
  if (t * largest(gc.a_bits, gc.a_signed) * largest(gc.b_bits, gc.b_signed) >= (std::uint64_t{1} << (kExactBits - 1)))
    return "a tile sum may not fit the " + std::to_string(kExactBits) + "-bit exact tile register";
  return "";
}

// Runs one case on the array; returns "" when C and every statistic match,
// otherwise a description of the first difference.
std::string run_case(Array& arr, const GemmCase& gc, std::uint64_t* cycles) {
  if (const std::string why = unsupported(gc); !why.empty()) return why;
  if (gc.range != "full" && gc.range != "symmetric") throw std::runtime_error("unknown acc_range '" + gc.range + "'");
  const std::uint64_t start = arr.cycle();
  arr.begin({gc.a_signed, gc.b_signed, mode_code(gc.mode), gc.range == "full", gc.acc_bits, gc.outer_bits,
             std::uint32_t(gc.k), std::uint32_t(gc.tile)});

  std::string first_error;
  for (int fi = 0; fi * kR < gc.m; ++fi)
    for (int fj = 0; fj * kC < gc.n; ++fj) {
      const int i0 = fi * kR, j0 = fj * kC;
      const int waited = arr.fold(
          std::min(kR, gc.m - i0), std::min(kC, gc.n - j0),
          [&](int r, std::uint32_t k) { return gc.a[std::size_t(i0 + r) * gc.k + k]; },
          [&](std::uint32_t k, int c) { return gc.b[std::size_t(k) * gc.n + j0 + c]; },
          [&](int r, int c, std::int64_t v, std::uint64_t cycle) {
            const int i = i0 + r, j = j0 + c;
            const std::int64_t want = gc.c[std::size_t(i) * gc.n + j];
            if (v != want && first_error.empty()) {
              std::ostringstream os;
              os << "C[" << i << "][" << j << "] expected " << want << " got " << v << " (fold " << fi << "," << fj
                 << ", PE " << r << "," << c << ", drained at cycle " << cycle - start << " of the case)";
              first_error = os.str();
            }
          });
      if (waited < 0) return "fold_done never came";
      if (waited != kR + kC - 2 && first_error.empty())
        first_error = "fold_done after " + std::to_string(gc.k + waited) + " cycles, expected K + R + C - 2 = " +
                      std::to_string(gc.k + kR + kC - 2);
    }
  if (cycles) *cycles = arr.cycle() - start;
  if (!first_error.empty()) return first_error;
  // Timing: every fold takes K + 2R + C - 2 cycles (feed, fill, drain): the
  // cost model's output-stationary fold (sim/cost/dataflow.h, SCALE-Sim's
  // K + R + C - 2, drain overlapped with the next fold) plus the R drain
  // cycles this array does not overlap; plus the reset cycle.
  const std::uint64_t folds = std::uint64_t((gc.m + kR - 1) / kR) * std::uint64_t((gc.n + kC - 1) / kC);
  const std::uint64_t want_cycles = 1 + folds * std::uint64_t(gc.k + 2 * kR + kC - 2);
  if (arr.cycle() - start != want_cycles)
    return "took " + std::to_string(arr.cycle() - start) + " cycles, expected 1 + folds * (K + 2R + C - 2) = " +
           std::to_string(want_cycles);

  const hdq::rtl::ArrayCounters n = arr.counters();
  const std::pair<const char*, std::uint64_t> stats[] = {
      {"products", n.products},
      {"inner_events", n.inner_events},
      {"clamped_tiles", n.clamped_tiles},
      {"changed_steps", n.changed_steps},
      {"outer_overflows", n.outer_overflows},
      {"max_abs_tile_sum", n.max_abs_tile_sum},
  };
  for (const auto& [key, value] : stats) {
    if (!gc.stats.contains(key)) continue;
    const std::uint64_t want = gc.stats.at(key).get<std::uint64_t>();
    if (value != want)
      return std::string("statistic ") + key + " expected " + std::to_string(want) + " got " + std::to_string(value) +
             " (read at cycle " + std::to_string(arr.cycle() - start) + " of the case)";
  }
  return "";
}

// What a vector set exercises (from the files, not the RTL).
struct Coverage {
  std::set<int> saturate_w, wrap_w, clamp_w;
  int outer = 0, min_operand = 0, full = 0, symmetric = 0;
  void add(const GemmCase& c) {
    const auto u = [&](const char* key) { return c.stats.value(key, std::uint64_t{0}); };
    if (c.mode == "saturate" && u("changed_steps") > 0) saturate_w.insert(c.acc_bits);
    if (c.mode == "wrap" && u("changed_steps") > 0) wrap_w.insert(c.acc_bits);
    if (c.mode == "clamp_tile" && u("clamped_tiles") > 0) clamp_w.insert(c.acc_bits);
    outer += u("outer_overflows") > 0;
    const auto has_min = [](const std::vector<std::int64_t>& v, int bits, bool is_signed) {
      return is_signed && std::find(v.begin(), v.end(), -(std::int64_t{1} << (bits - 1))) != v.end();
    };
    min_operand += has_min(c.a, c.a_bits, c.a_signed) || has_min(c.b, c.b_bits, c.b_signed);
    (c.range == "full" ? full : symmetric) += (c.mode == "saturate" || c.mode == "clamp_tile");
  }
  static std::string list(const std::set<int>& s) {
    std::string out;
    for (int w : s) {
      if (!out.empty()) out += ',';
      out += std::to_string(w);
    }
    return out.empty() ? "-" : out;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: %s DIR [--verbose]\n  replays the gemm cases of an `hdqsim vectors` folder\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];
  const bool verbose = argc > 2 && std::string(argv[2]) == "--verbose";
  if (!fs::is_directory(dir)) {
    std::printf("%s: not a directory\n0 cases, 0 mismatches\n", dir.string().c_str());
    return 1;
  }
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && fs::exists(e.path() / "case.json")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());

  Array arr(kR, kC, kPortBits, kMaxOuterBits);
  int cases = 0, mismatches = 0, skipped = 0;
  std::uint64_t total_cycles = 0;
  Coverage cov;
  for (const auto& d : dirs) {
    std::string error;
    std::uint64_t cycles = 0;
    try {
      const json j = read_json(d / "case.json");
      if (j.value("primitive", "") != "gemm") continue;  // quantize, hadamard: not this RTL
      const GemmCase gc = load_case(d, j);
      if (TB_SKIP_UNSUPPORTED && !unsupported(gc).empty()) {
        ++skipped;
        continue;
      }
      cov.add(gc);
      error = run_case(arr, gc, &cycles);
      total_cycles += cycles;
      if (verbose)
        std::printf("%s: %dx%dx%d t=%d W=%d %s %s Wo=%d: %s (%llu cycles)\n", gc.name.c_str(), gc.m, gc.n, gc.k,
                    gc.tile, gc.acc_bits, gc.mode.c_str(), gc.range.c_str(), gc.outer_bits,
                    error.empty() ? "ok" : "MISMATCH", (unsigned long long)cycles);
    } catch (const std::exception& e) {
      error = std::string("unreadable case: ") + e.what();
    }
    ++cases;
    if (!error.empty()) {
      ++mismatches;
      std::printf("MISMATCH %s: %s\n", d.filename().string().c_str(), error.c_str());
    }
  }
  std::printf("array %dx%d (operands %d bits, W <= %d, Wo <= %d, exact tile sums %d bits), %llu cycles\n", kR, kC,
              kPortBits, kMaxAccBits, kMaxOuterBits, kExactBits, (unsigned long long)total_cycles);
  if (skipped) std::printf("skipped %d gemm cases wider than this build\n", skipped);
  std::printf("coverage: saturating W=%s; wrapping W=%s; clamping W=%s; outer overflows in %d cases; "
              "an operand at -2^(bits-1) in %d cases; saturate/clamp_tile cases full %d, symmetric %d\n",
              Coverage::list(cov.saturate_w).c_str(), Coverage::list(cov.wrap_w).c_str(),
              Coverage::list(cov.clamp_w).c_str(), cov.outer, cov.min_operand, cov.full, cov.symmetric);
  std::printf("%d cases, %d mismatches\n", cases, mismatches);
  return (cases > 0 && mismatches == 0) ? 0 : 1;
}
