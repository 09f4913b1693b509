#pragma once
/// Pieces of the reference interpreter that other executors (the compiled CPU backend) reuse.
#include <vector>

#include "backends/reference/kernels.h"

namespace weft::reference {

/// Throws weft::Error unless every feed names an input or a parameter of `g`.
void checkFeedNames(const ir::Graph& g, const TensorMap& feeds);

/// For each value, the last node that reads it; outputs, update values and values read by
/// no node get `g.size()`, meaning "never release".
std::vector<ir::ValueId> lastUses(const ir::Graph& g);

/// Runs `kernel` on `ctx` and checks that the result has the node's declared type
/// (std::logic_error otherwise: a kernel bug, not a user error).
ir::TensorData runKernel(Kernel kernel, const KernelContext& ctx);

}  // namespace weft::reference
