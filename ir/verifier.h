#pragma once
/// The IR verifier: the invariants every graph must hold between passes.
#include <string>
#include <vector>

#include "ir/graph.h"

namespace weft::ir {

/// Every broken invariant of `g`, one message each naming the node; empty when valid.
/// Checks SSA order, operand counts, declared attributes and their kinds, that each node's
/// type is what its type rule computes, unique names, and valid outputs.
std::vector<std::string> verifyErrors(const Graph& g);

/// Throws weft::Error listing every problem when `g` is invalid.
void verify(const Graph& g);

/// How a value is referred to in messages and IR text: `%name` or `%N` (its index).
std::string valueRef(const Graph& g, ValueId v);

}  // namespace weft::ir
