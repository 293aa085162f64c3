// IDX files (the MNIST / Fashion-MNIST container), gzip-compressed or plain.
//
// Layout (all integers big-endian):
//   byte 0, 1   0x00 0x00
//   byte 2      element type: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64
//   byte 3      number of dimensions n (>= 1 here)
//   4 * n bytes the dimensions d_0 .. d_{n-1}, u32 each
//   then        d_0 * ... * d_{n-1} elements, row-major (last index fastest)
// So "magic" 0x00000803 is u8 with 3 dimensions (images N x rows x cols) and
// 0x00000801 u8 with 1 dimension (labels N). The file must be exactly
// 4 + 4n + count * element_size bytes long (after gunzip): fewer bytes is a
// truncated file, more is trailing garbage; both are errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace hdq::datasets {

struct IdxArray {
  std::uint8_t type_code = 0;          // byte 2 of the magic
  std::vector<std::uint32_t> dims;     // d_0 .. d_{n-1}
  std::vector<std::uint8_t> bytes;     // the whole (decompressed) file
  std::size_t data_offset = 0;         // 4 + 4n: where the elements start

  std::uint32_t magic() const { return (std::uint32_t{type_code} << 8) | static_cast<std::uint32_t>(dims.size()); }
  std::uint64_t count() const;                       // product of dims
  std::span<const std::uint8_t> data() const {       // elements as stored (big-endian if wider than a byte)
    return std::span<const std::uint8_t>(bytes).subspan(data_offset);
  }
};

// Bytes of the element type, 0 for an unknown type code.
std::size_t idx_element_size(std::uint8_t type_code);

// Every file is opened as models/common/input_file.h says: a regular file
// of at most 2 GiB (a FIFO, a device or a directory is refused at once). A
// file starting with the gzip magic 1f 8b is gunzipped: one or more gzip
// members back to back, nothing after them, at most 2 GiB decompressed.

// The whole content of `path`, gunzipped if it is gzip. DataError naming the
// file if it is missing, not a regular file, too large, unreadable, a corrupt
// gzip stream, a gzip stream cut short or followed by junk.
std::vector<std::uint8_t> read_file_maybe_gzip(const std::filesystem::path& path);

// Parses `bytes` (the content of `where`, named in errors) as IDX: the magic
// number, then the dimensions, then the element count (at most 2^28,
// hdq::kMaxTensorElements) against the length.
IdxArray parse_idx(std::vector<std::uint8_t> bytes, const std::string& where);

// The same read from `path` (gunzipped when gzip), checking the header before
// the elements are read: a file whose header promises more than it holds
// costs no more memory than its size.
IdxArray read_idx(const std::filesystem::path& path);

}  // namespace hdq::datasets
