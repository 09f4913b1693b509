#pragma once
/// Graphviz export of a graph.
#include <string>

#include "ir/graph.h"

namespace weft::ir {

/// The graph as a Graphviz `digraph`: one node per value, labelled with op and type.
std::string toDot(const Graph& g);

}  // namespace weft::ir
