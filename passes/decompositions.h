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

/// The statistics axes of batch norm over x of rank `rank`: every dim but channel dim 1.
std::vector<int64_t> batchNormAxes(int64_t rank);
/// The statistics axes of layer norm from `axis` on over x of rank `rank`.
std::vector<int64_t> layerNormAxes(int64_t rank, int64_t axis);
/// The spatial dims [2, rank) of channels-first data of rank `rank`.
std::vector<int64_t> spatialAxes(int64_t rank);
/// A per-channel vector [C] reshaped to [1, C, 1, ...] so that it broadcasts against `like`.
ir::ValueId emitPerChannel(Emitter& e, ir::ValueId channels, ir::ValueId like);

/// What a normalization computes of x before scaling: x - mean and rsqrt(var + eps) with
/// biased statistics over its axes (kept, so both broadcast against x).
struct NormStatistics {
  ir::ValueId centered;  ///< x - mean
  ir::ValueId rstd;      ///< rsqrt(var + eps)
};
/// The statistics of layer and batch norm over `axes`, emitted in the decompositions' order:
/// a gradient rule that emits them again is merged with the forward's by cse.
NormStatistics emitNormStatistics(Emitter& e, ir::ValueId x, const std::vector<int64_t>& axes, double eps);
/// The statistics of group_norm of x [N, C, spatial...] with `groups` groups (each channel
/// holds its group's mean and rsqrt), emitted in its decomposition's order.
NormStatistics emitGroupNormStatistics(Emitter& e, ir::ValueId x, int64_t groups, double eps);
/// The mean of `t` [N, C, spatial...] over each group of `groups` channels and the spatial
/// dims, as [N, C, 1...] (each channel holds its group's mean).
ir::ValueId emitGroupMean(Emitter& e, ir::ValueId t, int64_t groups);
/// The group means as emitGroupMean, from the sums over the spatial dims `channelSums`
/// [N, C] of a tensor of shape `shape` [N, C, spatial...].
ir::ValueId emitGroupMeanOfSums(Emitter& e, ir::ValueId channelSums, const ir::Shape& shape, int64_t groups);

namespace detail {
/// Adds the activation, softmax, reduction and loss decompositions (decompositions.cpp).
void addElementwiseAndLossDecompositions(std::map<ir::OpKind, DecomposeFn>& table);
/// Adds the normalization and attention decompositions (decompositions_norm.cpp).
void addNormAndAttentionDecompositions(std::map<ir::OpKind, DecomposeFn>& table);
}  // namespace detail

}  // namespace weft::passes
