#pragma once
/// The IR text printer. Its output parses back (ir/parser.h) to a graph that prints the same.
#include <string>
#include <vector>

#include "ir/graph.h"

namespace weft::ir {

/// How to print a graph.
struct PrintOptions {
  /// Print constants with more than `elideAbove` elements as `dense<elided>`.
  bool elideLargeConstants = true;
  /// The element count above which constants are elided.
  int64_t elideAbove = 16;
  /// Append ` loc("...")` to nodes that carry a source location.
  bool printLocations = false;
};

/// The text reference of every value: `%name`, or `%N` counting unnamed values in print order
/// (header inputs first, then the other nodes in graph order), as printGraph writes them.
std::vector<std::string> valueRefs(const Graph& g);

/// Prints `g` in weft's text format.
std::string printGraph(const Graph& g, const PrintOptions& options = {});

}  // namespace weft::ir
