// Whole-file reads and atomic writes (temporary file + fsync + rename).
#include "runtime/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "ir/error.h"

namespace weft::runtime {

namespace {

std::string errnoText() { return std::strerror(errno); }

/// Writes all of `data` to `fd`; false on error (errno set).
bool writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string readFileBytes(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": cannot read: it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + errnoText());
  // One read of the whole size (an istreambuf_iterator copy moves ~150 MB/s, a tenth of this).
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (size < 0 || !in) throw Error(path + ": cannot determine its size: " + errnoText());
  std::string bytes(static_cast<size_t>(size), '\0');
  if (size > 0 && !in.read(bytes.data(), size)) throw Error(path + ": read error: " + errnoText());
  return bytes;
}

NewDirectories::~NewDirectories() {
  std::error_code ec;
  for (const std::string& dir : dirs_) std::filesystem::remove(dir, ec);  // fails, harmlessly, unless empty
}

void NewDirectories::add(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) dirs_.push_back(dir);
}

void writeFileAtomically(const std::string& path, const std::string& bytes) { writeFilesAtomically({{path, bytes}}); }

void checkWritable(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path + ": cannot write: it is a directory");
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec))
    throw Error(path + ": cannot write: there is no directory '" + parent.string() + "'");
  const std::string dir = parent.empty() ? "." : parent.string();
  if (::access(dir.c_str(), W_OK) != 0) throw Error(path + ": cannot write in '" + dir + "': " + errnoText());
}

void writeFilesAtomically(const std::vector<std::pair<std::string, std::string>>& files) {
  for (const auto& [path, bytes] : files) checkWritable(path);
  static std::atomic<uint64_t> counter{0};
  std::vector<std::string> temporaries;
  auto removeTemporaries = [&](size_t from) {
    for (size_t i = from; i < temporaries.size(); ++i) ::unlink(temporaries[i].c_str());
  };
  for (const auto& [path, bytes] : files) {
    std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
      const std::string problem = errnoText();
      removeTemporaries(0);
      throw Error(path + ": cannot create temporary file '" + tmp + "': " + problem);
    }
    temporaries.push_back(tmp);
    bool ok = writeAll(fd, bytes) && ::fsync(fd) == 0;
    std::string problem = ok ? "" : errnoText();
    if (::close(fd) != 0 && ok) {
      ok = false;
      problem = errnoText();
    }
    if (!ok) {
      removeTemporaries(0);
      throw Error(path + ": cannot write: " + problem);
    }
  }
  for (size_t i = 0; i < files.size(); ++i)
    if (std::rename(temporaries[i].c_str(), files[i].first.c_str()) != 0) {
      const std::string problem = errnoText();
      removeTemporaries(i);
      throw Error(files[i].first + ": cannot write: " + problem +
                  (i > 0 ? " (" + std::to_string(i) + " file(s) of the set before it were written)" : ""));
    }
}

}  // namespace weft::runtime
