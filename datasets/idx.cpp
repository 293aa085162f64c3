// IDX reading (format in data/idx.h) and the IDX-based loaders.
#include "datasets/idx.h"

#include <fmt/format.h>
#include <zlib.h>

#include <fmt/ranges.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "datasets/datasets.h"
#include "models/common/errors.h"
#include "models/common/input_file.h"

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
  for (std::uint32_t d : dims) n *= d;  // the reader checked that this stays within the tensor limit
  return n;
}

namespace {

// The bytes of an IDX file, decompressed on the fly when it is gzip; read(p, n)
// returns fewer than n bytes only at the end. `total()` is the whole size
// when it is known before reading (plain files, memory).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::size_t read(std::uint8_t* p, std::size_t n) = 0;
  virtual std::optional<std::uint64_t> total() const = 0;
};

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::span<const std::uint8_t> b) : b_(b) {}
  std::size_t read(std::uint8_t* p, std::size_t n) override {
    n = std::min(n, b_.size() - pos_);
    std::copy_n(b_.begin() + std::ptrdiff_t(pos_), n, p);
    pos_ += n;
    return n;
  }
  std::optional<std::uint64_t> total() const override { return b_.size(); }

 private:
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
};

// A plain file: `head` holds its first bytes, already read to look for the gzip magic.
class PlainSource final : public ByteSource {
 public:
  PlainSource(InputFile& f, std::vector<std::uint8_t> head) : f_(f), head_(std::move(head)) {}
  std::size_t read(std::uint8_t* p, std::size_t n) override {
    const std::size_t from_head = std::min(n, head_.size() - pos_);
    std::copy_n(head_.begin() + std::ptrdiff_t(pos_), from_head, p);
    pos_ += from_head;
    return from_head + (from_head < n ? f_.read(p + from_head, n - from_head) : 0);
  }
  std::optional<std::uint64_t> total() const override { return f_.size(); }

 private:
  InputFile& f_;
  std::vector<std::uint8_t> head_;
  std::size_t pos_ = 0;
};

// A gzip file: one or more gzip members back to back (what `cat a.gz b.gz`
// makes, and gzip itself accepts). Anything else after a member is junk and
// an error (zlib's gzread would ignore it). At most kMaxDataFileBytes come out.
class GzipSource final : public ByteSource {
 public:
  GzipSource(InputFile& f, const std::vector<std::uint8_t>& head) : f_(f), in_(kChunk) {
    std::copy(head.begin(), head.end(), in_.begin());
    const std::size_t n = f_.read(in_.data() + head.size(), kChunk - head.size());
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) throw DataError(fmt::format("{}: zlib cannot start", f_.name()));
    z_.next_in = in_.data();
    z_.avail_in = unsigned(head.size() + n);
  }
  ~GzipSource() override { inflateEnd(&z_); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  std::size_t read(std::uint8_t* p, std::size_t n) override {
    std::size_t got = 0;
    while (got < n && !done_) {
      if (z_.avail_in == 0 && !refill())
        throw DataError(fmt::format("{}: truncated gzip stream (the file ends inside a gzip member, after {} "
                                    "decompressed bytes)",
                                    f_.name(), out_));
      z_.next_out = p + got;
      z_.avail_out = unsigned(std::min<std::size_t>(n - got, 1u << 30));
      const unsigned before = z_.avail_out;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      got += before - z_.avail_out;
      out_ += before - z_.avail_out;
      if (out_ > kMaxDataFileBytes)
        throw DataError(fmt::format("{}: decompresses to more than the limit of {} for a data file", f_.name(),
                                    format_bytes(kMaxDataFileBytes)));
      if (rc == Z_STREAM_END) end_of_member();
      else if (rc != Z_OK && rc != Z_BUF_ERROR)  // Z_BUF_ERROR: no input left, refilled above
        throw DataError(fmt::format("{}: corrupt gzip data ({})", f_.name(), z_.msg ? z_.msg : zError(rc)));
    }
    return got;
  }
  std::optional<std::uint64_t> total() const override { return std::nullopt; }

 private:
  static constexpr std::size_t kChunk = 1 << 16;

  bool refill() {
    z_.next_in = in_.data();
    z_.avail_in = unsigned(f_.read(in_.data(), kChunk));
    return z_.avail_in > 0;
  }
  // After a member: the file ends, another member starts (1f 8b), or junk follows.
  void end_of_member() {
    if (z_.avail_in == 0 && !refill()) {
      done_ = true;
      return;
    }
    if (z_.avail_in == 1) {  // bring the next byte beside the last one
      in_[0] = *z_.next_in;
      z_.next_in = in_.data();
      z_.avail_in = unsigned(1 + f_.read(in_.data() + 1, kChunk - 1));
    }
    if (z_.avail_in >= 2 && z_.next_in[0] == 0x1f && z_.next_in[1] == 0x8b) {
      inflateReset(&z_);
      return;
    }
    const std::uint64_t junk = z_.avail_in + (f_.size() - std::min(f_.size(), f_.offset()));
    throw DataError(fmt::format("{}: {} bytes of junk after the gzip stream (the file must end where the gzip data ends)",
                                f_.name(), junk));
  }

  InputFile& f_;
  std::vector<std::uint8_t> in_;
  std::uint64_t out_ = 0;
  bool done_ = false;
  z_stream z_{};
};

}  // namespace
namespace {

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
}

// "3 x 28 x 28"; beyond 6 dimensions the first three, the last and the count.
std::string shape_text(const std::vector<std::uint32_t>& d) {
  if (d.size() > 6) return fmt::format("{} x {} x {} x ... x {} ({} dimensions)", d[0], d[1], d[2], d.back(), d.size());
  return fmt::format("{}", fmt::join(d, " x "));
}

// Reads an IDX array from `src` (the content of `where`): the magic number
// first (and, when `expected` is given, that value), then the dimensions, and
// only once the element count is within the tensor limit (and, when the size
// is known, matches it) the elements, in chunks, so that a header promising
// more than the file holds costs no more memory than the file. Nothing may
// follow the elements.
IdxArray read_idx_from(ByteSource& src, const std::string& where, std::optional<std::uint32_t> expected) {
  auto fail = [&](const std::string& what) { return DataError(fmt::format("{}: {}", where, what)); };
  IdxArray a;
  a.bytes.resize(4);
  const std::size_t got = src.read(a.bytes.data(), 4);
  if (got < 4)
    throw fail(fmt::format("truncated IDX header: the file has {} bytes, the magic number alone needs 4", got));
  const std::uint32_t magic = be32(a.bytes.data());
  const std::size_t esize = idx_element_size(a.bytes[2]);
  if (a.bytes[0] != 0 || a.bytes[1] != 0 || esize == 0 || a.bytes[3] == 0)
    throw fail(fmt::format("bad IDX magic number 0x{:08x}: an IDX file starts with 00 00, a type code "
                           "(08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64) and a number of dimensions >= 1",
                           magic));
  if (expected && magic != *expected)
    throw fail(fmt::format("IDX magic number is 0x{:08x} (type 0x{:02x}, {} dimensions)", magic, a.bytes[2], a.bytes[3]));
  a.type_code = a.bytes[2];
  const std::size_t ndims = a.bytes[3];
  a.data_offset = 4 + 4 * ndims;
  a.bytes.resize(a.data_offset);
  const std::size_t dims_got = src.read(a.bytes.data() + 4, 4 * ndims);
  if (dims_got < 4 * ndims)
    throw fail(fmt::format("truncated IDX header: {} dimensions need {} header bytes, the file has {}", ndims,
                           a.data_offset, 4 + dims_got));
  for (std::size_t k = 0; k < ndims; ++k) a.dims.push_back(be32(a.bytes.data() + 4 + 4 * k));
  const std::string shape = shape_text(a.dims);
  // The product stops as soon as it passes the limit, so it cannot overflow.
  std::uint64_t count = std::find(a.dims.begin(), a.dims.end(), 0u) != a.dims.end() ? 0 : 1;
  for (std::size_t k = 0; k < ndims && count != 0; ++k)
    if ((count *= a.dims[k]) > kMaxTensorElements)
      throw fail(fmt::format("the header promises {} elements, more than the limit of 2^28 elements per tensor", shape));
  const std::uint64_t need = count * esize;
  auto truncated = [&](std::uint64_t have) {
    return fail(fmt::format("truncated IDX file: the header promises {} = {} elements of {} byte(s), "
                            "but only {} data bytes follow",
                            shape, count, esize, have));
  };
  auto trailing = [&](std::uint64_t extra) {
    return fail(fmt::format("trailing garbage: {} bytes after the {} = {} elements the header promises", extra, shape,
                            count));
  };
  if (const auto total = src.total()) {
    const std::uint64_t have = *total - a.data_offset;  // the header was read, so total >= data_offset
    if (need > have) throw truncated(have);
    if (need < have) throw trailing(have - need);
  }
  // Unknown length (gzip): chunks of 64 KiB, then as large as what was read, so
  // the buffer stays within twice the bytes the stream really holds.
  std::uint64_t have = 0;
  while (have < need) {
    const std::uint64_t chunk = src.total() ? need : std::max<std::uint64_t>(std::uint64_t{1} << 16, have);
    const std::size_t step = std::size_t(std::min(need - have, chunk));
    a.bytes.resize(a.data_offset + have + step);
    const std::size_t n = src.read(a.bytes.data() + a.data_offset + have, step);
    have += n;
    if (n < step) throw truncated(have);
  }
  std::uint64_t extra = 0;
  std::uint8_t scratch[4096];
  while (const std::size_t n = src.read(scratch, sizeof scratch)) extra += n;
  if (extra > 0) throw trailing(extra);
  return a;
}

// Opens `path` (DataError naming it for anything but a readable regular file
// within the size limit) and hands its bytes, gunzipped when it starts with
// the gzip magic 1f 8b, to use(ByteSource&).
template <typename F>
auto with_source(const fs::path& path, F&& use) {
  return rethrow_input_error<DataError>([&] {
    InputFile file(path, kMaxDataFileBytes, "a data file");
    std::vector<std::uint8_t> head(2);
    head.resize(file.read(head.data(), head.size()));
    if (head.size() == 2 && head[0] == 0x1f && head[1] == 0x8b) {
      GzipSource src(file, head);
      return use(src);
    }
    PlainSource src(file, std::move(head));
    return use(src);
  });
}

}  // namespace

std::vector<std::uint8_t> read_file_maybe_gzip(const fs::path& path) {
  return with_source(path, [&](ByteSource& src) {
    std::vector<std::uint8_t> out;
    for (;;) {
      const std::size_t old = out.size(), step = std::size_t{1} << 20;
      out.resize(old + step);
      const std::size_t n = src.read(out.data() + old, step);
      out.resize(old + n);
      if (n < step) return out;
    }
  });
}

IdxArray parse_idx(std::vector<std::uint8_t> bytes, const std::string& where) {
  MemorySource src(bytes);
  return read_idx_from(src, where, std::nullopt);
}

IdxArray read_idx(const fs::path& path) {
  return with_source(path, [&](ByteSource& src) { return read_idx_from(src, path.string(), std::nullopt); });
}

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
  try {
    return with_source(path, [&](ByteSource& src) { return read_idx_from(src, path.string(), magic); });
  } catch (const DataError& e) {
    fail(e.what(), expected, hint);
  }
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
  if (n == 0) fail(fmt::format("{}: holds 0 images, an empty data set", images_path.string()), kImagesFormat, hint);
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
