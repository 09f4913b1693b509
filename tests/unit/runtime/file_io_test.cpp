// Whole-file writes: one file atomically, and sets of files all or none.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "ir/error.h"
#include "runtime/file_io.h"

namespace weft::runtime {
namespace {

namespace fs = std::filesystem;

/// A fresh empty directory for one test, removed with its contents afterwards.
class ScratchDirectory {
 public:
  explicit ScratchDirectory(const std::string& name)
      : path_(fs::temp_directory_path() / (name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDirectory() { fs::remove_all(path_); }
  std::string operator/(const std::string& leaf) const { return (path_ / leaf).string(); }
  /// The names in the directory, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& entry : fs::directory_iterator(path_)) out.push_back(entry.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  fs::path path_;
};

TEST(FileIo, ASetOfFilesIsWrittenWhole) {
  ScratchDirectory dir("weft-file-io-whole");
  writeFileAtomically(dir / "b", "old b");
  writeFilesAtomically({{dir / "a", "bytes of a"}, {dir / "b", "new b"}});
  EXPECT_EQ(readFileBytes(dir / "a"), "bytes of a");
  EXPECT_EQ(readFileBytes(dir / "b"), "new b");
  EXPECT_EQ(dir.names(), (std::vector<std::string>{"a", "b"}));  // no temporary file left
}

TEST(FileIo, ADirectoryInTheWayChangesNoFileOfTheSet) {
  ScratchDirectory dir("weft-file-io-blocked");
  writeFileAtomically(dir / "a", "old a");
  fs::create_directory(dir / "c");
  try {
    writeFilesAtomically({{dir / "a", "new a"}, {dir / "b", "new b"}, {dir / "c", "new c"}});
    FAIL() << "a directory was written over";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir / "c" + ": cannot write: it is a directory");
  }
  EXPECT_EQ(readFileBytes(dir / "a"), "old a");
  EXPECT_EQ(dir.names(), (std::vector<std::string>{"a", "c"}));
}

TEST(FileIo, AMissingDirectoryIsNamed) {
  ScratchDirectory dir("weft-file-io-missing");
  try {
    writeFilesAtomically({{dir / "a", "a"}, {dir / "no/such/b", "b"}});
    FAIL() << "a file was written into a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir / "no/such/b" + ": cannot write: there is no directory '" + dir / "no/such" + "'");
  }
  EXPECT_TRUE(dir.names().empty());
}

}  // namespace
}  // namespace weft::runtime
