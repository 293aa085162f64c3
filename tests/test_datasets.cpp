// Unit tests of the data layer (datasets/datasets.h, datasets/idx.h, datasets/synthetic.h).
// Every fixture is written by the test into its own temporary directory.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numbers>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "datasets/datasets.h"
#include "datasets/idx.h"
#include "models/common/splitmix64.h"
#include "datasets/synthetic.h"
#include "models/common/errors.h"

namespace hdq::datasets {
namespace {
namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

// A fresh directory per test (ctest runs tests as parallel processes).
struct TempDir {
  fs::path path = fs::temp_directory_path() /
                  (std::string("hdqsim-data-") + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                   "-" + std::to_string(::getpid()));
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path operator/(const std::string& name) const { return path / name; }
};

void write_bytes(const fs::path& p, const Bytes& b) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}
Bytes read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}
void write_gzip(const fs::path& p, const Bytes& b) {
  fs::create_directories(p.parent_path());
  gzFile f = gzopen(p.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// An IDX file written byte by byte as datasets/idx.h describes it: 00 00, type,
// number of dims, big-endian u32 dims, then the payload.
Bytes idx_file(std::uint8_t type, const std::vector<std::uint32_t>& dims, const Bytes& payload) {
  Bytes b = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<std::uint8_t>(d >> shift));
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// Runs f, expects DataError (or E) whose message contains every piece.
template <class E = DataError>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& pieces) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning " << pieces.front();
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& p : pieces) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

// ------------------------------------------------------------------ IDX

// 3 images of 2 x 3 pixels and their labels, used by the IDX tests.
const Bytes kPixels = {0, 51, 255, 1, 2, 3, 10, 20, 30, 40, 50, 60, 255, 254, 0, 0, 128, 7};
const Bytes kLabels = {2, 0, 1};

TEST(Idx, RoundTripGzipAndPlain) {
  TempDir dir;
  write_gzip(dir / "img.gz", idx_file(0x08, {3, 2, 3}, kPixels));
  write_gzip(dir / "lab.gz", idx_file(0x08, {3}, kLabels));
  write_bytes(dir / "img", idx_file(0x08, {3, 2, 3}, kPixels));
  write_bytes(dir / "lab", idx_file(0x08, {3}, kLabels));
  // The gzip file really is compressed: it starts with the gzip magic 1f 8b.
  EXPECT_EQ(read_bytes(dir / "img.gz")[0], 0x1f);
  EXPECT_EQ(read_bytes(dir / "img.gz")[1], 0x8b);

  const Dataset gz = load_idx_classification(dir / "img.gz", dir / "lab.gz", 3, "tiny");
  const Dataset plain = load_idx_classification(dir / "img", dir / "lab", 3, "tiny");
  for (const Dataset* ds : {&gz, &plain}) {
    EXPECT_EQ(ds->name, "tiny");
    EXPECT_EQ(ds->size(), 3u);
    EXPECT_EQ(ds->dim(), 6u);  // 2 x 3 pixels
    EXPECT_EQ(ds->shape, (std::vector<std::size_t>{2, 3}));
    EXPECT_EQ(ds->num_classes, 3);
    EXPECT_EQ(ds->labels, (std::vector<std::int32_t>{2, 0, 1}));  // the label bytes as written
    ASSERT_EQ(ds->features.size(), kPixels.size());
    for (std::size_t i = 0; i < kPixels.size(); ++i) EXPECT_EQ(ds->features[i], kPixels[i] / 255.0f) << i;
    // Hand values: 0/255 = 0 and 255/255 = 1 exactly; 51/255 is exactly 1/5,
    // so its correctly rounded f32 quotient is the f32 nearest 0.2, i.e. 0.2f.
    EXPECT_EQ(ds->features[0], 0.0f);
    EXPECT_EQ(ds->features[1], 0.2f);
    EXPECT_EQ(ds->features[2], 1.0f);
    ds->validate();
  }
  EXPECT_EQ(gz.features, plain.features);
}

TEST(Idx, GenericHeaderOfAWiderType) {
  TempDir dir;
  // type 0x0B (i16), dims 2 x 1: 2 elements of 2 bytes = 4 payload bytes.
  write_bytes(dir / "a", idx_file(0x0B, {2, 1}, {0x01, 0x02, 0xff, 0xfe}));
  const IdxArray a = read_idx(dir / "a");
  EXPECT_EQ(a.type_code, 0x0B);
  EXPECT_EQ(a.magic(), 0x00000B02u);  // type in byte 2, 2 dimensions in byte 3
  EXPECT_EQ(a.dims, (std::vector<std::uint32_t>{2, 1}));
  EXPECT_EQ(a.count(), 2u);
  EXPECT_EQ(a.data_offset, 12u);  // 4 magic bytes + 2 dims * 4 bytes
  EXPECT_EQ(Bytes(a.data().begin(), a.data().end()), (Bytes{0x01, 0x02, 0xff, 0xfe}));
}

TEST(IdxErrors, BadMagic) {
  TempDir dir;
  write_bytes(dir / "lab", idx_file(0x08, {3}, kLabels));
  Bytes bad = idx_file(0x08, {3, 2, 3}, kPixels);
  bad[0] = 0x01;  // magic must start with 00 00
  write_bytes(dir / "img", bad);
  expect_error([&] { load_idx_classification(dir / "img", dir / "lab", 3, "t"); },
               {(dir / "img").string(), "bad IDX magic number 0x01000803", "expected an IDX images file"});
  // 0x07 is no IDX type code.
  write_bytes(dir / "img", idx_file(0x07, {3, 2, 3}, kPixels));
  expect_error([&] { load_idx_classification(dir / "img", dir / "lab", 3, "t"); }, {"bad IDX magic number 0x00000703"});
  // A valid IDX file of the wrong element type (i8, 0x09) is not an images file.
  write_bytes(dir / "img", idx_file(0x09, {3, 2, 3}, kPixels));
  expect_error([&] { load_idx_classification(dir / "img", dir / "lab", 3, "t"); },
               {"IDX magic number is 0x00000903", "magic 0x00000803"});
}

TEST(IdxErrors, WrongDimensions) {
  TempDir dir;
  write_bytes(dir / "img", idx_file(0x08, {3, 2, 3}, kPixels));
  write_bytes(dir / "img2d", idx_file(0x08, {3, 6}, kPixels));  // 2-D images: magic 0x00000802
  write_bytes(dir / "lab", idx_file(0x08, {3}, kLabels));
  write_bytes(dir / "lab2d", idx_file(0x08, {3, 1}, kLabels));
  expect_error([&] { load_idx_classification(dir / "img2d", dir / "lab", 3, "t"); },
               {(dir / "img2d").string(), "0x00000802", "expected an IDX images file: magic 0x00000803"});
  expect_error([&] { load_idx_classification(dir / "img", dir / "lab2d", 3, "t"); },
               {(dir / "lab2d").string(), "0x00000802", "expected an IDX labels file: magic 0x00000801"});
  // Swapped arguments: the images file is not a labels file.
  expect_error([&] { load_idx_classification(dir / "lab", dir / "img", 3, "t"); },
               {(dir / "lab").string(), "0x00000801", "magic 0x00000803"});
}

TEST(IdxErrors, TruncatedFileAndTrailingGarbage) {
  TempDir dir;
  write_bytes(dir / "lab", idx_file(0x08, {3}, kLabels));
  // 17 of the 3 * 2 * 3 = 18 promised bytes, plain and gzip.
  const Bytes short_pixels(kPixels.begin(), kPixels.end() - 1);
  write_bytes(dir / "img", idx_file(0x08, {3, 2, 3}, short_pixels));
  write_gzip(dir / "img.gz", idx_file(0x08, {3, 2, 3}, short_pixels));
  for (const char* f : {"img", "img.gz"})
    expect_error([&] { load_idx_classification(dir / f, dir / "lab", 3, "t"); },
                 {(dir / f).string(), "truncated IDX file", "3 x 2 x 3 = 18 elements", "only 17 data bytes"});
  // A header cut inside the dimensions: 3 dims need 4 + 12 = 16 bytes.
  write_bytes(dir / "img", Bytes{0, 0, 8, 3, 0, 0});
  expect_error([&] { load_idx_classification(dir / "img", dir / "lab", 3, "t"); },
               {"truncated IDX header", "need 16 header bytes, the file has 6"});
  write_bytes(dir / "img", Bytes{});
  expect_error([&] { load_idx_classification(dir / "img", dir / "lab", 3, "t"); }, {"truncated IDX header"});
  // One byte more than promised.
  Bytes extra = kPixels;
  extra.push_back(9);
  write_bytes(dir / "img", idx_file(0x08, {3, 2, 3}, extra));
  expect_error([&] { load_idx_classification(dir / "img", dir / "lab", 3, "t"); },
               {(dir / "img").string(), "trailing garbage: 1 bytes"});
}

TEST(IdxErrors, TruncatedOrCorruptGzipStream) {
  TempDir dir;
  write_bytes(dir / "lab", idx_file(0x08, {3}, kLabels));
  write_gzip(dir / "full.gz", idx_file(0x08, {3, 2, 3}, kPixels));
  const Bytes gz = read_bytes(dir / "full.gz");
  // Without its 8-byte trailer (CRC-32, length) and 2 more bytes the stream
  // ends early: zlib hands out what it decoded and reports Z_BUF_ERROR.
  write_bytes(dir / "cut.gz", Bytes(gz.begin(), gz.end() - 10));
  expect_error([&] { read_idx(dir / "cut.gz"); }, {(dir / "cut.gz").string(), "truncated gzip stream"});
  // A flipped bit in the stored CRC-32 (first trailer byte) is a data error.
  Bytes bad = gz;
  bad[bad.size() - 8] ^= 1;
  write_bytes(dir / "crc.gz", bad);
  expect_error([&] { load_idx_classification(dir / "crc.gz", dir / "lab", 3, "t"); },
               {(dir / "crc.gz").string(), "corrupt gzip", "expected an IDX images file"});
}

TEST(IdxErrors, CountMismatchAndLabelRange) {
  TempDir dir;
  write_bytes(dir / "img", idx_file(0x08, {3, 2, 3}, kPixels));
  write_bytes(dir / "lab2", idx_file(0x08, {2}, {0, 1}));
  expect_error([&] { load_idx_classification(dir / "img", dir / "lab2", 3, "t"); },
               {(dir / "img").string(), "3 images", (dir / "lab2").string(), "2 labels"});
  // kLabels holds a 2, which is not below 2 classes; it is sample 0.
  write_bytes(dir / "lab", idx_file(0x08, {3}, kLabels));
  expect_error([&] { load_idx_classification(dir / "img", dir / "lab", 2, "t"); },
               {(dir / "lab").string(), "label 2 of sample 0", "labels 0..1"});
}

TEST(IdxErrors, MissingFileAndDirectory) {
  TempDir dir;
  write_bytes(dir / "lab", idx_file(0x08, {3}, kLabels));
  expect_error([&] { load_idx_classification(dir / "nope", dir / "lab", 3, "t"); },
               {(dir / "nope").string(), "no such file", "expected an IDX images file"});
  expect_error([&] { read_idx(dir.path); }, {"is a directory"});
}

TEST(IdxErrors, JunkAfterTheGzipStreamButSeveralMembersAreFine) {
  TempDir dir;
  const Bytes plain = idx_file(0x08, {3, 2, 3}, kPixels);
  write_gzip(dir / "a.gz", Bytes(plain.begin(), plain.begin() + 10));
  write_gzip(dir / "b.gz", Bytes(plain.begin() + 10, plain.end()));
  Bytes two = read_bytes(dir / "a.gz"), b = read_bytes(dir / "b.gz");
  two.insert(two.end(), b.begin(), b.end());  // `cat a.gz b.gz`: one gzip file of two members
  write_bytes(dir / "two.gz", two);
  EXPECT_EQ(read_file_maybe_gzip(dir / "two.gz"), plain);
  EXPECT_EQ(read_idx(dir / "two.gz").dims, (std::vector<std::uint32_t>{3, 2, 3}));
  // zlib's gzread ignored bytes after the last member; they are an error now.
  Bytes junk = read_bytes(dir / "a.gz");
  for (char c : std::string("junk")) junk.push_back(std::uint8_t(c));
  write_bytes(dir / "junk.gz", junk);
  expect_error([&] { read_idx(dir / "junk.gz"); }, {(dir / "junk.gz").string(), "4 bytes of junk after the gzip stream"});
  junk.push_back(0x1f);  // one byte of a gzip magic is still junk: 5 bytes
  write_bytes(dir / "junk.gz", junk);
  expect_error([&] { read_idx(dir / "junk.gz"); }, {"5 bytes of junk"});
}

// The magic number is checked before the length: an f32 images file (type
// 0x0D) holding u8-sized data is reported for its type, not as truncated.
TEST(IdxErrors, AWrongTypeIsAWrongMagicNumberNotATruncation) {
  TempDir dir;
  write_bytes(dir / "img", idx_file(0x0D, {3, 2, 3}, kPixels));
  write_bytes(dir / "lab", idx_file(0x08, {3}, kLabels));
  try {
    load_idx_classification(dir / "img", dir / "lab", 3, "t");
    FAIL() << "no error";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("IDX magic number is 0x00000d03 (type 0x0d, 3 dimensions)"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("truncated"), std::string::npos) << msg;
  }
}

TEST(IdxErrors, SizesAreCheckedBeforeAllocation) {
  TempDir dir;
  // 255 dimensions of 2: 2^255 elements, reported in a short message.
  write_bytes(dir / "d255", idx_file(0x08, std::vector<std::uint32_t>(255, 2), {}));
  try {
    read_idx(dir / "d255");
    FAIL() << "no error";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("2 x 2 x 2 x ... x 2 (255 dimensions) elements, more than the limit of 2^28"), std::string::npos) << msg;
    EXPECT_LT(msg.size(), 200u + (dir / "d255").string().size());
  }
  // 2^16 x 2^12 x 2^12 = 2^40 elements: plain and gzip alike, header only.
  const Bytes huge = idx_file(0x08, {65536, 4096, 4096}, {});
  write_bytes(dir / "huge", huge);
  write_gzip(dir / "huge.gz", huge);
  for (const char* f : {"huge", "huge.gz"})
    expect_error([&] { read_idx(dir / f); }, {"65536 x 4096 x 4096 elements, more than the limit of 2^28"});
  // Within the limit (2^27 bytes) but not in the file: a gzip stream is read in
  // chunks, so it is reported truncated after the bytes it holds.
  write_gzip(dir / "short.gz", idx_file(0x08, {2048, 256, 256}, {1, 2, 3}));
  expect_error([&] { read_idx(dir / "short.gz"); }, {"truncated IDX file", "2048 x 256 x 256 = 134217728 elements", "only 3 data bytes"});
}

TEST(IdxErrors, ZeroImagesAreAnEmptyDataSet) {
  TempDir dir;
  write_bytes(dir / "img", idx_file(0x08, {0, 2, 3}, {}));
  write_bytes(dir / "lab", idx_file(0x08, {0}, {}));
  expect_error([&] { load_idx_classification(dir / "img", dir / "lab", 3, "t"); },
               {(dir / "img").string(), "holds 0 images, an empty data set"});
}

TEST(DataFiles, OnlyRegularFilesAreRead) {
  TempDir dir;
  const fs::path fifo = dir / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_error([&] { load_csv(fifo); }, {fifo.string(), "is a FIFO (named pipe), not a regular file", "expected CSV rows"});
  expect_error([&] { read_idx(fifo); }, {fifo.string(), "is a FIFO"});
  expect_error([&] { load_csv("/dev/zero"); }, {"/dev/zero: is a character device"});
  // One line of 2 MiB: refused at its line, before it is held whole.
  write_text(dir / "long.csv", "1,0\n" + std::string(2 << 20, '7') + ",1\n");
  expect_error([&] { load_csv(dir / "long.csv"); }, {(dir / "long.csv").string() + ":2: the line is longer than the limit of 1 MiB"});
}

// ------------------------------------------------------------ Fashion-MNIST

// A Fashion-MNIST directory of n_train / n_test 28 x 28 images whose pixel
// (i, p) is (i + p) % 256 and whose label is i % 10. Train gzip, test plain.
void write_fake_fashion(const TempDir& dir, std::uint32_t n_train, std::uint32_t n_test, std::uint32_t side = 28) {
  auto images = [&](std::uint32_t n) {
    Bytes px(n * side * side);
    for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>((i / (side * side) + i % (side * side)) % 256);
    return idx_file(0x08, {n, side, side}, px);
  };
  auto labels = [](std::uint32_t n) {
    Bytes l(n);
    for (std::uint32_t i = 0; i < n; ++i) l[i] = static_cast<std::uint8_t>(i % 10);
    return idx_file(0x08, {n}, l);
  };
  write_gzip(dir / "train-images-idx3-ubyte.gz", images(n_train));
  write_gzip(dir / "train-labels-idx1-ubyte.gz", labels(n_train));
  write_bytes(dir / "t10k-images-idx3-ubyte", images(n_test));
  write_bytes(dir / "t10k-labels-idx1-ubyte", labels(n_test));
}

TEST(FashionMnist, LoadsADirectoryWithLimits) {
  TempDir dir;
  write_fake_fashion(dir, 5, 3);
  const TrainTest all = load_fashion_mnist(dir.path);
  EXPECT_EQ(all.train.size(), 5u);
  EXPECT_EQ(all.test.size(), 3u);  // read from the uncompressed fallback names
  EXPECT_EQ(all.train.dim(), 784u);
  EXPECT_EQ(all.train.num_classes, 10);
  EXPECT_EQ(all.train.class_names.size(), 10u);
  EXPECT_EQ(all.train.class_names[9], "Ankle boot");  // label 9 in the Fashion-MNIST README
  EXPECT_EQ(all.test.labels, (std::vector<std::int32_t>{0, 1, 2}));  // i % 10
  // Pixel (1, 2) of the train split is (1 + 2) % 256 = 3.
  EXPECT_EQ(all.train.features[1 * 784 + 2], 3.0f / 255.0f);

  const TrainTest lim = load_fashion_mnist(dir.path, 2, 0);
  EXPECT_EQ(lim.train.size(), 2u);
  EXPECT_EQ(lim.train.features.size(), 2u * 784u);
  EXPECT_EQ(lim.test.size(), 3u);  // 0 = no limit
  EXPECT_TRUE(std::equal(lim.train.features.begin(), lim.train.features.end(), all.train.features.begin()));
  EXPECT_EQ(load_fashion_mnist(dir.path, 100, 1).train.size(), 5u);  // a limit above N keeps all
  EXPECT_EQ(load_fashion_mnist(dir.path, 100, 1).test.size(), 1u);
}

TEST(FashionMnist, MissingOrCorruptFilesNameThePathAndThePackage) {
  TempDir dir;
  expect_error([&] { load_fashion_mnist(dir.path); },
               {(dir / "train-images-idx3-ubyte.gz").string(), "no such file", "magic 0x00000803",
                "install the Debian package dataset-fashion-mnist"});
  write_fake_fashion(dir, 2, 2);
  write_bytes(dir / "t10k-labels-idx1-ubyte", idx_file(0x08, {2, 1}, {0, 1}));  // 2-D labels
  expect_error([&] { load_fashion_mnist(dir.path); },
               {(dir / "t10k-labels-idx1-ubyte").string(), "0x00000802", "magic 0x00000801",
                "install the Debian package dataset-fashion-mnist"});
  TempDir small;
  write_fake_fashion(small, 2, 2, 27);
  expect_error([&] { load_fashion_mnist(small.path); },
               {"images are 27 x 27", "28 x 28", "install the Debian package dataset-fashion-mnist"});
}

// The real data set, if the Debian package is installed.
TEST(FashionMnist, RealDataset) {
  const fs::path dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir / "train-labels-idx1-ubyte.gz")) GTEST_SKIP() << "package dataset-fashion-mnist not installed";
  const TrainTest fm = load_fashion_mnist();
  // Sizes from the Fashion-MNIST README: 60000 train, 10000 test, 28 x 28, 10 classes.
  EXPECT_EQ(fm.train.size(), 60000u);
  EXPECT_EQ(fm.test.size(), 10000u);
  EXPECT_EQ(fm.train.dim(), 784u);
  EXPECT_EQ(fm.train.shape, (std::vector<std::size_t>{28, 28}));
  EXPECT_EQ(fm.train.num_classes, 10);
  fm.train.validate();
  fm.test.validate();

  // Independent read with zlib alone: label 0 is byte 8 of the labels file
  // (after the 4-byte magic and the 4-byte count), pixel p of image 0 is
  // byte 16 + p of the images file (after magic and three 4-byte dims).
  auto head = [](const fs::path& p, unsigned n) {
    Bytes b(n);
    gzFile f = gzopen(p.c_str(), "rb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzread(f, b.data(), n), static_cast<int>(n));
    gzclose(f);
    return b;
  };
  const Bytes lab = head(dir / "train-labels-idx1-ubyte.gz", 9);
  const Bytes img = head(dir / "train-images-idx3-ubyte.gz", 16 + 784);
  const Bytes tlab = head(dir / "t10k-labels-idx1-ubyte.gz", 9);
  EXPECT_EQ(fm.train.labels[0], lab[8]);
  EXPECT_EQ(fm.test.labels[0], tlab[8]);
  for (int p = 0; p < 784; ++p) ASSERT_EQ(fm.train.features[p], img[16 + p] / 255.0f) << p;

  // The Fashion-MNIST paper: 7000 images per class, 6000 train + 1000 test.
  std::vector<int> ntrain(10), ntest(10);
  for (auto l : fm.train.labels) ++ntrain[l];
  for (auto l : fm.test.labels) ++ntest[l];
  EXPECT_EQ(ntrain, std::vector<int>(10, 6000));
  EXPECT_EQ(ntest, std::vector<int>(10, 1000));
  const auto [lo, hi] = std::minmax_element(fm.train.features.begin(), fm.train.features.end());
  EXPECT_EQ(*lo, 0.0f);  // pixels are 0..255 and both ends occur in 60000 images
  EXPECT_EQ(*hi, 1.0f);
}

// ------------------------------------------------------------------ UCI-HAR

// Two classes of 4 features laid out like the real files (leading spaces,
// exponent notation); y is 1-based.
void write_har(const fs::path& base, const std::string& x_train, const std::string& y_train,
               const std::string& x_test = "  1 2 3 4\n5 6 7 8\n", const std::string& y_test = "2\n2\n") {
  write_text(base / "train" / "X_train.txt", x_train);
  write_text(base / "train" / "y_train.txt", y_train);
  write_text(base / "test" / "X_test.txt", x_test);
  write_text(base / "test" / "y_test.txt", y_test);
}
const std::string kHarX = "  2.8858451e-001 -2.0294171e-002 +1 0\n-1.5\t2 3 4\n\n0 0 0 1.0E+2\n";
const std::string kHarY = "5\n1\n\n6\n";

TEST(UciHar, NestedLayout) {
  TempDir dir;
  write_har(dir.path, kHarX, kHarY);
  const TrainTest h = load_uci_har(dir.path);
  EXPECT_EQ(h.train.size(), 3u);  // the blank lines are skipped
  EXPECT_EQ(h.train.shape, (std::vector<std::size_t>{4}));
  // 1-based 5, 1, 6 become 0-based 4, 0, 5; num_classes = largest y = 6.
  EXPECT_EQ(h.train.labels, (std::vector<std::int32_t>{4, 0, 5}));
  EXPECT_EQ(h.test.labels, (std::vector<std::int32_t>{1, 1}));  // the default y_test "2, 2" minus 1
  EXPECT_EQ(h.test.size(), 2u);
  EXPECT_EQ(h.train.num_classes, 6);
  EXPECT_EQ(h.test.num_classes, 6);
  // from_chars rounds the decimal to the nearest f32, as the compiler does
  // with the same literal, so the values compare exactly.
  EXPECT_EQ(h.train.features[0], 2.8858451e-001f);
  EXPECT_EQ(h.train.features[1], -2.0294171e-002f);
  EXPECT_EQ(h.train.features[2], 1.0f);   // "+1"
  EXPECT_EQ(h.train.features[4], -1.5f);  // tab-separated row
  EXPECT_EQ(h.train.features[11], 100.0f);  // "1.0E+2"
  EXPECT_EQ(h.test.features[7], 8.0f);       // last value of the default test rows "1 2 3 4 / 5 6 7 8"
  h.train.validate();
}

TEST(UciHar, FlatLayout) {
  TempDir dir;
  write_text(dir / "X_train.txt", "1 2\n3 4\n");
  write_text(dir / "y_train.txt", "1\n3\n");
  write_text(dir / "X_test.txt", "5 6\n");
  write_text(dir / "y_test.txt", "2\n");
  const TrainTest h = load_uci_har(dir.path);
  EXPECT_EQ(h.train.features, (std::vector<float>{1, 2, 3, 4}));  // the two rows as written
  EXPECT_EQ(h.train.labels, (std::vector<std::int32_t>{0, 2}));  // y = 1, 3 minus 1
  EXPECT_EQ(h.test.labels, (std::vector<std::int32_t>{1}));       // y = 2 minus 1
  EXPECT_EQ(h.train.num_classes, 3);  // largest y is 3
}

TEST(UciHar, ErrorsNameFileAndLine) {
  TempDir dir;
  const std::string xtr = (dir.path / "train" / "X_train.txt").string();
  const std::string ytr = (dir.path / "train" / "y_train.txt").string();
  // Line 2 has 3 values where line 1 has 4.
  write_har(dir.path, "1 2 3 4\n1 2 3\n", "1\n1\n");
  expect_error([&] { load_uci_har(dir.path); }, {xtr + ":2:", "ragged row: 3 values, expected 4", xtr + ":1"});
  // Line 3, value 2 is not a number; "nan" is rejected too (not finite).
  write_har(dir.path, "1 2 3 4\n1 2 3 4\n1 abc 3 4\n", "1\n1\n1\n");
  expect_error([&] { load_uci_har(dir.path); }, {xtr + ":3:", "value 2 is 'abc'"});
  write_har(dir.path, "1 nan 3 4\n", "1\n");
  expect_error([&] { load_uci_har(dir.path); }, {xtr + ":1:", "'nan', not a finite number"});
  // 2 samples, 3 labels.
  write_har(dir.path, "1 2 3 4\n1 2 3 4\n", "1\n1\n1\n");
  expect_error([&] { load_uci_har(dir.path); }, {xtr, "2 samples", ytr, "3 labels"});
  // Labels are 1-based: 0 is out of range; 1.5 is not an integer.
  write_har(dir.path, "1 2 3 4\n", "0\n");
  expect_error([&] { load_uci_har(dir.path); }, {ytr + ":1:", "class 0 is outside 1.."});
  write_har(dir.path, "1 2 3 4\n", "1.5\n");
  expect_error([&] { load_uci_har(dir.path); }, {ytr + ":1:", "'1.5' is not an integer"});
  // The test split must have the train split's 4 features.
  write_har(dir.path, "1 2 3 4\n", "1\n", "1 2 3\n", "1\n");
  expect_error([&] { load_uci_har(dir.path); },
               {(dir.path / "test" / "X_test.txt").string() + ":1:", "expected 4 (as in " + xtr + ":1)"});
  // A missing y file, and a directory with neither layout.
  write_har(dir.path, "1 2 3 4\n", "1\n");
  fs::remove(dir.path / "test" / "y_test.txt");
  expect_error([&] { load_uci_har(dir.path); }, {(dir.path / "test" / "y_test.txt").string(), "no such file"});
  TempDir empty;
  expect_error([&] { load_uci_har(empty.path); }, {(empty.path / "train" / "X_train.txt").string(),
                                                   (empty.path / "X_train.txt").string(), "no UCI-HAR data"});
}

// ---------------------------------------------------------------------- CSV

TEST(Csv, IntegerLabelsWithHeader) {
  TempDir dir;
  write_text(dir / "sensors.csv", "x1, x2 ,x3,label\r\n0.5,1,2,3\r\n\r\n-1,+2,3e1,0\r\n");
  const Dataset d = load_csv(dir / "sensors.csv");
  EXPECT_EQ(d.name, "sensors");  // the file stem
  EXPECT_EQ(d.size(), 2u);       // header and blank line skipped
  EXPECT_EQ(d.shape, (std::vector<std::size_t>{3}));
  EXPECT_EQ(d.features, (std::vector<float>{0.5f, 1, 2, -1, 2, 30}));  // the rows as written; "+2" = 2, "3e1" = 30
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{3, 0}));
  EXPECT_EQ(d.num_classes, 4);  // largest integer label 3, plus 1
  EXPECT_TRUE(d.class_names.empty());
  // Without a header the first row is data.
  write_text(dir / "nohead.csv", "1,2,1\n3,4,0\n");
  EXPECT_EQ(load_csv(dir / "nohead.csv").size(), 2u);
}

TEST(Csv, ClassNamesInOrderOfFirstAppearance) {
  TempDir dir;
  write_text(dir / "a.csv", "1,2,cat\n3,4,\"dog\"\n5,6,cat\n7,8,eel\n");
  const Dataset d = load_csv(dir / "a.csv");
  // cat first (id 0), dog second (1), eel third (2); quotes are stripped.
  EXPECT_EQ(d.labels, (std::vector<std::int32_t>{0, 1, 0, 2}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog", "eel"}));
  EXPECT_EQ(d.num_classes, 3);
  d.validate();
}

TEST(Csv, PairSharesOneLabelSpace) {
  TempDir dir;
  write_text(dir / "train.csv", "f,g,y\n1,2,cat\n3,4,dog\n");
  write_text(dir / "test.csv", "1,2,bird\n3,4,dog\n");
  const TrainTest tt = load_csv_pair(dir / "train.csv", dir / "test.csv");
  // Train numbers cat 0, dog 1; test adds bird 2 and reuses dog 1.
  EXPECT_EQ(tt.train.labels, (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(tt.test.labels, (std::vector<std::int32_t>{2, 1}));
  EXPECT_EQ(tt.train.num_classes, 3);
  EXPECT_EQ(tt.test.num_classes, 3);
  EXPECT_EQ(tt.test.class_names, (std::vector<std::string>{"cat", "dog", "bird"}));
  // Integer labels: num_classes is the largest label of both files + 1 = 8.
  write_text(dir / "itrain.csv", "1,2\n3,0\n");
  write_text(dir / "itest.csv", "1,7\n");
  const TrainTest it = load_csv_pair(dir / "itrain.csv", dir / "itest.csv");
  EXPECT_EQ(it.train.num_classes, 8);
  EXPECT_EQ(it.test.num_classes, 8);
  // Feature counts must agree.
  write_text(dir / "wide.csv", "1,2,3\n");
  expect_error([&] { load_csv_pair(dir / "itrain.csv", dir / "wide.csv"); },
               {(dir / "wide.csv").string() + ":1:", "2 features per row", "has 1"});
}

TEST(Csv, ErrorsNameFileAndLine) {
  TempDir dir;
  const std::string p = (dir / "e.csv").string();
  auto load = [&](const std::string& text) {
    write_text(dir / "e.csv", text);
    return [&] { load_csv(dir / "e.csv"); };
  };
  expect_error(load("a,b,y\n1,2,0\n1,2\n"), {p + ":3:", "ragged row: 2 fields, expected 3"});
  expect_error(load("1,2,0\n1,x,0\n"), {p + ":2:", "field 2 is 'x'"});
  expect_error(load("1,2,0\n1,2,-1\n"), {p + ":2:", "integer label -1 is outside"});
  expect_error(load("1,2,0\n1,2,cat\n"), {p + ":2:", "'cat' is a class name, but earlier labels are integers"});
  expect_error(load("1,2,1.5\n"), {p + ":1:", "'1.5' is a number but not an integer"});
  expect_error(load("a,b,y\n"), {p, "no data rows"});
  expect_error(load("1\n"), {p + ":1:", "need at least 2"});
  expect_error([&] { load_csv(dir / "missing.csv"); }, {(dir / "missing.csv").string(), "no such file", "CSV rows"});
}

// ---------------------------------------------------------------- synthetic

std::uint64_t fingerprint(const std::vector<float>& v) {
  // FNV-1a over the f32 bit patterns: any changed bit changes it.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (float f : v) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    for (int k = 0; k < 4; ++k) h = (h ^ ((u >> (8 * k)) & 0xff)) * 0x100000001b3ULL;
  }
  return h;
}

SyntheticSpec small_spec() {
  SyntheticSpec s;
  s.classes = 4;
  s.channels = 3;
  s.steps = 8;
  s.train_per_class = 5;
  s.test_per_class = 2;
  s.seed = 42;
  return s;
}

TEST(Synthetic, ShapesAndBalance) {
  const TrainTest tt = make_synthetic(small_spec());
  EXPECT_EQ(tt.train.name, "synthetic");
  EXPECT_EQ(tt.train.size(), 20u);  // 4 classes x 5
  EXPECT_EQ(tt.test.size(), 8u);    // 4 classes x 2
  EXPECT_EQ(tt.train.dim(), 24u);   // 3 channels x 8 steps
  EXPECT_EQ(tt.train.shape, (std::vector<std::size_t>{3, 8}));
  EXPECT_EQ(tt.train.num_classes, 4);
  for (std::size_t i = 0; i < tt.train.size(); ++i) EXPECT_EQ(tt.train.labels[i], static_cast<int>(i % 4));  // interleaved
  tt.train.validate();
  tt.test.validate();
}

TEST(Synthetic, DeterministicPerSeed) {
  const SyntheticSpec s = small_spec();
  const TrainTest a = make_synthetic(s), b = make_synthetic(s);
  EXPECT_EQ(0, std::memcmp(a.train.features.data(), b.train.features.data(), a.train.features.size() * 4));
  EXPECT_EQ(0, std::memcmp(a.test.features.data(), b.test.features.data(), a.test.features.size() * 4));
  SyntheticSpec s2 = s;
  s2.seed = 43;
  EXPECT_NE(make_synthetic(s2).train.features, a.train.features);
  // Each sample has its own stream: the test split does not change with the train size.
  SyntheticSpec s3 = s;
  s3.train_per_class = 7;
  EXPECT_EQ(make_synthetic(s3).test.features, a.test.features);
  // Pinned fingerprint of the small spec, recorded from this implementation
  // (the same with GCC 12 and Clang, -O2/-O3, -march=native). Every operation
  // in the generator is an exactly specified IEEE f64 operation (+ - * / sqrt
  // floor frexp, no other libm call, no FMA), so every platform must
  // reproduce it; if it changes, every "synthetic" run changes: update it only
  // on purpose.
  EXPECT_EQ(fingerprint(a.train.features), 0x7e042de40ef4b430ULL);
}

// With noise 0 and jitter 0, x[c*T+t] = f32(a * sin(2 pi (f t / T + theta))),
// with f, a, theta the three draws of channel c from the class stream
// key(0, k) = mix64(seed ^ mix64(0 ^ mix64(k))); with jitter J the argument
// gains phi = (2u - 1) J from the sample stream key(1, i). Recomputed here
// from SplitMix64 and std::sin (1e-6 covers f32 rounding of |x| < 1.5 and
// std::sin's own rounding).
TEST(Synthetic, FollowsTheDocumentedFormula) {
  SyntheticSpec s = small_spec();
  s.noise = 0.0;
  s.phase_jitter = 0.0;
  const TrainTest tt = make_synthetic(s);
  const int T = s.steps;
  auto expected = [&](int k, int c, int t, double phi) {
    SplitMix64 g(mix64(s.seed ^ mix64(0 ^ mix64(static_cast<std::uint64_t>(k)))));
    double f = 0, a = 0, theta = 0;
    for (int cc = 0; cc <= c; ++cc) {
      f = 1.0 + (T / 4.0 - 1.0) * uniform_closed_open(g);  // fmax = T/4 = 2
      a = 0.5 + uniform_closed_open(g);
      theta = uniform_closed_open(g);
    }
    return a * std::sin(2.0 * std::numbers::pi * (f * t / T + theta + phi));
  };
  for (int i = 0; i < 8; ++i)
    for (int c = 0; c < 3; ++c)
      for (int t = 0; t < T; ++t)
        EXPECT_NEAR(tt.train.features[i * 24 + c * T + t], expected(i % 4, c, t, 0.0), 1e-6) << i << " " << c << " " << t;
  // Without noise and jitter every sample of a class is the same window.
  EXPECT_TRUE(std::equal(tt.train.features.begin(), tt.train.features.begin() + 24, tt.train.features.begin() + 4 * 24));

  s.phase_jitter = 0.25;
  const TrainTest j = make_synthetic(s);
  for (int i = 0; i < 8; ++i) {
    SplitMix64 g(mix64(s.seed ^ mix64(1 ^ mix64(static_cast<std::uint64_t>(i)))));
    const double phi = (2.0 * uniform_closed_open(g) - 1.0) * 0.25;
    for (int c = 0; c < 3; ++c)
      for (int t = 0; t < T; ++t)
        EXPECT_NEAR(j.train.features[i * 24 + c * T + t], expected(i % 4, c, t, phi), 1e-6) << i << " " << c << " " << t;
  }
}

// The noise is standard normal times `noise`: residual = noisy - noiseless
// (same seed, so same class waves and phases) over n = 2 * 4 * 64 * 50 =
// 25600 values. Tolerances are 5 standard errors: mean 5/sqrt(n) = 0.031,
// variance 5 sqrt(2/n) = 0.044, P(|z| > 2) = 0.0455 with 5 sqrt(p(1-p)/n) = 0.0065.
TEST(Synthetic, NoiseIsStandardNormal) {
  SyntheticSpec s;
  s.classes = 2;
  s.channels = 4;
  s.steps = 64;
  s.train_per_class = 50;
  s.test_per_class = 0;
  s.noise = 1.0;
  const TrainTest noisy = make_synthetic(s);
  s.noise = 0.0;
  const TrainTest clean = make_synthetic(s);
  const std::size_t n = noisy.train.features.size();
  ASSERT_EQ(n, 25600u);
  double sum = 0, sum2 = 0;
  std::size_t tail = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double r = static_cast<double>(noisy.train.features[i]) - clean.train.features[i];
    sum += r;
    sum2 += r * r;
    tail += std::abs(r) > 2.0;
  }
  const double mean = sum / n;
  EXPECT_NEAR(mean, 0.0, 0.031);
  EXPECT_NEAR(sum2 / n - mean * mean, 1.0, 0.044);
  EXPECT_NEAR(static_cast<double>(tail) / n, 0.0455, 0.0065);
}

// Nearest class mean (NCM) is a linear classifier; on the default spec
// (10 classes, 6 x 32, noise 2, jitter 1/4 turn) with 100 train / 50 test
// samples per class it must beat chance (1/10) by a wide margin.
// Expected accuracy: the class means are a * rho * sin(...) with
// rho = sin(pi/2) / (pi/2) = 2/pi, so two classes differ by
// |mu_k - mu_l|^2 ~ rho^2 * E[a^2] * C * T = 0.405 * 1.083 * 192 = 84 (distinct
// frequencies are nearly orthogonal), a distance of 9.2; against isotropic
// noise of std 2 alone a pair is confused with probability Q(9.2 / 4) = 0.011,
// so 9 rivals cost at most ~10%. The phase jitter adds within-class spread, so
// the true value is lower (0.768 measured with the default seed 1). Threshold 0.5: five
// times chance and, under the null "no better than chance" (accuracy ~
// Binomial(500, 0.1) / 500, std 0.0134), 30 standard deviations above it.
// Upper bound 0.95: the default noise and jitter keep the task from being
// trivial (jitter 0 and noise 0 would give 1.0).
double ncm_accuracy(const TrainTest& tt) {
  const std::size_t D = tt.train.dim(), K = static_cast<std::size_t>(tt.train.num_classes);
  std::vector<double> mu(K * D, 0.0);
  std::vector<int> count(K, 0);
  for (std::size_t i = 0; i < tt.train.size(); ++i) {
    const auto k = static_cast<std::size_t>(tt.train.labels[i]);
    ++count[k];
    for (std::size_t j = 0; j < D; ++j) mu[k * D + j] += tt.train.features[i * D + j];
  }
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t j = 0; j < D; ++j) mu[k * D + j] /= count[k];
  int correct = 0;
  for (std::size_t i = 0; i < tt.test.size(); ++i) {
    std::size_t best = 0;
    double best_d = INFINITY;
    for (std::size_t k = 0; k < K; ++k) {
      double d = 0;
      for (std::size_t j = 0; j < D; ++j) d += std::pow(tt.test.features[i * D + j] - mu[k * D + j], 2);
      if (d < best_d) best_d = d, best = k;
    }
    correct += best == static_cast<std::size_t>(tt.test.labels[i]);
  }
  return static_cast<double>(correct) / static_cast<double>(tt.test.size());
}

TEST(Synthetic, NearestClassMeanBeatsChanceByAWideMargin) {
  SyntheticSpec s;  // defaults, fewer samples
  s.train_per_class = 100;
  s.test_per_class = 50;
  const TrainTest tt = make_synthetic(s);
  const double acc = ncm_accuracy(tt);
  EXPECT_GT(acc, 0.5);
  EXPECT_LT(acc, 0.95);
}

TEST(Synthetic, RejectsBadParameters) {
  SyntheticSpec s;
  s.classes = 0;
  expect_error<ConfigError>([&] { make_synthetic(s); }, {"classes = 0"});
  s = SyntheticSpec{};
  s.noise = -1;
  expect_error<ConfigError>([&] { make_synthetic(s); }, {"noise = -1"});
  s = SyntheticSpec{};
  s.phase_jitter = 0.75;
  expect_error<ConfigError>([&] { make_synthetic(s); }, {"phase_jitter"});
}

// The portable sin/cos/log against libm. Exact hand values: sin_turns(1/4):
// y = 1, n = 1, theta = 0, quadrant 1 -> cos_poly(0) = 1. log_portable(1/2):
// frexp gives m = 1/2 < 1/sqrt2, so m = 1, e = -1, s = 0 -> -ln2 exactly.
TEST(Synthetic, PortableMathMatchesLibm) {
  using detail::cos_turns;
  using detail::log_portable;
  using detail::sin_turns;
  EXPECT_EQ(sin_turns(0.0), 0.0);
  EXPECT_EQ(sin_turns(0.25), 1.0);
  EXPECT_EQ(sin_turns(-0.25), -1.0);
  EXPECT_EQ(cos_turns(0.0), 1.0);
  EXPECT_EQ(cos_turns(0.5), -1.0);
  EXPECT_EQ(log_portable(1.0), 0.0);
  EXPECT_EQ(log_portable(0.5), -std::numbers::ln2);
  for (int i = -3000; i <= 3000; ++i) {
    const double x = i / 1000.0 + 1e-4;
    // std::sin(2 pi x) carries the rounding of 2 pi x, |2 pi x| ulp < 4e-15.
    ASSERT_NEAR(sin_turns(x), std::sin(2 * std::numbers::pi * x), 1e-14) << x;
    ASSERT_NEAR(cos_turns(x), std::cos(2 * std::numbers::pi * x), 1e-14) << x;
  }
  for (int i = 1; i <= 4000; ++i) {
    const double u = i / 4000.0;
    ASSERT_NEAR(log_portable(u), std::log(u), 4e-16 * std::max(1.0, std::abs(std::log(u)))) << u;
  }
  ASSERT_NEAR(log_portable(0x1p-53), std::log(0x1p-53), 1e-13);  // smallest u1 of Box-Muller
}

// ------------------------------------------------------ standardize / subset

TEST(Standardize, HandExample) {
  TrainTest tt;
  tt.train.shape = tt.test.shape = {2};
  tt.train.num_classes = tt.test.num_classes = 1;
  tt.train.features = {1, 5, 3, 5};  // feature 0: 1, 3; feature 1: 5, 5 (constant)
  tt.train.labels = {0, 0};
  tt.test.features = {4, 7};
  tt.test.labels = {0};
  const FeatureStats s = standardize(tt);
  // Feature 0: mean (1 + 3) / 2 = 2, std sqrt(((1-2)^2 + (3-2)^2) / 2) = 1.
  // Feature 1: mean 5, std 0 -> replaced by 1.
  EXPECT_EQ(s.mean, (std::vector<double>{2, 5}));
  EXPECT_EQ(s.stddev, (std::vector<double>{1, 1}));
  EXPECT_EQ(tt.train.features, (std::vector<float>{-1, 0, 1, 0}));
  // Test uses the train statistics: (4 - 2) / 1 = 2, (7 - 5) / 1 = 2.
  EXPECT_EQ(tt.test.features, (std::vector<float>{2, 2}));
}

TEST(Standardize, TrainColumnsGetMeanZeroStdOne) {
  SyntheticSpec spec = small_spec();
  TrainTest tt = make_synthetic(spec);
  standardize(tt);
  const std::size_t n = tt.train.size(), d = tt.train.dim();
  for (std::size_t j = 0; j < d; ++j) {
    double m = 0, v = 0;
    for (std::size_t i = 0; i < n; ++i) m += tt.train.features[i * d + j];
    m /= n;
    for (std::size_t i = 0; i < n; ++i) v += std::pow(tt.train.features[i * d + j] - m, 2);
    // Only f32 rounding of each value (rel. 6e-8) separates these from 0 and 1.
    EXPECT_NEAR(m, 0.0, 1e-6) << j;
    EXPECT_NEAR(std::sqrt(v / n), 1.0, 1e-6) << j;
  }
  Dataset other = tt.test;
  other.shape = {1};
  other.features.resize(other.size());
  expect_error<ConfigError>([&] { apply_standardization(other, feature_stats(tt.train)); }, {"statistics for 24 features"});
}

TEST(SubsetByClasses, KeepsOriginalOrderAndLabels) {
  Dataset d;
  d.name = "d";
  d.shape = {1};
  d.num_classes = 3;
  d.labels = {0, 1, 2, 1, 0, 2};
  d.features = {0, 1, 2, 3, 4, 5};  // feature = sample index
  const Dataset s = subset_by_classes(d, {2, 0});
  // Samples with label 0 or 2 are 0, 2, 4, 5, in that order, whatever the order of `classes`.
  EXPECT_EQ(s.features, (std::vector<float>{0, 2, 4, 5}));
  EXPECT_EQ(s.labels, (std::vector<std::int32_t>{0, 2, 0, 2}));
  EXPECT_EQ(s.num_classes, 3);
  EXPECT_EQ(subset_by_classes(d, {}).size(), 0u);
  expect_error<ConfigError>([&] { subset_by_classes(d, {3}); }, {"class 3 is outside 0..2"});
  expect_error<ConfigError>([&] { subset_by_classes(d, {1, 1}); }, {"listed twice"});
  d.labels[0] = 7;
  expect_error<ConfigError>([&] { subset_by_classes(d, {1}); }, {"label 7 of sample 0"});
}

// ------------------------------------------------------------ task splits

// Seed 0: SplitMix64's published first outputs are 0xe220a8397b1dcdaf and
// 0x6e789e6aa1b965f4. Two classes: i = 1, j = r1 % 2 = 1 (r1 is odd), no swap.
// Three classes: i = 2, j = r1 % 3 = 1 (16 = 1 mod 3, so r1 mod 3 is its hex
// digit sum 130 mod 3 = 1): swap positions 2, 1 -> {0, 2, 1}; i = 1,
// j = r2 % 2 = 0 (r2 is even): swap positions 1, 0 -> {2, 0, 1}. No rejection:
// both draws are far below the limits 2^64 - 2 and 2^64 - 1.
TEST(Tasks, ClassOrderByHand) {
  EXPECT_EQ(class_order(1, 0), (std::vector<int>{0}));
  EXPECT_EQ(class_order(2, 0), (std::vector<int>{0, 1}));
  EXPECT_EQ(class_order(3, 0), (std::vector<int>{2, 0, 1}));
}

TEST(Tasks, SplitPartitionsTheClassesDeterministically) {
  const auto t = split_into_tasks(10, 2, 7);
  ASSERT_EQ(t.size(), 5u);
  std::vector<int> flat;
  for (const auto& task : t) {
    EXPECT_EQ(task.size(), 2u);
    flat.insert(flat.end(), task.begin(), task.end());
  }
  EXPECT_EQ(flat, class_order(10, 7));  // consecutive slices of the permutation
  std::sort(flat.begin(), flat.end());
  std::vector<int> all(10);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(flat, all);  // every class exactly once
  EXPECT_EQ(split_into_tasks(10, 2, 7), t);
  EXPECT_NE(split_into_tasks(10, 2, 8), t);
  // 10 = 3 + 3 + 3 + 1: the last task is the smaller one.
  std::vector<std::size_t> sizes;
  for (const auto& task : split_into_tasks(10, 3, 7)) sizes.push_back(task.size());
  EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 3, 1}));
  EXPECT_EQ(split_into_tasks(5, 9, 1).size(), 1u);  // one task with all 5 classes
  expect_error<ConfigError>([] { split_into_tasks(10, 0, 1); }, {"classes_per_task = 0"});
  expect_error<ConfigError>([] { split_into_tasks(0, 1, 1); }, {"num_classes = 0"});
}

// Fisher-Yates with exact uniform draws makes all 3! = 6 orders equally
// likely: over seeds 0..5999 each appears 1000 times in expectation, std
// sqrt(6000 * 1/6 * 5/6) = 28.9; tolerance 5 std = 145. (An off-by-one such
// as drawing j from [0, i) would make some orders impossible.)
TEST(Tasks, ClassOrderIsUniform) {
  std::map<std::vector<int>, int> seen;
  for (std::uint64_t seed = 0; seed < 6000; ++seed) ++seen[class_order(3, seed)];
  ASSERT_EQ(seen.size(), 6u);
  for (const auto& [order, n] : seen) EXPECT_NEAR(n, 1000, 145);
}

TEST(DatasetType, ValidateCatchesInconsistency) {
  Dataset d;
  d.name = "bad";
  d.shape = {2};
  d.num_classes = 2;
  d.labels = {0, 1};
  d.features = {1, 2, 3};  // 3 values for 2 samples of 2
  expect_error<ConfigError>([&] { d.validate(); }, {"dataset 'bad'", "3 feature values for 2 samples of dimension 2"});
  d.features.push_back(4);
  d.validate();
  d.class_names = {"one"};
  expect_error<ConfigError>([&] { d.validate(); }, {"1 class names for 2 classes"});
}

}  // namespace
}  // namespace hdq::datasets
