#pragma once
// Test support: running a shell command (compilers, linkers) and capturing what it printed.
#include <cstdio>
#include <string>

namespace weft::testing {

/// Runs `command` in a shell; returns its exit status and appends its output (stdout and
/// stderr) to `output`.
inline int runCommand(const std::string& command, std::string& output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return -1;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  return ::pclose(pipe);
}

}  // namespace weft::testing
