// The one way every reader opens an input file (scenario and NPU config YAML,
// data sets, test-vector sets): a regular file only, never more than a
// stated number of bytes, and text read line by line with a bounded line
// length. So a FIFO cannot block a run, /dev/zero cannot be read as one
// endless line, and a 4 GB line cannot exhaust memory. Every refusal is an
// InputError whose message starts with the path ("<path>: ..." or, for a
// line, "<path>:<line>: ..."); readers turn it into their own error type
// with rethrow_input_error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hdq {

struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Size limits (bytes) of the kinds of input.
inline constexpr std::uint64_t kMaxConfigFileBytes = std::uint64_t{4} << 20;  // YAML and JSON files
inline constexpr std::uint64_t kMaxDataFileBytes = std::uint64_t{2} << 30;    // data sets (IDX after gunzip), hex files
inline constexpr std::size_t kMaxLineBytes = std::size_t{1} << 20;            // one line of a text format

// "512 B", "4 MiB", "2 GiB", "1.5 GiB".
std::string format_bytes(std::uint64_t bytes);

class InputFile {
 public:
  // Opens `path` for reading. Refused at once: a missing or unreadable path,
  // anything but a regular file (a directory, a FIFO, a device, a socket; the
  // type is checked on the opened descriptor, opened non-blocking, so a FIFO
  // without a writer cannot hang), and a file larger than `max_bytes`.
  // `kind` names the input in the size message ("a data file").
  InputFile(const std::filesystem::path& path, std::uint64_t max_bytes, std::string_view kind);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& name() const { return name_; }
  std::uint64_t size() const { return size_; }      // at opening
  std::uint64_t offset() const { return done_; }    // bytes read so far
  // Up to n bytes into buf; fewer only at the end of the file. A file that
  // grows past max_bytes while it is read is refused like a large one.
  std::size_t read(void* buf, std::size_t n);
  // Everything (at most max_bytes).
  std::string read_all();

 private:
  [[noreturn]] void too_large() const;
  int fd_ = -1;
  std::string name_;
  std::string kind_;
  std::uint64_t size_ = 0, max_ = 0, done_ = 0;
};

// The whole file as text (YAML, JSON).
std::string read_input_file(const std::filesystem::path& path, std::uint64_t max_bytes, std::string_view kind);

// A text file line by line; a line longer than max_line bytes is refused
// naming the file and the line.
class InputLines {
 public:
  InputLines(const std::filesystem::path& path, std::string_view kind, std::uint64_t max_bytes = kMaxDataFileBytes,
             std::size_t max_line = kMaxLineBytes);
  // The next line without its '\n' (a '\r' before it stays); false at the end.
  bool next(std::string& line);
  std::size_t line() const { return line_; }  // 1-based number of the last line returned
  const std::string& name() const { return file_.name(); }

 private:
  InputFile file_;
  std::size_t max_line_;
  std::vector<char> buf_;
  std::size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  std::size_t line_ = 0;
};

// Runs f(); an InputError thrown inside leaves as Error with the same
// message, so each reader keeps its own error type (and exit status).
template <typename Error, typename F>
decltype(auto) rethrow_input_error(F&& f) {
  try {
    return f();
  } catch (const InputError& e) {
    throw Error(e.what());
  }
}

}  // namespace hdq
