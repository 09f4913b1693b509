// Direct gradient rules of the composites that models use most, shorter than differentiating
// their decompositions: relu and leaky_relu (a select on x > 0, so x == 0 takes the negative
// side's slope, as in PyTorch), reduce_mean, softmax and log_softmax. Every other composite is
// differentiated through its decomposition (passes/decompositions.h).
#include "passes/grad_rules.h"

namespace weft::passes::grad {
namespace {

using ir::OpKind;
using ir::ValueId;

/// x > 0 read from `v`: the operand x, or the result y when y > 0 exactly where x > 0 (relu,
/// leaky_relu with alpha >= 0). Reading y leaves x with one reader, so that the activation
/// can fuse into what computes x (a conv or matmul epilogue, a normalization kernel).
ValueId positive(GradContext& c, ValueId v) {
  Emitter& e = c.e;
  return e.op(OpKind::Gt, {frozen(e, v), e.scalar(0, c.resultType().dtype)});
}

Grads relu(GradContext& c) {
  return {c.e.select(positive(c, c.result), c.cotangent, c.e.scalar(0, c.resultType().dtype))};
}

Grads leakyRelu(GradContext& c) {
  Emitter& e = c.e;
  double alpha = c.attr().f("alpha");
  ValueId slope = e.scalar(alpha, c.resultType().dtype);
  return {e.select(positive(c, alpha >= 0 ? c.result : c.operand(0)), c.cotangent, e.mul(c.cotangent, slope))};
}

Grads reduceMean(GradContext& c) {
  Emitter& e = c.e;
  const auto& axes = c.attr().ints("axes");
  int64_t count = 1;
  for (int64_t a : axes) count *= c.operandShape(0)[static_cast<size_t>(a)];
  ValueId kept = reshapeTo(e, c.cotangent, keptShape(c.operandShape(0), axes));
  ValueId share = e.div(kept, e.scalar(static_cast<double>(count), c.resultType().dtype));
  return {broadcastTo(e, share, c.operandShape(0))};
}

/// y (g - sum(g y)) along the axis.
Grads softmax(GradContext& c) {
  Emitter& e = c.e;
  int64_t axis = c.attr().i("axis");
  ValueId y = c.result;
  ValueId dot = e.reduceSum(e.mul(c.cotangent, y), {axis}, true);
  return {e.mul(y, e.sub(c.cotangent, dot))};
}

/// g - softmax(x) sum(g) along the axis, with softmax(x) = exp(y).
Grads logSoftmax(GradContext& c) {
  Emitter& e = c.e;
  int64_t axis = c.attr().i("axis");
  ValueId total = e.reduceSum(c.cotangent, {axis}, true);
  return {e.sub(c.cotangent, e.mul(e.exp(c.result), total))};
}

}  // namespace

void addCompositeGradRules(std::map<OpKind, GradRule>& table) {
  table[OpKind::Relu] = relu;
  table[OpKind::LeakyRelu] = leakyRelu;
  table[OpKind::ReduceMean] = reduceMean;
  table[OpKind::Softmax] = softmax;
  table[OpKind::LogSoftmax] = logSoftmax;
}

}  // namespace weft::passes::grad
