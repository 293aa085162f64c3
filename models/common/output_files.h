// Writing results, the one way every command does it: a file appears under
// its name complete or not at all, an output path is proven writable before
// the work that fills it starts, and a result folder is used by one run at a
// time.
#pragma once

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace hdq {

// A file written under a temporary name in its own folder
// (<name>.tmp.<pid>.<n>) and renamed over `path` by commit() (atomic on POSIX
// within one file system). The temporary file is removed whenever commit()
// is not reached (an exception, an early return) or fails, so no error path
// leaves it behind. Creates the parent folder.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  std::ostream& stream() { return out_; }
  // Flushes, checks every write succeeded and renames; throws naming the file.
  void commit();

 private:
  std::filesystem::path path_, tmp_;
  std::ofstream out_;
  bool pending_ = true;  // the temporary file exists and is not renamed yet
};

// `content` as the whole file `path`, through an AtomicFile.
void write_file_atomically(const std::filesystem::path& path, std::string_view content);

// A name AtomicFile (or prepare_output_dir's probe) gives its temporary file.
bool is_temporary_file(const std::filesystem::path& p);

// Removes the temporary files a killed process left directly in `dir`. Only
// safe while holding the folder's FolderLock (nobody else writes there).
void remove_temporary_files(const std::filesystem::path& dir);

// Creates the folder `dir` (with its parents) and proves it writable by
// creating and removing a file in it. ConfigError "<flag> <dir>: <why>"
// otherwise, e.g. for a regular file, /proc or a read-only mount.
void prepare_output_dir(const std::filesystem::path& dir, const std::string& flag);

// The same for an output file: refuses a folder at `file` and prepares the
// folder it goes in (its temporary file is written there too).
void prepare_output_file(const std::filesystem::path& file, const std::string& flag);

// An advisory lock (flock) on the folder `dir`, through the file dir/.lock,
// held while the object lives (and released by the kernel when the process
// dies, however). A second run on the same folder is refused at once with a
// FolderBusy naming the holder's pid: waiting could hang behind a stuck run,
// and two runs would compute the same cells twice.
struct FolderBusy : std::runtime_error {
  using std::runtime_error::runtime_error;
};
class FolderLock {
 public:
  explicit FolderLock(const std::filesystem::path& dir);  // `dir` must exist
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace hdq
