#pragma once
/// Whole-file reads and atomic whole-file writes with weft::Error messages naming the path.
#include <string>

namespace weft::runtime {

/// The bytes of the file at `path`. Throws weft::Error naming the path when it is missing,
/// a directory or unreadable.
std::string readFileBytes(const std::string& path);

/// Replaces the file at `path` with `bytes` atomically: writes a temporary file next to it,
/// flushes it to disk, then renames it over `path`, so readers never see a partial file.
/// Throws weft::Error naming the path on failure (the temporary file is removed).
void writeFileAtomically(const std::string& path, const std::string& bytes);

}  // namespace weft::runtime
