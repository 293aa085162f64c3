// IDX files, plain and gzip. The whole input is read as an IDX file (as it
// is: plain, or gzip when it starts with 1f 8b), gzip-compressed by the
// harness (so the IDX parser also sees gzip streams that decode), and from
// memory. Then the input is cut in two (the first 4 bytes, little-endian,
// modulo the rest's length, give the images part's length) and loaded as an
// images file and a labels file of 10 classes. Only DataError may come out.
#include <cstdint>

#include "datasets/datasets.h"
#include "datasets/idx.h"
#include "fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hdq::datasets;
  namespace fz = hdq::fuzz;
  const std::string whole(reinterpret_cast<const char*>(data), size);
  const auto dir = fz::scratch("idx");
  fz::write_file(dir / "a", whole);
  fz::write_file(dir / "a.gz", fz::gzip(whole));
  for (const char* name : {"a", "a.gz"}) {
    try {
      read_idx(dir / name);
    } catch (const DataError&) {
    }
  }
  try {
    read_file_maybe_gzip(dir / "a");
  } catch (const DataError&) {
  }
  try {
    parse_idx(std::vector<std::uint8_t>(data, data + size), "memory");
  } catch (const DataError&) {
  }
  if (size < 4) return 0;
  const std::uint32_t cut = std::uint32_t(data[0]) | std::uint32_t(data[1]) << 8 | std::uint32_t(data[2]) << 16 |
                            std::uint32_t(data[3]) << 24;
  const std::size_t images = (size - 4) ? cut % (size - 4 + 1) : 0;
  fz::write_file(dir / "images", whole.substr(4, images));
  fz::write_file(dir / "labels", whole.substr(4 + images));
  try {
    load_idx_classification(dir / "images", dir / "labels", 10, "fuzz");
  } catch (const DataError&) {
  }
  return 0;
}
