#include "sim/blocks/memory.h"

#include <fmt/format.h>

#include "models/common/errors.h"

namespace hdq::npu {

void ByteStore::check(std::uint64_t addr, std::uint64_t len) const {
  if (addr > bytes_.size() || len > bytes_.size() - addr)
    throw ConfigError(fmt::format("{}: access [{:#x}, {:#x}) is outside its {} bytes", name_, addr, addr + len,
                                  bytes_.size()));
}

void MemoryPort::check_aligned(std::uint64_t addr, std::size_t align) {
  if (addr % align != 0) throw ConfigError(fmt::format("memory access at {:#x} is not aligned to {} bytes", addr, align));
}

const std::uint8_t* ByteStore::read_block(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                                          std::uint64_t row_bytes) {
  check(addr, block_span(pitch, rows, row_bytes));
  return bytes_.data() + addr;
}

std::uint8_t* ByteStore::write_block(std::uint64_t addr, std::uint64_t pitch, std::uint64_t rows,
                                     std::uint64_t row_bytes) {
  check(addr, block_span(pitch, rows, row_bytes));
  return bytes_.data() + addr;
}

void ByteStore::read(std::uint64_t addr, std::span<std::uint8_t> out) {
  check(addr, out.size());
  if (!out.empty()) std::memcpy(out.data(), bytes_.data() + addr, out.size());
}

void ByteStore::write(std::uint64_t addr, std::span<const std::uint8_t> in) {
  check(addr, in.size());
  if (!in.empty()) std::memcpy(bytes_.data() + addr, in.data(), in.size());
}

void pack_rows(std::span<const std::int16_t> q, std::uint64_t rows, std::uint64_t cols, int bits,
               std::span<std::uint8_t> out) {
  const std::uint64_t pitch = packed_pitch(cols, bits);
  const std::uint32_t mask = (1u << bits) - 1u;
  for (std::uint64_t r = 0; r < rows; ++r) {
    const std::int16_t* src = q.data() + r * cols;
    std::uint8_t* dst = out.data() + r * pitch;
    if (bits == 8) {
      for (std::uint64_t c = 0; c < cols; ++c) dst[c] = std::uint8_t(src[c]);
    } else if (bits == 4) {  // a pair of values read as one 32-bit word (little-endian): the loop vectorizes
      const std::uint64_t pairs = cols / 2;
      for (std::uint64_t c = 0; c < pairs; ++c) {
        std::uint32_t v;
        std::memcpy(&v, src + 2 * c, 4);
        dst[c] = std::uint8_t((v & 0xfu) | ((v >> 12) & 0xf0u));
      }
      if (cols % 2) dst[pairs] = std::uint8_t(src[cols - 1] & 0xf);
    } else {
      std::uint64_t acc = 0;
      int filled = 0;
      std::uint64_t o = 0;
      for (std::uint64_t c = 0; c < cols; ++c) {
        acc |= std::uint64_t(std::uint32_t(src[c]) & mask) << filled;
        filled += bits;
        while (filled >= 8) {
          dst[o++] = std::uint8_t(acc);
          acc >>= 8;
          filled -= 8;
        }
      }
      if (filled > 0) dst[o] = std::uint8_t(acc);
    }
  }
}

namespace {

template <typename T>
void unpack_rows_as(std::span<const std::uint8_t> in, std::uint64_t rows, std::uint64_t cols, int bits,
                    bool is_unsigned, std::span<T> q) {
  const std::uint64_t pitch = packed_pitch(cols, bits);
  const std::uint32_t mask = (1u << bits) - 1u;
  const int shift = 16 - bits;  // sign extension through the int16's top bit
  auto value = [&](std::uint32_t v) {
    return T(is_unsigned ? std::int16_t(v) : std::int16_t(std::int16_t(std::uint16_t(v << shift)) >> shift));
  };
  for (std::uint64_t r = 0; r < rows; ++r) {
    const std::uint8_t* src = in.data() + r * pitch;
    T* dst = q.data() + r * cols;
    if (bits == 4) {  // shifts only, one loop per signedness: the loops vectorize
      const std::uint64_t pairs = cols / 2;
      if (is_unsigned)
        for (std::uint64_t c = 0; c < pairs; ++c) {
          dst[2 * c] = T(src[c] & 0xf);
          dst[2 * c + 1] = T(src[c] >> 4);
        }
      else
        for (std::uint64_t c = 0; c < pairs; ++c) {
          dst[2 * c] = T(std::int8_t(std::uint8_t(src[c] << 4)) >> 4);
          dst[2 * c + 1] = T(std::int8_t(src[c]) >> 4);
        }
      if (cols % 2) dst[cols - 1] = value(src[pairs] & 0xfu);
    } else if (bits == 8) {
      if (is_unsigned)
        for (std::uint64_t c = 0; c < cols; ++c) dst[c] = T(src[c]);
      else
        for (std::uint64_t c = 0; c < cols; ++c) dst[c] = T(std::int8_t(src[c]));
    } else {
      std::uint64_t acc = 0;
      int filled = 0;
      std::uint64_t i = 0;
      for (std::uint64_t c = 0; c < cols; ++c) {
        while (filled < bits) {
          acc |= std::uint64_t(src[i++]) << filled;
          filled += 8;
        }
        dst[c] = value(std::uint32_t(acc) & mask);
        acc >>= bits;
        filled -= bits;
      }
    }
  }
}

}  // namespace

void unpack_rows(std::span<const std::uint8_t> in, std::uint64_t rows, std::uint64_t cols, int bits,
                 bool is_unsigned, std::span<std::int16_t> q) {
  unpack_rows_as(in, rows, cols, bits, is_unsigned, q);
}

void unpack_rows(std::span<const std::uint8_t> in, std::uint64_t rows, std::uint64_t cols, int bits,
                 bool is_unsigned, std::span<std::int32_t> q) {
  unpack_rows_as(in, rows, cols, bits, is_unsigned, q);
}

void pack_mask(std::span<const std::uint8_t> flags, std::uint64_t rows, std::uint64_t cols,
               std::span<std::uint8_t> out) {
  const std::uint64_t pitch = mask_pitch(cols);
  for (std::uint64_t r = 0; r < rows; ++r) {
    std::uint8_t* dst = out.data() + r * pitch;
    const std::uint8_t* f = flags.data() + r * cols;
    for (std::uint64_t c0 = 0; c0 < cols; c0 += 8) {
      unsigned byte = 0;
      for (std::uint64_t c = c0; c < std::min(cols, c0 + 8); ++c) byte |= unsigned(f[c] != 0) << (c - c0);
      dst[c0 / 8] = std::uint8_t(byte);
    }
  }
}

}  // namespace hdq::npu
