// How the NPU's blocks see memory, and the data formats in SRAM and DRAM.
//
// Formats (little-endian, rows padded to a whole byte):
//   f32, i32       4 bytes per element, row pitch = 4 * cols
//   packed int-k   element c of a row in bits [c*k, (c+1)*k) of the row, LSB
//                  first; two's complement when the tensor is signed, plain
//                  binary when unsigned (its QuantRecord says which);
//                  row pitch = ceil(cols * k / 8)
//   mask           1 bit per element, LSB first, row pitch = ceil(cols / 8)
// A column slice [c0, c1) of a packed or mask row starts on a byte when
// c0 * bits is a multiple of 8; the host only cuts columns there.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace hdq::npu {

// Byte-addressed memory as a functional block sees it: an SRAM seen through a
// TLM socket, or a plain byte array in tests. Two ways in: copies (read,
// write: b_transport through a socket) and direct access to the bytes
// (read_direct, write_direct: TLM DMI through a socket), which the blocks use
// for their operand and result buffers. Either way the bytes are charged as
// memory traffic.
class MemoryPort {
 public:
  virtual ~MemoryPort() = default;
  virtual void read(std::uint64_t addr, std::span<std::uint8_t> out) = 0;
  virtual void write(std::uint64_t addr, std::span<const std::uint8_t> in) = 0;
  // A 2-D block: `rows` runs of `row_bytes` bytes, `pitch` bytes apart from
  // `addr`. A pointer to its first byte, charged as the rows * row_bytes bytes
  // read (written), not the gaps; valid until the memory is resized.
  virtual const std::uint8_t* read_block(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                                         std::uint64_t row_bytes) = 0;
  virtual std::uint8_t* write_block(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                                    std::uint64_t row_bytes) = 0;
  // `len` bytes at `addr`, charged as read (written).
  const std::uint8_t* read_direct(std::uint64_t addr, std::uint64_t len) { return read_block(addr, len, 1, len); }
  std::uint8_t* write_direct(std::uint64_t addr, std::uint64_t len) { return write_block(addr, len, 1, len); }
  // Bytes from the first to the last byte of a block (0 when it is empty).
  static std::uint64_t block_span(std::uint64_t pitch, std::uint64_t rows, std::uint64_t row_bytes) {
    return rows == 0 ? 0 : (rows - 1) * pitch + row_bytes;
  }

  // n values of T at addr (which must be aligned for T), without a copy.
  template <typename T>
  std::span<const T> in(std::uint64_t addr, std::size_t n) {
    check_aligned(addr, alignof(T));
    return {reinterpret_cast<const T*>(read_direct(addr, n * sizeof(T))), n};
  }
  template <typename T>
  std::span<T> out(std::uint64_t addr, std::size_t n) {
    check_aligned(addr, alignof(T));
    return {reinterpret_cast<T*>(write_direct(addr, n * sizeof(T))), n};
  }

  template <typename T>
  void read_values(std::uint64_t addr, std::span<T> out) {
    read(addr, {reinterpret_cast<std::uint8_t*>(out.data()), out.size_bytes()});
  }
  template <typename T>
  void write_values(std::uint64_t addr, std::span<const T> in) {
    write(addr, {reinterpret_cast<const std::uint8_t*>(in.data()), in.size_bytes()});
  }
  template <typename T>
  T read_struct(std::uint64_t addr) {
    T v;
    read_values(addr, std::span<T>(&v, 1));
    return v;
  }
  template <typename T>
  void write_struct(std::uint64_t addr, const T& v) {
    write_values(addr, std::span<const T>(&v, 1));
  }

 private:
  static void check_aligned(std::uint64_t addr, std::size_t align);
};

// A byte array with bounds checks: the storage of the SRAM and DRAM models,
// and a MemoryPort for testing blocks without SystemC.
class ByteStore final : public MemoryPort {
 public:
  ByteStore(std::string name, std::uint64_t size) : name_(std::move(name)), bytes_(size, 0) {}
  void read(std::uint64_t addr, std::span<std::uint8_t> out) override;
  void write(std::uint64_t addr, std::span<const std::uint8_t> in) override;
  const std::uint8_t* read_block(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                                 std::uint64_t row_bytes) override;
  std::uint8_t* write_block(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                            std::uint64_t row_bytes) override;
  // Throws ConfigError naming the memory when [addr, addr + len) is outside it.
  void check(std::uint64_t addr, std::uint64_t len) const;
  std::uint64_t size() const { return bytes_.size(); }
  void resize(std::uint64_t size) { bytes_.resize(size, 0); }  // keeps the bytes below `size`
  std::uint8_t* data() { return bytes_.data(); }

 private:
  std::string name_;
  std::vector<std::uint8_t> bytes_;
};

inline std::uint64_t packed_pitch(std::uint64_t cols, int bits) { return (cols * std::uint64_t(bits) + 7) / 8; }
inline std::uint64_t mask_pitch(std::uint64_t cols) { return (cols + 7) / 8; }

// rows x cols int16 values (each fitting k bits) -> packed rows (rows * pitch bytes).
void pack_rows(std::span<const std::int16_t> q, std::uint64_t rows, std::uint64_t cols, int bits,
               std::span<std::uint8_t> out);
// Packed rows -> rows x cols int16 (int32) values, sign-extended unless is_unsigned.
void unpack_rows(std::span<const std::uint8_t> in, std::uint64_t rows, std::uint64_t cols, int bits,
                 bool is_unsigned, std::span<std::int16_t> q);
void unpack_rows(std::span<const std::uint8_t> in, std::uint64_t rows, std::uint64_t cols, int bits,
                 bool is_unsigned, std::span<std::int32_t> q);
// rows x cols flags (0/1 bytes) -> mask rows; and one bit back.
void pack_mask(std::span<const std::uint8_t> flags, std::uint64_t rows, std::uint64_t cols,
               std::span<std::uint8_t> out);
// Transposes of 2- and 4-byte elements (bit copies), in 8 x 8 (4 x 4)
// register blocks where the CPU has SSE2; out_pitch as transpose() below.
void transpose_bits16(const std::uint16_t* in, std::uint64_t rows, std::uint64_t cols, std::uint16_t* out,
                      std::uint64_t out_pitch);
void transpose_bits32(const std::uint32_t* in, std::uint64_t rows, std::uint64_t cols, std::uint32_t* out,
                      std::uint64_t out_pitch);

// out (cols x rows) = the transpose of in (rows x cols), in cache-sized
// blocks, each written a row of out at a time (out's row pitch: out_pitch,
// default rows).
template <typename From, typename To>
void transpose(const From* in, std::uint64_t rows, std::uint64_t cols, To* out, std::uint64_t out_pitch = 0) {
  if (out_pitch == 0) out_pitch = rows;
  constexpr bool same = std::is_same_v<From, To> && std::is_trivially_copyable_v<From>;
  if constexpr (same && sizeof(From) == 2) {
    transpose_bits16(reinterpret_cast<const std::uint16_t*>(in), rows, cols, reinterpret_cast<std::uint16_t*>(out),
                     out_pitch);
  } else if constexpr (same && sizeof(From) == 4) {
    transpose_bits32(reinterpret_cast<const std::uint32_t*>(in), rows, cols, reinterpret_cast<std::uint32_t*>(out),
                     out_pitch);
  } else {
    constexpr std::uint64_t kBlock = 32;
    for (std::uint64_t r0 = 0; r0 < rows; r0 += kBlock)
      for (std::uint64_t c0 = 0; c0 < cols; c0 += kBlock) {
        const std::uint64_t r1 = std::min(rows, r0 + kBlock), c1 = std::min(cols, c0 + kBlock);
        for (std::uint64_t c = c0; c < c1; ++c)
          for (std::uint64_t r = r0; r < r1; ++r) out[c * out_pitch + r] = To(in[r * cols + c]);
      }
  }
}

// The first n values of a block's scratch buffer, which grows to the largest
// n asked for and never shrinks: commands of changing sizes reuse it without
// the zero-fill a resize would do each time it grows again.
template <typename T>
std::span<T> scratch(std::vector<T>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
  return {v.data(), n};
}

inline bool mask_bit(std::span<const std::uint8_t> mask, std::uint64_t pitch, std::uint64_t r, std::uint64_t c) {
  return (mask[r * pitch + c / 8] >> (c % 8)) & 1u;
}

}  // namespace hdq::npu
