// Decompositions of the normalizations and of attention into primitives.
// Norms: mean = sum/count over the statistics dims (kept), d = x - mean, biased variance
// var = sum(d*d)/count, y = d * rsqrt(var + eps), then y * gamma + beta with gamma and beta
// reshaped to broadcast along the channel dim. group_norm sums x over its spatial dims, then
// the [N, C] sums over each group's channels.
// Attention: softmax(q k^T * scale, last axis) v; the causal mask compares two iotas
// (column > row) and selects -inf there, which softmax turns into 0 as long as a row keeps
// one finite score (column 0 always does).
#include <limits>

#include "passes/decompositions.h"

namespace weft::passes {
namespace {

using ir::OpKind;
using ir::ValueId;
using Operands = std::vector<ValueId>;

ir::AttrReader attrs(const ir::Node& n) { return ir::AttrReader(n.attrs, n.op); }

/// (x - mean) * rsqrt(var + eps) with biased statistics over `axes`.
ValueId normalize(Emitter& e, ValueId x, const std::vector<int64_t>& axes, double eps) {
  NormStatistics s = emitNormStatistics(e, x, axes, eps);
  return e.mul(s.centered, s.rstd);
}

/// y * gamma + beta with per-channel gamma and beta of shape [C].
ValueId scaleAndShiftChannels(Emitter& e, ValueId y, ValueId gamma, ValueId beta) {
  ValueId scaled = e.mul(y, emitPerChannel(e, gamma, y));
  return e.add(scaled, emitPerChannel(e, beta, y));
}

ValueId layerNorm(Emitter& e, const ir::Node& n, const Operands& in) {
  ValueId x = in[0];
  ValueId y = normalize(e, x, layerNormAxes(e.rank(x), attrs(n).i("axis")), attrs(n).f("eps"));
  return e.add(e.mul(y, in[1]), in[2]);
}

ValueId batchNorm(Emitter& e, const ir::Node& n, const Operands& in) {
  ValueId x = in[0];
  return scaleAndShiftChannels(e, normalize(e, x, batchNormAxes(e.rank(x)), attrs(n).f("eps")), in[1], in[2]);
}

/// (x - mean) * (gamma * rsqrt(var + eps)) + beta, the scale computed per channel.
ValueId batchNormInfer(Emitter& e, const ir::Node& n, const Operands& in) {
  ValueId x = in[0], gamma = in[1], beta = in[2], mean = in[3], var = in[4];
  ValueId scale = e.mul(gamma, e.rsqrt(e.add(var, e.scalarLike(attrs(n).f("eps"), x))));
  ValueId centered = e.sub(x, emitPerChannel(e, mean, x));
  return scaleAndShiftChannels(e, centered, scale, beta);
}

ValueId groupNorm(Emitter& e, const ir::Node& n, const Operands& in) {
  // The statistics reduce x over its spatial dims first and only then over each group's
  // channels (small [N, C] sums), so x itself is read only by elementwise ops and spatial
  // reductions, which keep working on a channels-last x.
  NormStatistics s = emitGroupNormStatistics(e, in[0], attrs(n).i("groups"), attrs(n).f("eps"));
  return scaleAndShiftChannels(e, e.mul(s.centered, s.rstd), in[1], in[2]);
}

ValueId attention(Emitter& e, const ir::Node& n, const Operands& in) {
  ValueId q = in[0], k = in[1], v = in[2];
  ValueId scores = e.op(OpKind::Matmul, {q, k}, {{"transpose_rhs", int64_t{1}}});
  scores = e.mul(scores, e.scalarLike(attrs(n).f("scale"), q));
  int64_t lastAxis = e.rank(scores) - 1;
  if (attrs(n).i("causal") != 0) {
    const ir::Shape& s = e.shape(scores);
    ir::Shape square = {s[s.size() - 2], s.back()};
    ValueId row = e.iota(square, 0, ir::DType::i64), column = e.iota(square, 1, ir::DType::i64);
    ValueId future = e.op(OpKind::Gt, {column, row});
    ValueId minusInf = e.scalarLike(-std::numeric_limits<double>::infinity(), q);
    scores = e.select(future, minusInf, scores);
  }
  // A softmax node, itself decomposed later: autodiff then takes softmax's own rule, which
  // reads only its result, instead of differentiating through the max and the exp (which
  // keeps the scores and their exp alive until the backward pass).
  return e.op(OpKind::Matmul, {e.op(OpKind::Softmax, {scores}, {{"axis", lastAxis}}), v});
}

}  // namespace

std::vector<int64_t> batchNormAxes(int64_t rank) {
  std::vector<int64_t> axes;
  for (int64_t d = 0; d < rank; ++d)
    if (d != 1) axes.push_back(d);
  return axes;
}

std::vector<int64_t> layerNormAxes(int64_t rank, int64_t axis) {
  std::vector<int64_t> axes;
  for (int64_t d = axis; d < rank; ++d) axes.push_back(d);
  return axes;
}

std::vector<int64_t> spatialAxes(int64_t rank) { return layerNormAxes(rank, 2); }

ValueId emitPerChannel(Emitter& e, ValueId channels, ValueId like) {
  ir::Shape shape(static_cast<size_t>(e.rank(like)), 1);
  shape[1] = e.shape(channels)[0];
  return e.reshape(channels, shape);
}

NormStatistics emitNormStatistics(Emitter& e, ValueId x, const std::vector<int64_t>& axes, double eps) {
  ValueId centered = e.sub(x, e.reduceMean(x, axes, true));
  ValueId variance = e.reduceMean(e.mul(centered, centered), axes, true);
  return {centered, e.rsqrt(e.add(variance, e.scalarLike(eps, x)))};
}

ValueId emitGroupMeanOfSums(Emitter& e, ValueId channelSums, const ir::Shape& shape, int64_t groups) {
  const int64_t n = shape[0], perGroup = shape[1] / groups;
  ValueId groupSums = e.reduceSum(e.reshape(channelSums, {n, groups, perGroup}), {2}, true);
  ValueId mean = e.div(groupSums, e.scalarLike(static_cast<double>(ir::numElements(shape) / n / groups), channelSums));
  ir::Shape perChannel(shape.size(), 1);
  perChannel[0] = n;
  perChannel[1] = shape[1];
  return e.reshape(e.op(OpKind::Broadcast, {mean}, {{"shape", std::vector<int64_t>{n, groups, perGroup}}}), perChannel);
}

ValueId emitGroupMean(Emitter& e, ValueId t, int64_t groups) {
  const ir::Shape shape = e.shape(t);  // a copy: emitting nodes below may reallocate the graph
  return emitGroupMeanOfSums(e, e.reduceSum(t, spatialAxes(e.rank(t)), false), shape, groups);
}

NormStatistics emitGroupNormStatistics(Emitter& e, ValueId x, int64_t groups, double eps) {
  ValueId centered = e.sub(x, emitGroupMean(e, x, groups));
  ValueId variance = emitGroupMean(e, e.mul(centered, centered), groups);
  return {centered, e.rsqrt(e.add(variance, e.scalarLike(eps, x)))};
}

namespace detail {
void addNormAndAttentionDecompositions(std::map<OpKind, DecomposeFn>& table) {
  table[OpKind::LayerNorm] = layerNorm;
  table[OpKind::BatchNorm] = batchNorm;
  table[OpKind::BatchNormInfer] = batchNormInfer;
  table[OpKind::GroupNorm] = groupNorm;
  table[OpKind::Attention] = attention;
}
}  // namespace detail

}  // namespace weft::passes
