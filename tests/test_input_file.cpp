// The one way to open an input (models/common/input_file.h) and the tensor
// limit (models/common/errors.h): what is refused, at once, with the path.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "models/common/errors.h"
#include "models/common/input_file.h"

namespace hdq {
namespace {
namespace fs = std::filesystem;

struct TempDir {
  fs::path path = fs::temp_directory_path() /
                  (std::string("hdqsim-input-") + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                   "-" + std::to_string(::getpid()));
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name, std::ios::binary) << text;
    return path / name;
  }
};

std::string error_opening(const fs::path& p, std::uint64_t max = 1 << 20) {
  try {
    InputFile f(p, max, "a test file");
    return "opened";
  } catch (const InputError& e) {
    return e.what();
  }
}

TEST(InputFile, RefusesAnythingButARegularFileAtOnce) {
  TempDir dir;
  EXPECT_EQ(error_opening(dir.path / "nope"), (dir.path / "nope").string() + ": no such file");
  EXPECT_EQ(error_opening(dir.path), dir.path.string() + ": is a directory, not a regular file");
  EXPECT_EQ(error_opening("/dev/zero"), "/dev/zero: is a character device, not a regular file");
  // A FIFO without a writer would block a plain open() forever; here the
  // refusal must come back at once (the future times out otherwise).
  const fs::path fifo = dir.path / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto opened = std::async(std::launch::async, [&] { return error_opening(fifo); });
  ASSERT_EQ(opened.wait_for(std::chrono::seconds(10)), std::future_status::ready) << "opening a FIFO blocked";
  EXPECT_EQ(opened.get(), fifo.string() + ": is a FIFO (named pipe), not a regular file");
  EXPECT_EQ(error_opening(dir.write("ok", "x")), "opened");
  EXPECT_THROW(InputFile("", 10, "a test file"), InputError);
}

TEST(InputFile, SizeLimitIsCheckedBeforeReading) {
  TempDir dir;
  const fs::path p = dir.write("f", std::string(100, 'a'));
  EXPECT_EQ(error_opening(p, 100), "opened");  // the limit is inclusive
  EXPECT_EQ(error_opening(p, 99), p.string() + ": 100 B is more than the limit of 99 B for a test file");
  // A sparse 3 GiB file costs no disk and is refused by its size alone.
  const fs::path big = dir.path / "big";
  { std::ofstream(big).close(); }
  fs::resize_file(big, std::uint64_t{3} << 30);
  EXPECT_EQ(error_opening(big, kMaxDataFileBytes), big.string() + ": 3 GiB is more than the limit of 2 GiB for a test file");
  EXPECT_EQ(read_input_file(p, 100, "a test file"), std::string(100, 'a'));
}

TEST(InputFile, FormatsSizes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(4u << 20), "4 MiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");  // 1536 / 1024 = 1.5 exactly
}

TEST(InputLines, SplitsLinesAndBoundsTheirLength) {
  TempDir dir;
  InputLines r(dir.write("t", "a\r\n\nlast"), "a test file");
  std::string line;
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(line, "a\r");  // a '\r' before the '\n' stays
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(line, "");
  ASSERT_TRUE(r.next(line));
  EXPECT_EQ(line, "last");  // a last line without '\n'
  EXPECT_EQ(r.line(), 3u);
  EXPECT_FALSE(r.next(line));
  EXPECT_FALSE(r.next(line));

  // Lines longer than the buffer (64 KiB) are put together; one byte over the
  // limit on line 2 is refused naming the line.
  const std::string long_line(100000, 'x');
  InputLines ok(dir.write("l", "1\n" + long_line + "\n"), "a test file", kMaxDataFileBytes, 100000);
  ASSERT_TRUE(ok.next(line) && ok.next(line));
  EXPECT_EQ(line, long_line);
  InputLines over(dir.write("o", "1\n" + long_line + "x\n"), "a test file", kMaxDataFileBytes, 100000);
  ASSERT_TRUE(over.next(line));
  try {
    over.next(line);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), (dir.path / "o").string() + ":2: the line is longer than the limit of 97.7 KiB");
  }
}

TEST(InputFile, RethrowKeepsTheReadersErrorType) {
  struct ReaderError : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  EXPECT_THROW(rethrow_input_error<ReaderError>([] { return read_input_file("/dev/zero", 10, "x"); }), ReaderError);
  EXPECT_EQ(rethrow_input_error<ReaderError>([] { return 7; }), 7);
}

TEST(TensorLimit, NamesTheFieldAndTheDimensions) {
  EXPECT_EQ(require_tensor_elements("a", {3, 4}), 12u);
  EXPECT_EQ(require_tensor_elements("a", {1 << 14, 1 << 14}), kMaxTensorElements);  // 2^28 exactly is allowed
  auto message = [](std::initializer_list<long long> dims) {
    try {
      require_tensor_elements("m x k", dims);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({-3, 256}), "m x k: -3 x 256: every dimension must be >= 1");
  EXPECT_EQ(message({0, 5}), "m x k: 0 x 5: every dimension must be >= 1");
  EXPECT_EQ(message({16385, 16384}), "m x k: 16385 x 16384 = 268451840 elements is more than the limit of 2^28 = 268435456 per tensor");
  // A product beyond 2^64 neither wraps nor passes: 2^40 x 2^40 = 2^80 (printed via double).
  EXPECT_NE(message({1ll << 40, 1ll << 40}).find("1208925819614629174706176 elements is more than the limit"), std::string::npos);
}

}  // namespace
}  // namespace hdq
