#pragma once
/// Decompositions of composite ops into primitives: a table keyed by OpKind, one small
/// function per composite. The decompose-composites pass and anything else that needs a
/// composite's primitive form (autodiff, backends without a library call) use them.
#include <map>
#include <vector>

#include "ir/graph.h"
#include "passes/emitter.h"

namespace weft::passes {

/// Emits the primitive form of composite `node` through `e`; `operands` are the node's
/// operands as values of `e`'s graph. Returns the value standing for the node's result,
/// which has the node's type. The emitted nodes contain no composite op.
using DecomposeFn = ir::ValueId (*)(Emitter& e, const ir::Node& node, const std::vector<ir::ValueId>& operands);

/// Every decomposition, keyed by op.
const std::map<ir::OpKind, DecomposeFn>& decompositions();
/// The decomposition of `op`, or nullptr when it has none.
DecomposeFn findDecomposition(ir::OpKind op);
/// Emits the decomposition of `node`. Throws weft::Error when its op has none, or when the
/// result does not have the node's type.
ir::ValueId decompose(Emitter& e, const ir::Node& node, const std::vector<ir::ValueId>& operands);

/// softmax(x) along `axis`: exp(x - max) / sum(exp(x - max)).
ir::ValueId emitSoftmax(Emitter& e, ir::ValueId x, int64_t axis);
/// log_softmax(x) along `axis`: (x - max) - log(sum(exp(x - max))).
ir::ValueId emitLogSoftmax(Emitter& e, ir::ValueId x, int64_t axis);

namespace detail {
/// Adds the activation, softmax, reduction and loss decompositions (decompositions.cpp).
void addElementwiseAndLossDecompositions(std::map<ir::OpKind, DecomposeFn>& table);
/// Adds the normalization and attention decompositions (decompositions_norm.cpp).
void addNormAndAttentionDecompositions(std::map<ir::OpKind, DecomposeFn>& table);
}  // namespace detail

}  // namespace weft::passes
