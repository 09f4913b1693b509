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

/// How a value is referred to in messages and IR text: `%name`, or `%N` numbered as the
/// printer numbers unnamed values (ir/printer.h valueRefs).
std::string valueRef(const Graph& g, ValueId v);

/// The message of a check_index that found `what` `index` at `position` of the indices `ref`
/// outside [0, limit): "label 7 (at position 3 of %y) is out of range [0, 5)".
std::string checkIndexMessage(const std::string& what, int64_t index, int64_t position, const std::string& ref,
                              int64_t limit);

}  // namespace weft::ir
