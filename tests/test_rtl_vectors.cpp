#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "vectors/rtl_vectors.h"

namespace hdq::vectors {
namespace {
namespace fs = std::filesystem;

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("hdqsim-vectors-" + std::to_string(::getpid()));
  TempDir() { fs::remove_all(path); }
  ~TempDir() { fs::remove_all(path); }
};

nlohmann::json read_case(const fs::path& d) {
  std::ifstream in(d / "case.json");
  return nlohmann::json::parse(in);
}

TEST(Vectors, WrittenSetRereadsAndVerifiesWithTheReference) {
  TempDir dir;
  const auto summary = write_vectors(dir.path, 7, 24);
  EXPECT_EQ(summary.gemm, 24);
  EXPECT_GT(summary.saturating_gemms, 0u);  // heavily saturating cases are part of every set
  int checked = 0;
  const auto errors = check_vectors(dir.path, &checked);
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(checked, 3 * 24);

  // Coverage: every accumulator mode, both ranges and both roundings occur.
  std::set<std::string> modes, ranges, roundings;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    if (!e.is_directory()) continue;  // manifest.json
    const auto j = read_case(e.path());
    if (j["primitive"] == "gemm") modes.insert(j["acc_mode"]), ranges.insert(j["acc_range"]);
    if (j["primitive"] == "quantize") roundings.insert(j["rounding"]);
  }
  EXPECT_EQ(modes, (std::set<std::string>{"clamp_tile", "exact", "saturate", "wrap"}));
  EXPECT_EQ(ranges.size(), 2u);
  EXPECT_EQ(roundings.size(), 2u);
}

// The check is not vacuous: one flipped output value is reported.
TEST(Vectors, CheckReportsACorruptedOutput) {
  TempDir dir;
  write_vectors(dir.path, 3, 2);
  const fs::path c = dir.path / "gemm_0000" / "c.hex";
  std::ifstream in(c);
  std::string first, rest((std::istreambuf_iterator<char>(in >> first)), {});
  in.close();
  std::ofstream(c) << (first == "00000001" ? "00000002" : "00000001") << rest;
  const auto errors = check_vectors(dir.path);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("gemm_0000"), std::string::npos);
  EXPECT_NE(errors[0].find("c.hex"), std::string::npos);
}

TEST(Vectors, SameSeedSameFiles) {
  TempDir a, b;
  b.path += "-b";
  fs::remove_all(b.path);
  write_vectors(a.path, 11, 3);
  write_vectors(b.path, 11, 3);
  for (const auto& e : fs::recursive_directory_iterator(a.path)) {
    if (!e.is_regular_file()) continue;
    const fs::path other = b.path / fs::relative(e.path(), a.path);
    std::ifstream x(e.path()), y(other);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(x), {}), std::string(std::istreambuf_iterator<char>(y), {}))
        << e.path();
  }
}

}  // namespace
}  // namespace hdq::vectors
