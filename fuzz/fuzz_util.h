// Helpers of the libFuzzer harnesses (fuzz/README.md): an input cut into
// parts at NUL bytes, and a scratch folder of this process for the files a
// reader has to open (every reader takes a path: inputs are files).
#pragma once

#include <unistd.h>
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace hdq::fuzz {

// The input cut at NUL bytes into at most `max_parts` parts (the last one
// keeps any further NULs); missing parts are empty.
inline std::vector<std::string> split_parts(const std::uint8_t* data, std::size_t size, std::size_t max_parts) {
  std::vector<std::string> parts(max_parts);
  std::size_t p = 0;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0 && p + 1 < max_parts) ++p;
    else parts[p] += char(data[i]);
  }
  return parts;
}

// Lines of `text` ("\n"-separated, the empty ones dropped).
inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Where this process's scratch folders live (removed at exit).
inline std::filesystem::path scratch_base() {
  namespace fs = std::filesystem;
  return (fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path()) /
         ("hdqsim-fuzz-" + std::to_string(::getpid()));
}

// The folder <scratch of this process>/<name>, in memory when /dev/shm
// exists; emptied first when `empty` (else the caller overwrites its files).
inline std::filesystem::path scratch(const std::string& name, bool empty = false) {
  namespace fs = std::filesystem;
  static const fs::path base = [] {
    std::atexit([] { fs::remove_all(scratch_base()); });
    return scratch_base();
  }();
  const fs::path dir = base / name;
  if (empty) fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

inline void write_file(const std::filesystem::path& file, std::string_view bytes) {
  std::ofstream(file, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

// `bytes` as one gzip member (zlib's deflate with a gzip wrapper).
inline std::string gzip(std::string_view bytes) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, uLong(bytes.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = uInt(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace hdq::fuzz
