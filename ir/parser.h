#pragma once
/// The IR text parser.
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace weft::ir {

/// How to parse IR text.
struct ParseOptions {
  /// Read `dense<elided>` constants (which the printer writes for large ones) as zeros: right
  /// for transforming and printing a graph, wrong for computing with it, so programs that run
  /// or compile graphs read text with this off (the constant is then an error).
  bool allowElidedConstants = true;
};

/// Parses one graph from IR text and verifies it. Errors throw weft::Error with a message
/// `FILE:LINE:COL: message`, where `file` names the source.
Graph parseGraph(std::string_view text, const std::string& file = "<input>", const ParseOptions& options = {});

}  // namespace weft::ir
