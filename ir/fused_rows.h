#pragma once
/// Row kernels: the body of a `fused` node of kind "rows" computes its outputs one row (the
/// last dimension) at a time, and folds values of the row into per-row scalars that later
/// values of the same row read: softmax (the row's max, then the sum of exp(x - max), then
/// each exp divided by the sum) or a norm over the last axis, in one kernel instead of one
/// per reduction and one per elementwise pass between them.
#include <optional>
#include <string>

#include "ir/graph.h"

namespace weft::ir {

/// True when `n` (a node of `g`) reduces the last axis of a value with keepdims=1: a
/// reduce_sum, reduce_max or reduce_min of rank >= 1 whose result is one element per row.
bool reducesLastAxis(const Graph& g, const Node& n);

/// Why `body` is not a row body, or nullopt when it is. A row body has outputs of one shape
/// S whose last extent is at least 2, and the values they depend on include at least one
/// reduction. Each such reduction reduces the last axis (reducesLastAxis) of a value of shape
/// S. What depends on a reduction is read only by elementwise values of shape S or of one
/// value per row (S with a last extent of 1), by broadcasts of such a per-row value to S, and
/// by reductions: nothing moves a row's values to another row.
std::optional<std::string> rowsBodyProblem(const Graph& body);

}  // namespace weft::ir
