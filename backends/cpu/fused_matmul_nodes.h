#pragma once
/// Nodes the fuse-attention pass reads and builds: matmuls as fused matmuls, view copies
/// folded into the matmul that reads them, merged nodes' bodies and the rewrite that puts one
/// merged node in the place of several, tried wherever it applies.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace weft::cpu {

/// True when `n` is a matmul, plain or fused.
bool isMatmul(const ir::Node& n);

/// Matmul node `n` of `g` as a fused matmul: itself when fused, else a fused node of kind
/// "matmul" whose body is `n` on the node's operands.
ir::Node asFusedMatmul(const ir::Graph& g, const ir::Node& n);

/// True when the matmul of fused matmul body `body` reads its lhs transposed.
bool transposesLhs(const ir::Graph& body);

/// True when `n` is a fused loop kernel that only moves its one operand: slices, reshapes
/// and transposes in a chain from its input to its output (a head cut out of a fused qkv).
bool isViewCopy(const ir::Node& n);

/// Fused matmul `matmul` with its operand `index` read through the view ops of view copy
/// `copy` (isViewCopy) from the copy's operand instead.
ir::Node readThroughCopy(const ir::Graph& g, const ir::Node& matmul, size_t index, ir::ValueId copy);

/// Appends `v` to `values` unless it is there already.
void appendOnce(std::vector<ir::ValueId>& values, ir::ValueId v);

/// A merged node's body being built: one input per value of `operands` (values of the outer
/// graph `g`, distinct), in order, named in0, in1, ...
class BodyInputs {
 public:
  /// Adds the inputs to `body`.
  BodyInputs(ir::Graph& body, const ir::Graph& g, const std::vector<ir::ValueId>& operands);
  /// The body input holding outer value `outer` (one of the operands).
  ir::ValueId operator()(ir::ValueId outer) const;

 private:
  std::vector<ir::ValueId> operands_, inputs_;
};

/// `g` with the nodes `erased` dropped and node `replaced` replaced by a fused node of kind
/// `kind` over `operands` (values of `g` read before `replaced`) with body `body`, of
/// `replaced`'s type and location; nullopt when `runs` (a native step's test) refuses the
/// node there.
std::optional<ir::Graph> withFusedNode(const ir::Graph& g, const std::vector<ir::ValueId>& erased, ir::ValueId replaced,
                                       const std::string& kind, const std::vector<ir::ValueId>& operands,
                                       ir::Graph body, bool (*runs)(const ir::Graph&, ir::ValueId));

/// Tries `mergeAt` at each node of `g` in order until none merges: a success (`g` with a
/// merged node) replaces `g` and the search starts over; a node refused is not tried again
/// until something merges. True when anything merged.
bool mergeWherePossible(ir::Graph& g,
                        const std::function<std::optional<ir::Graph>(const ir::Graph&, ir::ValueId)>& mergeAt);

}  // namespace weft::cpu
