#pragma once
/// Whole-file reads and atomic whole-file writes with weft::Error messages naming the path.
#include <string>
#include <utility>
#include <vector>

namespace weft::runtime {

/// The bytes of the file at `path`. Throws weft::Error naming the path when it is missing,
/// a directory or unreadable.
std::string readFileBytes(const std::string& path);

/// Replaces the file at `path` with `bytes` atomically: writes a temporary file next to it,
/// flushes it to disk, then renames it over `path`, so readers never see a partial file.
/// Throws weft::Error naming the path on failure (the temporary file is removed).
void writeFileAtomically(const std::string& path, const std::string& bytes);

/// Throws weft::Error naming `path` when a file could not be written there: it is a
/// directory, or its directory is missing or not writable. (What the write itself may still
/// meet, a full disk, is not foreseen.)
void checkWritable(const std::string& path);

/// Directories a command is about to create for its outputs: each one `add`ed before it
/// exists is removed again, if still empty, when the object goes away before `keep()` (a
/// command that fails leaves no empty directory behind).
class NewDirectories {
 public:
  NewDirectories() = default;
  NewDirectories(const NewDirectories&) = delete;
  NewDirectories& operator=(const NewDirectories&) = delete;
  ~NewDirectories();
  /// Notes `dir` (before the caller creates it) when it does not exist yet.
  void add(const std::string& dir);
  /// The command succeeded: its directories stay.
  void keep() { dirs_.clear(); }

 private:
  std::vector<std::string> dirs_;
};

/// Writes all of `files` (path, bytes) or, as far as the file system allows, none: a path
/// that is a directory or lies in a missing one fails the call first; then every file goes to
/// a temporary file next to its path (flushed to disk), and only when all are written are they
/// renamed over their paths. A failure before the renames removes the temporary files and
/// changes no path. Throws weft::Error naming the path.
void writeFilesAtomically(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace weft::runtime
