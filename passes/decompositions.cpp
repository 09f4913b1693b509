// Decompositions of activations, softmax-like ops, reduce_mean and losses into primitives.
// Every form is the numerically stable one: softmax and logsumexp subtract the maximum before
// exp, softplus and bce_with_logits use max(x,0) + log(1 + exp(-|x|)) so exp never overflows.
// cross_entropy picks the label's log-probability with a one-hot mask
// (cast(eq(check_index(labels), iota))) and a sum, which autodiff can differentiate like any
// product; check_index makes a run with a label outside [0, classes) fail as the
// interpreter's cross_entropy does, where the mask would silently pick nothing.
#include "passes/decompositions.h"

#include <cmath>
#include <limits>

#include "ir/error.h"

namespace weft::passes {
namespace {

using ir::OpKind;
using ir::ValueId;
using Operands = std::vector<ValueId>;

ir::AttrReader attrs(const ir::Node& n) { return ir::AttrReader(n.attrs, n.op); }

/// log(1 + u) for u in [0, 1], accurate where 1 + u rounds away most of u: with w = 1 + u,
/// log(w) * u / (w - 1) (the rounding of w cancels), and u itself where w is 1. The divisor
/// is 1 there instead of 0, so that no branch, value or gradient, holds an infinity.
ValueId log1pOfUnitExact(Emitter& e, ValueId u) {
  ValueId one = e.scalarLike(1, u);
  ValueId w = e.add(one, u);
  ValueId exact = e.op(OpKind::Eq, {w, one});
  ValueId divisor = e.select(exact, one, e.sub(w, one));
  return e.select(exact, u, e.mul(e.log(w), e.div(u, divisor)));
}

/// log(1 + u) for u in [0, 1] in f32 as 2 atanh(s), s = u / (2 + u) in [0, 1/3]: the series
/// 2 s (1 + s^2/3 + s^4/5 + ... + s^12/13) leaves out at most s^14/15 (1.4e-8 relative, a
/// quarter of an f32 ulp), and u's tail below 1e-7 comes through as 2 s = u. A division and
/// six multiply-adds instead of a logarithm, a division and three selects.
ValueId log1pOfUnitSeries(Emitter& e, ValueId u) {
  ValueId s = e.div(u, e.add(e.scalarLike(2, u), u));
  ValueId s2 = e.mul(s, s);
  ValueId poly = e.scalarLike(1.0 / 13, u);
  for (int k = 11; k >= 1; k -= 2) poly = e.add(e.mul(poly, s2), e.scalarLike(1.0 / k, u));
  return e.mul(e.add(s, s), poly);
}

/// log(1 + u) for u in [0, 1]: the series in f32, the exact form in wider types.
ValueId log1pOfUnit(Emitter& e, ValueId u) {
  return e.type(u).dtype == ir::DType::f32 ? log1pOfUnitSeries(e, u) : log1pOfUnitExact(e, u);
}

/// max(x, 0) + log1p(exp(-|x|)) == log(1 + exp(x)), without overflow, and without losing
/// the tail below x = -16, where 1 + exp(x) rounds to 1 in f32 (softplus(-30) is 9.4e-14, not 0).
ValueId stableSoftplus(Emitter& e, ValueId x) {
  ValueId positivePart = e.maximum(x, e.scalarLike(0, x));
  ValueId expMinusAbs = e.exp(e.neg(e.abs(x)));
  return e.add(positivePart, log1pOfUnit(e, expMinusAbs));
}

/// Applies a loss's `reduce` attribute: none, sum or mean over every element.
ValueId reduceLoss(Emitter& e, ValueId perElement, const ir::Node& node) {
  const std::string& mode = attrs(node).s("reduce");
  if (mode == "none") return perElement;
  std::vector<int64_t> axes = allAxes(e.rank(perElement));
  if (mode == "sum") return e.reduceSum(perElement, axes, false);
  return e.reduceMean(perElement, axes, false);
}

ValueId relu(Emitter& e, const ir::Node&, const Operands& in) { return e.maximum(in[0], e.scalarLike(0, in[0])); }

ValueId leakyRelu(Emitter& e, const ir::Node& n, const Operands& in) {
  ValueId x = in[0];
  ValueId positive = e.op(OpKind::Gt, {x, e.scalarLike(0, x)});
  return e.select(positive, x, e.mul(x, e.scalarLike(attrs(n).f("alpha"), x)));
}

/// erf form: 0.5 x (1 + erf(x / sqrt 2)); tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
ValueId gelu(Emitter& e, const ir::Node& n, const Operands& in) {
  ValueId x = in[0];
  ValueId inner;
  if (attrs(n).i("approximate") == 0) {
    inner = e.op(OpKind::Erf, {e.mul(x, e.scalarLike(1.0 / std::sqrt(2.0), x))});
  } else {
    ValueId cube = e.mul(e.mul(x, x), x);
    ValueId poly = e.add(x, e.mul(e.scalarLike(0.044715, x), cube));
    inner = e.op(OpKind::Tanh, {e.mul(e.scalarLike(std::sqrt(2.0 / M_PI), x), poly)});
  }
  ValueId halfX = e.mul(x, e.scalarLike(0.5, x));
  return e.mul(halfX, e.add(e.scalarLike(1, x), inner));
}

ValueId silu(Emitter& e, const ir::Node&, const Operands& in) {
  return e.mul(in[0], e.op(OpKind::Sigmoid, {in[0]}));
}

ValueId softplus(Emitter& e, const ir::Node&, const Operands& in) { return stableSoftplus(e, in[0]); }

ValueId reduceMean(Emitter& e, const ir::Node& n, const Operands& in) {
  return e.reduceMean(in[0], attrs(n).ints("axes"), attrs(n).i("keepdims") != 0);
}

ValueId softmax(Emitter& e, const ir::Node& n, const Operands& in) { return emitSoftmax(e, in[0], attrs(n).i("axis")); }

ValueId logSoftmax(Emitter& e, const ir::Node& n, const Operands& in) {
  return emitLogSoftmax(e, in[0], attrs(n).i("axis"));
}

/// m + log(sum(exp(x - m))) with m the max over the axes; an infinite m is replaced by 0 in
/// the shift so that all -inf (or +inf) slices give -inf (+inf) rather than NaN.
ValueId logSumExp(Emitter& e, const ir::Node& n, const Operands& in) {
  ValueId x = in[0];
  const auto& axes = attrs(n).ints("axes");
  ValueId max = e.reduceMax(x, axes, true);
  ValueId infinite = e.op(OpKind::Eq, {e.abs(max), e.scalarLike(std::numeric_limits<double>::infinity(), x)});
  ValueId shift = e.select(infinite, e.scalarLike(0, x), max);
  ValueId sum = e.reduceSum(e.exp(e.sub(x, shift)), axes, true);
  ValueId result = e.add(e.log(sum), shift);
  if (attrs(n).i("keepdims") != 0) return result;
  return e.reshape(result, n.type.shape);
}

/// -log_softmax(logits)[label] = -sum(log_softmax(logits) * one_hot(label)) over the classes.
ValueId crossEntropy(Emitter& e, const ir::Node& n, const Operands& in) {
  ValueId logits = in[0], labels = in[1];
  int64_t classAxis = e.rank(logits) - 1;
  ValueId logProbs = emitLogSoftmax(e, logits, classAxis);
  ir::Shape column = e.shape(labels);
  column.push_back(1);
  ValueId classes = e.iota({e.shape(logits).back()}, 0, e.type(labels).dtype);
  // A label outside [0, classes) would pick nothing: the run fails on it instead.
  ValueId checked = e.op(OpKind::CheckIndex, {labels}, {{"limit", e.shape(logits).back()}, {"what", std::string("label")}});
  ValueId isLabel = e.op(OpKind::Eq, {e.reshape(checked, column), classes});
  ValueId oneHot = e.cast(isLabel, e.type(logits).dtype);
  ValueId picked = e.reduceSum(e.mul(logProbs, oneHot), {classAxis}, false);
  return reduceLoss(e, e.neg(picked), n);
}

/// max(x,0) - x t + log(1 + exp(-|x|)).
ValueId bceWithLogits(Emitter& e, const ir::Node& n, const Operands& in) {
  ValueId x = in[0], t = in[1];
  ValueId softplus = stableSoftplus(e, x);
  ValueId perElement = e.sub(softplus, e.mul(x, t));
  return reduceLoss(e, perElement, n);
}

ValueId mseLoss(Emitter& e, const ir::Node& n, const Operands& in) {
  ValueId diff = e.sub(in[0], in[1]);
  return reduceLoss(e, e.mul(diff, diff), n);
}

}  // namespace

ValueId emitSoftmax(Emitter& e, ValueId x, int64_t axis) {
  ValueId max = e.reduceMax(x, {axis}, true);
  ValueId exps = e.exp(e.sub(x, max));
  return e.div(exps, e.reduceSum(exps, {axis}, true));
}

ValueId emitLogSoftmax(Emitter& e, ValueId x, int64_t axis) {
  ValueId shifted = e.sub(x, e.reduceMax(x, {axis}, true));
  ValueId logSum = e.log(e.reduceSum(e.exp(shifted), {axis}, true));
  return e.sub(shifted, logSum);
}

namespace detail {
void addElementwiseAndLossDecompositions(std::map<OpKind, DecomposeFn>& table) {
  table[OpKind::Relu] = relu;
  table[OpKind::LeakyRelu] = leakyRelu;
  table[OpKind::Gelu] = gelu;
  table[OpKind::Silu] = silu;
  table[OpKind::Softplus] = softplus;
  table[OpKind::ReduceMean] = reduceMean;
  table[OpKind::Softmax] = softmax;
  table[OpKind::LogSoftmax] = logSoftmax;
  table[OpKind::LogSumExp] = logSumExp;
  table[OpKind::CrossEntropy] = crossEntropy;
  table[OpKind::BceWithLogits] = bceWithLogits;
  table[OpKind::MseLoss] = mseLoss;
}
}  // namespace detail

const std::map<OpKind, DecomposeFn>& decompositions() {
  static const std::map<OpKind, DecomposeFn> table = [] {
    std::map<OpKind, DecomposeFn> t;
    detail::addElementwiseAndLossDecompositions(t);
    detail::addNormAndAttentionDecompositions(t);
    return t;
  }();
  return table;
}

DecomposeFn findDecomposition(OpKind op) {
  auto it = decompositions().find(op);
  return it == decompositions().end() ? nullptr : it->second;
}

ValueId decompose(Emitter& e, const ir::Node& node, const std::vector<ValueId>& operands) {
  DecomposeFn fn = findDecomposition(node.op);
  if (!fn) throw Error("op '" + std::string(ir::opName(node.op)) + "' has no decomposition");
  ValueId result = fn(e, node, operands);
  if (e.type(result) != node.type)
    throw Error("decomposition of '" + std::string(ir::opName(node.op)) + "' gives " + e.type(result).str() +
                " instead of " + node.type.str());
  return result;
}

}  // namespace weft::passes
