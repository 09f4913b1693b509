#pragma once
/// Questions passes ask about constant operands, seen through the broadcasts and reshapes
/// that autodiff and the decompositions put around them.
#include "ir/graph.h"

namespace weft::passes {

/// True when `v` is a constant, or a reshape or broadcast of one, whose elements all equal `value`.
bool isSplat(const ir::Graph& g, ir::ValueId v, double value);

/// True when `v` is a one-element constant, or a reshape or broadcast of one.
bool isScalarConstant(const ir::Graph& g, ir::ValueId v);

}  // namespace weft::passes
