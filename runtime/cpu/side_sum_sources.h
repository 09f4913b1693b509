#pragma once
/// Which generated reductions a loop kernel can compute alongside its own value (side sums,
/// ir/side_sums.h), by the graph's structure alone: the memory plan keeps such a sum's buffer
/// from its loop kernel's step on, and generatedSteps then merges the two kernels where the
/// layouts allow it.
#include <vector>

#include "ir/graph.h"

namespace weft::cpu {

/// Per value of `g`: the loop kernel whose step can also compute it as a side sum, or -1.
/// Value `r` has source `l` when both are generated kernels (`fused` nodes of kind "reduce"
/// and "loop", one output each), `r` reads `l`, its body's root is a side sum of `l`'s
/// shape (ir::isSideSum) that reads `l` only at the element it sums (through elementwise
/// values of that shape) and keeps few of its trailing elements (at most 1024, 256 beside a
/// kernel computing transcendentals: a wider row of sums slows the loads of the inputs, see
/// kMaxInnermostSums), and its other operands come
/// before `l`. Steps between them may borrow free arena space for scratch (freeArenaOffset),
/// which the plan's longer lifetime of `r` keeps them out of.
std::vector<ir::ValueId> sideSumSources(const ir::Graph& g);

}  // namespace weft::cpu
