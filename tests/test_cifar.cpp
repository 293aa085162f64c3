// The CIFAR-10/100 binary reader (datasets/cifar.h) on small generated files,
// good and corrupt: record layout, pixel scaling, label ranges, truncation,
// empty files, missing folders and files, class-name files, and what is not
// a regular file or is too large.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "datasets/cifar.h"

namespace hdq::datasets {
namespace {
namespace fs = std::filesystem;

class Cifar : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hdq_cifar_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // n records with the given label bytes; pixel i of record r is (r * 7 + i) % 256.
  static std::vector<std::uint8_t> records(const std::vector<std::vector<std::uint8_t>>& labels) {
    std::vector<std::uint8_t> out;
    for (std::size_t r = 0; r < labels.size(); ++r) {
      out.insert(out.end(), labels[r].begin(), labels[r].end());
      for (std::size_t i = 0; i < kCifarPixels; ++i) out.push_back(std::uint8_t((r * 7 + i) % 256));
    }
    return out;
  }
  fs::path write(const std::string& name, const std::vector<std::uint8_t>& bytes) const {
    const fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return p;
  }
  fs::path write_text(const std::string& name, const std::string& text) const {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }
  // The message of the DataError that f throws (empty when it throws none).
  template <typename F>
  static std::string error_of(F&& f) {
    try {
      f();
    } catch (const DataError& e) {
      return e.what();
    }
    return "";
  }
  static bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

  fs::path dir_;
};

TEST_F(Cifar, Cifar10RecordsBecome3x32x32Images) {
  const fs::path f = write("data_batch_1.bin", records({{3}, {9}, {0}}));
  const Dataset ds = read_cifar_file(f, CifarVariant::cifar10);
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(ds.shape, (std::vector<std::size_t>{3, 32, 32}));
  EXPECT_EQ(ds.num_classes, 10);
  EXPECT_EQ(ds.labels, (std::vector<std::int32_t>{3, 9, 0}));
  EXPECT_NO_THROW(ds.validate());
  // Record 1, pixel i = (7 + i) % 256 / 255: pixel 0 is 7/255; pixel 248 is 255 -> 1.0 exactly;
  // pixel 249 wraps to 0. The green plane starts at 1024 (CHW as stored).
  EXPECT_EQ(ds.row(1)[0], 7.0f / 255.0f);
  EXPECT_EQ(ds.row(1)[248], 1.0f);
  EXPECT_EQ(ds.row(1)[249], 0.0f);
  EXPECT_EQ(ds.row(2)[1024], 14.0f / 255.0f);  // (2 * 7 + 1024) % 256 = 14
}

TEST_F(Cifar, Cifar100FineAndCoarseLabels) {
  const fs::path f = write("train.bin", records({{19, 99}, {0, 42}}));
  const Dataset fine = read_cifar_file(f, CifarVariant::cifar100, CifarLabels::fine);
  const Dataset coarse = read_cifar_file(f, CifarVariant::cifar100, CifarLabels::coarse);
  EXPECT_EQ(fine.labels, (std::vector<std::int32_t>{99, 42}));
  EXPECT_EQ(fine.num_classes, 100);
  EXPECT_EQ(coarse.labels, (std::vector<std::int32_t>{19, 0}));
  EXPECT_EQ(coarse.num_classes, 20);
  // The pixels follow the two label bytes: record 0, pixel 5 = 5 / 255.
  EXPECT_EQ(fine.row(0)[5], 5.0f / 255.0f);
}

TEST_F(Cifar, CorruptFilesAreRefusedNamingThePath) {
  // Truncated: two records less 100 bytes.
  std::vector<std::uint8_t> bytes = records({{1}, {2}});
  bytes.resize(bytes.size() - 100);
  const fs::path cut = write("cut.bin", bytes);
  std::string e = error_of([&] { read_cifar_file(cut, CifarVariant::cifar10); });
  EXPECT_TRUE(contains(e, cut.string()) && contains(e, "truncated") && contains(e, "record 1")) << e;

  const fs::path empty = write("empty.bin", {});
  e = error_of([&] { read_cifar_file(empty, CifarVariant::cifar10); });
  EXPECT_TRUE(contains(e, empty.string()) && contains(e, "empty")) << e;

  // Label 10 in CIFAR-10 (0..9), in the second record at byte offset 3073.
  const fs::path bad = write("bad.bin", records({{1}, {10}}));
  e = error_of([&] { read_cifar_file(bad, CifarVariant::cifar10); });
  EXPECT_TRUE(contains(e, bad.string()) && contains(e, "record 1") && contains(e, "offset 3073") &&
              contains(e, "label 10 is outside 0..9"))
      << e;
  // Coarse label 20 (0..19); its fine label 5 is fine.
  const fs::path bad100 = write("bad100.bin", records({{20, 5}}));
  e = error_of([&] { read_cifar_file(bad100, CifarVariant::cifar100, CifarLabels::coarse); });
  EXPECT_TRUE(contains(e, "label 20 is outside 0..19") && contains(e, "coarse")) << e;
  EXPECT_NO_THROW(read_cifar_file(bad100, CifarVariant::cifar100, CifarLabels::fine));

  // A CIFAR-100 file read as CIFAR-10: 3074-byte records are not 3073-byte ones.
  const fs::path wrong = write("wrong.bin", records({{1, 2}, {3, 4}}));
  e = error_of([&] { read_cifar_file(wrong, CifarVariant::cifar10); });
  EXPECT_TRUE(contains(e, "not a whole number of 3073-byte")) << e;

  e = error_of([&] { read_cifar_file(dir_, CifarVariant::cifar10); });
  EXPECT_TRUE(contains(e, dir_.string()) && contains(e, "directory")) << e;
}

// A FIFO without a writer blocked the reader forever, /dev/zero was read until
// memory ran out, and there was no size limit: files are opened as every input
// is (models/common/input_file.h). In a child process with a 10 s alarm, so a
// reader that blocks fails the test instead of hanging it.
TEST_F(Cifar, OnlyRegularFilesWithinTheSizeLimitAreRead) {
  const fs::path fifo = dir_ / "fifo.bin";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const fs::path huge = dir_ / "huge.bin";
  std::ofstream(huge).close();
  fs::resize_file(huge, std::uintmax_t{3} << 30);  // sparse: no disk used
  const fs::path names_dir = dir_ / "c10";
  fs::create_directories(names_dir);
  for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                        "data_batch_5.bin", "test_batch.bin"})
    write("c10/" + std::string(f), records({{1}}));
  ASSERT_EQ(::mkfifo((names_dir / "batches.meta.txt").c_str(), 0600), 0);
  EXPECT_EXIT(
      {
        ::alarm(10);
        const bool ok =
            contains(error_of([&] { read_cifar_file(fifo, CifarVariant::cifar10); }),
                     fifo.string() + ": is a FIFO (named pipe), not a regular file") &&
            contains(error_of([&] { read_cifar_file("/dev/zero", CifarVariant::cifar100); }),
                     "/dev/zero: is a character device, not a regular file") &&
            contains(error_of([&] { read_cifar_file(huge, CifarVariant::cifar10); }),
                     huge.string() + ": 3 GiB is more than the limit of 2 GiB for a data file") &&
            contains(error_of([&] { load_cifar10(names_dir); }),
                     (names_dir / "batches.meta.txt").string() + ": is a FIFO");
        std::_Exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(Cifar, Cifar10FolderConcatenatesTheBatchesAndReadsNames) {
  for (int b = 1; b <= 5; ++b)
    write("data_batch_" + std::to_string(b) + ".bin", records({{std::uint8_t(b)}, {std::uint8_t(b + 4)}}));
  write("test_batch.bin", records({{7}}));
  write_text("batches.meta.txt", "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
  const TrainTest tt = load_cifar10(dir_, 0, 0);
  // Batches in order 1..5, two records each: labels b, b + 4.
  EXPECT_EQ(tt.train.labels, (std::vector<std::int32_t>{1, 5, 2, 6, 3, 7, 4, 8, 5, 9}));
  EXPECT_EQ(tt.test.labels, (std::vector<std::int32_t>{7}));
  ASSERT_EQ(tt.train.class_names.size(), 10u);
  EXPECT_EQ(tt.train.class_names[9], "truck");
  EXPECT_NO_THROW(tt.train.validate());
  EXPECT_EQ(load_cifar10(dir_, 3, 0).train.size(), 3u);

  // A names file with the wrong count is refused.
  write_text("batches.meta.txt", "airplane\nautomobile\n");
  std::string e = error_of([&] { load_cifar10(dir_); });
  EXPECT_TRUE(contains(e, "batches.meta.txt") && contains(e, "2 class names, expected 10")) << e;
  fs::remove(dir_ / "batches.meta.txt");  // optional: without it there are no names
  EXPECT_TRUE(load_cifar10(dir_).train.class_names.empty());

  // A folder missing one batch names that file.
  fs::remove(dir_ / "data_batch_3.bin");
  e = error_of([&] { load_cifar10(dir_); });
  EXPECT_TRUE(contains(e, (dir_ / "data_batch_3.bin").string()) && contains(e, "no such file") &&
              contains(e, "docs/datasets.md"))
      << e;
}

TEST_F(Cifar, Cifar100FolderAndMissingFolder) {
  write("train.bin", records({{4, 40}, {5, 50}}));
  write("test.bin", records({{6, 60}}));
  const TrainTest fine = load_cifar100(dir_);
  EXPECT_EQ(fine.train.labels, (std::vector<std::int32_t>{40, 50}));
  EXPECT_EQ(fine.test.labels, (std::vector<std::int32_t>{60}));
  const TrainTest coarse = load_cifar100(dir_, CifarLabels::coarse);
  EXPECT_EQ(coarse.train.labels, (std::vector<std::int32_t>{4, 5}));

  const fs::path missing = dir_ / "no-such-folder";
  const std::string e = error_of([&] { load_cifar100(missing); });
  EXPECT_TRUE(contains(e, missing.string()) && contains(e, "no such folder") && contains(e, "cifar-100-binary.tar.gz"))
      << e;
  fs::remove(dir_ / "test.bin");
  const std::string e2 = error_of([&] { load_cifar100(dir_); });
  EXPECT_TRUE(contains(e2, (dir_ / "test.bin").string())) << e2;
}

}  // namespace
}  // namespace hdq::datasets
