#pragma once
/// The compiled CPU backend: a graph optimized (decomposed, simplified, fused), then turned
/// once into a schedule of steps, each a oneDNN primitive, an MLIR-generated kernel or a
/// reference kernel, over one planned arena and persistent state buffers.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/reference/interpreter.h"
#include "ir/graph.h"
#include "runtime/cpu/matmul_tuning.h"

namespace weft::cpu {

/// How to compile.
struct CompileOptions {
  /// Worker threads of the executable (oneDNN and generated kernels); 0: the environment
  /// variable WEFT_THREADS when set, else 2 (this project's machines have two cores). More
  /// than kMaxThreads is an error.
  int threads = 0;
  bool optimize = true;         ///< run the CPU pipeline (decompose, simplify, fuse) before lowering
  bool generateKernels = true;  ///< fused regions through MLIR; false: they run on the interpreter
  std::string dumpMlirDir;      ///< when set: write each generated kernel's MLIR there
  std::string dumpAsmDir;       ///< when set: write each generated kernel's assembly there
  /// Time oneDNN's implementations of large matmuls and run the fastest (tuneMatmuls, with
  /// the process's shared choices); false, or the environment variable WEFT_TUNE_MATMULS=0:
  /// oneDNN's first choice always.
  bool tuneMatmuls = true;
  /// Runs flush denormal floats to zero (runtime/cpu/denormals.h); unset: as the environment
  /// variable WEFT_DENORMALS says (flush unless it is "keep").
  std::optional<bool> flushDenormals;
};

/// What compile() made, for `weft compile --stats` and the kernel-count tests.
struct CompileStats {
  int kernels = 0;           ///< steps that run code (excludes free reshapes and sources)
  int onednnPrimitives = 0;  ///< steps run by oneDNN
  int generatedKernels = 0;  ///< steps run by MLIR-generated code
  int nativeSteps = 0;       ///< steps run by hand-written kernels (concat, gather, random draws, 2-D max_pool_grad)
  int laidOutValues = 0;     ///< values oneDNN steps pass on in their own (blocked) layout
  int blockedValues = 0;     ///< data stored channel-blocked between convolutions and kernels
  int winogradSteps = 0;     ///< oneDNN steps that run a Winograd convolution
  int nativeWinogradSteps = 0;  ///< native steps that run weft's own Winograd (native_winograd.h)
  int heldResults = 0;       ///< generated kernels of constants only, run once (StepCounts::heldResults)
  int64_t convertedBytes = 0;  ///< bytes oneDNN steps' reorders read per run to convert layouts
  int partialSumKernels = 0;  ///< generated sums split over a reduced dimension across threads (partial sums)
  int mergedUpdates = 0;      ///< update values (optimizer moments) computed by their parameter's update kernel
  int mergedSiblings = 0;     ///< loop kernels computed by the next loop kernel reading the same values
  int sideSums = 0;           ///< reductions computed by the loop kernel whose value they sum (side sums)
  int triangularMatmuls = 0;  ///< matmuls skipping the blocks a causal mask makes useless (the triangular step)
  int diagonalRows = 0;       ///< row kernels whose rows stop at the diagonal (a causal softmax)
  int attention = 0;          ///< causal attentions run as one step, scores and probabilities unwritten
  int attentionGrads = 0;     ///< causal attention gradients run as one step (dp, ds unwritten)
  MatmulTuning matmuls;      ///< what matmul tuning did (tuneMatmuls; zeros when off)
  int referenceKernels = 0;  ///< steps run by reference kernels (the fallback)
  /// Each reference step, e.g. "fused %12 : f32[4,8] (REASON)": why nothing faster runs it.
  std::vector<std::string> referenceSteps;
  /// oneDNN steps that run oneDNN's slow reference implementation (StepCounts).
  std::vector<std::string> onednnReferenceSteps;
  int64_t arenaBytes = 0;       ///< size of the activation arena
  int64_t persistentBytes = 0;  ///< parameters and optimizer state
  int64_t scratchBytes = 0;     ///< oneDNN and native steps' run-time buffers with no room in the arena, shared
  /// Constant operands (an inference graph's weights) that oneDNN steps keep converted into
  /// the layouts their primitives read, weft's Winograd steps keep transformed, and held
  /// results of kernels of constants (ProgramOptions::holdConstantCopies).
  int64_t heldBytes = 0;
  int64_t peakBytes = 0;        ///< arena + persistent + scratch + held + inputs and outputs
  /// Wall seconds of each compile stage, in order ("optimize", "plan", "onednn", "codegen", ...).
  std::vector<std::pair<std::string, double>> stageSeconds;
};

/// A graph compiled for the CPU, holding its state (parameters and optimizer state,
/// initialized from their `init` attributes at compile time). Not thread-safe: one run at a time.
class Executable {
 public:
  struct Impl;  ///< the compiled steps and buffers (oneDNN and MLIR types stay out of this header)

  /// Wraps compiled state; use cpu::compile() to make one.
  explicit Executable(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  /// Runs the graph with the semantics of reference::run: `feeds` holds every graph input and
  /// may hold parameters by name (those not fed come from the held state). Updates are not
  /// applied. Returns the outputs by name. Bad feeds throw weft::Error as reference::run does.
  reference::TensorMap run(const reference::TensorMap& feeds, const reference::RunOptions& options = {});

  /// Runs one step with the held state (`inputs` holds every graph input and nothing else),
  /// then applies the graph's updates to the held state in place. Returns the outputs by name.
  reference::TensorMap step(const reference::TensorMap& inputs, const reference::RunOptions& options = {});

  /// The held state by parameter name.
  reference::TensorMap state() const;
  /// Replaces held parameters by name; each tensor must name a parameter and match its type
  /// (weft::Error otherwise). Parameters not named keep their values.
  void setState(const reference::TensorMap& state);

  /// What compile() made.
  const CompileStats& stats() const;
  /// How many nodes run as oneDNN primitives.
  int oneDnnNodeCount() const;
  /// The graph as compiled (after the CPU pipeline).
  const ir::Graph& graph() const;

 private:
  std::shared_ptr<Impl> impl_;
};

/// Registers the passes the CPU backend defines (fuse-attention) with the pass registry;
/// cpuPipeline users get them without calling this, `weft opt` calls it.
void registerCpuPasses();

/// `g` verified and run through the CPU pipeline (decompose, simplify, fuse, then an order
/// with fewer bytes alive at once: schedule-memory): the graph that
/// compile() and ahead-of-time bundles lower. Throws weft::Error when `g` is invalid.
/// `forThisCpu`: the graph runs on this host's kind of CPU, so fuse-attention may merge for
/// its AVX-512 steps (false for a bundle built for another CPU).
ir::Graph optimizeForCpu(const ir::Graph& g, bool forThisCpu = true);

/// Compiles `g` (verified first; weft::Error when invalid, or when a node can be run by
/// nothing, naming the op).
Executable compile(const ir::Graph& g, const CompileOptions& options = {});

/// reference::runStep on a compiled executable: loads `state` into it, steps, and writes the
/// updated state back. For tests; training loops keep the state inside the executable.
reference::TensorMap runStep(Executable& exe, const reference::TensorMap& inputs, reference::TensorMap& state,
                             const reference::RunOptions& options = {});

}  // namespace weft::cpu
