#include "sim/blocks/memory.h"

#include <fmt/format.h>

#include "models/common/errors.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

namespace {

// The elements of rows [r0, r1) x columns [c0, c1) one at a time (the edges
// the register blocks leave).
template <typename T>
void transpose_scalar(const T* in, std::uint64_t cols, T* out, std::uint64_t out_pitch, std::uint64_t r0,
                      std::uint64_t r1, std::uint64_t c0, std::uint64_t c1) {
  for (std::uint64_t c = c0; c < c1; ++c)
    for (std::uint64_t r = r0; r < r1; ++r) out[c * out_pitch + r] = in[r * cols + c];
}

// What a register-block transpose left: every element outside its leading rb x
// cb block (all of them when rb = cb = 0).
template <typename T>
void transpose_rest(const T* in, std::uint64_t rows, std::uint64_t cols, T* out, std::uint64_t out_pitch,
                    std::uint64_t rb, std::uint64_t cb) {
  transpose_scalar(in, cols, out, out_pitch, 0, rb, cb, cols);
  transpose_scalar(in, cols, out, out_pitch, rb, rows, 0, cols);
}

}  // namespace

void transpose_bits16(const std::uint16_t* in, std::uint64_t rows, std::uint64_t cols, std::uint16_t* out,
                      std::uint64_t out_pitch) {
  std::uint64_t rows8 = 0, cols8 = 0;  // the part done in 8 x 8 register blocks
#if defined(__SSE2__)
  rows8 = rows / 8 * 8, cols8 = cols / 8 * 8;
  for (std::uint64_t r0 = 0; r0 < rows8; r0 += 8)
    for (std::uint64_t c0 = 0; c0 < cols8; c0 += 8) {
      __m128i a[8], b[8], c[8];
      for (int i = 0; i < 8; ++i) a[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + (r0 + i) * cols + c0));
      for (int i = 0; i < 4; ++i) {  // pairs of rows interleaved: (r, r + 1) for 4 columns each
        b[2 * i] = _mm_unpacklo_epi16(a[2 * i], a[2 * i + 1]);
        b[2 * i + 1] = _mm_unpackhi_epi16(a[2 * i], a[2 * i + 1]);
      }
      for (int h = 0; h < 2; ++h)  // quads of rows: 2 columns each
        for (int j = 0; j < 2; ++j) {
          c[4 * h + 2 * j] = _mm_unpacklo_epi32(b[4 * h + j], b[4 * h + j + 2]);
          c[4 * h + 2 * j + 1] = _mm_unpackhi_epi32(b[4 * h + j], b[4 * h + j + 2]);
        }
      for (int j = 0; j < 4; ++j) {  // all 8 rows: one column each
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (c0 + 2 * j) * out_pitch + r0),
                         _mm_unpacklo_epi64(c[j], c[j + 4]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (c0 + 2 * j + 1) * out_pitch + r0),
                         _mm_unpackhi_epi64(c[j], c[j + 4]));
      }
    }
#endif
  transpose_rest(in, rows, cols, out, out_pitch, rows8, cols8);
}

void transpose_bits32(const std::uint32_t* in, std::uint64_t rows, std::uint64_t cols, std::uint32_t* out,
                      std::uint64_t out_pitch) {
  std::uint64_t rows4 = 0, cols4 = 0;  // the part done in 4 x 4 register blocks
#if defined(__SSE2__)
  rows4 = rows / 4 * 4, cols4 = cols / 4 * 4;
  for (std::uint64_t r0 = 0; r0 < rows4; r0 += 4)
    for (std::uint64_t c0 = 0; c0 < cols4; c0 += 4) {
      __m128i a[4], b[4];
      for (int i = 0; i < 4; ++i) a[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + (r0 + i) * cols + c0));
      b[0] = _mm_unpacklo_epi32(a[0], a[1]);  // (r0 c0, r1 c0, r0 c1, r1 c1)
      b[1] = _mm_unpackhi_epi32(a[0], a[1]);  // columns 2, 3
      b[2] = _mm_unpacklo_epi32(a[2], a[3]);
      b[3] = _mm_unpackhi_epi32(a[2], a[3]);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c0 * out_pitch + r0), _mm_unpacklo_epi64(b[0], b[2]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (c0 + 1) * out_pitch + r0), _mm_unpackhi_epi64(b[0], b[2]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (c0 + 2) * out_pitch + r0), _mm_unpacklo_epi64(b[1], b[3]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + (c0 + 3) * out_pitch + r0), _mm_unpackhi_epi64(b[1], b[3]));
    }
#endif
  transpose_rest(in, rows, cols, out, out_pitch, rows4, cols4);
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
    const std::uint64_t whole = cols / 8 * 8;
    for (std::uint64_t c0 = 0; c0 < whole; c0 += 8) {  // a fixed trip count: unrolled, no branches
      unsigned byte = 0;
      for (unsigned j = 0; j < 8; ++j) byte |= unsigned(f[c0 + j] != 0) << j;
      dst[c0 / 8] = std::uint8_t(byte);
    }
    if (whole < cols) {
      unsigned byte = 0;
      for (std::uint64_t c = whole; c < cols; ++c) byte |= unsigned(f[c] != 0) << (c - whole);
      dst[whole / 8] = std::uint8_t(byte);
    }
  }
}

}  // namespace hdq::npu
