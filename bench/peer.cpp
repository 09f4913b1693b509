// Runs torch_models.py as a child process and reads its JSON.
#include "bench/peer.h"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ir/error.h"

namespace weft::bench {
namespace {

namespace fs = std::filesystem;

/// `s` quoted for /bin/sh.
std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Runs `command` through the shell; returns its exit status (-1 when it did not exit normally).
int runShell(const std::string& command) {
  int status = std::system(command.c_str());
  if (status == -1 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

/// The last non-empty line of the file at `path` (empty when none).
std::string lastLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

/// A fresh private directory under the system's temporary directory.
fs::path makeTempDir() {
  std::string pattern = (fs::temp_directory_path() / "weft-bench-peer-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw Error("bench: cannot create a temporary directory for the peer's JSON");
  return pattern;
}

}  // namespace

std::string findPeerScript() {
  const fs::path relative = fs::path("..") / "shared" / "bench" / "torch_models.py";
  std::error_code ec;
  if (fs::exists(relative, ec)) return fs::absolute(relative, ec).string();
#ifdef WEFT_SOURCE_DIR
  fs::path fromSource = fs::path(WEFT_SOURCE_DIR) / relative;
  if (fs::exists(fromSource, ec)) return fs::weakly_canonical(fromSource, ec).string();
#endif
  return "";
}

PeerResult runPeer(const PeerOptions& options, const std::vector<std::string>& models) {
  PeerResult result;
  const std::string unavailable = "; peer columns show -";
  std::string script = options.script.empty() ? findPeerScript() : options.script;
  std::error_code ec;
  if (script.empty() || !fs::exists(script, ec)) {
    result.message = "peer: torch_models.py not found" +
                     (script.empty() ? std::string(" (looked in ../shared/bench/; use --peer-script)")
                                     : " at " + script) +
                     unavailable;
    return result;
  }
  if (options.python.find('/') != std::string::npos && !fs::exists(options.python, ec)) {
    result.message = "peer: no Python interpreter at " + options.python + unavailable;
    return result;
  }
  fs::path dir = makeTempDir();
  fs::path json = dir / "peer.json", log = dir / "peer.log";
  std::string only;
  for (const auto& m : models) only += (only.empty() ? "" : ",") + m;
  std::string command = shellQuote(options.python) + " " + shellQuote(script) + " --threads " +
                        std::to_string(options.threads) + " --iters " + std::to_string(options.iters) + " --only " +
                        shellQuote(only) + " --json " + shellQuote(json.string()) + " >" + shellQuote(log.string()) +
                        " 2>&1";
  int status = runShell(command);
  if (status != 0) {
    bool hasTorch = runShell(shellQuote(options.python) + " -c 'import torch' >/dev/null 2>&1") == 0;
    result.message = hasTorch ? "peer: " + script + " failed (exit status " + std::to_string(status) +
                                    "): " + lastLine(log) + unavailable
                              : "peer: PyTorch is not installed for " + options.python +
                                    " (apt-get install python3-torch)" + unavailable;
  } else {
    std::ifstream in(json);
    std::stringstream text;
    text << in.rdbuf();
    try {
      result.times = parsePeerJson(text.str(), "peer JSON " + json.string());
    } catch (const Error& e) {
      result.message = std::string("peer: ") + e.what() + unavailable;
    }
  }
  fs::remove_all(dir, ec);
  return result;
}

}  // namespace weft::bench
