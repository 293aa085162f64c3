#include "models/common/output_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "models/common/errors.h"

namespace hdq {

namespace fs = std::filesystem;

namespace {
// Temporary names are unique per process and per file written in it, so two
// threads never share one even when they write the same name.
std::atomic<unsigned> temporary_count{0};
}  // namespace

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)) {
  if (path_.has_parent_path()) fs::create_directories(path_.parent_path());
  tmp_ = fmt::format("{}.tmp.{}.{}", path_.string(), ::getpid(), temporary_count++);
  out_.open(tmp_, std::ios::binary);
  if (!out_) {
    pending_ = false;
    throw std::runtime_error(fmt::format("{}: cannot write: {}", path_.string(), std::strerror(errno)));
  }
}

AtomicFile::~AtomicFile() {
  if (!pending_) return;
  out_.close();
  std::error_code ec;
  fs::remove(tmp_, ec);  // best effort: a destructor must not throw
}

void AtomicFile::commit() {
  out_.close();
  if (!out_) {  // a write or the flush failed (disk full, I/O error)
    fs::remove(tmp_);
    pending_ = false;
    throw std::runtime_error(fmt::format("{}: writing failed", path_.string()));
  }
  std::error_code ec;
  fs::rename(tmp_, path_, ec);
  if (ec) {
    fs::remove(tmp_);
    pending_ = false;
    throw std::runtime_error(fmt::format("{}: cannot move the written file into place: {}", path_.string(), ec.message()));
  }
  pending_ = false;
}

void write_file_atomically(const fs::path& path, std::string_view content) {
  AtomicFile f(path);
  f.stream().write(content.data(), std::streamsize(content.size()));
  f.commit();
}

bool is_temporary_file(const fs::path& p) { return p.filename().string().find(".tmp.") != std::string::npos; }

void remove_temporary_files(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && is_temporary_file(e.path())) fs::remove(e.path());
}

void prepare_output_dir(const fs::path& dir, const std::string& flag) {
  const auto fail = [&](const std::string& why) {
    throw ConfigError(fmt::format("{} {}: {}", flag, dir.string(), why));
  };
  if (dir.empty()) fail("an empty path");
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) fail("exists and is not a folder");
  fs::create_directories(dir, ec);
  if (ec) fail(fmt::format("cannot create the folder: {}", ec.message()));
  // Permission bits do not tell (root ignores them; /proc and read-only
  // mounts refuse anyway): write a file and remove it.
  const fs::path probe = dir / fmt::format(".probe.tmp.{}", ::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail(fmt::format("cannot write in the folder: {}", std::strerror(errno)));
  ::close(fd);
  fs::remove(probe);
}

void prepare_output_file(const fs::path& file, const std::string& flag) {
  if (file.empty()) throw ConfigError(fmt::format("{}: an empty path", flag));
  if (fs::is_directory(file)) throw ConfigError(fmt::format("{} {}: is a folder; give a file name", flag, file.string()));
  prepare_output_dir(file.has_parent_path() ? file.parent_path() : fs::path("."), flag);
}

FolderLock::FolderLock(const fs::path& dir) {
  const fs::path f = dir / ".lock";
  fd_ = ::open(f.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(fmt::format("{}: cannot open the lock file: {}", f.string(), std::strerror(errno)));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    char pid[32] = {};
    const ssize_t n = ::pread(fd_, pid, sizeof pid - 1, 0);
    ::close(fd_);
    if (err != EWOULDBLOCK)
      throw std::runtime_error(fmt::format("{}: cannot lock: {}", f.string(), std::strerror(err)));
    std::string holder(pid, std::size_t(std::max<ssize_t>(n, 0)));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    throw FolderBusy(fmt::format("{} is in use by another hdqsim run ({}lock file {}); wait for it to finish or use "
                                 "another --out folder",
                                 dir.string(), holder.empty() ? "" : fmt::format("pid {}, ", holder), f.string()));
  }
  // The holder's pid, for the message above; the lock itself is the flock.
  const std::string pid = fmt::format("{}\n", ::getpid());
  const bool recorded = ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) == ssize_t(pid.size());
  (void)recorded;  // without it the message only lacks the pid
}

FolderLock::~FolderLock() { ::close(fd_); }  // closing releases the flock

}  // namespace hdq
