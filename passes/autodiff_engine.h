#pragma once
/// The backward walk of autodiff (internal to passes/): which edges carry gradients, which
/// nodes lie on a differentiable path, and the reverse sweep that calls the gradient rules.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"

namespace weft::passes::grad {

/// How a cotangent may cross from a node's result to one of its operands.
enum class Edge {
  None,       ///< it does not: integer/bool operand or result, stop_gradient, a source
  Gradient,   ///< through the op's gradient rule (or its decomposition)
  Forbidden,  ///< the op is not differentiable (kNoGrad with float values, e.g. sign, floor)
};

/// The edge from operand `operand` of node `node` to the node's result.
Edge edgeKind(const ir::Graph& g, ir::ValueId node, size_t operand);

/// `op %value (at loc)`: how autodiff's messages name node `v`.
std::string describe(const ir::Graph& g, ir::ValueId v);

/// The nodes between `wrt` and `seeds` over gradient (and forbidden) edges; nodes below
/// `lowest` are leaves (never expanded).
struct PathAnalysis {
  std::vector<char> dependsOnWrt;  ///< reachable from a wrt value
  std::vector<char> onPath;        ///< also reaches a seed, so it receives a cotangent
};

/// Computes the differentiable paths. Throws weft::Error naming the op when a forbidden
/// edge lies on a path; `target` names what is differentiated, for that message.
PathAnalysis analyzePaths(const ir::Graph& g, const std::vector<ir::ValueId>& seeds,
                          const std::vector<ir::ValueId>& wrt, ir::ValueId lowest, const std::string& target);

/// Runs the reverse sweep from `seeds` (value, cotangent) over nodes >= `lowest`, appending
/// the cotangent computation to `g`. Returns the summed cotangent of each `wrt` value, or
/// nullopt where none arrived (not on a path, or only zero cotangents).
std::vector<std::optional<ir::ValueId>> backprop(ir::Graph& g,
                                                 const std::vector<std::pair<ir::ValueId, ir::ValueId>>& seeds,
                                                 const std::vector<ir::ValueId>& wrt, ir::ValueId lowest,
                                                 const std::string& target);

}  // namespace weft::passes::grad
