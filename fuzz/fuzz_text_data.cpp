// The text data formats. Input: up to four parts separated by NUL bytes.
// Parts 0 and 1 are read as a CSV train/test pair (and part 0 alone); parts
// 0..3 as the flat UCI-HAR layout X_train.txt, y_train.txt, X_test.txt,
// y_test.txt. Only DataError may come out.
#include <cstdint>

#include "datasets/datasets.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hdq::datasets;
  namespace fz = hdq::fuzz;
  const auto parts = fz::split_parts(data, size, 4);
  const auto dir = fz::scratch("text");
  fz::write_file(dir / "train.csv", parts[0]);
  fz::write_file(dir / "test.csv", parts[1]);
  try {
    load_csv_pair(dir / "train.csv", dir / "test.csv");
  } catch (const DataError&) {
  }
  try {
    load_csv(dir / "train.csv");
  } catch (const DataError&) {
  }
  const char* har[] = {"X_train.txt", "y_train.txt", "X_test.txt", "y_test.txt"};
  for (int i = 0; i < 4; ++i) fz::write_file(dir / har[i], parts[std::size_t(i)]);
  try {
    load_uci_har(dir);
  } catch (const DataError&) {
  }
  return 0;
}
