#pragma once
/// oneDNN lowering: the nodes the compiled CPU backend runs as oneDNN primitives.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "ir/graph.h"

namespace weft::cpu {

/// The layouts a step is built for, where they are not row-major: values one oneDNN step
/// passes to others in the layout they compute in, and data stored channel-blocked (the
/// program's choices, see Program and blocked_layout.h).
struct StepLayouts {
  std::vector<std::optional<dnnl::memory::desc>> operands;  ///< by operand index (may be shorter)
  std::optional<dnnl::memory::desc> result;
  /// Whether `bytes` of run-time buffers fit in the arena at the step, for copies a
  /// convolution makes only to run faster (Winograd on channels-last data, which the direct
  /// kernels read in place); unset: they always fit (see Program).
  std::function<bool(size_t bytes)> conversionFits;
  /// By operand index (may be shorter): operands that hold the same bytes run after run
  /// until the program says otherwise (OneDnnStep::forgetHeldCopies), such as an inference
  /// graph's weights. A step may keep such an operand converted into the layout its
  /// primitive reads (a blocked weight layout) instead of converting it every run.
  std::vector<bool> constantOperands;

  /// The layout of operand `i`, if it is not row-major.
  std::optional<dnnl::memory::desc> operand(size_t i) const {
    return i < operands.size() ? operands[i] : std::nullopt;
  }
  /// True when operand `i` is one of constantOperands.
  bool constantOperand(size_t i) const { return i < constantOperands.size() && constantOperands[i]; }
};

/// True when value `v` holds the same bytes in every run of `g`: a constant, or a parameter
/// that no update of `g` writes.
bool sameBytesEveryRun(const ir::Graph& g, ir::ValueId v);
/// Per operand of node `v`: sameBytesEveryRun.
std::vector<bool> constantOperandsOf(const ir::Graph& g, ir::ValueId v);

/// The run-time bytes of the copies oneDNN matmul node `v` (a matmul or a fused one) makes
/// each run where oneDNN's sgemm has no AVX-512 (a transposed lhs copied row-major, a rhs
/// read with padded rows; onednn_matmul.cpp), whatever this CPU is, each rounded up to 64
/// bytes as the step's scratch is: the room the memory plan reserves for them at the step
/// (conversionBound). 0 for other nodes.
int64_t matmulCopyBytes(const ir::Graph& g, ir::ValueId v);

/// One node run by oneDNN. Its primitives (and any reorders or workspaces they need) are
/// created once, by compileOneDnnNode; run() binds buffers, converts held copies of constant
/// operands when they are stale (StepLayouts::constantOperands), and executes.
class OneDnnStep {
 public:
  virtual ~OneDnnStep() = default;
  /// Runs the node: `operands[i]` is operand i's buffer and `result` the result's buffer,
  /// dense in the node's types, row-major unless the step was built with other StepLayouts.
  /// Waits for completion before returning.
  virtual void run(const std::vector<const void*>& operands, void* result, dnnl::stream& stream) const = 0;
  /// What runs, for stats and dumps, e.g. "matmul" or "conv+bias+relu".
  virtual std::string describe() const = 0;

  /// The layout the step's primitive reads operand `i` in, when it reorders the whole
  /// row-major operand into another one before every run; nullopt otherwise (also for an
  /// operand it holds converted).
  virtual std::optional<dnnl::memory::desc> operandLayout(size_t i) const = 0;
  /// True when the step can be built to read operand `i` in any layout without a reorder.
  virtual bool readsAnyLayout(size_t i) const = 0;
  /// The layout the step's primitive writes its result in, when it reorders that into the
  /// row-major result after running; nullopt otherwise.
  virtual std::optional<dnnl::memory::desc> resultLayout() const = 0;
  /// True when every operand and the result `layouts` names are bound in that layout.
  virtual bool follows(const StepLayouts& layouts) const = 0;

  /// Bytes of buffers the step needs only while it runs (converted copies of operands and
  /// results, a rerun's workspace). The program places them in memory free during the step
  /// (Program::shareScratch) instead of each step owning its own.
  virtual size_t scratchBytes() const = 0;
  /// Bytes the step's reorders read per run to convert data and weights between layouts
  /// (copies within one layout, such as a residual into the destination, not counted).
  virtual size_t convertedBytes() const = 0;
  /// Places the step's run-time buffers at `base`, which holds scratchBytes() bytes, 64-byte
  /// aligned, and stays valid while the step is used.
  virtual void useScratch(void* base) = 0;
  /// oneDNN's implementations (names as its impl info gives them, reference ones left out,
  /// in its order of preference) the step's primitive could be built with, where the node
  /// can choose one (a matmul's impl attribute); empty otherwise.
  virtual std::vector<std::string> implementations() const { return {}; }
  /// Bytes of the converted copies of constant operands the step keeps (StepLayouts::
  /// constantOperands), which live as long as the step.
  virtual size_t heldBytes() const { return 0; }
  /// Says that constant operands may hold other bytes now: the next run converts its held
  /// copies again.
  virtual void forgetHeldCopies() {}
};

/// The oneDNN step for node `v` of `g` when oneDNN can run it: f32 matmul, conv,
/// conv_transpose, conv_weight_grad, max_pool, avg_pool, max_pool_grad, and `fused` nodes of
/// kind "matmul" or "conv" (one primitive with post-ops). Null for every other node (other
/// ops, other dtypes, empty tensors, shapes or post-ops oneDNN has no exact or no fast
/// implementation for); the caller then runs the node's reference kernel. Operands and the
/// result are row-major except where `layouts` names another layout.
std::unique_ptr<OneDnnStep> compileOneDnnNode(const ir::Graph& g, ir::ValueId v, const dnnl::engine& engine,
                                              const StepLayouts& layouts = {});

}  // namespace weft::cpu
