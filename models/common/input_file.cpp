#include "models/common/input_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace hdq {

std::string format_bytes(std::uint64_t bytes) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) v /= 1024.0, ++u;
  if (u == 0) return fmt::format("{} B", bytes);
  return v == double(std::uint64_t(v)) ? fmt::format("{} {}", std::uint64_t(v), units[u])
                                       : fmt::format("{:.1f} {}", v, units[u]);
}

namespace {

const char* file_type(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

}  // namespace

InputFile::InputFile(const std::filesystem::path& path, std::uint64_t max_bytes, std::string_view kind)
    : name_(path.string()), kind_(kind), max_(max_bytes) {
  if (name_.empty()) throw InputError(fmt::format("(empty path): no file named (expected {})", kind_));
  fd_ = ::open(name_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) {
    const int err = errno;
    if (err == ENOENT) throw InputError(fmt::format("{}: no such file", name_));
    if (err == ENXIO) throw InputError(fmt::format("{}: not a regular file (a socket?)", name_));
    throw InputError(fmt::format("{}: cannot open: {}", name_, std::strerror(err)));
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw InputError(fmt::format("{}: cannot read its status: {}", name_, std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw InputError(fmt::format("{}: is {}, not a regular file", name_, file_type(st.st_mode)));
  }
  size_ = std::uint64_t(st.st_size);
  if (size_ > max_) {
    ::close(fd_);
    too_large();
  }
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
}

InputFile::~InputFile() { ::close(fd_); }

void InputFile::too_large() const {
  throw InputError(fmt::format("{}: {} is more than the limit of {} for {}", name_,
                               size_ > max_ ? format_bytes(size_) : "the file", format_bytes(max_), kind_));
}

std::size_t InputFile::read(void* buf, std::size_t n) {
  std::size_t got = 0;
  auto* p = static_cast<char*>(buf);
  while (got < n) {
    const ssize_t r = ::read(fd_, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw InputError(fmt::format("{}: read error after {} bytes: {}", name_, done_ + got, std::strerror(errno)));
    }
    if (r == 0) break;
    got += std::size_t(r);
  }
  done_ += got;
  if (done_ > max_) too_large();
  return got;
}

std::string InputFile::read_all() {
  std::string s;
  s.resize(std::size_t(std::min<std::uint64_t>(size_, max_)) + 1);  // + 1: sees a file that grew
  std::size_t have = read(s.data(), s.size());
  while (have == s.size()) {
    s.resize(std::min<std::size_t>(s.size() * 2, std::size_t(max_) + 1));
    have += read(s.data() + have, s.size() - have);
  }
  s.resize(have);
  return s;
}

std::string read_input_file(const std::filesystem::path& path, std::uint64_t max_bytes, std::string_view kind) {
  InputFile f(path, max_bytes, kind);
  return f.read_all();
}

InputLines::InputLines(const std::filesystem::path& path, std::string_view kind, std::uint64_t max_bytes,
                       std::size_t max_line)
    : file_(path, max_bytes, kind), max_line_(max_line), buf_(std::size_t{1} << 16) {}

bool InputLines::next(std::string& line) {
  line.clear();
  for (;;) {
    const char* begin = buf_.data() + pos_;
    const auto* nl = static_cast<const char*>(std::memchr(begin, '\n', end_ - pos_));
    const std::size_t take = nl ? std::size_t(nl - begin) : end_ - pos_;
    if (line.size() + take > max_line_)
      throw InputError(fmt::format("{}:{}: the line is longer than the limit of {}", file_.name(), line_ + 1,
                                   format_bytes(max_line_)));
    line.append(begin, take);
    if (nl) {
      pos_ += take + 1;
      ++line_;
      return true;
    }
    pos_ = end_ = 0;
    if (!eof_) {
      end_ = file_.read(buf_.data(), buf_.size());
      eof_ = end_ < buf_.size();
      if (end_ > 0) continue;
    }
    if (line.empty()) return false;  // the last line had its '\n'
    ++line_;                          // a last line without '\n'
    return true;
  }
}

}  // namespace hdq
