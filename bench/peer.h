#pragma once
/// The peers of `weft bench`: torch_models.py (PyTorch on the CPU) and, for inference,
/// ort_peer.sh (ONNX Runtime on the models' ONNX exports), run as child processes in the
/// same invocation, their JSON joined to weft's rows by (model, mode).
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

/// Debian's PyTorch multiplies its dense layers through the system BLAS, `libblas.so.3`,
/// which the alternatives system points at the reference BLAS unless an optimized one is
/// installed: its matmuls then run tens of times slower and every speedup over the peer is
/// inflated. Returns a one-line warning when `libblas` (a symlink chain) resolves to the
/// reference BLAS (a `blas/libblas.so.3`), else nothing.
std::optional<std::string> referenceBlasWarning(
    const std::string& libblas = "/usr/lib/x86_64-linux-gnu/libblas.so.3");

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

/// How to run the inference peer, ONNX Runtime.
struct OrtOptions {
  std::string script;                          ///< ort_peer.sh; empty: findOrtScript()
  std::string cacheDir = "/tmp/weft-ort-peer";  ///< onnxruntime-node and the exports, kept between runs
};

/// ort_peer.sh: `../shared/bench/ort_peer.sh` relative to the working directory (the
/// repository root), else relative to the source tree this weft was built from; empty when
/// neither exists.
std::string findOrtScript();

/// Times `model`'s inference on ONNX Runtime: when the cache directory lacks the package or
/// the model's export, `bash ort_peer.sh CACHE` prepares it (installs onnxruntime-node from
/// npm, exports every model with PyTorch, times them); then `bash ort_peer.sh DIR` times the
/// model alone in a fresh directory holding its export and the package (linked from the
/// cache), so that it runs beside weft's rows of it. Never throws: without times, a one-line
/// message says why (no script, no npm registry, no PyTorch, a failure).
PeerResult runOrtPeer(const OrtOptions& options, const std::string& model);

}  // namespace weft::bench
