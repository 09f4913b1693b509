// Direct gradient rules of the composites that models use most, shorter than differentiating
// their decompositions: relu and leaky_relu (a select on x > 0, so x == 0 takes the negative
// side's slope, as in PyTorch), gelu, reduce_mean, softmax, log_softmax, softplus and
// bce_with_logits (sigmoid(x), where the decomposition's log1p form would be differentiated
// term by term). The norms have theirs in grad_rules_norm.cpp; every other composite is
// differentiated through its decomposition (passes/decompositions.h).
#include <cmath>
#include <string>

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

/// gelu's slope computed from x again (erf form: 0.5 (1 + erf(x/sqrt 2)) + x pdf(x); tanh
/// form from its tanh): through the decomposition the backward pass would read the forward's
/// erf (or tanh) tensor, which fusion keeps materialized as an expensive op, so a whole
/// activation more stays alive until then. The erf's argument is x / sqrt 2 with its
/// operands in the other order, so that cse does not merge it back into the forward's.
Grads gelu(GradContext& c) {
  Emitter& e = c.e;
  ValueId x = c.operand(0);
  auto k = [&](double v) { return e.scalarLike(v, x); };
  ValueId slope;
  if (c.attr().i("approximate") == 0) {
    ValueId cdf = e.mul(k(0.5), e.add(k(1), e.op(OpKind::Erf, {e.mul(k(1 / std::sqrt(2.0)), x)})));
    ValueId pdf = e.mul(k(1 / std::sqrt(2 * M_PI)), e.exp(e.mul(e.mul(x, x), k(-0.5))));
    slope = e.add(cdf, e.mul(x, pdf));
  } else {
    const double a = std::sqrt(2.0 / M_PI), b = 0.044715;
    ValueId x2 = e.mul(x, x);
    ValueId t = e.op(OpKind::Tanh, {e.mul(k(a), e.add(x, e.mul(k(b), e.mul(x2, x))))});
    ValueId dInner = e.mul(k(a), e.add(k(1), e.mul(k(3 * b), x2)));
    ValueId sech2 = e.sub(k(1), e.mul(t, t));
    slope = e.add(e.mul(k(0.5), e.add(k(1), t)), e.mul(e.mul(k(0.5), x), e.mul(sech2, dInner)));
  }
  return {e.mul(c.cotangent, slope)};
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

/// d softplus(x) = sigmoid(x) dx.
Grads softplus(GradContext& c) { return {c.e.mul(c.cotangent, c.e.op(OpKind::Sigmoid, {c.operand(0)}))}; }

/// bce(x, t) = softplus(x) - x t per element: x gets (sigmoid(x) - t) g, t gets -x g, with g
/// the cotangent spread over the elements as the `reduce` attribute summed them.
Grads bceWithLogits(GradContext& c) {
  Emitter& e = c.e;
  ValueId x = c.operand(0), t = c.operand(1);
  const ir::Shape& shape = c.operandShape(0);
  const std::string& mode = c.attr().s("reduce");
  ValueId share = c.cotangent;
  if (mode != "none") {  // a scalar: divided (for a mean) before it is spread over the elements
    if (mode == "mean") {
      int64_t count = 1;
      for (int64_t d : shape) count *= d;
      share = e.div(share, e.scalarLike(static_cast<double>(count), x));
    }
    share = broadcastTo(e, reshapeTo(e, share, ir::Shape(shape.size(), 1)), shape);
  }
  Grads r(2);
  if (c.wants(0)) r[0] = e.mul(share, e.sub(e.op(OpKind::Sigmoid, {x}), t));
  if (c.wants(1)) r[1] = e.mul(share, e.neg(x));
  return r;
}

}  // namespace

void addCompositeGradRules(std::map<OpKind, GradRule>& table) {
  table[OpKind::Relu] = relu;
  table[OpKind::LeakyRelu] = leakyRelu;
  table[OpKind::ReduceMean] = reduceMean;
  table[OpKind::Softmax] = softmax;
  table[OpKind::Gelu] = gelu;
  table[OpKind::LogSoftmax] = logSoftmax;
  table[OpKind::Softplus] = softplus;
  table[OpKind::BceWithLogits] = bceWithLogits;
}

}  // namespace weft::passes::grad
