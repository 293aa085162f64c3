// The CIFAR-10/100 binary reader (datasets/cifar.h). The whole input is read
// as one file in each record layout: CIFAR-10, CIFAR-100 fine, CIFAR-100
// coarse. Then it is cut into a folder: bytes 0..1 and 2..3 (little-endian,
// each modulo what is left, plus 1) give the lengths of a train part and a
// test part after the 5-byte header; the rest is a class-names file (absent
// when empty). Byte 4 gives limit_train (low 4 bits) and limit_test (high 4
// bits). CIFAR-10's folder gets the train part as each of its five batches,
// CIFAR-100's as train.bin, both as fine and as coarse labels. Only DataError
// may come out, and what is returned must be a consistent data set of the
// layout's shape, classes and limits.
#include <cstdint>
#include <cstdlib>

#include "datasets/cifar.h"
#include "fuzz/fuzz_util.h"

namespace {
using namespace hdq::datasets;

// A returned data set must hold what cifar.h promises; anything else aborts
// (a finding).
void check(const Dataset& ds, int num_classes, std::size_t limit = 0) {
  ds.validate();  // ConfigError (not caught: a finding) when inconsistent
  if (ds.shape != std::vector<std::size_t>{3, 32, 32} || ds.num_classes != num_classes || ds.size() == 0 ||
      (limit > 0 && ds.size() > limit))
    std::abort();
  for (const float x : ds.features)
    if (!(x >= 0.0f && x <= 1.0f)) std::abort();
}

void check(const TrainTest& tt, int num_classes, std::size_t limit_train, std::size_t limit_test) {
  check(tt.train, num_classes, limit_train);
  check(tt.test, num_classes, limit_test);
  if (tt.train.class_names != tt.test.class_names) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fz = hdq::fuzz;
  const std::string whole(reinterpret_cast<const char*>(data), size);
  const auto dir = fz::scratch("cifar");
  fz::write_file(dir / "file.bin", whole);
  try {
    check(read_cifar_file(dir / "file.bin", CifarVariant::cifar10), 10);
  } catch (const DataError&) {
  }
  for (const CifarLabels labels : {CifarLabels::fine, CifarLabels::coarse}) {
    try {
      check(read_cifar_file(dir / "file.bin", CifarVariant::cifar100, labels), labels == CifarLabels::fine ? 100 : 20);
    } catch (const DataError&) {
    }
  }
  if (size < 5) return 0;
  std::size_t rest = size - 5;
  const std::size_t train_len = (std::size_t(data[0]) | std::size_t(data[1]) << 8) % (rest + 1);
  rest -= train_len;
  const std::size_t test_len = (std::size_t(data[2]) | std::size_t(data[3]) << 8) % (rest + 1);
  const std::size_t limit_train = data[4] & 15, limit_test = data[4] >> 4;
  const std::string train = whole.substr(5, train_len), test = whole.substr(5 + train_len, test_len),
                    names = whole.substr(5 + train_len + test_len);

  const auto c10 = fz::scratch("cifar-10-batches-bin", true);  // no names file of an earlier input may stay
  for (int b = 1; b <= 5; ++b) fz::write_file(c10 / ("data_batch_" + std::to_string(b) + ".bin"), train);
  fz::write_file(c10 / "test_batch.bin", test);
  if (!names.empty()) fz::write_file(c10 / "batches.meta.txt", names);
  try {
    check(load_cifar10(c10, limit_train, limit_test), 10, limit_train, limit_test);
  } catch (const DataError&) {
  }

  const auto c100 = fz::scratch("cifar-100-binary", true);
  fz::write_file(c100 / "train.bin", train);
  fz::write_file(c100 / "test.bin", test);
  if (!names.empty()) {
    fz::write_file(c100 / "fine_label_names.txt", names);
    fz::write_file(c100 / "coarse_label_names.txt", names);
  }
  for (const CifarLabels labels : {CifarLabels::fine, CifarLabels::coarse}) {
    try {
      check(load_cifar100(c100, labels, limit_train, limit_test), labels == CifarLabels::fine ? 100 : 20, limit_train,
            limit_test);
    } catch (const DataError&) {
    }
  }
  return 0;
}
