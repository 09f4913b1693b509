#pragma once
/// A compiled graph ready to run on the CPU: its memory plan, one arena, a persistent block
/// for parameters (and optimizer state), and one step per node that computes (a oneDNN
/// primitive, a generated kernel, a native step, or a step the embedding program supplies).
/// Both the JIT executable (backends/cpu) and ahead-of-time bundles (runtime/bundle.cpp) run
/// graphs through it; it includes no compiler header.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"
#include "runtime/cpu/aligned_buffer.h"
#include "runtime/cpu/kernel_call.h"
#include "runtime/cpu/memory_plan.h"

namespace dnnl {
struct engine;
}  // namespace dnnl

namespace weft::cpu {

struct StepLayouts;

/// A step the embedding program supplies for a node nothing in the runtime runs (the JIT's
/// reference kernels): reads `operands`, writes `result`; `step` keys random draws.
using HostStep = std::function<void(const std::vector<const void*>& operands, void* result, uint64_t step)>;

/// The most worker threads a program runs with (OpenMP fails, or crashes, creating tens of
/// thousands).
inline constexpr int kMaxThreads = 1024;

/// `threads` when it is from 1 to kMaxThreads; otherwise throws weft::Error naming `what`
/// (the option or function that asked for them).
int checkedThreads(long long threads, const std::string& what);

/// Worker threads when none are asked for: WEFT_THREADS when set (an integer from 1 to
/// kMaxThreads, else weft::Error naming the variable), else 2 (this project's machines have two cores).
int defaultThreads();

/// How many of its slowest steps a program prints when it ends (its profile): 0 (no profile)
/// when WEFT_PROFILE is unset, empty or 0; 12 for 1; N for another N up to a million. Other
/// values throw weft::Error naming the variable.
size_t profileSteps();

/// True for the nodes a generated kernel runs: `fused` nodes of kind "loop" (but those the
/// native transpose runs: runsNativeTranspose), "reduce" or "rows".
bool runsGeneratedKernel(const ir::Node& node);

/// How to build a Program.
struct ProgramOptions {
  int threads = 2;  ///< worker threads of oneDNN and of the generated kernels
  /// The kernel of node v (one for which runsGeneratedKernel holds), or null when it has
  /// none: the kernel of the body generatedSteps gives v (reading its operands, then writing
  /// its further outputs), which the program's own plan decides.
  std::function<const KernelEntry*(ir::ValueId)> kernelFor;
  /// A step for node v of the program's own graph (whose address is stable for the Program's
  /// lifetime) when nothing else runs it, or an empty function (then building fails with an
  /// error naming the node's op).
  std::function<HostStep(const ir::Graph&, ir::ValueId)> hostStepFor;
  /// Memory the caller owns for the arena and the state block (null: allocated), at least
  /// as large as the plan needs and 64-byte aligned; they must outlive the Program.
  uint8_t* arena = nullptr;
  int64_t arenaCapacity = 0;
  uint8_t* state = nullptr;
  int64_t stateCapacity = 0;
  /// Per value: stored channel-blocked (blockedValues of the graph and its plan, the same the
  /// kernels of kernelFor were generated for); empty: none.
  std::vector<bool> blocked;
  /// oneDNN steps keep constant operands (constants, and parameters no update writes)
  /// converted into the layouts their primitives read, native Winograd steps keep such
  /// weights transformed (NativeCall::held), and generated kernels that read only such
  /// operands (a slice of an inference graph's weight) keep their results, computing
  /// them again only after forgetHeldCopies() or when a run feeds parameters: the caller
  /// calls forgetHeldCopies() after writing parameters (into paramData()) and before a run
  /// that may follow such writes.
  bool holdConstantCopies = false;
  /// Runs set FTZ and DAZ on their threads (see denormals.h): denormal floats become 0.
  bool flushDenormals = true;
};

/// How many steps of each kind a Program runs.
struct StepCounts {
  int onednn = 0;     ///< oneDNN primitives
  int generated = 0;  ///< generated kernels
  int native = 0;     ///< the runtime's hand-written steps (concat, gather, random draws)
  int host = 0;       ///< steps the embedding program supplied
  /// Values one oneDNN step passes to others in the (blocked) layout it computes in.
  int laidOutValues = 0;
  /// oneDNN steps that run a Winograd convolution (see winograd.h).
  int winograd = 0;
  /// Native steps that run weft's own Winograd convolutions and weight gradients (see
  /// native_winograd.h; weftWinogradPreferred).
  int nativeWinograd = 0;
  /// Bytes oneDNN steps' reorders read per run to convert data and weights between layouts.
  int64_t convertedBytes = 0;
  /// Update values computed by the generated kernel of a later update (an optimizer's moments
  /// by their parameter's; see generatedSteps), which run no step of their own.
  int mergedUpdates = 0;
  /// Loop kernels computed by the generated kernel of the next node (siblings, see
  /// generatedSteps), which run no step of their own.
  int mergedSiblings = 0;
  /// Sums computed alongside the loop kernel whose value they sum (side sums, see
  /// generatedSteps), which run no step of their own.
  int sideSums = 0;
  /// Matmuls run by the triangular step (native_triangular_matmul.h): causal attention's.
  int triangularMatmuls = 0;
  /// Row kernels whose rows stop at the diagonal (ir::rowsStopAtDiagonal).
  int diagonalRows = 0;
  /// Attention nodes run by the causal attention step (native_attention.h).
  int attention = 0;
  /// Attention gradient nodes run by the causal attention gradient step (native_attention.h).
  int attentionGrads = 0;
  /// Values stored channel-blocked between convolutions and generated kernels (see
  /// blocked_layout.h).
  int blockedValues = 0;
  /// Generated kernels computed from constants only (holdConstantCopies): run once, their
  /// results held (see Program::holdConstantResults).
  int heldResults = 0;
  /// The oneDNN steps whose primitive is oneDNN's slow reference implementation, e.g.
  /// "conv_weight_grad %7 [ref:any]": a layout or shape its fast kernels do not take.
  std::vector<std::string> onednnReferenceSteps;
  /// All steps that run code.
  int total() const { return onednn + generated + native + host; }
};

/// A graph compiled into steps over planned memory. Not thread-safe: one run at a time.
class Program {
 public:
  /// Plans `graph` (verified and optimized by the caller) and builds its steps. Throws
  /// weft::Error when a node can be run by nothing (naming the op and value), when
  /// caller-owned memory is too small or misaligned, or when oneDNN fails.
  Program(ir::Graph graph, ProgramOptions options);
  ~Program();
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;

  /// The graph it runs.
  const ir::Graph& graph() const { return graph_; }
  /// Where every value lives.
  const MemoryPlan& plan() const { return plan_; }
  /// The steps by kind.
  const StepCounts& counts() const { return counts_; }
  /// Wall seconds of building: ("plan", s), ("steps", s).
  const std::vector<std::pair<std::string, double>>& buildSeconds() const { return buildSeconds_; }
  /// Worker threads.
  int threads() const { return threads_; }
  /// Sets the worker threads (clamped to [1, kMaxThreads]).
  void setThreads(int threads) { threads_ = threads < 1 ? 1 : threads > kMaxThreads ? kMaxThreads : threads; }
  /// Sets whether runs flush denormals (ProgramOptions::flushDenormals).
  void setFlushDenormals(bool flush) { flushDenormals_ = flush; }

  /// Runs every step. `bound` has one entry per value: non-null entries (the inputs, and
  /// parameters fed instead of the held ones) are read there instead of planned storage.
  /// `step` keys random draws. Errors of a step (a gather index out of range) throw weft::Error.
  /// Update values the plan computes in their parameter's slot (Placement::inPlaceOf) update
  /// the state as they run; with `keepState` those parameters are restored afterwards, so
  /// that a run without applyUpdates() leaves the state as it was (from copies the program
  /// keeps until a run without `keepState`: one more copy of those parameters meanwhile).
  void execute(const std::vector<const void*>& bound, uint64_t step, bool keepState);
  /// Applies the graph's updates to the state block, after execute() with the same `bound`:
  /// copies the update values the plan put in the arena, and makes each twin slot (see
  /// planMemory) its parameter's, so that paramData() of a twinned parameter moves.
  void applyUpdates(const std::vector<const void*>& bound);
  /// The bytes of value `v` during and after a run with `bound`.
  void* address(ir::ValueId v, const std::vector<const void*>& bound) const;
  /// Parameter `p`'s current bytes in the state block (until the next applyUpdates).
  uint8_t* paramData(ir::ValueId p) const;
  /// Bytes of the scratch area shared by the oneDNN and native steps whose run-time buffers
  /// found no room in the arena (see shareScratch).
  int64_t scratchBytes() const { return scratch_.size(); }
  /// Bytes of the converted copies of constant operands the oneDNN steps hold, of the
  /// transformed weights native Winograd steps hold and of the held results of generated
  /// kernels (ProgramOptions::holdConstantCopies).
  int64_t heldBytes() const;
  /// Says that parameters hold other bytes now (written into paramData()): the held copies
  /// are converted again on the next run.
  void forgetHeldCopies();

  struct Step;  ///< one node's executor (program.cpp)

 private:
  void runStep(const Step& step, const std::vector<const void*>& bound, uint64_t counter, void* stream);
  /// Lets oneDNN steps pass values on in the layouts they compute in (program.cpp).
  void passComputedLayouts(const dnnl::engine& engine);
  /// StepLayouts::constantOperands of node v's step (none unless holdConstantCopies).
  std::vector<bool> constantOperands(ir::ValueId v) const;
  /// True when value v is stored channel-blocked.
  bool isBlocked(ir::ValueId v) const {
    return static_cast<size_t>(v) < blocked_.size() && blocked_[static_cast<size_t>(v)];
  }
  /// True when node v reads or writes a value stored channel-blocked.
  bool touchesBlocked(ir::ValueId v) const;
  /// True when the native step of node v (if any) takes each of its channel-blocked values
  /// as stored (nativeTakesBlocked).
  bool nativeTakesItsBlocked(ir::ValueId v) const;
  /// The layouts of node v's step: row-major but for channel-blocked values, with the
  /// arena's room for conversion copies (see roomyLayouts).
  StepLayouts blockedLayouts(ir::ValueId v) const;
  /// Gives every oneDNN step and native step that needs them (nativeScratchBytes for the
  /// threads of construction; a native Winograd step runs on fewer when there are more) its
  /// run-time buffers: in the arena region the plan reserved for it when they fit, else in
  /// a gap of the arena at that step, else in one scratch area the remaining steps share.
  void shareScratch();
  /// Gives each generated kernel computed from constants only (constants, parameters no
  /// update writes, reshapes and other such kernels; no random draws) a buffer of its own for
  /// its result (address() answers it instead of the arena slot), so that it runs only on
  /// the first run after the program starts or forgets its held copies.
  void holdConstantResults();
  /// True when update `u`'s value is computed in its parameter's own slot (Placement::inPlaceOf).
  bool computedInPlace(const ir::StateUpdate& u) const;
  /// The state offset where persistent value `v` lives now (see swapped_).
  int64_t stateOffset(ir::ValueId v) const;
  void printProfile() const;

  ir::Graph graph_;
  MemoryPlan plan_;
  StepCounts counts_;
  std::vector<bool> blocked_;  ///< per value: stored channel-blocked (ProgramOptions::blocked)
  int threads_ = 2;
  bool holdConstants_ = false;  ///< ProgramOptions::holdConstantCopies
  bool flushDenormals_ = true;  ///< ProgramOptions::flushDenormals
  std::vector<ir::ValueId> params_;  ///< the graph's parameters, when holdConstants_ (execute looks for fed ones)
  std::vector<std::pair<std::string, double>> buildSeconds_;
  std::vector<Step> steps_;
  std::vector<const void*> constants_;  ///< per value: a constant's bytes, else null
  AlignedBuffer ownArena_, ownState_;
  AlignedBuffer scratch_;  ///< run-time buffers of the steps with no room in the arena
  std::vector<AlignedBuffer> heldResults_;  ///< per value: a held result's own buffer (holdConstantResults)
  bool heldResultsReady_ = false;           ///< the held results hold what their kernels compute
  uint8_t* arena_ = nullptr;
  uint8_t* state_ = nullptr;
  std::shared_ptr<void> engine_;          ///< the dnnl::engine (kept out of this header)
  std::vector<const void*> operandPtrs_;  ///< scratch of runStep
  std::vector<double> stepSeconds_;       ///< per step, summed over runs, when WEFT_PROFILE is set
  size_t profileSteps_ = 0;               ///< the steps the profile lists (profileSteps), 0: none
  int profiledRuns_ = 0;
  bool profileWarm_ = false;  ///< the first run happened (a profile leaves it out)
  /// The twins of the memory plan have traded places an odd number of times: each twinned
  /// parameter's current value is in its update value's slot, and the other way round.
  bool swapped_ = false;
  /// execute's copies of the parameters it updates in place, with keepState: kept from one
  /// such run to the next (their buffers reused), freed by a run without keepState; one per
  /// such update in the graph's order.
  std::vector<std::vector<uint8_t>> keptState_;
  double updateSeconds_ = 0;  ///< applyUpdates, summed over runs, when WEFT_PROFILE is set
  int profiledUpdates_ = 0;
};

}  // namespace weft::cpu
