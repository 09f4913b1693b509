#pragma once
/// The peer of `weft bench`: torch_models.py (PyTorch on the CPU) run as a child process in
/// the same invocation, its JSON joined to weft's rows by (model, mode).
#include <optional>
#include <string>
#include <vector>

#include "bench/report.h"

namespace weft::bench {

/// How to run the peer.
struct PeerOptions {
  std::string python = "/usr/bin/python3";  ///< the interpreter that has python3-torch
  std::string script;                       ///< torch_models.py; empty: findPeerScript()
  int threads = 2;                          ///< its --threads
  int iters = 20;                           ///< its --iters (timed runs per row)
  std::string memoryScript;                 ///< torch_memory.py; empty: findMemoryScript()
};

/// torch_models.py: `../shared/bench/torch_models.py` relative to the working directory
/// (the repository root), else relative to the source tree this weft was built from.
/// Returns an empty string when neither exists.
std::string findPeerScript();

/// What a peer run gave.
struct PeerResult {
  std::optional<PeerTimes> times;  ///< the medians, when the peer ran
  std::string message;             ///< one line saying why there are none
};

/// Runs `python script --threads T --iters N --only MODELS --json TMP` (its own output goes
/// to stderr) and reads the JSON. When it cannot run (no script, no PyTorch for `python`,
/// a failure), returns no times and a one-line message instead of throwing.
PeerResult runPeer(const PeerOptions& options, const std::vector<std::string>& models);

/// bench/torch_memory.py: relative to the working directory (the repository root), else to
/// the source tree this weft was built from; empty when neither exists.
std::string findMemoryScript();

/// What a peer memory run gave.
struct PeerMemoryResult {
  std::optional<PeerMemory> peakBytes;  ///< PyTorch's peak tensor bytes of each model's training step
  std::string message;                  ///< one line saying why there are none
};

/// Runs `python torch_memory.py --models-script torch_models.py --threads T --only MODELS
/// --json TMP` and reads the JSON. Like runPeer, never throws for a peer that cannot run.
PeerMemoryResult runPeerMemory(const PeerOptions& options, const std::vector<std::string>& models);

}  // namespace weft::bench
