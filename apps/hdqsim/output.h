// Writing results so that an interrupted run never leaves a half-written file.
#pragma once

#include <filesystem>
#include <string>

namespace hdq::cli {

// Writes `content` to path.tmp.<pid>, flushes, then renames it over `path`
// (atomic on POSIX within one file system). Creates the parent folder.
void write_file_atomically(const std::filesystem::path& path, const std::string& content);

}  // namespace hdq::cli
