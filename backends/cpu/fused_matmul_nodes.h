#pragma once
/// Nodes the fuse-attention pass reads and builds: fused kernels by kind, matmuls as fused
/// matmuls, view copies folded into the matmul that reads them, and the rewrite that puts
/// one merged node in the place of several.
#include <string>
#include <vector>

#include "ir/graph.h"

namespace weft::cpu {

/// The kind of fused node `n` ("loop", "matmul", ...), or "" for any other node.
std::string fusedKind(const ir::Node& n);

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

/// `g` with the nodes `erased` dropped and node `replaced` replaced by `merged` (operands
/// given as values of `g`, read before `replaced`); `mergedValue` receives its value in the
/// result.
ir::Graph replaceByMerged(const ir::Graph& g, const std::vector<ir::ValueId>& erased, ir::ValueId replaced,
                          ir::Node merged, ir::ValueId& mergedValue);

}  // namespace weft::cpu
