// The grid runner and the one atomic writer (training/grid.h,
// models/common/output_files.h): files appear complete or not at all and no
// temporary file outlives an error; a folder is used by one run at a time
// and holds one grid; finished cells are reused, failed ones reported.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "models/common/errors.h"
#include "models/common/output_files.h"
#include "training/grid.h"
#include "training/sweep.h"

namespace hdq {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class GridTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           fmt::format("hdq-test-grid-{}-{}", ::getpid(), ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<std::string> names(const fs::path& d) const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(d)) out.push_back(fs::relative(e.path(), d).string());
    std::sort(out.begin(), out.end());
    return out;
  }
  static std::string read(const fs::path& f) {
    std::ifstream in(f);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  fs::path dir_;
};

TEST_F(GridTest, AtomicFileAppearsOnlyOnCommit) {
  {
    AtomicFile f(dir_ / "a.txt");
    f.stream() << "hello";
    EXPECT_FALSE(fs::exists(dir_ / "a.txt"));  // still under its temporary name
    f.commit();
  }
  EXPECT_EQ(read(dir_ / "a.txt"), "hello");
  {
    AtomicFile f(dir_ / "b.txt");
    f.stream() << "never committed";  // an error path: the object goes out of scope
  }
  EXPECT_EQ(names(dir_), std::vector<std::string>{"a.txt"});  // no b.txt, no temporary file
}

TEST_F(GridTest, AFailedRenameRemovesTheTemporaryFile) {
  fs::create_directories(dir_ / "taken" / "x");  // a non-empty folder where the file should go
  EXPECT_THROW(write_file_atomically(dir_ / "taken", "data"), std::runtime_error);
  EXPECT_EQ(names(dir_), (std::vector<std::string>{"taken", "taken/x"}));
}

TEST_F(GridTest, OutputFoldersAreProvenWritable) {
  write_file_atomically(dir_ / "file", "");
  try {
    prepare_output_dir(dir_ / "file", "--out");
    FAIL() << "a regular file was accepted as a folder";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--out " + (dir_ / "file").string() + ": exists and is not a folder"),
              std::string::npos);
  }
  EXPECT_THROW(prepare_output_dir(dir_ / "file" / "sub", "--out"), ConfigError);
  EXPECT_THROW(prepare_output_file(dir_, "--junit"), ConfigError);  // a folder where a file should go
  prepare_output_dir(dir_ / "new" / "deep", "--out");
  EXPECT_EQ(names(dir_), (std::vector<std::string>{"file", "new", "new/deep"}));  // the probe is gone
}

TEST_F(GridTest, ASecondLockOnAFolderIsRefusedNamingTheHolder) {
  {
    FolderLock first(dir_);
    try {
      FolderLock second(dir_);
      FAIL() << "two locks on one folder";
    } catch (const FolderBusy& e) {
      EXPECT_NE(std::string(e.what()).find(fmt::format("pid {}", ::getpid())), std::string::npos) << e.what();
    }
  }
  FolderLock again(dir_);  // released with the first one
}

TEST_F(GridTest, AResultFolderHoldsOneGrid) {
  const json identity{{"a", 1}, {"b", "x"}};
  { ResultFolder f(dir_ / "r", "kind", identity, "cells"); }
  EXPECT_EQ(read(dir_ / "r" / "kind.json"), identity.dump(2) + "\n");
  write_file_atomically(dir_ / "r" / "cells" / "c.json", "{}");
  std::ofstream(dir_ / "r" / "cells" / "c.json.tmp.1.0") << "left by a killed run";
  { ResultFolder f(dir_ / "r", "kind", identity, "cells"); }  // the same grid: accepted
  EXPECT_FALSE(fs::exists(dir_ / "r" / "cells" / "c.json.tmp.1.0"));
  try {
    ResultFolder f(dir_ / "r", "kind", json{{"a", 1}, {"b", "y"}}, "cells");
    FAIL() << "a different grid was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("holds the results of a different kind"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("it differs in b)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ResultFolder(dir_ / "r", "other", identity, "cells"), ConfigError);  // not empty, no other.json
}

TEST_F(GridTest, FinishedCellsAreReusedAndFailuresReportedInCellOrder) {
  const ResultFolder folder(dir_, "g", json{{"grid", 1}}, "cells");
  write_file_atomically(folder.cell_file("c0"), R"({"done": true})");
  write_file_atomically(folder.cell_file("c1"), R"({"done": tr)");    // not JSON: run again
  write_file_atomically(folder.cell_file("c2"), R"({"done": false})");  // not finished: run again
  std::vector<GridCell> cells;
  for (int i = 0; i < 5; ++i) cells.push_back({fmt::format("c{}", i), fmt::format("cell {}", i)});
  Grid grid("test", cells, &folder, [](const json& j) { return j.value("done", false); });
  EXPECT_EQ(grid.reused(), 1u);
  EXPECT_EQ(grid.to_run(), 4u);
  std::mutex m;
  std::set<std::size_t> ran;
  const GridReport r = grid.run(3, [&](std::size_t i) {
    {
      std::lock_guard g(m);
      ran.insert(i);
    }
    if (i == 4 || i == 3) throw std::runtime_error(fmt::format("boom {}", i));
    return CellOutcome{json{{"done", true}, {"i", i}}, "ok"};
  });
  EXPECT_EQ(ran, (std::set<std::size_t>{1, 2, 3, 4}));
  EXPECT_EQ(r.errors, (std::vector<std::string>{"cell 3: boom 3", "cell 4: boom 4"}));
  ASSERT_EQ(r.results.size(), 3u);
  EXPECT_EQ(r.results.at("c0"), json({{"done", true}}));
  EXPECT_EQ(read_json_file(folder.cell_file("c2")), json({{"done", true}, {"i", 2}}));
  EXPECT_FALSE(fs::exists(folder.cell_file("c3")));  // a failed cell leaves no file: the next run retries it
}

TEST_F(GridTest, SerialCellsRunOnTheCallingThreadAfterTheOthers) {
  std::vector<GridCell> cells{{"a", "a", true}, {"b", "b"}, {"c", "c"}};
  std::mutex m;
  std::vector<std::pair<std::string, std::thread::id>> order;
  Grid("test", cells).run(2, [&](std::size_t i) {
    std::lock_guard g(m);
    order.emplace_back(cells[i].id, std::this_thread::get_id());
    return CellOutcome{nullptr, ""};
  });
  ASSERT_EQ(order.size(), 3u);
  EXPECT_EQ(order.back().first, "a");
  EXPECT_EQ(order.back().second, std::this_thread::get_id());
}

// A zipped axis sets its keys together: 3 bit pairs x 2 seeds are 6 points,
// not the 3 x 3 x 2 = 18 of two independent axes.
TEST(SweepSpec, ZippedKeysMoveTogether) {
  SweepSpec spec;
  spec.seeds = 2;
  add_sweep_setting(spec, "operand_bits+gemm.fwd.acc_bits=3+6,4+8,8+16");
  add_sweep_setting(spec, "epochs=1");
  ASSERT_EQ(spec.axes.size(), 1u);
  EXPECT_EQ(spec.overrides, std::vector<std::string>{"epochs=1"});
  const std::vector<SweepPoint> points = enumerate_points(spec);
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[2].overrides(), (std::vector<std::string>{"operand_bits=4", "gemm.fwd.acc_bits=8", "seed=1"}));
  EXPECT_EQ(points[5].overrides(), (std::vector<std::string>{"operand_bits=8", "gemm.fwd.acc_bits=16", "seed=2"}));
}

// One zipped value is still an axis (its keys are per point, not fixed).
TEST(SweepSpec, OneZippedValueIsAnAxis) {
  SweepSpec spec;
  add_sweep_setting(spec, "operand_bits+gemm.fwd.acc_bits=4+8");
  ASSERT_EQ(spec.axes.size(), 1u);
  EXPECT_TRUE(spec.overrides.empty());
}

TEST(SweepSpec, ZippedMistakesAreRefusedNamingTheKey) {
  auto refused = [](std::vector<std::string> settings, const std::string& fragment) {
    SweepSpec spec;
    try {
      for (const auto& kv : settings) add_sweep_setting(spec, kv);
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      return;
    }
    ADD_FAILURE() << "accepted: " << fmt::format("{}", fmt::join(settings, " "));
  };
  refused({"operand_bits+gemm.fwd.acc_bits=4+8,5"}, "value '5' has 1 part(s)");
  refused({"operand_bits+gemm.fwd.acc_bits=4+8+1"}, "value '4+8+1' has 3 part(s)");
  refused({"operand_bits+gemm.fwd.acc_bits=4+,5+10"}, "empty part");
  refused({"operand_bits+=4+8"}, "empty key");
  refused({"operand_bits+operand_bits=4+4"}, "operand_bits is zipped twice");
  refused({"operand_bits=4,5", "operand_bits+gemm.fwd.acc_bits=4+8"}, "operand_bits is already swept");
  refused({"gemm.fwd.acc_bits=8", "operand_bits+gemm.fwd.acc_bits=4+8"}, "gemm.fwd.acc_bits is already fixed");
  refused({"operand_bits+gemm.fwd.acc_bits=4+8", "gemm.fwd.acc_bits=4,8"}, "the key is already swept (operand_bits+gemm.fwd.acc_bits=4+8)");
  refused({"seed+operand_bits=1+4"}, "a sweep sets the seed");
}

}  // namespace
}  // namespace hdq
