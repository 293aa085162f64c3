#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
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

// Appends `text` to a file of a set.
void append(const fs::path& file, const std::string& text) { std::ofstream(file, std::ios::app) << text; }

// Every problem is one line naming the file (and the line of a malformed hex line).
bool mentions(const std::vector<std::string>& errors, const std::string& piece) {
  for (const auto& e : errors)
    if (e.find(piece) != std::string::npos) return true;
  return false;
}

TEST(Vectors, ManifestListsTheSetAndRewritingRemovesStaleCases) {
  TempDir dir;
  write_vectors(dir.path, 4, 3);
  const auto m = nlohmann::json::parse(std::ifstream(dir.path / "manifest.json"));
  ASSERT_EQ(m["cases"].size(), 9u);  // 3 cases x 3 primitives
  EXPECT_EQ(m["cases"][0]["name"], "gemm_0000");
  EXPECT_EQ(m["cases"][0]["files"][1]["name"], "a.hex");
  // values = m * k of case.json (one per line).
  const auto c = read_case(dir.path / "gemm_0000");
  EXPECT_EQ(m["cases"][0]["files"][1]["values"], c["m"].get<int>() * c["k"].get<int>());
  // A smaller set in the same folder: the third case of each primitive goes.
  write_vectors(dir.path, 4, 2);
  EXPECT_FALSE(fs::exists(dir.path / "gemm_0002"));
  int checked = 0;
  EXPECT_TRUE(check_vectors(dir.path, &checked).empty());
  EXPECT_EQ(checked, 6);
}

TEST(Vectors, CheckRefusesDamagedSetsNamingFileAndLine) {
  TempDir dir;
  write_vectors(dir.path, 9, 1);
  const fs::path g = dir.path / "gemm_0000", q = dir.path / "quantize_0000";
  append(g / "a.hex", "0\n");  // one value too many
  {
    std::ifstream in(q / "q.hex");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    text[0] = 'z';  // not hex, on line 1
    std::ofstream(q / "q.hex") << text;
  }
  fs::remove(dir.path / "hadamard_0000" / "y.hex");
  append(dir.path / "extra.txt", "x");
  const auto errors = check_vectors(dir.path);
  EXPECT_TRUE(mentions(errors, (g / "a.hex").string() + ": ")) << "size differs from the manifest";
  const auto a_lines = read_case(g)["m"].get<int>() * read_case(g)["k"].get<int>();
  EXPECT_TRUE(mentions(errors, fmt::format("{}:{}: more values than the {} of case.json's m x k", (g / "a.hex").string(),
                                           a_lines + 1, a_lines)));
  EXPECT_TRUE(mentions(errors, (q / "q.hex").string() + ":1: 'z' is not a lowercase hex digit"));
  EXPECT_TRUE(mentions(errors, "hadamard_0000/y.hex: missing (manifest.json lists it)"));
  EXPECT_TRUE(mentions(errors, "extra.txt: not listed in manifest.json"));
  // No manifest: nothing else can be judged.
  fs::remove(dir.path / "manifest.json");
  EXPECT_EQ(check_vectors(dir.path), std::vector<std::string>{(dir.path / "manifest.json").string() + ": no such file"});
}

TEST(Vectors, CaseJsonIsReadStrictly) {
  TempDir dir;
  write_vectors(dir.path, 2, 1);
  const fs::path d = dir.path / "hadamard_0000";
  const auto original = read_case(d);
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto j = original;
    edit(j);
    std::ofstream(d / "case.json") << j.dump(2);
    return check_case(d);
  };
  EXPECT_TRUE(with([](nlohmann::json&) {}).empty());
  EXPECT_EQ(with([](nlohmann::json& j) { j["colour"] = "red"; }),
            std::vector<std::string>{(d / "case.json").string() + ": colour: unknown key (docs/test-vectors.md)"});
  EXPECT_EQ(with([](nlohmann::json& j) { j["rows"] = "3"; }),
            std::vector<std::string>{(d / "case.json").string() + ": rows: \"3\" is not an integer in 1..2147483647"});
  EXPECT_EQ(with([](nlohmann::json& j) { j.erase("block"); }),
            std::vector<std::string>{(d / "case.json").string() + ": block: missing"});
  EXPECT_EQ(with([](nlohmann::json& j) { j["block"] = 3; }),
            std::vector<std::string>{(d / "case.json").string() + ": block: 3 is not a power of two dividing cols = " +
                                     std::to_string(original["cols"].get<int>())});
  std::ofstream(d / "case.json") << "{\"rows\": ";
  const auto cut = check_case(d);
  ASSERT_EQ(cut.size(), 1u);
  EXPECT_NE(cut[0].find((d / "case.json").string() + ": not valid JSON: parse error at line 1"), std::string::npos) << cut[0];
  // A number beyond double (found by fuzz_vectors: the JSON library throws
  // out_of_range, not parse_error, and it escaped as an uncaught exception).
  std::ofstream(d / "case.json") << "{\"rows\": 580e959}";
  EXPECT_EQ(check_case(d), std::vector<std::string>{(d / "case.json").string() +
                                                    ": not valid JSON: number overflow parsing '580e959'"});
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
