// Gradient rules of the reductions. reduce_sum spreads the cotangent back over the reduced
// dims (reshape to the keepdims shape, then broadcast). reduce_max/min send it to the
// positions equal to the result, divided by their count so that tied maxima share it
// evenly (the subgradient PyTorch's amax uses); the mask reads x through stop_gradient.
#include "passes/grad_rules.h"

namespace weft::passes::grad {
namespace {

using ir::OpKind;
using ir::ValueId;

/// The cotangent of a reduction result reshaped to the keepdims shape.
ValueId keptCotangent(GradContext& c) {
  return reshapeTo(c.e, c.cotangent, keptShape(c.operandShape(0), c.attr().ints("axes")));
}

Grads reduceSum(GradContext& c) { return {broadcastTo(c.e, keptCotangent(c), c.operandShape(0))}; }

Grads reduceExtremum(GradContext& c) {
  Emitter& e = c.e;
  const auto& axes = c.attr().ints("axes");
  ir::Shape kept = keptShape(c.operandShape(0), axes);
  ValueId extreme = reshapeTo(e, frozen(e, c.result), kept);
  ValueId hit = indicator(e, e.op(OpKind::Eq, {frozen(e, c.operand(0)), extreme}), c.resultType().dtype);
  ValueId count = e.reduceSum(hit, axes, true);
  return {e.mul(hit, e.div(keptCotangent(c), count))};
}

}  // namespace

void addReduceGradRules(std::map<OpKind, GradRule>& table) {
  table[OpKind::ReduceSum] = reduceSum;
  table[OpKind::ReduceMax] = reduceExtremum;
  table[OpKind::ReduceMin] = reduceExtremum;
}

}  // namespace weft::passes::grad
