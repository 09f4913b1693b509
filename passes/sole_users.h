#pragma once
/// Who reads a value: the question fusion passes ask before folding a node into its reader.
#include <vector>

#include "ir/graph.h"

namespace weft::passes {

/// For every value of `g`, the node that is its only reader (reading it once or more), or
/// -1 when it has no reader, several, or is also a graph output or state update value.
std::vector<ir::ValueId> soleUsers(const ir::Graph& g);

/// For every value of `g`, the nodes reading it as an operand, each once, in node order
/// (graph outputs and state updates are not nodes: readerCounts counts them).
std::vector<std::vector<ir::ValueId>> readersOf(const ir::Graph& g);

/// How many times each value of `g` is read: as an operand (once per operand slot), a graph
/// output or a state update value.
std::vector<int> readerCounts(const ir::Graph& g);

}  // namespace weft::passes
