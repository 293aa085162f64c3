// Writing results so that an interrupted run never leaves a half-written
// file, and the process facts reported beside them.
#pragma once

#include <filesystem>
#include <string>

namespace hdq::cli {

// Writes `content` to path.tmp.<pid>, flushes, then renames it over `path`
// (atomic on POSIX within one file system). Creates the parent folder.
void write_file_atomically(const std::filesystem::path& path, const std::string& content);

// Peak resident memory of this process so far, MiB (getrusage ru_maxrss).
double peak_rss_mib();

}  // namespace hdq::cli
