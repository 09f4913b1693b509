// Runs torch_models.py as a child process and reads its JSON.
#include "bench/peer.h"

#include <sched.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "ir/error.h"
#include "runtime/cpu/omp_places.h"

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
/// The shell starts from this thread with every OpenMP place's CPUs (then the thread's own
/// are put back): under OMP_PROC_BIND this thread is bound to one, and the peer would inherit
/// that one CPU and be timed on half the machine.
int runShell(const std::string& command) {
  cpu_set_t own;
  const bool saved = sched_getaffinity(0, sizeof own, &own) == 0;
  const bool widened = saved && cpu::unbindFromFirstPlace();
  int status = std::system(command.c_str());
  if (widened) sched_setaffinity(0, sizeof own, &own);
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

/// `relative` from the working directory (the repository root), else from the source tree
/// this weft was built from; empty when neither exists.
std::string findInRepository(const fs::path& relative) {
  std::error_code ec;
  if (fs::exists(relative, ec)) return fs::absolute(relative, ec).string();
#ifdef WEFT_SOURCE_DIR
  fs::path fromSource = fs::path(WEFT_SOURCE_DIR) / relative;
  if (fs::exists(fromSource, ec)) return fs::weakly_canonical(fromSource, ec).string();
#endif
  return "";
}

}  // namespace

std::string findPeerScript() { return findInRepository(fs::path("..") / "shared" / "bench" / "torch_models.py"); }

namespace {

/// What one peer script run gave: its JSON text, or why there is none.
struct ScriptRun {
  std::optional<std::string> json;
  std::string message;
};

/// Runs `python script ARGS --json TMP` (its own output to a log) and reads the JSON; names
/// the script `what` in messages ("torch_models.py"), and where an empty `script` was looked
/// for. Never throws for a failing script.
ScriptRun runScript(const std::string& python, const std::string& script, const std::string& args,
                    const std::string& what, const std::string& whereLooked) {
  ScriptRun run;
  const std::string unavailable = "; peer columns show -";
  std::error_code ec;
  if (script.empty() || !fs::exists(script, ec)) {
    run.message = "peer: " + what + " not found" + (script.empty() ? " (" + whereLooked + ")" : " at " + script) +
                  unavailable;
    return run;
  }
  if (python.find('/') != std::string::npos && !fs::exists(python, ec)) {
    run.message = "peer: no Python interpreter at " + python + unavailable;
    return run;
  }
  fs::path dir = makeTempDir();
  fs::path json = dir / "peer.json", log = dir / "peer.log";
  std::string command = shellQuote(python) + " " + shellQuote(script) + " " + args + " --json " +
                        shellQuote(json.string()) + " >" + shellQuote(log.string()) + " 2>&1";
  int status = runShell(command);
  if (status != 0) {
    bool hasTorch = runShell(shellQuote(python) + " -c 'import torch' >/dev/null 2>&1") == 0;
    run.message = hasTorch ? "peer: " + script + " failed (exit status " + std::to_string(status) + "): " +
                                 lastLine(log) + unavailable
                           : "peer: PyTorch is not installed for " + python +
                                 " (apt-get install python3-torch libopenblas0-pthread)" + unavailable;
  } else {
    std::ifstream in(json);
    std::stringstream text;
    text << in.rdbuf();
    run.json = text.str();
  }
  fs::remove_all(dir, ec);
  return run;
}

/// The models as one --only argument.
std::string onlyArgument(const std::vector<std::string>& models) {
  std::string only;
  for (const auto& m : models) only += (only.empty() ? "" : ",") + m;
  return "--only " + shellQuote(only);
}

/// Runs `script` as runScript does and parses its JSON with `parse` into `into`; returns the
/// message saying why there is nothing (empty when parsed).
template <class Parsed, class Parse>
std::string runAndParse(const std::string& python, const std::string& script, const std::string& args,
                        const std::string& what, const std::string& whereLooked, const Parse& parse,
                        std::optional<Parsed>& into) {
  ScriptRun run = runScript(python, script, args, what, whereLooked);
  if (!run.json) return run.message;
  try {
    into = parse(*run.json, "peer JSON of " + script);
  } catch (const Error& e) {
    return std::string("peer: ") + e.what() + "; peer columns show -";
  }
  return "";
}

}  // namespace

PeerResult runPeer(const PeerOptions& options, const std::vector<std::string>& models) {
  PeerResult result;
  std::string script = options.script.empty() ? findPeerScript() : options.script;
  std::string args = "--threads " + std::to_string(options.threads) + " --iters " + std::to_string(options.iters) +
                     " " + onlyArgument(models);
  result.message = runAndParse(options.python, script, args, "torch_models.py",
                               "looked in ../shared/bench/; use --peer-script", parsePeerJson, result.times);
  return result;
}

std::optional<std::string> referenceBlasWarning(const std::string& libblas) {
  std::error_code ec;
  fs::path target = fs::canonical(libblas, ec);
  if (ec || target.parent_path().filename() != "blas") return std::nullopt;
  return "peer: warning: PyTorch's BLAS is the reference BLAS (" + libblas + " -> " + target.string() +
         "), its dense layers run unoptimized: apt-get install libopenblas0-pthread";
}

std::string findMemoryScript() { return findInRepository(fs::path("bench") / "torch_memory.py"); }

std::string findOrtScript() { return findInRepository(fs::path("..") / "shared" / "bench" / "ort_peer.sh"); }

PeerResult runOrtPeer(const OrtOptions& options, const std::string& model) {
  PeerResult result;
  const std::string unavailable = "; ort columns show -";
  const std::string script = options.script.empty() ? findOrtScript() : options.script;
  std::error_code ec;
  if (script.empty() || !fs::exists(script, ec)) {
    result.message = "ort: ort_peer.sh not found" +
                     (script.empty() ? std::string(" (looked in ../shared/bench/; use --ort-script)") : " at " + script) +
                     unavailable;
    return result;
  }
  const fs::path cache = options.cacheDir, package = cache / "node_modules", exported = cache / (model + ".onnx");
  auto ready = [&] { return fs::exists(package / "onnxruntime-node", ec) && fs::exists(exported, ec); };
  if (!ready()) {
    fs::create_directories(cache, ec);
    const fs::path log = cache / "prepare.log";
    int status = runShell("bash " + shellQuote(script) + " " + shellQuote(cache.string()) + " >" +
                          shellQuote(log.string()) + " 2>&1");
    if (status != 0 || !ready()) {
      result.message = "ort: preparing " + cache.string() + " failed (exit status " + std::to_string(status) +
                       "): " + lastLine(log) + unavailable;
      return result;
    }
  }
  fs::path dir = makeTempDir();
  fs::create_directory_symlink(fs::absolute(package, ec), dir / "node_modules", ec);
  fs::create_symlink(fs::absolute(exported, ec), dir / (model + ".onnx"), ec);
  const fs::path log = dir / "ort.log";
  int status = runShell("bash " + shellQuote(script) + " " + shellQuote(dir.string()) + " >" + shellQuote(log.string()) +
                        " 2>&1");
  std::stringstream text;
  const bool wrote = status == 0 && fs::exists(dir / "ort_cpu.json", ec);
  if (wrote) text << std::ifstream(dir / "ort_cpu.json").rdbuf();
  if (!wrote) {
    result.message = "ort: " + script + " failed (exit status " + std::to_string(status) + "): " + lastLine(log) +
                     unavailable;
  } else {
    try {
      result.times = parsePeerJson(text.str(), "ONNX Runtime JSON of " + script);
    } catch (const Error& e) {
      result.message = std::string("ort: ") + e.what() + unavailable;
    }
  }
  fs::remove_all(dir, ec);
  return result;
}

PeerMemoryResult runPeerMemory(const PeerOptions& options, const std::vector<std::string>& models) {
  PeerMemoryResult result;
  std::string modelsScript = options.script.empty() ? findPeerScript() : options.script;
  std::string script = options.memoryScript.empty() ? findMemoryScript() : options.memoryScript;
  std::error_code ec;
  if (modelsScript.empty() || !fs::exists(modelsScript, ec)) {
    result.message = "peer memory: torch_models.py not found; peer memory shows -";
    return result;
  }
  std::string args = "--models-script " + shellQuote(modelsScript) + " --threads " + std::to_string(options.threads) +
                     " " + onlyArgument(models);
  result.message = runAndParse(options.python, script, args, "torch_memory.py", "looked in bench/; use --memory-script",
                               parsePeerMemoryJson, result.peakBytes);
  return result;
}

}  // namespace weft::bench
