// Direct gradient rules of the normalizations. With xhat = (x - mean) rstd over the
// statistics axes A (N elements per statistic), y = xhat gamma + beta and g = dy gamma:
//   dx = rstd (g - mean_A(g) - xhat mean_A(g xhat)),
//   dgamma = the sum of dy xhat over gamma's broadcast dims, dbeta = that of dy.
// Through the decomposition the mean's and the variance's paths reach x separately (four
// sums and two passes over x-sized data in a batch norm's backward); here they are summed
// analytically: two sums and one elementwise pass. Where gamma is constant along A (batch
// norm: one per channel; group norm: per channel within each image) mean_A(g) and
// mean_A(g xhat) are gamma-scaled means of dy and dy xhat, so the reductions of dgamma and
// dbeta serve dx too.
// The statistics are emitted as the decompositions emit them, so cse merges them with the
// forward's once decompose-composites has run.
#include "passes/decompositions.h"
#include "passes/grad_rules.h"

namespace weft::passes::grad {
namespace {

using ir::OpKind;
using ir::ValueId;

/// rstd (g - m1 - xhat m2): the data gradient from g = dy gamma and the means m1 of g and m2
/// of g xhat over the statistics axes.
ValueId dataGradient(Emitter& e, ValueId g, ValueId xhat, ValueId rstd, ValueId m1, ValueId m2) {
  return e.mul(e.sub(e.sub(g, m1), e.mul(xhat, m2)), rstd);
}

Grads batchNorm(GradContext& c) {
  Emitter& e = c.e;
  ValueId x = c.operand(0), dy = c.cotangent;
  const ir::Shape shape = c.operandShape(0);
  const std::vector<int64_t> axes = batchNormAxes(static_cast<int64_t>(shape.size()));
  int64_t count = 1;
  for (int64_t a : axes) count *= shape[static_cast<size_t>(a)];
  NormStatistics s = emitNormStatistics(e, x, axes, c.attr().f("eps"));
  ValueId xhat = e.mul(s.centered, s.rstd);
  ValueId sumDy = e.reduceSum(dy, axes, true), sumDyXhat = e.reduceSum(e.mul(dy, xhat), axes, true);
  Grads grads(3);
  if (c.wants(0)) {
    ValueId gamma = emitPerChannel(e, c.operand(1), x);
    ValueId n = e.scalarLike(static_cast<double>(count), x);
    // gamma rstd (dy - sum(dy)/N - xhat sum(dy xhat)/N): gamma factored out of g.
    grads[0] = dataGradient(e, dy, xhat, e.mul(gamma, s.rstd), e.div(sumDy, n), e.div(sumDyXhat, n));
  }
  const ir::Shape channels = {shape[1]};
  if (c.wants(1)) grads[1] = reshapeTo(e, sumDyXhat, channels);
  if (c.wants(2)) grads[2] = reshapeTo(e, sumDy, channels);
  return grads;
}

Grads layerNorm(GradContext& c) {
  Emitter& e = c.e;
  ValueId x = c.operand(0), dy = c.cotangent;
  const ir::Shape shape = c.operandShape(0), gammaShape = c.operandShape(1), betaShape = c.operandShape(2);
  const std::vector<int64_t> axes = layerNormAxes(static_cast<int64_t>(shape.size()), c.attr().i("axis"));
  NormStatistics s = emitNormStatistics(e, x, axes, c.attr().f("eps"));
  ValueId xhat = e.mul(s.centered, s.rstd);
  Grads grads(3);
  if (c.wants(0)) {
    ValueId g = e.mul(dy, c.operand(1));
    grads[0] = dataGradient(e, g, xhat, s.rstd, e.reduceMean(g, axes, true), e.reduceMean(e.mul(g, xhat), axes, true));
  }
  if (c.wants(1)) grads[1] = sumToShape(e, e.mul(dy, xhat), gammaShape);
  if (c.wants(2)) grads[2] = sumToShape(e, dy, betaShape);
  return grads;
}

Grads groupNorm(GradContext& c) {
  Emitter& e = c.e;
  ValueId x = c.operand(0), dy = c.cotangent;
  const ir::Shape shape = c.operandShape(0);
  const int64_t groups = c.attr().i("groups");
  const std::vector<int64_t> spatial = spatialAxes(static_cast<int64_t>(shape.size()));
  NormStatistics s = emitGroupNormStatistics(e, x, groups, c.attr().f("eps"));
  ValueId xhat = e.mul(s.centered, s.rstd);
  // Per image and channel [N, C]: the sums of dy and dy xhat over the spatial dims.
  ValueId sumDy = e.reduceSum(dy, spatial, false), sumDyXhat = e.reduceSum(e.mul(dy, xhat), spatial, false);
  Grads grads(3);
  if (c.wants(0)) {
    const ir::Shape row = {1, shape[1]};
    ValueId gammaRow = e.reshape(c.operand(1), row);
    ValueId m1 = emitGroupMeanOfSums(e, e.mul(sumDy, gammaRow), shape, groups);
    ValueId m2 = emitGroupMeanOfSums(e, e.mul(sumDyXhat, gammaRow), shape, groups);
    ValueId g = e.mul(dy, emitPerChannel(e, c.operand(1), x));
    grads[0] = dataGradient(e, g, xhat, s.rstd, m1, m2);
  }
  if (c.wants(1)) grads[1] = e.reduceSum(sumDyXhat, {0}, false);
  if (c.wants(2)) grads[2] = e.reduceSum(sumDy, {0}, false);
  return grads;
}

}  // namespace

void addNormGradRules(std::map<OpKind, GradRule>& table) {
  table[OpKind::BatchNorm] = batchNorm;
  table[OpKind::LayerNorm] = layerNorm;
  table[OpKind::GroupNorm] = groupNorm;
}

}  // namespace weft::passes::grad
