#pragma once
/// Ahead-of-time bundles: a graph compiled into files a program links without weft's
/// compiler: NAME.o (the generated kernels and the bundle descriptor NAME_bundle), NAME.h
/// (a C header: ABI version, sizes, and the name, dtype and shape of every input, output and
/// parameter), NAME.safetensors (the parameters, and the optimizer state of a training step)
/// and NAME.md (how to build against it). The program links NAME.o with libweft_runtime and
/// runs the bundle through runtime/weft.h.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backends/reference/interpreter.h"
#include "ir/graph.h"

namespace weft::cpu {

/// How to write a bundle.
struct AotOptions {
  std::string outDir;  ///< created when missing
  std::string name;    ///< a C identifier; empty: the graph's name
  std::string cpu;     ///< LLVM CPU name of the target (e.g. "x86-64-v3"); empty: this host's
  std::string triple;  ///< target triple (x86-64 ELF only); empty: this host's
  /// The parameters written to NAME.safetensors by name; parameters not named get their
  /// initial values (from their `init` attributes).
  reference::TensorMap state;
};

/// What writeBundle made, for `weft compile --aot --stats`.
struct AotResult {
  std::string name;                                      ///< the bundle's name
  std::vector<std::pair<std::string, int64_t>> files;    ///< path and size in bytes of each file written
  int steps = 0;             ///< steps that run code
  int kernels = 0;           ///< generated kernel entries (one per fused loop/reduce node)
  int distinctKernels = 0;   ///< functions in the object (identical bodies share one)
  int64_t arenaBytes = 0;    ///< NAME_ARENA_BYTES
  int64_t stateBytes = 0;    ///< NAME_STATE_BYTES
  std::string cpu;           ///< the CPU the code was generated for
  std::string program;       ///< the compiled graph's text, as stored in the object (weft_bundle::program)
  int64_t channelBlock = 0;  ///< weft_bundle::channel_block (16: data stored channel-blocked)
  /// Wall seconds of each stage: "optimize" (CPU pipeline, and matmul tuning for this host's CPU), "plan" (print and parse the
  /// program, check the runtime runs every node, plan memory), "codegen" (the object), "write".
  std::vector<std::pair<std::string, double>> stageSeconds;
};

/// Compiles `g` (a model's graph or its training step) for the CPU as compile() does, then
/// writes the bundle's four files into options.outDir, each atomically (nothing half-written
/// on failure). Throws weft::Error for an invalid graph or name, for a node a bundle cannot run
/// (one that needs a reference kernel: naming the op and why), or for an unknown target.
AotResult writeBundle(const ir::Graph& g, const AotOptions& options);

/// Startup of a bundle, measured in this process with the same runtime path a linked bundle
/// takes (weft_model_create, weft_model_load_weights, runs) but with kernels JIT-compiled
/// here instead of linked from NAME.o.
struct AotStartup {
  double createSeconds = 0;    ///< parse the program, plan, build oneDNN primitives
  double loadSeconds = 0;      ///< read and check NAME.safetensors
  double firstRunSeconds = 0;  ///< the first run (zero inputs)
  double nextRunSeconds = 0;   ///< the median of the next runs
};

/// Measures the startup of the bundle `result` describes (its program text, and its weights
/// in options.outDir), as writeBundle wrote it with `options`.
AotStartup measureStartup(const AotOptions& options, const AotResult& result);

}  // namespace weft::cpu
