#pragma once
/// The IR text parser.
#include <string>
#include <string_view>

#include "ir/graph.h"

namespace weft::ir {

/// Parses one graph from IR text and verifies it. Errors throw weft::Error with a message
/// `FILE:LINE:COL: message`, where `file` names the source.
Graph parseGraph(std::string_view text, const std::string& file = "<input>");

}  // namespace weft::ir
