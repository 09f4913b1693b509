#pragma once
/// Side sums: a generated loop kernel may also write sums of values it computes over some
/// axes (a batch norm's gradient kernel the two per-channel sums its next kernel reads), so
/// that the data is read once for the kernel and its sums rather than once more per sum.
/// Such a body's further outputs are reductions; each call of the kernel writes the sums
/// over its own range, which the caller adds up.
#include "ir/graph.h"

namespace weft::ir {

/// The most elements a side sum has (each thread but the first sums into a copy of it).
inline constexpr int64_t kMaxSideSumElements = 4096;

/// True when value `v` of `body` can be a side sum of a loop body whose first output has
/// shape `shape`: an f32 reduce_sum over at least one axis of a value of that (non-empty)
/// shape, of at most kMaxSideSumElements elements.
bool isSideSum(const Graph& body, ValueId v, const Shape& shape);

}  // namespace weft::ir
