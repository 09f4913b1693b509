#pragma once
/// The generated kernels a program runs, one per step: a fused node's own body, or the body
/// of an optimizer's whole step over one parameter. A parameter's update (a loop kernel)
/// that reads update values computed just before it in their own state's slots (Adam's
/// moments) computes them too, in one kernel with several outputs: it reads the gradient,
/// the moments and the parameter once and writes the three, instead of three kernels
/// passing the moments through memory. The choice is a function of the graph and its memory
/// plan, so a compiler and a runtime loading its bundle make the same one.
#include <memory>
#include <vector>

#include "ir/graph.h"
#include "runtime/cpu/memory_plan.h"

namespace weft::cpu {

/// One generated kernel of a program.
struct GeneratedStep {
  ir::ValueId value = -1;                 ///< the fused node whose step runs the kernel
  /// Values it also writes (their nodes run no step): update values, or its sibling.
  std::vector<ir::ValueId> extraOutputs;
  /// Reduce kernels reading the value that it computes as side sums (ir/side_sums.h; their
  /// nodes run no step): each call writes their sums over its range (runKernel's sideSums).
  std::vector<ir::ValueId> sideSums;
  /// The kernel's body: the node's own, or with the extra outputs' (or side sums') bodies
  /// inlined, returning the node's value first and then each extra output's, in order.
  std::shared_ptr<const ir::Graph> body;
  std::vector<ir::ValueId> operands;  ///< the values the body's inputs read, in order
};

/// The generated steps of `g` under `plan`, in node order: one for every fused node of kind
/// "loop" or "reduce", except the update values merged into a later step. Update value `a`
/// merges into the loop kernel of update value `p` when `p` reads it and is its only reader,
/// `a` is a loop kernel of `p`'s shape computed in its parameter's own slot, `p` lives in
/// persistent storage, and only other such values of `p` come between `a` and `p` in node
/// order (so that no arena memory changes hands while the merged reads wait). A kernel
/// touching a value `blocked` marks (see blockedValues) runs its body's blockedBody.
///
/// Siblings: a loop kernel `p` that merges no update value computes the loop kernel `a` just
/// before it (reshapes between aside) too, when both are elementwise (every computed value in
/// their bodies of their shape, or broadcast to it, scalar constants aside) and have the same
/// shape, `a` lives in the arena, neither is an update value, `p` reads no view of `a` (`a`
/// itself it may, its arena bytes apart from `p`'s: the merged body computes it once), every
/// value `a` reads `p` reads too, and neither touches blocked data: one pass over the values
/// they share (an activation and the derivative factor precompute-derivatives made of it; a
/// group norm's sigmoid and the SiLU product reading it: ddpm's 8 pairs, 0.26-0.60 -> 0.17-0.40
/// ms each on the AMD EPYC). `a`'s bytes are planned from its own step, before `p`'s, and
/// nothing but views and `p` reads them in between.
///
/// Side sums: a loop kernel `l` in the arena computes reduce kernel `r` too when `l` is `r`'s
/// side-sum source (sideSumSources: `r` sums values of `l` at their own elements over some
/// axes, its other operands exist before `l`), `r`'s arena bytes are free from `l`'s step
/// on (planMemory keeps them so: nothing else is placed there meanwhile), and `r`'s rank-4
/// operands share `l`'s layout (blocked or not) while `r` itself is not blocked. A batch
/// norm's gradient then reads its data once for the gradient and both of its sums.
///
/// Any of these merges is refused where an output written over an operand's bytes (in place)
/// may not wait for that operand's load while another output reads it: the kernel's pointers
/// are noalias, so LLVM may store such an output's element first (a value that folds to a
/// constant, as select(x < x, x, 0), becomes a memset before the loop). An output keeps
/// waiting when its value depends on the load through float arithmetic, compares of unequal
/// values and selects (writesInPlaceSafely in the .cpp).
std::vector<GeneratedStep> generatedSteps(const ir::Graph& g, const MemoryPlan& plan,
                                          const std::vector<bool>& blocked = {});

}  // namespace weft::cpu
