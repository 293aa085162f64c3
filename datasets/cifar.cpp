// The CIFAR-10/100 binary reader (format in datasets/cifar.h).
#include "datasets/cifar.h"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "models/common/input_file.h"

namespace hdq::datasets {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kHint10 =
    "CIFAR-10 is not in Debian: download the binary version (cifar-10-binary.tar.gz) from "
    "https://www.cs.toronto.edu/~kriz/cifar.html and extract it; the folder must hold data_batch_1.bin .. "
    "data_batch_5.bin and test_batch.bin (the archive's cifar-10-batches-bin/, a scenario's data.path), see "
    "docs/datasets.md";
constexpr std::string_view kHint100 =
    "CIFAR-100 is not in Debian: download the binary version (cifar-100-binary.tar.gz) from "
    "https://www.cs.toronto.edu/~kriz/cifar.html and extract it; the folder must hold train.bin and test.bin (the "
    "archive's cifar-100-binary/, a scenario's data.path), see docs/datasets.md";

struct Format {
  std::size_t label_bytes;  // bytes before the pixels
  std::size_t label_byte;   // which of them is the label
  int num_classes;
  const char* name;
};

Format format_of(CifarVariant v, CifarLabels labels) {
  if (v == CifarVariant::cifar10) return {1, 0, 10, "cifar-10"};
  return labels == CifarLabels::coarse ? Format{2, 0, 20, "cifar-100"} : Format{2, 1, 100, "cifar-100"};
}

// The whole file, opened the one way every reader opens an input
// (models/common/input_file.h): a regular file of at most `max_bytes`.
std::string read_whole(const fs::path& file, std::uint64_t max_bytes, std::string_view kind) {
  return rethrow_input_error<DataError>([&] { return read_input_file(file, max_bytes, kind); });
}

void keep_first(Dataset& ds, std::size_t limit) {
  if (limit == 0 || limit >= ds.size()) return;
  ds.features.resize(limit * ds.dim());
  ds.labels.resize(limit);
}

// Class names from an optional text file of one name per line.
std::vector<std::string> read_names(const fs::path& file, int num_classes) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return {};
  const std::string bytes = read_whole(file, kMaxConfigFileBytes, "a class-names file");
  std::vector<std::string> names;
  std::string line;
  for (std::size_t i = 0; i <= bytes.size(); ++i) {
    if (i == bytes.size() || bytes[i] == '\n') {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      names.push_back(line);
      line.clear();
    } else {
      line.push_back(bytes[i]);
    }
  }
  while (!names.empty() && names.back().empty()) names.pop_back();
  if (int(names.size()) != num_classes)
    throw DataError(fmt::format("{}: {} class names, expected {} (one per line)", file.string(), names.size(),
                                num_classes));
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i].empty()) throw DataError(fmt::format("{}:{}: blank class name", file.string(), i + 1));
  return names;
}

void require_dir(const fs::path& dir, std::string_view hint) {
  std::error_code ec;
  const auto st = fs::status(dir, ec);
  if (!fs::exists(st)) throw DataError(fmt::format("{}: no such folder. {}", dir.string(), hint));
  if (!fs::is_directory(st)) throw DataError(fmt::format("{}: not a folder. {}", dir.string(), hint));
}

Dataset read_in(const fs::path& dir, const std::string& file, CifarVariant v, CifarLabels labels,
                std::string_view hint) {
  const fs::path path = dir / file;
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw DataError(fmt::format("{}: no such file (the folder exists but lacks it). {}", path.string(), hint));
  return read_cifar_file(path, v, labels);
}

}  // namespace

Dataset read_cifar_file(const fs::path& file, CifarVariant variant, CifarLabels labels) {
  const Format f = format_of(variant, labels);
  const std::size_t record = f.label_bytes + kCifarPixels;
  const std::string bytes = read_whole(file, kMaxDataFileBytes, "a data file");
  if (bytes.empty())
    throw DataError(fmt::format("{}: empty file ({} records of {} bytes expected)", file.string(), f.name, record));
  if (bytes.size() % record != 0)
    throw DataError(fmt::format("{}: {} bytes is not a whole number of {}-byte {} records: record {} is cut short "
                                "after {} bytes (truncated file?)",
                                file.string(), bytes.size(), record, f.name, bytes.size() / record,
                                bytes.size() % record));
  const std::size_t n = bytes.size() / record;
  Dataset ds;
  ds.name = f.name;
  ds.shape = {3, 32, 32};
  ds.num_classes = f.num_classes;
  ds.labels.resize(n);
  ds.features.resize(n * kCifarPixels);
  for (std::size_t r = 0; r < n; ++r) {
    const auto* rec = reinterpret_cast<const std::uint8_t*>(bytes.data()) + r * record;
    const int label = rec[f.label_byte];
    if (label >= f.num_classes)
      throw DataError(fmt::format("{}: record {} (byte offset {}): label {} is outside 0..{} ({}{})", file.string(), r,
                                  r * record + f.label_byte, label, f.num_classes - 1, f.name,
                                  variant == CifarVariant::cifar100
                                      ? (labels == CifarLabels::fine ? ", fine label" : ", coarse label")
                                      : ""));
    ds.labels[r] = label;
    float* out = ds.features.data() + r * kCifarPixels;
    for (std::size_t i = 0; i < kCifarPixels; ++i) out[i] = float(rec[f.label_bytes + i]) / 255.0f;
  }
  return ds;
}

TrainTest load_cifar10(const fs::path& dir, std::size_t limit_train, std::size_t limit_test) {
  require_dir(dir, kHint10);
  TrainTest tt;
  for (int b = 1; b <= 5; ++b) {
    Dataset part = read_in(dir, fmt::format("data_batch_{}.bin", b), CifarVariant::cifar10, CifarLabels::fine, kHint10);
    if (b == 1) {
      tt.train = std::move(part);
      continue;
    }
    tt.train.features.insert(tt.train.features.end(), part.features.begin(), part.features.end());
    tt.train.labels.insert(tt.train.labels.end(), part.labels.begin(), part.labels.end());
  }
  tt.test = read_in(dir, "test_batch.bin", CifarVariant::cifar10, CifarLabels::fine, kHint10);
  const std::vector<std::string> names = read_names(dir / "batches.meta.txt", 10);
  tt.train.class_names = tt.test.class_names = names;
  keep_first(tt.train, limit_train);
  keep_first(tt.test, limit_test);
  return tt;
}

TrainTest load_cifar100(const fs::path& dir, CifarLabels labels, std::size_t limit_train, std::size_t limit_test) {
  require_dir(dir, kHint100);
  TrainTest tt;
  tt.train = read_in(dir, "train.bin", CifarVariant::cifar100, labels, kHint100);
  tt.test = read_in(dir, "test.bin", CifarVariant::cifar100, labels, kHint100);
  const bool fine = labels == CifarLabels::fine;
  const std::vector<std::string> names =
      read_names(dir / (fine ? "fine_label_names.txt" : "coarse_label_names.txt"), fine ? 100 : 20);
  tt.train.class_names = tt.test.class_names = names;
  keep_first(tt.train, limit_train);
  keep_first(tt.test, limit_test);
  return tt;
}

}  // namespace hdq::datasets
