// IDX reading (format in data/idx.h) and the IDX-based loaders.
#include "datasets/idx.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <system_error>

#include "datasets/datasets.h"
#include "models/common/errors.h"

namespace hdq::datasets {
namespace fs = std::filesystem;

std::size_t idx_element_size(std::uint8_t type_code) {
  switch (type_code) {
    case 0x08: return 1;  // unsigned byte
    case 0x09: return 1;  // signed byte
    case 0x0B: return 2;  // short (i16)
    case 0x0C: return 4;  // int (i32)
    case 0x0D: return 4;  // float (f32)
    case 0x0E: return 8;  // double (f64)
    default: return 0;
  }
}

std::uint64_t IdxArray::count() const {
  std::uint64_t n = 1;
  for (std::uint32_t d : dims) n *= d;  // parse_idx checked that this cannot overflow
  return n;
}

std::vector<std::uint8_t> read_file_maybe_gzip(const fs::path& path) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (!fs::exists(st)) throw DataError(fmt::format("{}: no such file", path.string()));
  if (fs::is_directory(st)) throw DataError(fmt::format("{}: is a directory, not a file", path.string()));

  // gzopen/gzread decode gzip and pass any other file through unchanged
  // ("transparent" mode), so one code path reads both.
  errno = 0;
  const std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), gzclose);
  if (!f) throw DataError(fmt::format("{}: cannot open: {}", path.string(), errno ? std::strerror(errno) : "zlib error"));
  gzbuffer(f.get(), 1u << 17);

  std::vector<std::uint8_t> out;
  constexpr unsigned kChunk = 1u << 20;
  for (;;) {
    const std::size_t old = out.size();
    out.resize(old + kChunk);
    const int n = gzread(f.get(), out.data() + old, kChunk);
    if (n < 0) {
      int err = Z_OK;
      const char* msg = gzerror(f.get(), &err);
      throw DataError(fmt::format("{}: read error: {} (corrupt gzip data?)", path.string(),
                                  err == Z_ERRNO ? std::strerror(errno) : msg));
    }
    out.resize(old + static_cast<std::size_t>(n));
    if (n == 0) break;
  }
  // zlib reports a gzip stream that ends early not by -1 but by Z_BUF_ERROR
  // after returning the bytes it could decode.
  int err = Z_OK;
  const char* msg = gzerror(f.get(), &err);
  if (err == Z_BUF_ERROR) throw DataError(fmt::format("{}: truncated gzip stream ({})", path.string(), msg));
  if (err != Z_OK) throw DataError(fmt::format("{}: read error: {}", path.string(), msg));
  return out;
}

IdxArray parse_idx(std::vector<std::uint8_t> bytes, const std::string& where) {
  auto fail = [&](const std::string& what) -> DataError { return DataError(fmt::format("{}: {}", where, what)); };
  if (bytes.size() < 4)
    throw fail(fmt::format("truncated IDX header: the file has {} bytes, the magic number alone needs 4", bytes.size()));
  const std::uint32_t magic = (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
                              (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
  const std::size_t esize = idx_element_size(bytes[2]);
  if (bytes[0] != 0 || bytes[1] != 0 || esize == 0 || bytes[3] == 0)
    throw fail(fmt::format("bad IDX magic number 0x{:08x}: an IDX file starts with 00 00, a type code "
                           "(08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64) and a number of dimensions >= 1",
                           magic));
  IdxArray a;
  a.type_code = bytes[2];
  const std::size_t ndims = bytes[3];
  a.data_offset = 4 + 4 * ndims;
  if (bytes.size() < a.data_offset)
    throw fail(fmt::format("truncated IDX header: {} dimensions need {} header bytes, the file has {}", ndims,
                           a.data_offset, bytes.size()));
  for (std::size_t k = 0; k < ndims; ++k) {
    const std::uint8_t* p = bytes.data() + 4 + 4 * k;
    a.dims.push_back((std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
                     std::uint32_t{p[3]});
  }
  // count = product of dims. Multiplying stops once the product exceeds 2^32
  // (no file holds that many elements, it is reported as truncated), so the
  // u64 product never overflows; a zero dimension makes the count 0 outright.
  std::uint64_t count = 1;
  bool too_big = false;
  if (std::find(a.dims.begin(), a.dims.end(), 0u) != a.dims.end()) count = 0;
  for (std::size_t k = 0; k < ndims && count != 0 && !too_big; ++k) {
    count *= a.dims[k];
    too_big = count > (std::uint64_t{1} << 32);
  }
  const std::uint64_t have = bytes.size() - a.data_offset;
  std::string shape;  // "3 x 28 x 28"
  for (std::uint32_t d : a.dims) shape += (shape.empty() ? "" : " x ") + std::to_string(d);
  if (too_big || count * esize > have)
    throw fail(fmt::format("truncated IDX file: the header promises {} = {} elements of {} byte(s), "
                           "but only {} data bytes follow",
                           shape, too_big ? std::string("more than 2^32") : std::to_string(count), esize, have));
  if (count * esize < have)
    throw fail(fmt::format("trailing garbage: {} bytes after the {} = {} elements the header promises",
                           have - count * esize, shape, count));
  a.bytes = std::move(bytes);
  return a;
}

IdxArray read_idx(const fs::path& path) { return parse_idx(read_file_maybe_gzip(path), path.string()); }

namespace {

constexpr std::string_view kImagesFormat =
    "an IDX images file: magic 0x00000803 (unsigned byte, 3 dimensions N x rows x cols), gzip-compressed or plain";
constexpr std::string_view kLabelsFormat =
    "an IDX labels file: magic 0x00000801 (unsigned byte, 1 dimension N), gzip-compressed or plain";

// Everything a loader says ends in "(expected <format>)" and the caller's hint.
[[noreturn]] void fail(const std::string& message, std::string_view expected, std::string_view hint) {
  throw DataError(fmt::format("{} (expected {}){}{}", message, expected, hint.empty() ? "" : "; ", hint));
}

IdxArray read_expected(const fs::path& path, std::uint32_t magic, std::string_view expected, std::string_view hint) {
  IdxArray a;
  try {
    a = read_idx(path);
  } catch (const DataError& e) {
    fail(e.what(), expected, hint);
  }
  if (a.magic() != magic)
    fail(fmt::format("{}: IDX magic number is 0x{:08x} (type 0x{:02x}, {} dimensions)", path.string(), a.magic(),
                     a.type_code, a.dims.size()),
         expected, hint);
  return a;
}

Dataset load_idx_impl(const fs::path& images_path, const fs::path& labels_path, int num_classes,
                      const std::string& name, std::string_view hint) {
  const IdxArray images = read_expected(images_path, 0x00000803, kImagesFormat, hint);
  const IdxArray labels = read_expected(labels_path, 0x00000801, kLabelsFormat, hint);
  const std::uint32_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
  if (labels.dims[0] != n)
    fail(fmt::format("{} holds {} images but {} holds {} labels", images_path.string(), n, labels_path.string(),
                     labels.dims[0]),
         "as many labels as images", hint);
  if (rows == 0 || cols == 0)
    fail(fmt::format("{}: images are {} x {}", images_path.string(), rows, cols), kImagesFormat, hint);

  Dataset ds;
  ds.name = name;
  ds.num_classes = num_classes;
  ds.shape = {rows, cols};
  const auto label_bytes = labels.data();
  ds.labels.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (label_bytes[i] >= num_classes)
      fail(fmt::format("{}: label {} of sample {} is not below the number of classes {}", labels_path.string(),
                       label_bytes[i], i, num_classes),
           fmt::format("labels 0..{}", num_classes - 1), hint);
    ds.labels[i] = label_bytes[i];
  }
  const auto pixels = images.data();
  ds.features.resize(pixels.size());
  // x / 255.0f: one correctly rounded f32 division per pixel, in [0, 1].
  std::transform(pixels.begin(), pixels.end(), ds.features.begin(),
                 [](std::uint8_t p) { return static_cast<float>(p) / 255.0f; });
  return ds;
}

void keep_first(Dataset& ds, std::size_t limit) {
  if (limit == 0 || limit >= ds.size()) return;
  ds.features.resize(limit * ds.dim());
  ds.labels.resize(limit);
}

}  // namespace

Dataset load_idx_classification(const fs::path& images, const fs::path& labels, int num_classes,
                                const std::string& name) {
  if (num_classes < 1 || num_classes > 256)
    throw ConfigError(fmt::format("load_idx_classification: num_classes = {} is outside 1..256 (u8 labels)", num_classes));
  return load_idx_impl(images, labels, num_classes, name, "");
}

TrainTest load_fashion_mnist(const fs::path& dir, std::size_t limit_train, std::size_t limit_test) {
  constexpr std::string_view kHint =
      "Fashion-MNIST comes from Debian: install the Debian package dataset-fashion-mnist "
      "(apt-get install dataset-fashion-mnist), which provides /usr/share/datasets/fashion-mnist";
  // <stem>.gz, or <stem> uncompressed if only that exists.
  auto locate = [&](const std::string& stem, std::string_view expected) {
    const fs::path gz = dir / (stem + ".gz"), plain = dir / stem;
    std::error_code ec;
    if (fs::exists(gz, ec)) return gz;
    if (fs::exists(plain, ec)) return plain;
    fail(fmt::format("{}: no such file (nor the uncompressed {})", gz.string(), plain.string()), expected, kHint);
  };
  auto split = [&](const std::string& prefix, std::size_t limit) {
    const fs::path images = locate(prefix + "-images-idx3-ubyte", kImagesFormat);  // images first: the
    const fs::path labels = locate(prefix + "-labels-idx1-ubyte", kLabelsFormat);  // message order is fixed
    Dataset ds = load_idx_impl(images, labels, 10, "fashion-mnist", kHint);
    if (ds.shape != std::vector<std::size_t>{28, 28})
      fail(fmt::format("{}: images are {} x {}", images.string(), ds.shape[0], ds.shape[1]),
           "Fashion-MNIST images of 28 x 28 pixels", kHint);
    ds.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    keep_first(ds, limit);
    return ds;
  };
  TrainTest tt;
  tt.train = split("train", limit_train);
  tt.test = split("t10k", limit_test);
  return tt;
}

}  // namespace hdq::datasets
